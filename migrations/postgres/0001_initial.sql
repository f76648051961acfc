-- PostgreSQL mirror of migrations/sqlite/0001_initial.sql (kept in step by the store's schema test: same files, tables
-- and columns). INTEGER there is BIGINT here, AUTOINCREMENT an identity column; booleans stay integers 0/1.
-- Berth's first schema. IDs are UUIDs stored as text; times are RFC 3339 UTC text.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    is_admin    BIGINT NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

-- Only the SHA-256 of a token is kept; the token itself is shown once, when it is made.
CREATE TABLE api_tokens (
    token_sha256 TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL
);

CREATE TABLE apps (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    created_at  TEXT NOT NULL
);
CREATE INDEX apps_by_account ON apps(account_id);

-- Immutable once written.
CREATE TABLE releases (
    id               TEXT PRIMARY KEY,
    app_id           TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    version          BIGINT NOT NULL,
    image_digest     TEXT NOT NULL,
    -- JSON object: process type -> command
    processes        TEXT NOT NULL,
    -- JSON object: config var -> value
    config           TEXT NOT NULL,
    description      TEXT NOT NULL,
    created_by       TEXT NOT NULL REFERENCES accounts(id),
    created_at       TEXT NOT NULL,
    UNIQUE (app_id, version)
);

-- How many instances of each process type an app wants.
CREATE TABLE formations (
    app_id        TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    process_type  TEXT NOT NULL,
    quantity      BIGINT NOT NULL,
    memory_bytes  BIGINT NOT NULL,
    PRIMARY KEY (app_id, process_type)
);

CREATE TABLE nodes (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    memory_capacity_bytes  BIGINT NOT NULL,
    registered_at          TEXT NOT NULL
);

-- Placements made by the scheduler, and the state the node's agent last reported for them.
CREATE TABLE instances (
    id            TEXT PRIMARY KEY,
    app_id        TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    release_id    TEXT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    process_type  TEXT NOT NULL,
    idx           BIGINT NOT NULL,
    node_id       TEXT NOT NULL REFERENCES nodes(id),
    memory_bytes  BIGINT NOT NULL,
    -- 'starting' | 'running' | 'crashed' | 'stopping'
    state         TEXT NOT NULL,
    -- set when the scheduler wants the instance gone; the row is deleted once the node no longer reports it
    stop_requested BIGINT NOT NULL DEFAULT 0,
    address       TEXT,
    hostname      TEXT,
    restarts      BIGINT NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX instances_by_app ON instances(app_id);
CREATE INDEX instances_by_node ON instances(node_id);
