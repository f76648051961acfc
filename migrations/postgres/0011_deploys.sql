-- Per-app deploy settings (NULL: the platform's default). Boot timeout: seconds a web instance has to listen on
-- PORT (R10, default 60). Deploy timeout: seconds a deploy waits for the new release's instances before it
-- rolls back (default 120). Health check path: an HTTP check every web instance must pass, winning over what a
-- release's app.json declares. Deploy strategy: 'all-at-once' (default) or 'rolling'.
ALTER TABLE apps ADD COLUMN boot_timeout_secs BIGINT;
ALTER TABLE apps ADD COLUMN deploy_timeout_secs BIGINT;
ALTER TABLE apps ADD COLUMN health_check_path TEXT;
ALTER TABLE apps ADD COLUMN deploy_strategy TEXT;
-- The health checks a release's app.json declared, as JSON: process type -> check (NULL: none).
ALTER TABLE releases ADD COLUMN health_checks TEXT;
