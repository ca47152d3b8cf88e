-- Apps and their API keys, and the appliance's own settings (the admin password hash).

CREATE TABLE apps (
    id          text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    app_id        text NOT NULL REFERENCES apps (id),
    name          text NOT NULL,
    -- SHA-256 of the key: keys are 256 random bits, so a fast hash is enough and lets
    -- the ingest path check a key in memory without a slow KDF per request.
    key_hash      bytea NOT NULL UNIQUE,
    -- The first characters of the key, to tell keys apart in lists without revealing them.
    key_prefix    text NOT NULL,
    -- Events per second; NULL means the server-wide default.
    rate_limit    double precision CHECK (rate_limit IS NULL OR rate_limit >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

CREATE INDEX api_keys_app_id ON api_keys (app_id);

CREATE TABLE settings (
    key         text PRIMARY KEY,
    value       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
