-- PostgreSQL mirror of migrations/sqlite/0013_access.sql (kept in step by the store's schema test). INTEGER
-- there is BIGINT here: the store reads every integer as i64, which sqlx's Any driver decodes only from BIGINT.
-- Accounts and access (issue 7): collaborators, token scopes, suspended accounts, per-account quotas and the
-- audit log. Written to run unchanged on PostgreSQL: TEXT ids and times, BIGINT numbers, INTEGER 0/1 booleans.

-- Accounts other than the owner that may read and deploy an app (never delete it or manage access).
CREATE TABLE app_collaborators (
    app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    -- The account name of whoever added it (a name, not a reference: the history outlives the account).
    added_by    TEXT NOT NULL,
    added_at    TEXT NOT NULL,
    PRIMARY KEY (app_id, account_id)
);
CREATE INDEX app_collaborators_by_account ON app_collaborators(account_id);

-- 'full' or 'read' (GET requests only). last_used_at is refreshed at most once a minute.
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'full';
ALTER TABLE api_tokens ADD COLUMN last_used_at TEXT;

-- A suspended account's tokens are refused and its apps are stopped.
ALTER TABLE accounts ADD COLUMN suspended BIGINT NOT NULL DEFAULT 0;

-- Per-account overrides of the platform's default quotas; NULL keeps the default.
CREATE TABLE account_quotas (
    account_id        TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    max_apps          BIGINT,
    max_instances     BIGINT,
    max_memory_bytes  BIGINT,
    max_builds        BIGINT
);

-- Every change made through the API or git, newest found by `at`. Never holds request bodies. No reference to
-- accounts: the record outlives a deleted account.
CREATE TABLE audit_log (
    id           TEXT PRIMARY KEY,
    at           TEXT NOT NULL,
    account      TEXT NOT NULL,
    token_scope  TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT,
    status       BIGINT NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log(at);
CREATE INDEX audit_log_by_account ON audit_log(account, at);
