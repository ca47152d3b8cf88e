-- The reaction engine: webhooks, rules, anomaly detectors and their state, the anomalies
-- they found, and the delivery outbox.

CREATE TABLE webhooks (
    id               uuid PRIMARY KEY,
    name             text NOT NULL,
    url              text NOT NULL,
    -- Extra request headers, a JSON object of strings.
    headers          jsonb NOT NULL DEFAULT '{}',
    -- The Standard Webhooks signing secret ("whsec_..."). Kept in clear because the
    -- dispatcher signs with it; the API shows it once, at creation.
    secret           text NOT NULL,
    enabled          boolean NOT NULL DEFAULT true,
    -- Set when the dispatcher disabled the endpoint for failing too long; cleared when a
    -- person enables it again.
    disabled_reason  text,
    -- When the current run of failures began; NULL while the endpoint succeeds.
    failing_since    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rules (
    id               uuid PRIMARY KEY,
    name             text NOT NULL,
    description      text NOT NULL DEFAULT '',
    -- Filters; NULL matches any.
    app_id           text,
    event_category   text,
    event_type       text,
    -- A CEL expression over event, category and type; '' matches every event the
    -- filters let through.
    condition        text NOT NULL DEFAULT '',
    webhook_ids      uuid[] NOT NULL DEFAULT '{}',
    -- NULL: alerts.<app>.<rule id>.
    publish_subject  text,
    priority         integer NOT NULL DEFAULT 0,
    enabled          boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE detectors (
    id                uuid PRIMARY KEY,
    name              text NOT NULL,
    description       text NOT NULL DEFAULT '',
    app_id            text,
    event_category    text,
    event_type        text,
    -- An optional CEL filter, as a rule's condition.
    condition         text NOT NULL DEFAULT '',
    kind              text NOT NULL CHECK (kind IN ('threshold', 'rate', 'count', 'baseline')),
    config            jsonb NOT NULL,
    cooldown_seconds  integer NOT NULL DEFAULT 300 CHECK (cooldown_seconds >= 0),
    webhook_ids       uuid[] NOT NULL DEFAULT '{}',
    -- NULL: anomalies.<app>.<detector id>.
    publish_subject   text,
    enabled           boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- A detector's windows and baseline per app, saved every few seconds and at stop so that
-- a restart continues where it left off.
CREATE TABLE detector_state (
    detector_id  uuid NOT NULL REFERENCES detectors (id) ON DELETE CASCADE,
    app_id       text NOT NULL,
    state        jsonb NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (detector_id, app_id)
);

CREATE TABLE anomalies (
    id           uuid PRIMARY KEY,
    detector_id  uuid NOT NULL REFERENCES detectors (id) ON DELETE CASCADE,
    app_id       text NOT NULL,
    kind         text NOT NULL,
    -- Names the firing (the event for per-event kinds, the window for windowed ones), so
    -- that recording it again after a crash changes nothing.
    dedup_key    text NOT NULL,
    fired_at     timestamptz NOT NULL,
    message      text NOT NULL,
    observed     double precision,
    expected     double precision,
    details      jsonb NOT NULL DEFAULT '{}',
    event_id     text,
    UNIQUE (detector_id, app_id, dedup_key)
);

CREATE INDEX anomalies_fired_at ON anomalies (fired_at DESC);

-- The outbox: one row per webhook call to make. A row is written in the same transaction
-- that records what caused it, and the dispatcher sends it.
CREATE TABLE deliveries (
    -- Also the webhook-id header, which receivers use to drop repeats.
    id               uuid PRIMARY KEY,
    webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    type             text NOT NULL CHECK (type IN ('rule.matched', 'anomaly.detected', 'webhook.test')),
    -- What caused it ("rule:<rule id>:<event id>", "anomaly:<anomaly id>"), unique per
    -- webhook: an event redelivered after a crash records its deliveries once.
    source_key       text NOT NULL,
    rule_id          uuid REFERENCES rules (id) ON DELETE SET NULL,
    detector_id      uuid REFERENCES detectors (id) ON DELETE SET NULL,
    app_id           text,
    event_id         text,
    -- The exact JSON body that is signed and sent on every attempt.
    body             text NOT NULL,
    -- pending: not tried yet (or being sent); retrying: failed, tried again at
    -- next_attempt_at; succeeded; dead: out of attempts.
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'retrying', 'succeeded', 'dead')),
    priority         integer NOT NULL DEFAULT 0,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text,
    last_latency_ms  integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    UNIQUE (webhook_id, source_key)
);

CREATE INDEX deliveries_due ON deliveries (priority DESC, next_attempt_at) WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, created_at DESC);
CREATE INDEX deliveries_by_status ON deliveries (status, created_at DESC);
