-- Workspace members and terminal recordings, SQLite flavour. Keep in step with
-- migrations/postgres.

-- Users other than the owner who may join a workspace's terminal. They go with the workspace.
CREATE TABLE workspace_members (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    username     TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('peer', 'viewer')),
    added_by     TEXT NOT NULL,
    added_at     TEXT NOT NULL,
    PRIMARY KEY (workspace_id, username)
) STRICT;
CREATE INDEX workspace_members_username ON workspace_members (username);

-- No foreign key to workspaces: a recording outlives its workspace, so it keeps the owner.
-- `path` is relative to $BERTH_HOME/recordings.
CREATE TABLE recordings (
    id           TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL,
    owner        TEXT NOT NULL,
    username     TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    ended_at     TEXT,
    path         TEXT NOT NULL UNIQUE,
    bytes        INTEGER NOT NULL CHECK (bytes >= 0),
    width        INTEGER NOT NULL CHECK (width BETWEEN 1 AND 65535),
    height       INTEGER NOT NULL CHECK (height BETWEEN 1 AND 65535)
) STRICT;
CREATE INDEX recordings_workspace ON recordings (workspace_id, started_at);
CREATE INDEX recordings_owner ON recordings (owner, started_at);
