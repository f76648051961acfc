-- Per-app build time limit, over the whole build, in seconds (NULL: the platform's default, 15 minutes).
ALTER TABLE apps ADD COLUMN build_timeout_secs BIGINT;
