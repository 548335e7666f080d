-- Berth's runtime state, PostgreSQL flavour. Keep in step with migrations/sqlite.
-- Text columns use COLLATE "C" so ordering (and keyset pagination) is byte order, as in
-- SQLite, whatever locale the database was created with.

CREATE TABLE workspaces (
    id            uuid PRIMARY KEY,
    owner         text COLLATE "C" NOT NULL,
    template      text COLLATE "C" NOT NULL,
    state         text COLLATE "C" NOT NULL
        CHECK (state IN ('pending', 'starting', 'running', 'stopping', 'stopped', 'failed')),
    container_id  text COLLATE "C",
    persistent    boolean NOT NULL,
    network       text COLLATE "C" NOT NULL,
    created_at    timestamptz NOT NULL,
    started_at    timestamptz,
    last_activity timestamptz NOT NULL,
    expires_at    timestamptz,
    state_reason  text COLLATE "C" NOT NULL
);
CREATE INDEX workspaces_owner_state ON workspaces (owner, state);
CREATE INDEX workspaces_state ON workspaces (state);
CREATE INDEX workspaces_created_at ON workspaces (created_at, id);

CREATE TABLE clients (
    client_id        uuid PRIMARY KEY,
    username         text COLLATE "C" NOT NULL,
    hostname         text COLLATE "C" NOT NULL,
    version          text COLLATE "C" NOT NULL,
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    last_ip          text COLLATE "C" NOT NULL,
    local_workspaces text NOT NULL
);
CREATE INDEX clients_username ON clients (username);
CREATE INDEX clients_last_seen ON clients (last_seen, client_id);

CREATE TABLE login_attempts (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username text COLLATE "C" NOT NULL,
    ip       text NOT NULL,
    success  boolean NOT NULL,
    at       timestamptz NOT NULL
);
CREATE INDEX login_attempts_username_at ON login_attempts (username, at);
CREATE INDEX login_attempts_at ON login_attempts (at);

CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text COLLATE "C" NOT NULL,
    action  text COLLATE "C" NOT NULL,
    target  text COLLATE "C" NOT NULL,
    ip      text COLLATE "C",
    details text NOT NULL,
    outcome text COLLATE "C" NOT NULL CHECK (outcome IN ('success', 'failure', 'denied'))
);
CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);

-- Append-only: a retention policy will come with a migration that replaces this trigger.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
