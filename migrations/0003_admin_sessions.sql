-- Sign-in sessions of the admin UI. The cookie holds a random token; only its SHA-256 is
-- kept, so a copy of the database cannot be used to sign in.

CREATE TABLE admin_sessions (
    token_hash  bytea PRIMARY KEY,
    -- The session's CSRF token, sent back with every form and htmx request.
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX admin_sessions_expires_at ON admin_sessions (expires_at);
