-- Ephemeral Kubernetes clusters and the one-time registration codes (invites) admins make.
-- SQLite flavour. Keep in step with migrations/postgres.
--
-- A cluster's row stays after it is deleted (state 'deleted', for the history), so a name is
-- unique per owner only among the clusters that are not deleted: a partial unique index.
-- `kubeconfig` is the sealed (encrypted) kubeconfig, opaque bytes, at most 1 MiB; no query
-- but the kubeconfig's own reads it, and it is cleared when the cluster becomes 'deleted'.
-- `running_at` is when it first became 'running', `deleted_at` when it became 'deleted';
-- an extension never moves `expires_at` past `max_expires_at`.
CREATE TABLE clusters (
    id             TEXT PRIMARY KEY NOT NULL,
    name           TEXT NOT NULL,
    owner          TEXT NOT NULL,
    provider       TEXT NOT NULL,
    state          TEXT NOT NULL
        CHECK (state IN ('provisioning', 'running', 'deleting', 'deleted', 'failed')),
    state_reason   TEXT NOT NULL,
    api_url        TEXT,
    created_at     TEXT NOT NULL,
    running_at     TEXT,
    expires_at     TEXT NOT NULL,
    max_expires_at TEXT NOT NULL,
    deleted_at     TEXT,
    kubeconfig     BLOB CHECK (length(kubeconfig) BETWEEN 1 AND 1048576),
    CHECK (expires_at <= max_expires_at)
) STRICT;
CREATE UNIQUE INDEX clusters_owner_name ON clusters (owner, name) WHERE state <> 'deleted';
CREATE INDEX clusters_owner ON clusters (owner, created_at, id);
CREATE INDEX clusters_created_at ON clusters (created_at, id);
CREATE INDEX clusters_expiry ON clusters (state, expires_at);

-- `code_hash` is the SHA-256 of the code as 64 lowercase hex digits; the code itself is never
-- stored. A use sets `used_by` and `used_at` together (one conditional UPDATE, so a code is
-- used once however many try at once); a release clears both.
CREATE TABLE invites (
    id         TEXT PRIMARY KEY NOT NULL,
    code_hash  TEXT NOT NULL UNIQUE
        CHECK (length(code_hash) = 64 AND code_hash NOT GLOB '*[^0-9a-f]*'),
    created_by TEXT NOT NULL,
    note       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_by    TEXT,
    used_at    TEXT,
    CHECK ((used_by IS NULL) = (used_at IS NULL))
) STRICT;
CREATE INDEX invites_created_at ON invites (created_at, id);
CREATE INDEX invites_created_by ON invites (created_by);
CREATE INDEX invites_used_by ON invites (used_by);
