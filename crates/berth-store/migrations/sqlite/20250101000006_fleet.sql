-- The fleet: machines of the inventory in force and the history of inventory syncs, SQLite
-- flavour. Keep in step with migrations/postgres.
-- Columns whose query names are SQL keywords are stored under other names: `ssh_user`
-- (`user`), `kind` (`type`), `key_file` (`key`), `commit_id` (`commit`), `triggered_by`
-- (`trigger`). `tags` is ',a,b,' (empty text for none) so a tag is found with one LIKE;
-- `probes` is a JSON array of the recent checks, oldest first. No secrets: `key_file` names
-- a file in the keys dir.
CREATE TABLE machines (
    id                   TEXT PRIMARY KEY NOT NULL,
    name                 TEXT NOT NULL,
    host                 TEXT NOT NULL,
    port                 INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    ssh_user             TEXT NOT NULL,
    kind                 TEXT,
    tags                 TEXT NOT NULL,
    key_file             TEXT NOT NULL,
    host_key             TEXT,
    proxy_jump           TEXT,
    client_id            TEXT,
    description          TEXT NOT NULL,
    enrollment           TEXT NOT NULL CHECK (enrollment IN ('unknown', 'enrolled', 'mismatch',
        'missing', 'unreachable', 'auth_failed', 'host_key_unknown', 'host_key_changed')),
    enrollment_message   TEXT NOT NULL,
    fingerprint          TEXT,
    verified_at          TEXT,
    health               TEXT NOT NULL
        CHECK (health IN ('unknown', 'online', 'degraded', 'offline')),
    latency_ms           INTEGER,
    last_seen            TEXT,
    consecutive_failures INTEGER NOT NULL CHECK (consecutive_failures >= 0),
    checked_at           TEXT,
    probes               TEXT NOT NULL,
    commit_id            TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
) STRICT;
CREATE INDEX machines_client_id ON machines (client_id);

-- AUTOINCREMENT: ids only grow and are never reused, so id order is start order.
CREATE TABLE fleet_syncs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    triggered_by TEXT NOT NULL CHECK (triggered_by IN ('start', 'schedule', 'api', 'webhook')),
    actor        TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    result       TEXT NOT NULL
        CHECK (result IN ('running', 'succeeded', 'unchanged', 'failed', 'interrupted')),
    commit_id    TEXT,
    errors       TEXT NOT NULL,
    changes      TEXT NOT NULL
) STRICT;
CREATE INDEX fleet_syncs_result ON fleet_syncs (result, finished_at, id);
