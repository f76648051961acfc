-- Custom domains (exact names or `*.` wildcards). The primary key makes a domain belong to one app across all
-- tenants; it goes with its app.
CREATE TABLE domains (
    name        TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL
);
CREATE INDEX domains_by_app ON domains(app_id);
