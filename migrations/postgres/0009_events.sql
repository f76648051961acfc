-- An app's history: deploys, scale changes, crashes, config changes, with who and when. Append-only.
CREATE TABLE events (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id       TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    description  TEXT NOT NULL,
    -- An account's name, or 'berth' for the platform itself.
    actor        TEXT NOT NULL,
    at           TEXT NOT NULL
);
CREATE INDEX events_by_app ON events(app_id, id);
