//! Fleet operations: one run of an inventory script on a set of machines. [`OperationStore`]
//! keeps each operation (`operations`), each machine's part of it with the output kept
//! (`operation_machines`), and the events a live view replays before it follows the run
//! (`operation_events`), so the history survives restarts. At start-up,
//! [`OperationStore::interrupt_operation`] ends what a stopped Berth left running, one
//! operation per transaction.
//!
//! The store keeps the state machine of a machine run ([`MachineRunStatus::may_become`]) and
//! the order of events (seqs only grow) against concurrent writers: both are checked by
//! conditional `UPDATE`s, never by a read followed by a write. Where an operation stands
//! follows from its machines ([`OperationStatus::of`]); the caller says so with
//! [`OperationStore::set_operation_status`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fmt::Write as _;

use async_trait::async_trait;
use berth_types::api::MAX_OPERATION_MACHINES;
use berth_types::operation::{MachineRunStatus, OperationStatus, OutputStream};
use berth_types::{MachineId, OperationId, Username};
use time::OffsetDateTime;

use crate::db::{Bind, Row, SqlStore, Tx};
use crate::machines::machine_id;
use crate::tables::filters::tags_text;
use crate::{StoreError, sql, timestamp};

/// The most finished operations kept: [`OperationStore::create_operation`] forgets older ones
/// (by `created_at`, then id) with their machines and events; unfinished ones always stay.
pub const OPERATION_HISTORY: u32 = 10_000;

/// The message of a machine run that [`OperationStore::interrupt_operation`] ended.
pub const INTERRUPTED_MESSAGE: &str = "Berth stopped during the run";

/// Rows per multi-row statement: far below either backend's limit on bound values.
const CHUNK: usize = 500;

/// An operation to record, before any machine starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOperation {
    /// Its id, chosen by the caller.
    pub id: OperationId,
    /// The script's name in scripts.yaml.
    pub script: String,
    /// The inventory commit the script came from.
    pub commit: String,
    /// Who started it.
    pub user: Username,
    /// Machines at once (at least 1).
    pub concurrency: u32,
    /// The timeout per machine, in seconds (at least 1).
    pub timeout_seconds: u64,
    /// The operation this one reruns.
    pub rerun_of: Option<OperationId>,
    /// The machines, in order, each once (1 to [`MAX_OPERATION_MACHINES`]).
    pub machines: Vec<MachineId>,
    /// When it was started.
    pub created_at: OffsetDateTime,
}

/// An operation with its machines.
///
/// Timestamps come back normalized (UTC, microseconds; see [`crate::normalize_time`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationRecord {
    /// Its id.
    pub id: OperationId,
    /// The script run.
    pub script: String,
    /// The inventory commit the script came from.
    pub commit: String,
    /// Who started it.
    pub user: Username,
    /// Where it stands.
    pub status: OperationStatus,
    /// Machines at once.
    pub concurrency: u32,
    /// The timeout per machine, in seconds.
    pub timeout_seconds: u64,
    /// The operation this one reruns (which may have left the history since).
    pub rerun_of: Option<OperationId>,
    /// When it was started.
    pub created_at: OffsetDateTime,
    /// When it finished; `None` while it is queued or running.
    pub finished_at: Option<OffsetDateTime>,
    /// Every machine, in the order given at creation.
    pub machines: Vec<MachineRunRecord>,
}

/// One machine's part of an operation, with its kept output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineRunRecord {
    /// The machine.
    pub machine: MachineId,
    /// Where it stands.
    pub status: MachineRunStatus,
    /// The script's exit code, when it exited.
    pub exit_code: Option<i64>,
    /// The signal that ended it (`TERM`, `KILL`, ...), when one did.
    pub signal: Option<String>,
    /// Why it ended as it did, for people; empty while nothing is to be said.
    pub message: String,
    /// When the script started on it.
    pub started_at: Option<OffsetDateTime>,
    /// When it finished.
    pub finished_at: Option<OffsetDateTime>,
    /// How long the script ran, in milliseconds.
    pub duration_ms: Option<i64>,
    /// The standard output kept, as bytes (not necessarily UTF-8).
    pub stdout: Vec<u8>,
    /// The standard error kept, as bytes.
    pub stderr: Vec<u8>,
    /// Whether output was dropped to keep it within bounds.
    pub truncated: bool,
}

/// An operation without its machines' output: what lists and overviews need, and how the
/// output would group, so that no caller loads every machine's output to find out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationSummary {
    /// The operation; its machines' `stdout` and `stderr` are empty here (their sizes are in
    /// `output_bytes`; [`OperationStore::machine_run`] has the bytes).
    pub operation: OperationRecord,
    /// Per machine, in order: the bytes of output kept, standard output and error together.
    pub output_bytes: Vec<u64>,
    /// Per machine, in order: the index of the first machine that printed the same thing
    /// and ended the same way (status, exit code, signal, stdout and stderr), itself when it
    /// is the first: the groups of `dshbak -c`, found by the database.
    pub same_as: Vec<usize>,
}

/// A machine run's new state, for [`OperationStore::update_machine_run`]: every field
/// replaces the stored one (the output is [`OperationStore::store_machine_output`]'s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineRunUpdate {
    /// Where it stands now: a move [`MachineRunStatus::may_become`] allows.
    pub status: MachineRunStatus,
    /// The exit code, once it exited.
    pub exit_code: Option<i64>,
    /// The signal that ended it.
    pub signal: Option<String>,
    /// Why, for people.
    pub message: String,
    /// When the script started.
    pub started_at: Option<OffsetDateTime>,
    /// When it finished.
    pub finished_at: Option<OffsetDateTime>,
    /// How long the script ran.
    pub duration_ms: Option<i64>,
}

/// What an event of an operation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationEventKind {
    /// The operation's state changed (no machine, no stream).
    Operation,
    /// A machine's state changed (a machine, no stream).
    Machine,
    /// Output of a machine (a machine and a stream).
    Output,
}

impl OperationEventKind {
    /// Every kind, in a fixed order.
    pub const ALL: [Self; 3] = [Self::Operation, Self::Machine, Self::Output];

    /// The name stored: `operation`, `machine` or `output`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operation => "operation",
            Self::Machine => "machine",
            Self::Output => "output",
        }
    }

    /// The kind named `text`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for OperationEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of an operation, as the live view replays it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationEventRecord {
    /// Its number, given by the caller: above 0, increasing within the operation.
    pub seq: i64,
    /// When it happened.
    pub at: OffsetDateTime,
    /// What it is about.
    pub kind: OperationEventKind,
    /// The machine, for `machine` and `output` events (none for `operation`).
    pub machine: Option<MachineId>,
    /// The stream, for `output` events only.
    pub stream: Option<OutputStream>,
    /// The output bytes, or the JSON of a state event.
    pub data: Vec<u8>,
}

/// The operations tables: operations, their machines with the output kept, and their events.
#[async_trait]
pub trait OperationStore: Send + Sync + fmt::Debug {
    /// Records a new operation, `queued`, with every machine `queued` (message "") in the
    /// order given, in one transaction, then forgets the oldest finished operations beyond
    /// [`OPERATION_HISTORY`]. Answers the operation as stored.
    ///
    /// [`StoreError::Conflict`] if the id is taken; [`StoreError::InvalidInput`] for no
    /// machines, more than [`MAX_OPERATION_MACHINES`], a machine listed twice, a concurrency
    /// or timeout of 0, or a timeout beyond `i64::MAX` seconds.
    async fn create_operation(&self, new: &NewOperation) -> Result<OperationRecord, StoreError>;

    /// Sets where operation `id` stands. `finished_at` is given exactly when `status` is a
    /// finished one ([`OperationStatus::is_finished`]), else [`StoreError::InvalidInput`].
    /// [`StoreError::NotFound`] if there is no operation `id`.
    async fn set_operation_status(
        &self,
        id: OperationId,
        status: OperationStatus,
        finished_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError>;

    /// Moves `machine` of operation `id` to `update` (every field replaces the stored one),
    /// if [`MachineRunStatus::may_become`] allows the move from its stored state: else
    /// [`StoreError::Conflict`] (a move out of a finished state, backwards, or to the same
    /// state) and nothing changes. The check and the write are one statement, so of two
    /// concurrent moves the state machine forbids together, one is refused.
    /// [`StoreError::NotFound`] if the operation has no such machine.
    async fn update_machine_run(
        &self,
        id: OperationId,
        machine: &MachineId,
        update: &MachineRunUpdate,
    ) -> Result<(), StoreError>;

    /// Replaces the output kept for `machine` of operation `id` (bytes as they are) and
    /// whether some was dropped. [`StoreError::NotFound`] if the operation has no such
    /// machine.
    async fn store_machine_output(
        &self,
        id: OperationId,
        machine: &MachineId,
        stdout: &[u8],
        stderr: &[u8],
        truncated: bool,
    ) -> Result<(), StoreError>;

    /// Appends `events` to operation `id`'s log, in one transaction: all or none.
    ///
    /// [`StoreError::NotFound`] if there is no operation `id` (also for no events);
    /// [`StoreError::Conflict`] if the first seq is not above the last stored one
    /// ([`OperationStore::last_operation_event`]): seqs only grow, whoever writes;
    /// [`StoreError::InvalidInput`] for a seq of 0 or less, seqs that do not increase within
    /// `events`, an event whose machine and stream do not fit its kind (`operation`: neither;
    /// `machine`: a machine only; `output`: both), or a machine not in the operation.
    async fn append_operation_events(
        &self,
        id: OperationId,
        events: &[OperationEventRecord],
    ) -> Result<(), StoreError>;

    /// Operation `id`'s events with a seq above `after_seq`, by seq, at most `limit` and no
    /// more than their first whose data brings the total to `max_bytes` or above (so the
    /// first is always answered, however big); none for an unknown operation.
    async fn operation_events(
        &self,
        id: OperationId,
        after_seq: i64,
        limit: u32,
        max_bytes: u64,
    ) -> Result<Vec<OperationEventRecord>, StoreError>;

    /// Moves operation `id`'s last seq up to `through` (nothing if it is there already):
    /// events up to `through` were published without being kept, and none of theirs may be
    /// numbered again. [`StoreError::NotFound`] if there is no operation `id`.
    async fn skip_operation_events(&self, id: OperationId, through: i64) -> Result<(), StoreError>;

    /// The seq of operation `id`'s last event, kept or skipped, 0 before the first: where
    /// numbering resumes after a restart. [`StoreError::NotFound`] if there is no operation
    /// `id`.
    async fn last_operation_event(&self, id: OperationId) -> Result<i64, StoreError>;

    /// Operation `id` with its machines (in the order given) and their kept output, if it
    /// is still in the history.
    async fn operation(&self, id: OperationId) -> Result<Option<OperationRecord>, StoreError>;

    /// Operation `id` without its machines' output (see [`OperationSummary`]), if it is
    /// still in the history.
    async fn operation_summary(
        &self,
        id: OperationId,
    ) -> Result<Option<OperationSummary>, StoreError>;

    /// [`OperationStore::operation_summary`] of each of `ids` still in the history, in the
    /// order of `ids`, in two queries however many they are (a page of the history).
    async fn operation_summaries(
        &self,
        ids: &[OperationId],
    ) -> Result<Vec<OperationSummary>, StoreError>;

    /// The first machine of each group of operation `id` (machines that printed the same
    /// thing and ended the same way, as [`OperationSummary::same_as`] says) with its kept
    /// output, in the operation's order: each distinct output once.
    async fn group_outputs(&self, id: OperationId) -> Result<Vec<MachineRunRecord>, StoreError>;

    /// `machine`'s part of operation `id` with its kept output, and who started the
    /// operation, if it is in the history and ran on the machine.
    async fn machine_run(
        &self,
        id: OperationId,
        machine: &MachineId,
    ) -> Result<Option<(Username, MachineRunRecord)>, StoreError>;

    /// The operations a previous process left `queued` or `running`, oldest first: what
    /// start-up interrupts with [`OperationStore::interrupt_operation`].
    async fn unfinished_operations(&self) -> Result<Vec<OperationId>, StoreError>;

    /// At start-up, operation `id` as a previous process left it, in one transaction (all or
    /// nothing, so a start-up that dies half-way leaves it for the next one): each of
    /// `outputs` is written to its machine's row; every machine `queued`, `connecting` or
    /// `running` becomes `interrupted` with the message [`INTERRUPTED_MESSAGE`] and
    /// `finished_at` = `at` (its exit code, start and duration stay; finished machines are
    /// left as they are); `events` are appended as
    /// [`OperationStore::append_operation_events`] appends them; and the operation becomes
    /// `interrupted`, finished `at`. `false`, with nothing changed, when `id` is not
    /// unfinished (interrupted already, or finished); [`StoreError::NotFound`] if there is no
    /// operation `id` or an output names a machine not in it.
    async fn interrupt_operation(
        &self,
        id: OperationId,
        at: OffsetDateTime,
        outputs: &[KeptOutput],
        events: &[OperationEventRecord],
    ) -> Result<bool, StoreError>;
}

/// A machine's kept output, as start-up rebuilds it from the events of an interrupted run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptOutput {
    pub machine: MachineId,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// More was printed than is kept.
    pub truncated: bool,
}

macro_rules! operation_columns {
    () => {
        "id, script, commit_id, username, status, concurrency, timeout_seconds, rerun_of, \
         created_at, finished_at"
    };
}

macro_rules! run_columns {
    () => {
        "machine, status, exit_code, signal, message, started_at, finished_at, duration_ms, \
         stdout, stderr, truncated"
    };
}

/// The statuses of an operation or a machine run that is not over, as SQL.
macro_rules! unfinished_operation {
    () => {
        "('queued', 'running')"
    };
}

const INSERT_OPERATION: &str = "INSERT INTO operations (id, script, commit_id, username, \
     status, concurrency, timeout_seconds, rerun_of, created_at, machines) \
     VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9)";

/// Forgets finished operations older than the newest `$1` finished ones (their machines and
/// events go with them: `ON DELETE CASCADE`).
const PRUNE_OPERATIONS: &str = concat!(
    "DELETE FROM operations WHERE status NOT IN ",
    unfinished_operation!(),
    " AND (created_at, id) <= (SELECT created_at, id FROM operations WHERE status NOT IN ",
    unfinished_operation!(),
    " ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET $1)"
);

const GET_OPERATION: &str = concat!(
    "SELECT ",
    operation_columns!(),
    " FROM operations WHERE id = $1"
);

const GET_RUNS: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM operation_machines WHERE operation_id = $1 ORDER BY position"
);

// Positions are 0, 1, ... in the order given, so the first machine's position is its index.
// The operations' ids follow, as placeholders.
const GET_RUN_SUMMARIES: &str = "SELECT operation_id, machine, status, exit_code, signal, \
     message, started_at, finished_at, duration_ms, truncated, \
     CAST(length(stdout) + length(stderr) AS BIGINT) AS output_bytes, \
     CAST(min(position) OVER (PARTITION BY operation_id, status, exit_code, signal, stdout, \
     stderr) AS BIGINT) AS same_as \
     FROM operation_machines WHERE operation_id IN (";

const GET_OPERATIONS: &str = concat!(
    "SELECT ",
    operation_columns!(),
    " FROM operations WHERE id IN ("
);

const GET_GROUP_FIRSTS: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM operation_machines WHERE operation_id = $1 AND position IN \
     (SELECT min(position) FROM operation_machines WHERE operation_id = $1 \
     GROUP BY status, exit_code, signal, stdout, stderr) ORDER BY position"
);

const GET_RUN: &str = concat!(
    "SELECT (SELECT username FROM operations WHERE id = $1) AS username, ",
    run_columns!(),
    " FROM operation_machines WHERE operation_id = $1 AND machine = $2"
);

const SET_STATUS: &str = "UPDATE operations SET status = $2, finished_at = $3 WHERE id = $1";

const RUN_STATUS: &str =
    "SELECT status FROM operation_machines WHERE operation_id = $1 AND machine = $2";

const STORE_OUTPUT: &str = "UPDATE operation_machines SET stdout = $3, stderr = $4, \
     truncated = $5 WHERE operation_id = $1 AND machine = $2";

/// Moves the last seq to `$2` if the first new one, `$3`, is above it: the check and the
/// write in one statement (PostgreSQL re-checks the condition on the row a concurrent
/// append committed).
const ADVANCE_SEQ: &str = "UPDATE operations SET last_seq = $2 WHERE id = $1 AND last_seq < $3";

const SKIP_SEQ: &str = "UPDATE operations SET last_seq = $2 WHERE id = $1 AND last_seq < $2";

const LAST_SEQ: &str = "SELECT last_seq FROM operations WHERE id = $1";

// The sum runs over the page only (at most `$3` rows), never over the rest of the log.
const LIST_EVENTS: &str = "SELECT seq, at, kind, machine, stream, data FROM \
     (SELECT seq, at, kind, machine, stream, data, \
     CAST(sum(length(data)) OVER (ORDER BY seq) AS BIGINT) - length(data) AS before \
     FROM (SELECT seq, at, kind, machine, stream, data FROM operation_events \
     WHERE operation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3) page) sized \
     WHERE before < $4 ORDER BY seq";

const UNFINISHED_OPERATIONS: &str = concat!(
    "SELECT id FROM operations WHERE status IN ",
    unfinished_operation!(),
    " ORDER BY created_at, id"
);

const INTERRUPT_RUNS: &str = "UPDATE operation_machines SET status = 'interrupted', \
     message = $3, finished_at = $2 \
     WHERE operation_id = $1 AND status IN ('queued', 'connecting', 'running')";

const INTERRUPT_OPERATION: &str = concat!(
    "UPDATE operations SET status = 'interrupted', finished_at = $2 WHERE id = $1 \
     AND status IN ",
    unfinished_operation!()
);

fn invalid(message: String) -> StoreError {
    StoreError::InvalidInput(message)
}

fn corrupt(what: &str, text: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "stored {what} {:?}",
        text.chars().take(80).collect::<String>()
    ))
}

/// Appends `$n` for each of `values` (bound after `binds`), separated by commas.
fn push_placeholders(sql: &mut String, binds: &mut Vec<Bind>, values: Vec<Bind>) {
    for (i, value) in values.into_iter().enumerate() {
        binds.push(value);
        let _ = write!(sql, "{}${}", if i > 0 { ", " } else { "" }, binds.len());
    }
}

/// Refuses what cannot be recorded as asked; the timeout as stored.
fn check_new(new: &NewOperation) -> Result<i64, StoreError> {
    if new.machines.is_empty() {
        return Err(invalid(
            "an operation runs on at least one machine".to_owned(),
        ));
    }
    if new.machines.len() > MAX_OPERATION_MACHINES {
        return Err(invalid(format!(
            "an operation runs on at most {MAX_OPERATION_MACHINES} machines, not {}",
            new.machines.len()
        )));
    }
    let mut seen = HashSet::with_capacity(new.machines.len());
    if let Some(twice) = new.machines.iter().find(|m| !seen.insert(*m)) {
        return Err(invalid(format!("machine {twice} is listed twice")));
    }
    if new.concurrency == 0 {
        return Err(invalid("the concurrency is at least 1".to_owned()));
    }
    match i64::try_from(new.timeout_seconds) {
        Ok(seconds) if seconds >= 1 => Ok(seconds),
        _ => Err(invalid(format!(
            "a timeout of {} seconds cannot be kept: 1 to {} seconds",
            new.timeout_seconds,
            i64::MAX
        ))),
    }
}

/// Refuses events the log cannot keep faithfully; the machines they name.
fn check_events(events: &[OperationEventRecord]) -> Result<Vec<&MachineId>, StoreError> {
    let mut last = 0;
    let mut machines = Vec::new();
    let mut seen = HashSet::new();
    for event in events {
        if event.seq <= last {
            return Err(invalid(if last == 0 {
                format!("event seq {} is not above 0", event.seq)
            } else {
                format!("event seq {} does not follow seq {last}", event.seq)
            }));
        }
        last = event.seq;
        let fits = match event.kind {
            OperationEventKind::Operation => event.machine.is_none() && event.stream.is_none(),
            OperationEventKind::Machine => event.machine.is_some() && event.stream.is_none(),
            OperationEventKind::Output => event.machine.is_some() && event.stream.is_some(),
        };
        if !fits {
            return Err(invalid(format!(
                "event {} ({}) has {} and {}: an operation event has neither, a machine \
                 event a machine only, an output event both",
                event.seq,
                event.kind,
                if event.machine.is_some() {
                    "a machine"
                } else {
                    "no machine"
                },
                if event.stream.is_some() {
                    "a stream"
                } else {
                    "no stream"
                },
            )));
        }
        if let Some(machine) = &event.machine
            && seen.insert(machine)
        {
            machines.push(machine);
        }
    }
    Ok(machines)
}

fn operation_row(
    row: &Row,
    machines: Vec<MachineRunRecord>,
) -> Result<OperationRecord, StoreError> {
    let status = row.get_str("status")?;
    let concurrency = row.get_i64("concurrency")?;
    let timeout = row.get_i64("timeout_seconds")?;
    Ok(OperationRecord {
        id: OperationId::from(row.get_uuid("id")?),
        script: row.get_str("script")?,
        commit: row.get_str("commit_id")?,
        user: sql::username(row.get_str("username")?)?,
        status: OperationStatus::parse(&status)
            .ok_or_else(|| corrupt("operation status", &status))?,
        concurrency: u32::try_from(concurrency)
            .map_err(|_| corrupt("concurrency", &concurrency.to_string()))?,
        timeout_seconds: u64::try_from(timeout)
            .map_err(|_| corrupt("timeout", &timeout.to_string()))?,
        rerun_of: row.get_opt_uuid("rerun_of")?.map(OperationId::from),
        created_at: row.get_time("created_at")?,
        finished_at: row.get_opt_time("finished_at")?,
        machines,
    })
}

/// A machine run from a row of `run_columns!()`, or without `stdout` and `stderr` (left
/// empty) when `with_output` is false.
fn run_row(row: &Row, with_output: bool) -> Result<MachineRunRecord, StoreError> {
    let status = row.get_str("status")?;
    let output = |column: &str| {
        if with_output {
            row.get_bytes(column)
        } else {
            Ok(Vec::new())
        }
    };
    Ok(MachineRunRecord {
        machine: machine_id(row.get_str("machine")?)?,
        status: MachineRunStatus::parse(&status)
            .ok_or_else(|| corrupt("machine run status", &status))?,
        exit_code: row.get_opt_i64("exit_code")?,
        signal: row.get_opt_str("signal")?,
        message: row.get_str("message")?,
        started_at: row.get_opt_time("started_at")?,
        finished_at: row.get_opt_time("finished_at")?,
        duration_ms: row.get_opt_i64("duration_ms")?,
        stdout: output("stdout")?,
        stderr: output("stderr")?,
        truncated: row.get_bool("truncated")?,
    })
}

fn event_row(row: &Row) -> Result<OperationEventRecord, StoreError> {
    let kind = row.get_str("kind")?;
    Ok(OperationEventRecord {
        seq: row.get_i64("seq")?,
        at: row.get_time("at")?,
        kind: OperationEventKind::parse(&kind).ok_or_else(|| corrupt("event kind", &kind))?,
        machine: row.get_opt_str("machine")?.map(machine_id).transpose()?,
        stream: row
            .get_opt_str("stream")?
            .map(|s| OutputStream::parse(&s).ok_or_else(|| corrupt("output stream", &s)))
            .transpose()?,
        data: row.get_bytes("data")?,
    })
}

/// Inserts the machine rows of a new operation, `queued`, in order.
async fn insert_runs(
    tx: &mut Tx,
    id: OperationId,
    machines: &[MachineId],
) -> Result<(), StoreError> {
    for (chunk_index, chunk) in machines.chunks(CHUNK).enumerate() {
        let mut sql =
            "INSERT INTO operation_machines (operation_id, position, machine, status) VALUES "
                .to_owned();
        let mut binds = vec![Bind::Uuid(id.as_uuid())];
        for (i, machine) in chunk.iter().enumerate() {
            binds.push(Bind::text(machine.as_str()));
            let _ = write!(
                sql,
                "{}($1, {}, ${}, 'queued')",
                if i > 0 { ", " } else { "" },
                chunk_index * CHUNK + i,
                binds.len()
            );
        }
        tx.execute(sql, &binds).await?;
    }
    Ok(())
}

/// Refuses events naming a machine that is not in operation `id`.
async fn check_event_machines(
    tx: &mut Tx,
    id: OperationId,
    machines: &[&MachineId],
) -> Result<(), StoreError> {
    for chunk in machines.chunks(CHUNK) {
        let mut sql = "SELECT machine FROM operation_machines WHERE operation_id = $1 AND \
                       machine IN ("
            .to_owned();
        let mut binds = vec![Bind::Uuid(id.as_uuid())];
        push_placeholders(
            &mut sql,
            &mut binds,
            chunk.iter().map(|m| Bind::text(m.as_str())).collect(),
        );
        sql.push(')');
        let found: HashSet<String> = tx
            .fetch_all(sql, &binds)
            .await?
            .iter()
            .map(|row| row.get_str("machine"))
            .collect::<Result<_, _>>()?;
        if let Some(stranger) = chunk.iter().find(|m| !found.contains(m.as_str())) {
            return Err(invalid(format!(
                "an event names machine {stranger}, which is not in operation {id}"
            )));
        }
    }
    Ok(())
}

/// Appends `events` (checked: `machines` are the ones they name, `first` and `last` their
/// first and last seq) to operation `id`'s log within `tx`.
async fn append_events(
    tx: &mut Tx,
    id: OperationId,
    events: &[OperationEventRecord],
    machines: &[&MachineId],
    first: i64,
    last: i64,
) -> Result<(), StoreError> {
    let advanced = tx
        .execute(
            ADVANCE_SEQ,
            &[Bind::Uuid(id.as_uuid()), Bind::Int(last), Bind::Int(first)],
        )
        .await?;
    if advanced == 0 {
        let stored = tx
            .fetch_optional(LAST_SEQ, &[Bind::Uuid(id.as_uuid())])
            .await?
            .ok_or(StoreError::NotFound)?
            .get_i64("last_seq")?;
        return Err(StoreError::Conflict(format!(
            "event seq {first} of operation {id} is not above {stored}, the last stored"
        )));
    }
    check_event_machines(tx, id, machines).await?;
    insert_events(tx, id, events).await
}

async fn insert_events(
    tx: &mut Tx,
    id: OperationId,
    events: &[OperationEventRecord],
) -> Result<(), StoreError> {
    for chunk in events.chunks(CHUNK) {
        let mut sql = "INSERT INTO operation_events (operation_id, seq, at, kind, machine, \
                       stream, data) VALUES "
            .to_owned();
        let mut binds = vec![Bind::Uuid(id.as_uuid())];
        for (i, event) in chunk.iter().enumerate() {
            sql.push_str(if i > 0 { ", ($1, " } else { "($1, " });
            push_placeholders(
                &mut sql,
                &mut binds,
                vec![
                    Bind::Int(event.seq),
                    Bind::Time(event.at),
                    Bind::text(event.kind.as_str()),
                    Bind::OptText(event.machine.as_ref().map(|m| m.as_str().to_owned())),
                    Bind::OptText(event.stream.map(|s| s.as_str().to_owned())),
                    Bind::Bytes(event.data.clone()),
                ],
            );
            sql.push(')');
        }
        tx.execute(sql, &binds).await?;
    }
    Ok(())
}

#[async_trait]
impl OperationStore for SqlStore {
    async fn create_operation(&self, new: &NewOperation) -> Result<OperationRecord, StoreError> {
        let timeout = check_new(new)?;
        let created_at = timestamp::checked(new.created_at)?;
        let mut tx = self.begin_write().await?;
        let inserted = tx
            .execute(
                INSERT_OPERATION,
                &[
                    Bind::Uuid(new.id.as_uuid()),
                    Bind::text(&new.script),
                    Bind::text(&new.commit),
                    Bind::text(new.user.as_str()),
                    Bind::Int(i64::from(new.concurrency)),
                    Bind::Int(timeout),
                    Bind::OptUuid(new.rerun_of.map(|r| r.as_uuid())),
                    Bind::Time(created_at),
                    Bind::Text(tags_text(
                        &new.machines
                            .iter()
                            .map(MachineId::as_str)
                            .collect::<Vec<_>>(),
                    )),
                ],
            )
            .await;
        match inserted {
            Err(StoreError::Conflict(_)) => {
                return Err(StoreError::Conflict(format!("operation {} exists", new.id)));
            }
            other => other?,
        };
        insert_runs(&mut tx, new.id, &new.machines).await?;
        tx.execute(PRUNE_OPERATIONS, &[Bind::Int(i64::from(OPERATION_HISTORY))])
            .await?;
        tx.commit().await?;
        Ok(OperationRecord {
            id: new.id,
            script: new.script.clone(),
            commit: new.commit.clone(),
            user: new.user.clone(),
            status: OperationStatus::Queued,
            concurrency: new.concurrency,
            timeout_seconds: new.timeout_seconds,
            rerun_of: new.rerun_of,
            created_at,
            finished_at: None,
            machines: new
                .machines
                .iter()
                .map(|machine| MachineRunRecord {
                    machine: machine.clone(),
                    status: MachineRunStatus::Queued,
                    exit_code: None,
                    signal: None,
                    message: String::new(),
                    started_at: None,
                    finished_at: None,
                    duration_ms: None,
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                    truncated: false,
                })
                .collect(),
        })
    }

    async fn set_operation_status(
        &self,
        id: OperationId,
        status: OperationStatus,
        finished_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        if status.is_finished() != finished_at.is_some() {
            return Err(invalid(format!(
                "an operation that is {status} {}",
                if status.is_finished() {
                    "needs a finish time"
                } else {
                    "has no finish time"
                }
            )));
        }
        let changed = self
            .execute(
                SET_STATUS,
                &[
                    Bind::Uuid(id.as_uuid()),
                    Bind::text(status.as_str()),
                    Bind::OptTime(finished_at),
                ],
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn update_machine_run(
        &self,
        id: OperationId,
        machine: &MachineId,
        update: &MachineRunUpdate,
    ) -> Result<(), StoreError> {
        let mut sql = "UPDATE operation_machines SET status = $3, exit_code = $4, signal = $5, \
                       message = $6, started_at = $7, finished_at = $8, duration_ms = $9 \
                       WHERE operation_id = $1 AND machine = $2 AND "
            .to_owned();
        let mut binds = vec![
            Bind::Uuid(id.as_uuid()),
            Bind::text(machine.as_str()),
            Bind::text(update.status.as_str()),
            Bind::OptInt(update.exit_code),
            Bind::OptText(update.signal.clone()),
            Bind::text(&update.message),
            Bind::OptTime(update.started_at),
            Bind::OptTime(update.finished_at),
            Bind::OptInt(update.duration_ms),
        ];
        let from: Vec<Bind> = MachineRunStatus::ALL
            .into_iter()
            .filter(|s| s.may_become(update.status))
            .map(|s| Bind::text(s.as_str()))
            .collect();
        if from.is_empty() {
            sql.push_str("1 = 0");
        } else {
            sql.push_str("status IN (");
            push_placeholders(&mut sql, &mut binds, from);
            sql.push(')');
        }
        if self.execute(sql, &binds).await? == 1 {
            return Ok(());
        }
        let now = self
            .fetch_optional(RUN_STATUS, &binds[..2])
            .await?
            .ok_or(StoreError::NotFound)?
            .get_str("status")?;
        Err(StoreError::Conflict(format!(
            "machine {machine} of operation {id} is {now}: it cannot become {}",
            update.status
        )))
    }

    async fn store_machine_output(
        &self,
        id: OperationId,
        machine: &MachineId,
        stdout: &[u8],
        stderr: &[u8],
        truncated: bool,
    ) -> Result<(), StoreError> {
        let changed = self
            .execute(
                STORE_OUTPUT,
                &[
                    Bind::Uuid(id.as_uuid()),
                    Bind::text(machine.as_str()),
                    Bind::Bytes(stdout.to_vec()),
                    Bind::Bytes(stderr.to_vec()),
                    Bind::Bool(truncated),
                ],
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn append_operation_events(
        &self,
        id: OperationId,
        events: &[OperationEventRecord],
    ) -> Result<(), StoreError> {
        let machines = check_events(events)?;
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return self.last_operation_event(id).await.map(|_| ());
        };
        let mut tx = self.begin_write().await?;
        append_events(&mut tx, id, events, &machines, first.seq, last.seq).await?;
        tx.commit().await
    }

    async fn operation_events(
        &self,
        id: OperationId,
        after_seq: i64,
        limit: u32,
        max_bytes: u64,
    ) -> Result<Vec<OperationEventRecord>, StoreError> {
        self.fetch_all(
            LIST_EVENTS,
            &[
                Bind::Uuid(id.as_uuid()),
                Bind::Int(after_seq),
                Bind::Int(i64::from(limit)),
                Bind::Int(i64::try_from(max_bytes.max(1)).unwrap_or(i64::MAX)),
            ],
        )
        .await?
        .iter()
        .map(event_row)
        .collect()
    }

    async fn skip_operation_events(&self, id: OperationId, through: i64) -> Result<(), StoreError> {
        let moved = self
            .execute(SKIP_SEQ, &[Bind::Uuid(id.as_uuid()), Bind::Int(through)])
            .await?;
        if moved == 0 {
            // Already there, or no such operation.
            self.last_operation_event(id).await?;
        }
        Ok(())
    }

    async fn last_operation_event(&self, id: OperationId) -> Result<i64, StoreError> {
        self.fetch_one(LAST_SEQ, &[Bind::Uuid(id.as_uuid())])
            .await?
            .get_i64("last_seq")
    }

    async fn operation(&self, id: OperationId) -> Result<Option<OperationRecord>, StoreError> {
        let Some(row) = self
            .fetch_optional(GET_OPERATION, &[Bind::Uuid(id.as_uuid())])
            .await?
        else {
            return Ok(None);
        };
        let machines = self
            .fetch_all(GET_RUNS, &[Bind::Uuid(id.as_uuid())])
            .await?
            .iter()
            .map(|row| run_row(row, true))
            .collect::<Result<Vec<_>, _>>()?;
        operation_row(&row, machines).map(Some)
    }

    async fn operation_summary(
        &self,
        id: OperationId,
    ) -> Result<Option<OperationSummary>, StoreError> {
        Ok(self.operation_summaries(&[id]).await?.pop())
    }

    async fn operation_summaries(
        &self,
        ids: &[OperationId],
    ) -> Result<Vec<OperationSummary>, StoreError> {
        let mut summaries = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let in_chunk = |head: &str| {
                let mut sql = head.to_owned();
                let mut binds = Vec::new();
                push_placeholders(
                    &mut sql,
                    &mut binds,
                    chunk.iter().map(|id| Bind::Uuid(id.as_uuid())).collect(),
                );
                sql.push(')');
                (sql, binds)
            };
            let (sql, binds) = in_chunk(GET_OPERATIONS);
            let operations = self.fetch_all(sql, &binds).await?;
            let (mut sql, binds) = in_chunk(GET_RUN_SUMMARIES);
            sql.push_str(" ORDER BY operation_id, position");
            let mut runs: HashMap<uuid::Uuid, (Vec<MachineRunRecord>, Vec<u64>, Vec<usize>)> =
                HashMap::new();
            for run in &self.fetch_all(sql, &binds).await? {
                let (machines, output_bytes, same_as) =
                    runs.entry(run.get_uuid("operation_id")?).or_default();
                let index = machines.len();
                machines.push(run_row(run, false)?);
                let bytes = run.get_i64("output_bytes")?;
                output_bytes.push(
                    u64::try_from(bytes).map_err(|_| corrupt("output size", &bytes.to_string()))?,
                );
                let first = run.get_i64("same_as")?;
                same_as.push(
                    usize::try_from(first)
                        .ok()
                        .filter(|first| *first <= index)
                        .ok_or_else(|| corrupt("machine position", &first.to_string()))?,
                );
            }
            let mut found = HashMap::with_capacity(operations.len());
            for row in &operations {
                let id = row.get_uuid("id")?;
                let (machines, output_bytes, same_as) = runs.remove(&id).unwrap_or_default();
                found.insert(
                    id,
                    OperationSummary {
                        operation: operation_row(row, machines)?,
                        output_bytes,
                        same_as,
                    },
                );
            }
            summaries.extend(chunk.iter().filter_map(|id| found.remove(&id.as_uuid())));
        }
        Ok(summaries)
    }

    async fn group_outputs(&self, id: OperationId) -> Result<Vec<MachineRunRecord>, StoreError> {
        self.fetch_all(GET_GROUP_FIRSTS, &[Bind::Uuid(id.as_uuid())])
            .await?
            .iter()
            .map(|row| run_row(row, true))
            .collect()
    }

    async fn machine_run(
        &self,
        id: OperationId,
        machine: &MachineId,
    ) -> Result<Option<(Username, MachineRunRecord)>, StoreError> {
        self.fetch_optional(
            GET_RUN,
            &[Bind::Uuid(id.as_uuid()), Bind::text(machine.as_str())],
        )
        .await?
        .map(|row| {
            Ok((
                sql::username(row.get_str("username")?)?,
                run_row(&row, true)?,
            ))
        })
        .transpose()
    }

    async fn unfinished_operations(&self) -> Result<Vec<OperationId>, StoreError> {
        self.fetch_all(UNFINISHED_OPERATIONS, &[])
            .await?
            .iter()
            .map(|row| row.get_uuid("id").map(OperationId::from))
            .collect()
    }

    async fn interrupt_operation(
        &self,
        id: OperationId,
        at: OffsetDateTime,
        outputs: &[KeptOutput],
        events: &[OperationEventRecord],
    ) -> Result<bool, StoreError> {
        let machines = check_events(events)?;
        let mut tx = self.begin_write().await?;
        // First, so that a concurrent start-up (two processes on one database) interrupts
        // it once: the second waits for this row and then finds it interrupted.
        let interrupted = tx
            .execute(
                INTERRUPT_OPERATION,
                &[Bind::Uuid(id.as_uuid()), Bind::Time(at)],
            )
            .await?;
        if interrupted == 0 {
            tx.fetch_optional(GET_OPERATION, &[Bind::Uuid(id.as_uuid())])
                .await?
                .ok_or(StoreError::NotFound)?;
            return Ok(false);
        }
        for output in outputs {
            let changed = tx
                .execute(
                    STORE_OUTPUT,
                    &[
                        Bind::Uuid(id.as_uuid()),
                        Bind::text(output.machine.as_str()),
                        Bind::Bytes(output.stdout.clone()),
                        Bind::Bytes(output.stderr.clone()),
                        Bind::Bool(output.truncated),
                    ],
                )
                .await?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
        }
        tx.execute(
            INTERRUPT_RUNS,
            &[
                Bind::Uuid(id.as_uuid()),
                Bind::Time(at),
                Bind::text(INTERRUPTED_MESSAGE),
            ],
        )
        .await?;
        if let (Some(first), Some(last)) = (events.first(), events.last()) {
            append_events(&mut tx, id, events, &machines, first.seq, last.seq).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn event(
        seq: i64,
        kind: OperationEventKind,
        machine: bool,
        stream: bool,
    ) -> OperationEventRecord {
        OperationEventRecord {
            seq,
            at: datetime!(2024-05-01 12:00 UTC),
            kind,
            machine: machine.then(|| MachineId::new("web-1").unwrap()),
            stream: stream.then_some(OutputStream::Stdout),
            data: Vec::new(),
        }
    }

    #[test]
    fn event_kinds_round_trip_their_names() {
        for kind in OperationEventKind::ALL {
            assert_eq!(OperationEventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(OperationEventKind::parse("Output"), None);
    }

    #[test]
    fn events_fit_their_kind_and_grow() {
        use OperationEventKind as K;
        let events = [
            event(1, K::Operation, false, false),
            event(2, K::Machine, true, false),
            event(5, K::Output, true, true),
        ];
        let machines = check_events(&events).unwrap();
        assert_eq!(machines.len(), 1, "each machine once");
        for (events, expected) in [
            (vec![event(0, K::Operation, false, false)], "not above 0"),
            (
                vec![
                    event(3, K::Operation, false, false),
                    event(3, K::Operation, false, false),
                ],
                "does not follow seq 3",
            ),
            (
                vec![event(1, K::Operation, true, false)],
                "a machine and no stream",
            ),
            (
                vec![event(1, K::Machine, false, false)],
                "no machine and no stream",
            ),
            (
                vec![event(1, K::Machine, true, true)],
                "a machine and a stream",
            ),
            (
                vec![event(1, K::Output, true, false)],
                "a machine and no stream",
            ),
        ] {
            match check_events(&events) {
                Err(StoreError::InvalidInput(message)) => {
                    assert!(message.contains(expected), "{message}");
                }
                other => panic!("{events:?}: {other:?}"),
            }
        }
    }
}
