-- Workspace members and terminal recordings, PostgreSQL flavour. Keep in step with
-- migrations/sqlite.

-- Users other than the owner who may join a workspace's terminal. They go with the workspace.
CREATE TABLE workspace_members (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    username     text COLLATE "C" NOT NULL,
    role         text COLLATE "C" NOT NULL CHECK (role IN ('peer', 'viewer')),
    added_by     text COLLATE "C" NOT NULL,
    added_at     timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, username)
);
CREATE INDEX workspace_members_username ON workspace_members (username);

-- No foreign key to workspaces: a recording outlives its workspace, so it keeps the owner.
-- `path` is relative to $BERTH_HOME/recordings.
CREATE TABLE recordings (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    owner        text COLLATE "C" NOT NULL,
    username     text COLLATE "C" NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    path         text COLLATE "C" NOT NULL UNIQUE,
    bytes        bigint NOT NULL CHECK (bytes >= 0),
    width        integer NOT NULL CHECK (width BETWEEN 1 AND 65535),
    height       integer NOT NULL CHECK (height BETWEEN 1 AND 65535)
);
CREATE INDEX recordings_workspace ON recordings (workspace_id, started_at);
CREATE INDEX recordings_owner ON recordings (owner, started_at);
