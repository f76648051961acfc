-- Each account's block of host user/group ids (vocabulary::IdRange): slot N is host ids 2^20 + N * 65536 up to
-- 65536 more, the uids its instances and builds run as. AUTOINCREMENT: a slot is never given out again, even
-- after its account is deleted, so files a deleted account left behind never belong to a new one.
CREATE TABLE account_id_ranges (
    slot        INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  TEXT NOT NULL UNIQUE REFERENCES accounts(id) ON DELETE CASCADE
);

-- Existing accounts, oldest first.
INSERT INTO account_id_ranges (account_id) SELECT id FROM accounts ORDER BY created_at, id;
