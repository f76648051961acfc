-- Tokens that can only read the route stream, for routers on other machines. Kept apart from api_tokens so
-- that they can never authenticate anything else. Only the SHA-256 is kept; the admin who made one owns it.
CREATE TABLE router_tokens (
    token_sha256 TEXT PRIMARY KEY,
    created_by   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL
);
