-- Per-app grace between SIGTERM and SIGKILL when an instance stops, in seconds (NULL: the agent's default, 30 s).
ALTER TABLE apps ADD COLUMN stop_grace_secs BIGINT;
-- An instance's most recent exit as its agent reported it: the reason ("exited with code 3", "out of memory",
-- ...) and when (RFC 3339).
ALTER TABLE instances ADD COLUMN last_exit TEXT;
ALTER TABLE instances ADD COLUMN last_exit_at TEXT;
