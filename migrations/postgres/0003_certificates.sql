-- TLS certificates uploaded for apps' custom domains. The key is kept in clear because the router needs it;
-- the API never returns it and nothing logs it.
CREATE TABLE certificates (
    id          TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    -- JSON array of the DNS names the certificate carries
    hosts       TEXT NOT NULL,
    cert_pem    TEXT NOT NULL,
    key_pem     TEXT NOT NULL,
    not_after   TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX certificates_by_app ON certificates(app_id);
