//! `/admin/operations/{id}`: one operation, with its status, script, who started it, the
//! inventory commit and its times, **Stop** and **Rerun**, and each machine's state, exit code
//! or signal, duration and output: a panel per machine (stdout and stderr apart) and, once it
//! ended, the machines grouped by identical output (`OperationView.groups`).
//!
//! While it runs, `static/ui.js` follows `GET /api/v1/operations/{id}/events` (the API's
//! stream; the session cookie authenticates a GET) from its first event: it appends each
//! output chunk to its machine's panel as text and moves the badges, keeping the last 200 KB
//! of each stream in the page. When the operation ends it fetches `…/live`, this page's part
//! rendered again on the server, with the durations and the groups. The buttons post forms to
//! the API's handlers, in the background; **Rerun** then goes to the new operation's page.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use berth_types::OperationId;
use berth_types::api::OperationView;
use berth_types::operation::{MachineRunStatus, OperationStatus};
use berth_types::units::HumanDuration;

use super::fleet::{Badge, when};
use super::machine::fleet;
use super::{AdminViewer, CsrfForm, Nav, Viewer, api_error_page, render};
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, PagePath, Path, Query};
use crate::state::AppState;

/// One machine's part.
struct RunPanel {
    machine: String,
    status: Badge,
    /// `exit 3`, `signal TERM`, or nothing yet.
    ending: String,
    message: String,
    started: String,
    duration: String,
    stdout: String,
    stderr: String,
    truncated: bool,
    /// The output was too large to put in the page: links to it instead.
    omitted: bool,
    /// Its size, for the links.
    output_size: String,
}

/// Machines that printed the same and ended the same way.
struct GroupPanel {
    machines: Vec<String>,
    status: Badge,
    ending: String,
    stdout: String,
    stderr: String,
    omitted: bool,
}

#[derive(Template)]
#[template(path = "operation_live.html")]
struct OperationLive {
    csrf: String,
    id: String,
    script: String,
    commit: String,
    commit_short: String,
    user: String,
    status: Badge,
    finished: bool,
    created: String,
    finished_at: String,
    concurrency: u32,
    timeout: String,
    rerun_of: String,
    /// `2 succeeded, 1 failed`.
    tally: String,
    runs: Vec<RunPanel>,
    groups: Vec<GroupPanel>,
    /// Finished, and some machine did not succeed.
    rerunnable: bool,
}

#[derive(Template)]
#[template(path = "operation.html")]
struct OperationPage {
    nav: Nav,
    id: String,
    script: String,
    finished: bool,
    /// `status:tone` pairs, for the badges the page's script moves.
    tones: String,
    /// The operation states that are not an end, for the page's script.
    unfinished: String,
    live: String,
}

/// How a machine ended: its exit code or the signal that ended it.
fn ending(exit_code: Option<i64>, signal: Option<&str>) -> String {
    match (exit_code, signal) {
        (_, Some(signal)) => format!("signal {signal}"),
        (Some(code), None) => format!("exit {code}"),
        (None, None) => String::new(),
    }
}

/// A duration in milliseconds as people read it: `850 ms`, `12.3 s`, `4m 5s`.
fn duration(ms: Option<i64>) -> String {
    match ms {
        None => String::new(),
        Some(ms @ ..1000) => format!("{} ms", ms.max(0)),
        Some(ms @ 1000..60_000) => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => super::age(ms / 1000),
    }
}

/// `2 succeeded, 1 failed`, in the order of the states.
pub(super) fn tally(view: &OperationView) -> String {
    MachineRunStatus::ALL
        .iter()
        .filter_map(|status| {
            let n = view.machines.iter().filter(|m| m.status == *status).count();
            (n > 0).then(|| format!("{n} {status}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every state's tone, `status:tone` separated by spaces: the one table the page's script
/// reads (an operation's states are named and toned as its machines' are).
fn tones() -> String {
    let machines = MachineRunStatus::ALL.map(Badge::run);
    let operations = OperationStatus::ALL.map(Badge::operation);
    let mut pairs: Vec<String> = machines
        .iter()
        .chain(operations.iter())
        .map(|b| format!("{}:{}", b.text, b.tone))
        .collect();
    pairs.sort();
    pairs.dedup();
    pairs.join(" ")
}

/// `812 B`, `3.4 KiB`, `12.0 MiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn fragment(view: OperationView, csrf: String) -> OperationLive {
    let finished = view.status.is_finished();
    let tally = tally(&view);
    let rerunnable = finished
        && view
            .machines
            .iter()
            .any(|m| m.status != MachineRunStatus::Succeeded);
    OperationLive {
        csrf,
        id: view.id.to_string(),
        commit_short: view.commit.chars().take(12).collect(),
        commit: view.commit,
        script: view.script,
        user: view.user.to_string(),
        status: Badge::operation(view.status),
        finished,
        created: when(Some(view.created)),
        finished_at: when(view.finished),
        concurrency: view.concurrency,
        timeout: HumanDuration::from_secs(view.timeout_seconds)
            .map_or_else(|| format!("{}s", view.timeout_seconds), |d| d.to_string()),
        rerun_of: view.rerun_of.map(|id| id.to_string()).unwrap_or_default(),
        tally,
        runs: view
            .machines
            .into_iter()
            .map(|m| RunPanel {
                machine: m.machine.to_string(),
                status: Badge::run(m.status),
                ending: ending(m.exit_code, m.signal.as_deref()),
                message: m.message,
                started: when(m.started),
                duration: duration(m.duration_ms),
                omitted: m.stdout.is_none() && m.output_bytes > 0,
                output_size: size(m.output_bytes),
                stdout: m.stdout.unwrap_or_default(),
                stderr: m.stderr.unwrap_or_default(),
                truncated: m.truncated,
            })
            .collect(),
        groups: view
            .groups
            .into_iter()
            .map(|g| GroupPanel {
                machines: g.machines.iter().map(ToString::to_string).collect(),
                status: Badge::run(g.status),
                ending: ending(g.exit_code, None),
                omitted: g.stdout.is_none() && g.output_bytes > 0,
                stdout: g.stdout.unwrap_or_default(),
                stderr: g.stderr.unwrap_or_default(),
            })
            .collect(),
        rerunnable,
    }
}

async fn view(
    state: &AppState,
    viewer: &Viewer,
    id: OperationId,
) -> Result<OperationView, ApiError> {
    let operations = state
        .operations
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no such operation"))?;
    let who = crate::operations::requester(state, &viewer.caller);
    // Every machine's output; when that is too much for a page, each distinct output once;
    // when even that is, none (the page links to each machine's).
    crate::operations::detailed_view(operations, &who, id, crate::operations::Want::MostThatFits)
        .await
}

/// `GET /admin/operations/{id}`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: AdminViewer,
    PagePath(id): PagePath<OperationId>,
) -> Response {
    if let Err(page) = fleet(&state) {
        return page;
    }
    match view(&state, &viewer.0, id).await {
        Ok(view) => {
            let script = view.script.clone();
            let finished = view.status.is_finished();
            let live = fragment(view, viewer.0.session.csrf.clone());
            render(&OperationPage {
                nav: viewer.0.nav(&state),
                id: id.to_string(),
                script,
                finished,
                tones: tones(),
                unfinished: OperationStatus::ALL
                    .iter()
                    .filter(|s| !s.is_finished())
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                live: live.render().unwrap_or_default(),
            })
        }
        Err(e) => api_error_page(&e),
    }
}

/// `GET /admin/operations/{id}/live`: the page's part, rendered again (the page's script asks
/// for it when the operation ends).
pub(crate) async fn live(
    State(state): State<AppState>,
    viewer: AdminViewer,
    PagePath(id): PagePath<OperationId>,
) -> Response {
    if let Err(page) = fleet(&state) {
        return page;
    }
    match view(&state, &viewer.0, id).await {
        Ok(view) => render(&fragment(view, viewer.0.session.csrf.clone())),
        Err(e) => api_error_page(&e),
    }
}

fn operation_page(id: OperationId) -> Redirect {
    Redirect::to(&format!("/admin/operations/{id}"))
}

/// `POST /admin/operations/{id}/stop`: asks it to stop, then back to its page.
pub(crate) async fn stop(
    State(state): State<AppState>,
    PagePath(id): PagePath<OperationId>,
    CsrfForm(viewer, _form): CsrfForm<AdminViewer>,
) -> Response {
    if let Err(page) = fleet(&state) {
        return page;
    }
    match crate::operations::stop(State(state), viewer.0.auth(), Path(id), Query(NoQuery {})).await
    {
        Ok(_) => operation_page(id).into_response(),
        Err(e) => api_error_page(&e),
    }
}

/// `POST /admin/operations/{id}/rerun`: runs the script again on the machines that did not
/// succeed, and goes to the new operation's page.
pub(crate) async fn rerun(
    State(state): State<AppState>,
    PagePath(id): PagePath<OperationId>,
    CsrfForm(viewer, _form): CsrfForm<AdminViewer>,
) -> Response {
    if let Err(page) = fleet(&state) {
        return page;
    }
    match crate::operations::rerun(State(state), viewer.0.auth(), Path(id), Query(NoQuery {})).await
    {
        Ok((_, Json(rerun))) => operation_page(rerun.id).into_response(),
        Err(e) => api_error_page(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_and_durations_read_as_people_say_them() {
        assert_eq!(ending(Some(3), None), "exit 3");
        assert_eq!(ending(None, Some("TERM")), "signal TERM");
        assert_eq!(ending(Some(143), Some("TERM")), "signal TERM");
        assert_eq!(ending(None, None), "");
        assert_eq!(duration(Some(850)), "850 ms");
        assert_eq!(duration(Some(12_345)), "12.3 s");
        assert_eq!(duration(Some(245_000)), "4m");
        assert_eq!(duration(None), "");
    }

    #[test]
    fn a_state_has_one_tone_in_machines_and_operations() {
        let tones = tones();
        let mut seen = std::collections::BTreeMap::new();
        for pair in tones.split(' ') {
            let (status, tone) = pair.split_once(':').unwrap();
            assert!(
                seen.insert(status, tone).is_none(),
                "{status} has two tones: {tones}"
            );
        }
        for status in MachineRunStatus::NAMES
            .iter()
            .chain(&OperationStatus::NAMES)
        {
            assert!(seen.contains_key(status), "{status}: {tones}");
        }
    }
}
