-- Operations: one run of an inventory script on a set of machines, each machine's part of it
-- with its kept output, and the event log the live view replays. SQLite flavour. Keep in step
-- with migrations/postgres.
-- Query columns that are SQL keywords are stored under other names: `username` (`user`),
-- `commit_id` (`commit`). `machines` is the operation's machine ids in the order given, as
-- ',a,b,' (the form of machines.tags), so `has` finds a machine with one LIKE; the rows of
-- operation_machines say the same with each machine's state. `last_seq` is the seq of the
-- last stored event (0 for none): appends check and move it in one conditional UPDATE, so
-- seqs only grow even with concurrent writers. `rerun_of` is no foreign key: the operation it
-- reruns may have left the history. `finished_at` is set exactly when the status is a finished
-- one.
CREATE TABLE operations (
    id              TEXT PRIMARY KEY NOT NULL,
    script          TEXT NOT NULL,
    commit_id       TEXT NOT NULL,
    username        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed',
        'cancelled', 'interrupted')),
    concurrency     INTEGER NOT NULL CHECK (concurrency >= 1),
    timeout_seconds INTEGER NOT NULL CHECK (timeout_seconds >= 1),
    rerun_of        TEXT,
    created_at      TEXT NOT NULL,
    finished_at     TEXT,
    machines        TEXT NOT NULL,
    last_seq        INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    CHECK ((status IN ('queued', 'running')) = (finished_at IS NULL))
) STRICT;
CREATE INDEX operations_created_at ON operations (created_at, id);
CREATE INDEX operations_username ON operations (username, created_at, id);
CREATE INDEX operations_status ON operations (status, created_at, id);

-- A machine's part of an operation. `machine` is no foreign key to machines: the history
-- outlives the inventory. stdout and stderr are the kept output, as bytes.
CREATE TABLE operation_machines (
    operation_id TEXT NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL CHECK (position >= 0),
    machine      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'connecting', 'running', 'succeeded',
        'failed', 'timed_out', 'cancelled', 'unreachable', 'interrupted')),
    exit_code    INTEGER,
    signal       TEXT,
    message      TEXT NOT NULL DEFAULT '',
    started_at   TEXT,
    finished_at  TEXT,
    duration_ms  INTEGER,
    stdout       BLOB NOT NULL DEFAULT x'',
    stderr       BLOB NOT NULL DEFAULT x'',
    truncated    INTEGER NOT NULL DEFAULT 0 CHECK (truncated IN (0, 1)),
    PRIMARY KEY (operation_id, machine),
    UNIQUE (operation_id, position)
) STRICT;

-- The events of an operation in the order they happened: `data` is output bytes (kind
-- 'output', with its machine and stream) or the JSON of a state event ('operation',
-- 'machine'); only state events of an operation have no machine, only output has a stream.
CREATE TABLE operation_events (
    operation_id TEXT NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL CHECK (seq > 0),
    at           TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('operation', 'machine', 'output')),
    machine      TEXT,
    stream       TEXT CHECK (stream IN ('stdout', 'stderr')),
    data         BLOB NOT NULL,
    PRIMARY KEY (operation_id, seq),
    CHECK ((kind = 'operation') = (machine IS NULL)),
    CHECK ((kind = 'output') = (stream IS NOT NULL))
) STRICT;
