-- Berth's runtime state, SQLite flavour. Keep in step with migrations/postgres.
-- UUIDs are lowercase hyphenated text; timestamps are UTC text 'YYYY-MM-DDTHH:MM:SS.ffffffZ'
-- (fixed width, so text order is time order); booleans are 0/1.

CREATE TABLE workspaces (
    id            TEXT PRIMARY KEY NOT NULL,
    owner         TEXT NOT NULL,
    template      TEXT NOT NULL,
    state         TEXT NOT NULL
        CHECK (state IN ('pending', 'starting', 'running', 'stopping', 'stopped', 'failed')),
    container_id  TEXT,
    persistent    INTEGER NOT NULL CHECK (persistent IN (0, 1)),
    network       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    started_at    TEXT,
    last_activity TEXT NOT NULL,
    expires_at    TEXT,
    state_reason  TEXT NOT NULL
) STRICT;
CREATE INDEX workspaces_owner_state ON workspaces (owner, state);
CREATE INDEX workspaces_state ON workspaces (state);
CREATE INDEX workspaces_created_at ON workspaces (created_at, id);

CREATE TABLE clients (
    client_id        TEXT PRIMARY KEY NOT NULL,
    username         TEXT NOT NULL,
    hostname         TEXT NOT NULL,
    version          TEXT NOT NULL,
    first_seen       TEXT NOT NULL,
    last_seen        TEXT NOT NULL,
    last_ip          TEXT NOT NULL,
    local_workspaces TEXT NOT NULL
) STRICT;
CREATE INDEX clients_username ON clients (username);
CREATE INDEX clients_last_seen ON clients (last_seen, client_id);

CREATE TABLE login_attempts (
    id       INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    ip       TEXT NOT NULL,
    success  INTEGER NOT NULL CHECK (success IN (0, 1)),
    at       TEXT NOT NULL
) STRICT;
CREATE INDEX login_attempts_username_at ON login_attempts (username, at);
CREATE INDEX login_attempts_at ON login_attempts (at);

-- AUTOINCREMENT: ids only grow and are never reused.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    ip      TEXT,
    details TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied'))
) STRICT;
CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);

-- Append-only: a retention policy will come with a migration that replaces these triggers.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
