-- PostgreSQL mirror of migrations/sqlite/0012_nodes_inventory.sql (kept in step by the store's schema test).
-- The node inventory for many nodes (issue 7). What a node offers: CPU in millicores and disk bytes besides
-- memory; its labels as a JSON object ({"region":"eu"}); the operator's state ('ready' | 'cordoned' |
-- 'draining'); the agent's version; and when it last sent a heartbeat (NULL: never). Whether a node is down is
-- not stored: the controller derives it from last_heartbeat_at.
ALTER TABLE nodes ADD COLUMN cpu_millicores BIGINT NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN disk_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
ALTER TABLE nodes ADD COLUMN state TEXT NOT NULL DEFAULT 'ready';
ALTER TABLE nodes ADD COLUMN agent_version TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN last_heartbeat_at TEXT;
-- An app's placement constraints as a JSON object of labels every node of its instances must have.
ALTER TABLE apps ADD COLUMN constraints TEXT NOT NULL DEFAULT '{}';
-- Instances the scheduler wants but could not place at its last pass, with the reason for people. Replaced
-- by every pass of the leader's controller; `since` is when the instance first waited for this reason.
CREATE TABLE pending_instances (
    app_id        TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    process_type  TEXT NOT NULL,
    idx           BIGINT NOT NULL,
    reason        TEXT NOT NULL,
    since         TEXT NOT NULL,
    PRIMARY KEY (app_id, process_type, idx)
);
