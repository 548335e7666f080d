//! `/api/v1/operations`: run an inventory script on machines, follow it live over SSE, find it
//! in the history. The work is `berth_core::Operations`'; here are the HTTP shapes.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use axum::http::header;
use axum::response::IntoResponse;
use berth_core::operations::{RunGroup, groups as operation_groups};
use berth_core::{OperationError, Operations, Requester, TableQuery};
use berth_store::{
    MachineRunRecord, OperationEventKind, OperationEventRecord, OperationRecord, OperationSummary,
};
use berth_types::api::{
    FilterOp, MAX_INLINE_OUTPUT, MachineRunView, OperationDetailQuery, OperationList,
    OperationQuery, OperationView, OutputDetail, OutputEvent, OutputGroup, StartOperation,
    TableFilter,
};
use berth_types::operation::OutputStream;
use berth_types::{MachineId, OperationId};
use futures_util::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::{AuthUser, Caller};
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, Path, Query};
use crate::state::AppState;

/// Stored events read at once while a watcher catches up: at most this many, and about
/// this much output (a watcher far behind holds one such page, not its whole backlog).
const CATCH_UP: u32 = 500;
const CATCH_UP_BYTES: u64 = 1 << 20;

fn operations(state: &AppState) -> Result<&Operations, ApiError> {
    state.operations.as_ref().ok_or_else(|| {
        ApiError::conflict(
            "fleet_disabled",
            "there is no fleet: set fleet.repository in main.yaml (docs/fleet.md)",
        )
    })
}

/// For the routes of one operation: without a fleet there is no operation to find.
fn operations_of_one(state: &AppState) -> Result<&Operations, ApiError> {
    state
        .operations
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no such operation"))
}

pub(crate) fn requester(state: &AppState, caller: &Caller) -> Requester {
    Requester {
        user: caller.username.clone(),
        admin: caller.is_admin(),
        machines: crate::fleet::selectors(state, caller).unwrap_or_default(),
    }
}

fn operation_error(error: OperationError) -> ApiError {
    match error {
        OperationError::NotFound => ApiError::not_found("no such operation"),
        OperationError::UnknownScript(message) | OperationError::UnknownMachine(message) => {
            ApiError::not_found(message)
        }
        OperationError::NotEnrolled(message) => ApiError::conflict("not_enrolled", message),
        OperationError::Invalid(message) => ApiError::invalid(message),
        OperationError::Conflict(message) => ApiError::conflict("conflict", message),
        OperationError::Store(e) => ApiError::from(e),
    }
}

/// Text for JSON, and the bytes as base64 when they are not UTF-8.
fn text_of(bytes: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), None),
        Err(_) => (
            String::from_utf8_lossy(bytes).into_owned(),
            Some(STANDARD.encode(bytes)),
        ),
    }
}

fn output_bytes(run: &MachineRunRecord) -> u64 {
    (run.stdout.len() + run.stderr.len()) as u64
}

/// A machine's part; `output_bytes` is given for a run loaded without its output.
fn machine_view(run: &MachineRunRecord, output_bytes: u64, with_output: bool) -> MachineRunView {
    let output = |bytes: &[u8]| {
        if with_output {
            let (text, b64) = text_of(bytes);
            (Some(text), b64)
        } else {
            (None, None)
        }
    };
    let (stdout, stdout_base64) = output(&run.stdout);
    let (stderr, stderr_base64) = output(&run.stderr);
    MachineRunView {
        machine: run.machine.clone(),
        status: run.status,
        exit_code: run.exit_code,
        signal: run.signal.clone(),
        message: run.message.clone(),
        started: run.started_at,
        finished: run.finished_at,
        duration_ms: run.duration_ms,
        stdout,
        stdout_base64,
        stderr,
        stderr_base64,
        truncated: run.truncated,
        output_bytes,
    }
}

/// An operation's view; `machines` are the runs to show (with their sizes), in order.
fn view_of(
    record: &OperationRecord,
    machines: Vec<MachineRunView>,
    groups: Vec<OutputGroup>,
) -> OperationView {
    OperationView {
        id: record.id,
        script: record.script.clone(),
        commit: record.commit.clone(),
        user: record.user.clone(),
        status: record.status,
        concurrency: record.concurrency,
        timeout_seconds: record.timeout_seconds,
        rerun_of: record.rerun_of,
        created: record.created_at,
        finished: record.finished_at,
        machines,
        groups,
    }
}

/// An operation as stored, without output (start and rerun answer a new one).
fn record_view(record: &OperationRecord) -> OperationView {
    let machines = record
        .machines
        .iter()
        .map(|m| machine_view(m, output_bytes(m), false))
        .collect();
    view_of(record, machines, Vec::new())
}

/// A summary's machines, without output.
fn summary_machines(summary: &OperationSummary) -> Vec<MachineRunView> {
    summary
        .operation
        .machines
        .iter()
        .zip(&summary.output_bytes)
        .map(|(m, bytes)| machine_view(m, *bytes, false))
        .collect()
}

/// An operation without output, as the list and stop answer it.
fn summary_view(summary: &OperationSummary) -> OperationView {
    view_of(&summary.operation, summary_machines(summary), Vec::new())
}

fn too_large(bytes: u64) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "output_too_large",
        format!(
            "this answer would carry {bytes} bytes of output, more than {MAX_INLINE_OUTPUT}: ask \
             for ?output=groups or ?output=none, and for each machine's output at \
             /api/v1/operations/{{id}}/machines/{{machine}}"
        ),
    )
    .with_details(json!({"output_bytes": bytes, "limit": MAX_INLINE_OUTPUT}))
}

/// How much output an operation's view should carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// This much, or `output_too_large`.
    Exactly(OutputDetail),
    /// The most of `all`, `groups` and `none` that fits in `MAX_INLINE_OUTPUT` (for pages).
    MostThatFits,
}

/// Operation `id` with as much output as `want` says (and the groups once it finished).
pub(crate) async fn detailed_view(
    operations: &Operations,
    who: &Requester,
    id: OperationId,
    want: Want,
) -> Result<OperationView, ApiError> {
    let summary = operations
        .operation_summary(who, id)
        .await
        .map_err(operation_error)?;
    let groups = if summary.operation.status.is_finished() {
        operation_groups(&summary)
    } else {
        Vec::new()
    };
    let inline = |detail| match detail {
        OutputDetail::All => summary.output_bytes.iter().sum::<u64>(),
        OutputDetail::Groups => groups.iter().map(|g| summary.output_bytes[g.first]).sum(),
        OutputDetail::None => 0,
    };
    let detail = match want {
        Want::Exactly(detail) if inline(detail) > MAX_INLINE_OUTPUT => {
            return Err(too_large(inline(detail)));
        }
        Want::Exactly(detail) => detail,
        Want::MostThatFits => [OutputDetail::All, OutputDetail::Groups]
            .into_iter()
            .find(|d| inline(*d) <= MAX_INLINE_OUTPUT)
            .unwrap_or(OutputDetail::None),
    };
    let group_view = |group: RunGroup, output: Option<&MachineRunRecord>| {
        let run = &summary.operation.machines[group.first];
        OutputGroup {
            machines: group.machines,
            status: run.status,
            exit_code: run.exit_code,
            signal: run.signal.clone(),
            output_bytes: summary.output_bytes[group.first],
            stdout: output.map(|r| String::from_utf8_lossy(&r.stdout).into_owned()),
            stderr: output.map(|r| String::from_utf8_lossy(&r.stderr).into_owned()),
        }
    };
    let view = match detail {
        OutputDetail::All => {
            // One read of every machine with its output.
            let record = operations
                .operation(who, id)
                .await
                .map_err(operation_error)?;
            let machines = record
                .machines
                .iter()
                .map(|m| machine_view(m, output_bytes(m), true))
                .collect();
            let groups = groups
                .into_iter()
                .map(|g| {
                    let first = record.machines.get(g.first);
                    group_view(g, first)
                })
                .collect();
            // The status from the summary the groups came from: read later, the record may
            // have finished meanwhile, and a finished view always has its groups.
            view_of(&summary.operation, machines, groups)
        }
        OutputDetail::Groups => {
            let firsts = operations
                .group_outputs(&summary)
                .await
                .map_err(operation_error)?;
            let groups = groups
                .into_iter()
                .map(|g| {
                    let machine = &summary.operation.machines[g.first].machine;
                    let first = firsts.iter().find(|r| &r.machine == machine);
                    group_view(g, first)
                })
                .collect();
            view_of(&summary.operation, summary_machines(&summary), groups)
        }
        OutputDetail::None => {
            let groups = groups.into_iter().map(|g| group_view(g, None)).collect();
            view_of(&summary.operation, summary_machines(&summary), groups)
        }
    };
    Ok(view)
}

/// `POST /api/v1/operations`.
pub(crate) async fn start(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Query(NoQuery {}): Query<NoQuery>,
    Json(body): Json<StartOperation>,
) -> Result<(StatusCode, Json<OperationView>), ApiError> {
    let operations = operations(&state)?;
    let record = operations
        .start_operation(&requester(&state, &caller), &body)
        .await
        .map_err(operation_error)?;
    Ok((StatusCode::CREATED, Json(record_view(&record))))
}

/// `GET /api/v1/operations`: newest first, through the table-query engine.
pub(crate) async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Query(query): Query<OperationQuery>,
) -> Result<Json<OperationList>, ApiError> {
    let operations = operations(&state)?;
    let mut filters = Vec::new();
    let mut filter = |column: &str, op: FilterOp, value: serde_json::Value| {
        filters.push(TableFilter {
            column: column.into(),
            op,
            value,
        });
    };
    if let Some(status) = query.status {
        filter("status", FilterOp::Eq, json!(status.as_str()));
    }
    if let Some(script) = &query.script {
        filter("script", FilterOp::Eq, json!(script));
    }
    if let Some(machine) = &query.machine {
        filter("machines", FilterOp::Has, json!(machine.as_str()));
    }
    if let Some(user) = &query.user {
        filter("user", FilterOp::Eq, json!(user.as_str()));
    }
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    if let Some(since) = query.since {
        filter("created_at", FilterOp::Gte, json!(rfc3339(since)));
    }
    if let Some(until) = query.until {
        filter("created_at", FilterOp::Lt, json!(rfc3339(until)));
    }
    let table_query = TableQuery {
        table: "operations".into(),
        columns: vec!["id".into()],
        filters,
        sort: Vec::new(),
        limit: query.limit,
        cursor: query.cursor.clone(),
    };
    let scope = (!caller.is_admin()).then(|| berth_core::TableScope {
        user: caller.username.clone(),
        machines: Vec::new(),
    });
    let page = state.tables.query(&table_query, scope.as_ref()).await?;
    let who = requester(&state, &caller);
    let ids: Vec<OperationId> = page
        .rows
        .iter()
        .filter_map(|row| row.get("id").and_then(|v| v.as_str()))
        .filter_map(|id| id.parse().ok())
        .collect();
    let views = operations
        .operation_summaries(&who, &ids)
        .await
        .map_err(operation_error)?
        .iter()
        .map(summary_view)
        .collect();
    Ok(Json(OperationList {
        operations: views,
        total: page.total,
        next_cursor: page.next_cursor,
    }))
}

/// `GET /api/v1/operations/{id}`: with every machine's kept output and the groups, or less
/// (`?output=groups|none`).
pub(crate) async fn get(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<OperationId>,
    Query(query): Query<OperationDetailQuery>,
) -> Result<Json<OperationView>, ApiError> {
    let operations = operations_of_one(&state)?;
    let detail = query.output.unwrap_or_default();
    detailed_view(
        operations,
        &requester(&state, &caller),
        id,
        Want::Exactly(detail),
    )
    .await
    .map(Json)
}

/// `GET /api/v1/operations/{id}/machines/{machine}`: one machine's part with its output.
pub(crate) async fn machine(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path((id, machine)): Path<(OperationId, MachineId)>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<MachineRunView>, ApiError> {
    let run = operations_of_one(&state)?
        .machine_run(&requester(&state, &caller), id, &machine)
        .await
        .map_err(operation_error)?;
    Ok(Json(machine_view(&run, output_bytes(&run), true)))
}

/// `GET /api/v1/operations/{id}/machines/{machine}/{stream}`: one stream of a machine's kept
/// output, as the bytes it printed (`application/octet-stream`).
pub(crate) async fn machine_stream(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path((id, machine, stream)): Path<(OperationId, MachineId, OutputStream)>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let run = operations_of_one(&state)?
        .machine_run(&requester(&state, &caller), id, &machine)
        .await
        .map_err(operation_error)?;
    let bytes = match stream {
        OutputStream::Stdout => run.stdout,
        OutputStream::Stderr => run.stderr,
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    ))
}

/// `POST /api/v1/operations/{id}/stop`.
pub(crate) async fn stop(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<OperationId>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<OperationView>, ApiError> {
    let summary = operations_of_one(&state)?
        .stop(&requester(&state, &caller), id)
        .await
        .map_err(operation_error)?;
    Ok(Json(summary_view(&summary)))
}

/// `POST /api/v1/operations/{id}/rerun`.
pub(crate) async fn rerun(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<OperationId>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<(StatusCode, Json<OperationView>), ApiError> {
    let record = operations_of_one(&state)?
        .rerun(&requester(&state, &caller), id)
        .await
        .map_err(operation_error)?;
    Ok((StatusCode::CREATED, Json(record_view(&record))))
}

/// The SSE form of a stored or live event.
fn sse_event(event: &OperationEventRecord) -> Event {
    let data = match event.kind {
        OperationEventKind::Output => {
            let (data, data_base64) = text_of(&event.data);
            match (&event.machine, event.stream) {
                (Some(machine), Some(stream)) => serde_json::to_string(&OutputEvent {
                    machine: machine.clone(),
                    stream,
                    data,
                    data_base64,
                })
                .unwrap_or_default(),
                _ => String::new(),
            }
        }
        OperationEventKind::Operation | OperationEventKind::Machine => {
            String::from_utf8_lossy(&event.data).into_owned()
        }
    };
    Event::default()
        .event(event.kind.as_str())
        .id(event.seq.to_string())
        .data(data)
}

/// Whether `event` says the operation is over.
fn is_end(event: &OperationEventRecord) -> bool {
    event.kind == OperationEventKind::Operation
        && serde_json::from_slice::<berth_types::api::OperationStatusEvent>(&event.data)
            .is_ok_and(|e| e.status.is_finished())
}

/// `GET /api/v1/operations/{id}/events`: the stored events after `Last-Event-ID` (or all),
/// then the live ones; ends after the operation's last event. A watcher that falls behind
/// the live events catches up from the store (output past `fleet.max_output`'s head, which
/// is not stored, is then skipped).
pub(crate) async fn events(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<OperationId>,
    Query(NoQuery {}): Query<NoQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let operations = operations_of_one(&state)?.clone();
    // 404 for an operation the caller may not see, before anything is streamed.
    operations
        .operation_summary(&requester(&state, &caller), id)
        .await
        .map_err(operation_error)?;
    let after = match headers.get("last-event-id") {
        None => 0,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::bad_request("Last-Event-ID must be the id of an event (a number)")
            })?,
    };
    // An id past the operation's last event (one from before a restart, which numbered its
    // events on from the last stored, or not this operation's) resumes from the last one
    // instead of waiting for events it would drop.
    let after = after.min(operations.last_event(id).await.map_err(operation_error)?);
    // Subscribe before reading the store, so nothing falls between the two.
    let live = operations.subscribe(id);
    let stream = async_stream(operations, id, after, live);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct Follow {
    operations: Operations,
    id: OperationId,
    /// The last seq sent.
    sent: i64,
    live: Option<tokio::sync::broadcast::Receiver<OperationEventRecord>>,
    /// Stored events read but not sent yet.
    backlog: std::collections::VecDeque<OperationEventRecord>,
    /// The store has nothing more (until the live events say otherwise).
    caught_up: bool,
    /// The live events ended once: the run is over.
    ended_once: bool,
    done: bool,
}

fn async_stream(
    operations: Operations,
    id: OperationId,
    after: i64,
    live: Option<tokio::sync::broadcast::Receiver<OperationEventRecord>>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let follow = Follow {
        operations,
        id,
        sent: after,
        live,
        backlog: std::collections::VecDeque::new(),
        caught_up: false,
        ended_once: false,
        done: false,
    };
    futures_util::stream::unfold(follow, |mut f| async move {
        loop {
            if f.done {
                return None;
            }
            if let Some(event) = f.backlog.pop_front() {
                if event.seq <= f.sent {
                    continue;
                }
                f.sent = event.seq;
                f.done = is_end(&event);
                return Some((Ok(sse_event(&event)), f));
            }
            if !f.caught_up {
                match f
                    .operations
                    .stored_events(f.id, f.sent, CATCH_UP, CATCH_UP_BYTES)
                    .await
                {
                    Ok(events) if !events.is_empty() => {
                        f.backlog.extend(events);
                        continue;
                    }
                    Ok(_) => f.caught_up = true,
                    Err(e) => {
                        tracing::warn!(operation = %f.id, error = %e, "cannot read an operation's events");
                        return None;
                    }
                }
            }
            let Some(live) = f.live.as_mut() else {
                // Not running (any more): everything there is, is stored. An operation that
                // ended while this stream read the store gets one more look.
                match f.operations.subscribe(f.id) {
                    // Running after all (it began as the stream did): follow it.
                    Some(receiver) if !f.ended_once => {
                        f.live = Some(receiver);
                        f.caught_up = false;
                        continue;
                    }
                    _ => match f
                        .operations
                        .stored_events(f.id, f.sent, CATCH_UP, CATCH_UP_BYTES)
                        .await
                    {
                        Ok(events) if !events.is_empty() => {
                            f.backlog.extend(events);
                            continue;
                        }
                        _ => return None,
                    },
                }
            };
            match live.recv().await {
                Ok(event) => {
                    if event.seq <= f.sent {
                        continue;
                    }
                    f.sent = event.seq;
                    f.done = is_end(&event);
                    return Some((Ok(sse_event(&event)), f));
                }
                Err(RecvError::Lagged(_)) => f.caught_up = false,
                Err(RecvError::Closed) => {
                    // The run is over: what is left is in the store.
                    f.live = None;
                    f.ended_once = true;
                    f.caught_up = false;
                }
            }
        }
    })
}
