-- The web dashboard's sign-in sessions. The browser holds the session id in an HttpOnly cookie; only its
-- SHA-256 is kept, like API tokens. The CSRF token is stored in clear: it is no credential on its own (the
-- cookie is needed too), and the dashboard's pages must be able to show it to their own scripts.
CREATE TABLE dashboard_sessions (
    id_sha256   TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX dashboard_sessions_by_account ON dashboard_sessions(account_id);

-- Optional passwords for signing in to the dashboard (`berth accounts password`), as Argon2id PHC strings
-- (algorithm, parameters and salt inside). An account without a row signs in with its API token only.
CREATE TABLE account_passwords (
    account_id  TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    phc         TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
