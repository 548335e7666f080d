-- The fleet: machines of the inventory in force and the history of inventory syncs,
-- PostgreSQL flavour. Keep in step with migrations/sqlite.
-- Columns whose query names are SQL keywords are stored under other names: `ssh_user`
-- (`user`), `kind` (`type`), `key_file` (`key`), `commit_id` (`commit`), `triggered_by`
-- (`trigger`). `tags` is ',a,b,' (empty text for none) so a tag is found with one LIKE;
-- `probes` is a JSON array of the recent checks, oldest first. No secrets: `key_file` names
-- a file in the keys dir. Integers are bigint, as the store reads them.
CREATE TABLE machines (
    id                   text COLLATE "C" PRIMARY KEY,
    name                 text COLLATE "C" NOT NULL,
    host                 text COLLATE "C" NOT NULL,
    port                 bigint NOT NULL CHECK (port BETWEEN 1 AND 65535),
    ssh_user             text COLLATE "C" NOT NULL,
    kind                 text COLLATE "C",
    tags                 text COLLATE "C" NOT NULL,
    key_file             text COLLATE "C" NOT NULL,
    host_key             text COLLATE "C",
    proxy_jump           text COLLATE "C",
    client_id            text COLLATE "C",
    description          text COLLATE "C" NOT NULL,
    enrollment           text COLLATE "C" NOT NULL CHECK (enrollment IN ('unknown', 'enrolled',
        'mismatch', 'missing', 'unreachable', 'auth_failed', 'host_key_unknown',
        'host_key_changed')),
    enrollment_message   text COLLATE "C" NOT NULL,
    fingerprint          text COLLATE "C",
    verified_at          timestamptz,
    health               text COLLATE "C" NOT NULL
        CHECK (health IN ('unknown', 'online', 'degraded', 'offline')),
    latency_ms           bigint,
    last_seen            timestamptz,
    consecutive_failures bigint NOT NULL CHECK (consecutive_failures >= 0),
    checked_at           timestamptz,
    probes               text NOT NULL,
    commit_id            text COLLATE "C" NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX machines_client_id ON machines (client_id);

CREATE TABLE fleet_syncs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    triggered_by text COLLATE "C" NOT NULL
        CHECK (triggered_by IN ('start', 'schedule', 'api', 'webhook')),
    actor        text COLLATE "C" NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    result       text COLLATE "C" NOT NULL
        CHECK (result IN ('running', 'succeeded', 'unchanged', 'failed', 'interrupted')),
    commit_id    text COLLATE "C",
    errors       text NOT NULL,
    changes      text NOT NULL
);
CREATE INDEX fleet_syncs_result ON fleet_syncs (result, finished_at, id);
