-- App lifecycle (issue 6): what made each release, stopped apps, config set before the first release, and
-- instances asked to be replaced by fresh ones (`berth ps restart`).

-- 'build' | 'config' | 'rollback' | 'rebase' | 'image': a column rather than parsing the free-text description,
-- so that a description can change wording without changing what `berth releases` reports.
ALTER TABLE releases ADD COLUMN kind TEXT NOT NULL DEFAULT 'build';
UPDATE releases SET kind = 'rebase' WHERE description LIKE 'Rebase onto %';
UPDATE releases SET kind = 'image' WHERE description LIKE 'Deploy image %';

-- A stopped app keeps its formation but runs no instance until it is started again.
ALTER TABLE apps ADD COLUMN stopped BIGINT NOT NULL DEFAULT 0;

-- Config vars set before the app has any release (JSON object name -> value). Releases carry config from
-- then on; the first release takes these and the column is cleared.
ALTER TABLE apps ADD COLUMN pending_config TEXT;

-- Set by `berth ps restart`: the scheduler places a fresh instance beside this one and stops this one once the
-- fresh one runs, exactly as for an instance of an older release.
ALTER TABLE instances ADD COLUMN replace_requested BIGINT NOT NULL DEFAULT 0;
