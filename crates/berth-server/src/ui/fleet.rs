//! `/admin/fleet`: the inventory's syncs and the machines with their enrollment and health,
//! filtered and sorted with the query of `GET /api/v1/machines`, live over SSE.
//!
//! `GET /admin/fleet/events` (with the page's query string) sends the live part, rendered on
//! the server, as an `update` event at once, on every fleet event (a burst renders once) and
//! every 5 s for the ages; `static/ui.js` swaps it in. The stream ends when the session does.
//! **Sync now** and **Verify all** post forms to the API's handlers; `ui.js` sends them in
//! the background (`data-live`), so the page stays where it is and the stream shows the
//! outcome. Without JavaScript they post and come back to the page.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use berth_core::FleetEvent;
use berth_types::api::{MachineQuery, SyncView};
use berth_types::fleet::{Changes, EnrollmentStatus, HealthStatus, SyncFileError, SyncResult};
use berth_types::operation::{MachineRunStatus, OperationStatus};
use futures_util::Stream;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::time::{Interval, MissedTickBehavior};

use super::paging::encode;
use super::{AdminViewer, CsrfForm, Nav, Viewer, age, api_error_page, current_session, render};
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, Query};
use crate::state::AppState;

/// How often a live fragment is rendered again without an event (ages, last seen).
const TICK: Duration = Duration::from_secs(5);

/// The machines table's columns: (sort key, heading); `None`: not sortable.
const COLUMNS: [(Option<&str>, &str); 9] = [
    (Some("id"), "Machine"),
    (Some("name"), "Name"),
    (Some("host"), "Address"),
    (Some("type"), "Type"),
    (None, "Tags"),
    (Some("enrollment"), "Enrollment"),
    (Some("health"), "Health"),
    (Some("latency_ms"), "Latency"),
    (Some("last_seen"), "Last seen"),
];

/// The page's query string: the filters and sort of `GET /api/v1/machines`, as a form sends
/// them (a blank field filters nothing).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Filters {
    #[serde(default, rename = "type")]
    kind: String,
    /// A health status.
    #[serde(default)]
    status: String,
    #[serde(default)]
    enrollment: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    sort: String,
    /// `true` (or `1`) for descending.
    #[serde(default)]
    desc: String,
    #[serde(default)]
    cursor: String,
}

impl Filters {
    /// The API's query; a status that does not exist is a message for the page.
    fn machine_query(&self) -> Result<MachineQuery, String> {
        let blank = |value: &str| {
            let value = value.trim();
            (!value.is_empty()).then(|| value.to_owned())
        };
        let status = blank(&self.status)
            .map(|s| s.parse::<HealthStatus>())
            .transpose()
            .map_err(|e| format!("status: {e}"))?;
        let enrollment = blank(&self.enrollment)
            .map(|s| s.parse::<EnrollmentStatus>())
            .transpose()
            .map_err(|e| format!("enrollment: {e}"))?;
        let desc = match self.desc.trim() {
            "" => None,
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => return Err("desc: give true or false".to_owned()),
        };
        Ok(MachineQuery {
            kind: blank(&self.kind),
            status,
            enrollment,
            tag: blank(&self.tag),
            sort: blank(&self.sort),
            desc,
            limit: None,
            cursor: blank(&self.cursor),
        })
    }

    fn descending(&self) -> bool {
        matches!(self.desc.trim(), "true" | "1")
    }

    /// The fields that are set, percent-encoded: `type=db&sort=name`.
    fn query_string(&self) -> String {
        [
            ("type", &self.kind),
            ("status", &self.status),
            ("enrollment", &self.enrollment),
            ("tag", &self.tag),
            ("sort", &self.sort),
            ("desc", &self.desc),
            ("cursor", &self.cursor),
        ]
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(key, value)| format!("{key}={}", encode(value.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }

    /// The page with these filters.
    fn page(&self) -> String {
        let query = self.query_string();
        if query.is_empty() {
            "/admin/fleet".to_owned()
        } else {
            format!("/admin/fleet?{query}")
        }
    }

    /// Whether any filter narrows the machines.
    fn narrowed(&self) -> bool {
        [&self.kind, &self.status, &self.enrollment, &self.tag]
            .iter()
            .any(|v| !v.trim().is_empty())
    }
}

/// The filters of a request, or the 400 page that says which one is wrong.
#[allow(clippy::result_large_err)] // the refusal is the page to answer with
fn filters(query: Result<Query<Filters>, ApiError>) -> Result<(Filters, MachineQuery), Response> {
    let Query(filters) = query.map_err(|e| api_error_page(&e))?;
    let machine_query = filters
        .machine_query()
        .map_err(|message| super::error_page(StatusCode::BAD_REQUEST, &message))?;
    Ok((filters, machine_query))
}

/// A status as the pages show it: its name and the tone of its colour (`ok`, `warn`, `bad`,
/// `idle`).
pub(super) struct Badge {
    pub(super) text: &'static str,
    pub(super) tone: &'static str,
}

impl Badge {
    pub(super) fn enrollment(status: EnrollmentStatus) -> Self {
        use EnrollmentStatus as E;
        let tone = match status {
            E::Enrolled => "ok",
            E::Unknown => "idle",
            E::Missing | E::Unreachable | E::HostKeyUnknown => "warn",
            E::Mismatch | E::AuthFailed | E::HostKeyChanged => "bad",
        };
        Self {
            text: status.as_str(),
            tone,
        }
    }

    pub(super) fn health(status: HealthStatus) -> Self {
        let tone = match status {
            HealthStatus::Online => "ok",
            HealthStatus::Degraded => "warn",
            HealthStatus::Offline => "bad",
            HealthStatus::Unknown => "idle",
        };
        Self {
            text: status.as_str(),
            tone,
        }
    }

    /// A machine of an operation: `live` (the plain badge) while it connects or runs.
    pub(super) fn run(status: MachineRunStatus) -> Self {
        use MachineRunStatus as M;
        let tone = match status {
            M::Queued => "idle",
            M::Connecting | M::Running => "live",
            M::Succeeded => "ok",
            M::Cancelled | M::Interrupted => "warn",
            M::Failed | M::TimedOut | M::Unreachable => "bad",
        };
        Self {
            text: status.as_str(),
            tone,
        }
    }

    /// An operation; its states are named and toned as its machines' are.
    pub(super) fn operation(status: OperationStatus) -> Self {
        use OperationStatus as O;
        let tone = match status {
            O::Queued => "idle",
            O::Running => "live",
            O::Succeeded => "ok",
            O::Cancelled | O::Interrupted => "warn",
            O::Failed => "bad",
        };
        Self {
            text: status.as_str(),
            tone,
        }
    }

    fn sync(result: SyncResult) -> Self {
        let tone = match result {
            SyncResult::Succeeded | SyncResult::Unchanged => "ok",
            SyncResult::Running => "idle",
            SyncResult::Interrupted => "warn",
            SyncResult::Failed => "bad",
        };
        Self {
            text: result.as_str(),
            tone,
        }
    }
}

/// A time as the pages show it, in UTC to the second; empty for none.
pub(super) fn when(at: Option<OffsetDateTime>) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at.and_then(|t| t.to_offset(time::UtcOffset::UTC).format(format).ok())
        .unwrap_or_default()
}

/// How long before `now` a time was (`5m ago`); empty for none.
pub(super) fn ago(at: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    at.map(|t| format!("{} ago", age((now - t).whole_seconds())))
        .unwrap_or_default()
}

/// A latency in milliseconds; empty for none.
pub(super) fn latency(ms: Option<i64>) -> String {
    ms.map(|ms| format!("{ms} ms")).unwrap_or_default()
}

struct MachineRow {
    id: String,
    name: String,
    description: String,
    address: String,
    kind: String,
    tags: Vec<String>,
    enrollment: Badge,
    health: Badge,
    latency: String,
    last_seen: String,
    last_seen_at: String,
}

struct SyncRow {
    id: i64,
    commit: String,
    commit_full: String,
    trigger: &'static str,
    actor: String,
    started: String,
    finished: String,
    result: Badge,
    errors: Vec<String>,
    machines: String,
    scripts: String,
}

/// A heading of the machines table: a link that sorts by it (the other way round when it is
/// the sort already), with an arrow on the sorted one.
struct Column {
    label: &'static str,
    href: String,
    arrow: &'static str,
}

/// One error of a failed sync as people read it: `links.yaml:7: message (machines[2].host)`.
fn file_error(error: &SyncFileError) -> String {
    let place = match (&error.file, error.line) {
        (Some(file), Some(line)) => format!("{file}:{line}: "),
        (Some(file), None) => format!("{file}: "),
        _ => String::new(),
    };
    let path = error
        .path
        .as_ref()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    format!("{place}{}{path}", error.message)
}

fn changes(changes: &Changes) -> String {
    let parts: Vec<String> = [
        ("added", &changes.added),
        ("changed", &changes.changed),
        ("removed", &changes.removed),
    ]
    .iter()
    .filter(|(_, names)| !names.is_empty())
    .map(|(what, names)| format!("{what} {}", names.join(", ")))
    .collect();
    parts.join("; ")
}

fn sync_row(sync: &SyncView) -> SyncRow {
    let commit_full = sync.commit.clone().unwrap_or_default();
    SyncRow {
        id: sync.id,
        commit: commit_full.chars().take(12).collect(),
        commit_full,
        trigger: sync.trigger.as_str(),
        actor: sync.actor.clone(),
        started: when(Some(sync.started)),
        finished: when(sync.finished),
        result: Badge::sync(sync.result),
        errors: sync.errors.iter().map(file_error).collect(),
        machines: changes(&sync.changes.machines),
        scripts: changes(&sync.changes.scripts),
    }
}

#[derive(Template)]
#[template(path = "fleet_live.html")]
struct FleetLive {
    repository: String,
    branch: String,
    commit: String,
    syncing: bool,
    /// The newest sync, if any.
    last: Option<SyncRow>,
    history: Vec<SyncRow>,
    columns: Vec<Column>,
    machines: Vec<MachineRow>,
    total: u64,
    narrowed: bool,
    /// The next page of machines, empty on the last.
    next: String,
}

/// A filter's choice.
pub(super) struct Choice {
    pub(super) value: String,
    pub(super) selected: bool,
}

/// The distinct `values`, sorted, with `current` among them and selected.
pub(super) fn choices(values: impl IntoIterator<Item = String>, current: &str) -> Vec<Choice> {
    let mut values: BTreeSet<String> = values.into_iter().collect();
    let current = current.trim();
    if !current.is_empty() {
        values.insert(current.to_owned());
    }
    values
        .into_iter()
        .map(|value| Choice {
            selected: value == current,
            value,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "fleet.html")]
struct FleetPage {
    nav: Nav,
    /// main.yaml sets `fleet.repository`.
    enabled: bool,
    kinds: Vec<Choice>,
    statuses: Vec<Choice>,
    enrollments: Vec<Choice>,
    tags: Vec<Choice>,
    sort: String,
    desc: String,
    /// The page's query string, for the stream and the forms.
    query: String,
    live: String,
}

/// A message in place of a live fragment that could not be rendered.
#[derive(Template)]
#[template(source = "<p class=\"error\">{{ message }}</p>", ext = "html")]
pub(super) struct Notice<'a> {
    pub(super) message: &'a str,
}

async fn live(
    state: &AppState,
    viewer: &Viewer,
    filters: &Filters,
    query: MachineQuery,
) -> Result<FleetLive, ApiError> {
    let Json(status) =
        crate::fleet::sync_status(State(state.clone()), viewer.auth(), Query(NoQuery {})).await?;
    let Json(list) = crate::fleet::list(State(state.clone()), viewer.auth(), Query(query)).await?;
    let now = OffsetDateTime::now_utc();
    let sorted_by = if filters.sort.trim().is_empty() {
        "id"
    } else {
        filters.sort.trim()
    };
    let columns = COLUMNS
        .iter()
        .map(|(key, label)| match key {
            None => Column {
                label,
                href: String::new(),
                arrow: "",
            },
            Some(key) => {
                let sorted = *key == sorted_by;
                let desc = sorted && !filters.descending();
                let by = Filters {
                    sort: (*key).to_owned(),
                    desc: if desc { "true" } else { "" }.to_owned(),
                    cursor: String::new(),
                    ..filters.clone()
                };
                Column {
                    label,
                    href: by.page(),
                    arrow: match (sorted, filters.descending()) {
                        (false, _) => "",
                        (true, false) => "▲",
                        (true, true) => "▼",
                    },
                }
            }
        })
        .collect();
    let next = list
        .next_cursor
        .map(|cursor| {
            Filters {
                cursor,
                ..filters.clone()
            }
            .page()
        })
        .unwrap_or_default();
    let history: Vec<SyncRow> = status.history.iter().map(sync_row).collect();
    Ok(FleetLive {
        repository: status.repository,
        branch: status.branch,
        commit: status.commit.unwrap_or_default(),
        syncing: status.syncing,
        last: status.history.first().map(sync_row),
        history,
        columns,
        machines: list
            .machines
            .into_iter()
            .map(|m| MachineRow {
                id: m.id.to_string(),
                name: m.name,
                description: m.description,
                address: format!("{}@{}:{}", m.user, m.host, m.port),
                kind: m.kind.unwrap_or_default(),
                tags: m.tags,
                enrollment: Badge::enrollment(m.enrollment.status),
                health: Badge::health(m.health.status),
                latency: latency(m.health.latency_ms),
                last_seen: ago(m.health.last_seen, now),
                last_seen_at: when(m.health.last_seen),
            })
            .collect(),
        total: list.total,
        narrowed: filters.narrowed(),
        next,
    })
}

/// The live fragment as HTML, or the reason it cannot be shown.
async fn live_html(
    state: &AppState,
    viewer: &Viewer,
    filters: &Filters,
    query: MachineQuery,
) -> String {
    match live(state, viewer, filters, query).await {
        Ok(live) => live.render().unwrap_or_default(),
        Err(e) => Notice {
            message: &e.message,
        }
        .render()
        .unwrap_or_default(),
    }
}

/// `GET /admin/fleet?type=&status=&enrollment=&tag=&sort=&desc=&cursor=`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: AdminViewer,
    query: Result<Query<Filters>, ApiError>,
) -> Response {
    let (filters, machine_query) = match self::filters(query) {
        Ok(found) => found,
        Err(page) => return page,
    };
    let Some(fleet) = &state.fleet else {
        return render(&FleetPage {
            nav: viewer.0.nav(&state),
            enabled: false,
            kinds: Vec::new(),
            statuses: Vec::new(),
            enrollments: Vec::new(),
            tags: Vec::new(),
            sort: String::new(),
            desc: String::new(),
            query: String::new(),
            live: String::new(),
        });
    };
    let live = match live(&state, &viewer.0, &filters, machine_query).await {
        Ok(live) => live.render().unwrap_or_default(),
        Err(e) => return api_error_page(&e),
    };
    let inventory = fleet.inventory();
    let specs = inventory.machines.values();
    render(&FleetPage {
        nav: viewer.0.nav(&state),
        enabled: true,
        kinds: choices(specs.clone().filter_map(|m| m.kind.clone()), &filters.kind),
        statuses: choices(HealthStatus::NAMES.map(str::to_owned), &filters.status),
        enrollments: choices(
            EnrollmentStatus::NAMES.map(str::to_owned),
            &filters.enrollment,
        ),
        tags: choices(specs.flat_map(|m| m.tags.clone()), &filters.tag),
        query: filters.query_string(),
        sort: filters.sort,
        desc: filters.desc,
        live,
    })
}

/// `GET /admin/fleet/events?…`: the live part of the page, with the page's filters, as SSE.
pub(crate) async fn events(
    State(state): State<AppState>,
    _viewer: AdminViewer,
    headers: HeaderMap,
    query: Result<Query<Filters>, ApiError>,
) -> Response {
    let (filters, machine_query) = match self::filters(query) {
        Ok(found) => found,
        Err(page) => return page,
    };
    let Some(fleet) = &state.fleet else {
        return super::error_page(StatusCode::NOT_FOUND, "There is no fleet.");
    };
    let events = fleet.subscribe();
    live_stream(
        state,
        headers,
        events,
        |_| true,
        move |state, viewer| {
            let filters = filters.clone();
            let machine_query = machine_query.clone();
            async move { live_html(&state, &viewer, &filters, machine_query).await }
        },
    )
    .into_response()
}

/// The SSE stream of a live fragment: `render` at once, then on every fleet event that
/// `matters` and every [`TICK`], each as an `update` event, for as long as the session that
/// opened it is an admin's.
pub(super) fn live_stream<M, R, F>(
    state: AppState,
    headers: HeaderMap,
    events: broadcast::Receiver<FleetEvent>,
    matters: M,
    render: R,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    M: Fn(&FleetEvent) -> bool + Send + Sync + 'static,
    R: Fn(AppState, Viewer) -> F + Send + 'static,
    F: Future<Output = String> + Send,
{
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stream = futures_util::stream::unfold(
        (state, headers, events, tick, matters, render),
        |(state, headers, mut events, mut tick, matters, render)| async move {
            changed(&mut events, &mut tick, &matters).await?;
            // The session may have expired or logged out since the stream began.
            let viewer = current_session(&state, &headers).filter(|v| v.caller.is_admin())?;
            let html = render(state.clone(), viewer).await;
            let event = Event::default().event("update").data(html);
            Some((Ok(event), (state, headers, events, tick, matters, render)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Waits for a reason to render again: the tick (the first one at once), or an event that
/// matters, with the events queued behind it, so that a burst renders once. `None` once the
/// fleet is gone.
async fn changed(
    events: &mut broadcast::Receiver<FleetEvent>,
    tick: &mut Interval,
    matters: &impl Fn(&FleetEvent) -> bool,
) -> Option<()> {
    loop {
        tokio::select! {
            _ = tick.tick() => return Some(()),
            received = events.recv() => match received {
                Ok(event) if matters(&event) => break,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return None,
            },
        }
    }
    loop {
        match events.try_recv() {
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty) => return Some(()),
            Err(TryRecvError::Closed) => return None,
        }
    }
}

/// `POST /admin/fleet/sync`: syncs now, then back to the page (with its filters).
pub(crate) async fn sync(
    State(state): State<AppState>,
    query: Result<Query<Filters>, ApiError>,
    CsrfForm(viewer, _form): CsrfForm<AdminViewer>,
) -> Response {
    let back = back(query);
    match crate::fleet::sync_now(State(state), viewer.0.auth(), Query(NoQuery {})).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => api_error_page(&e),
    }
}

/// `POST /admin/fleet/verify`: checks every machine now, then back to the page.
pub(crate) async fn verify_all(
    State(state): State<AppState>,
    query: Result<Query<Filters>, ApiError>,
    CsrfForm(viewer, _form): CsrfForm<AdminViewer>,
) -> Response {
    let back = back(query);
    match crate::fleet::verify_all(State(state), viewer.0.auth(), Query(NoQuery {})).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => api_error_page(&e),
    }
}

/// The page a form of it comes back to: with the filters it was posted with, if they are
/// the page's (anything else goes back to the plain page).
fn back(query: Result<Query<Filters>, ApiError>) -> String {
    query.map_or_else(|_| "/admin/fleet".to_owned(), |Query(f)| f.page())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_api_query_and_a_query_string_again() {
        let filters = Filters {
            kind: " db ".into(),
            status: "online".into(),
            enrollment: "host_key_unknown".into(),
            tag: "a&b".into(),
            sort: "last_seen".into(),
            desc: "true".into(),
            cursor: String::new(),
        };
        let query = filters.machine_query().unwrap();
        assert_eq!(query.kind.as_deref(), Some("db"));
        assert_eq!(query.status, Some(HealthStatus::Online));
        assert_eq!(query.enrollment, Some(EnrollmentStatus::HostKeyUnknown));
        assert_eq!(query.desc, Some(true));
        assert_eq!(query.cursor, None);
        assert_eq!(
            filters.page(),
            "/admin/fleet?type=db&status=online&enrollment=host_key_unknown&tag=a%26b&sort=last_seen&desc=true"
        );
        assert_eq!(Filters::default().page(), "/admin/fleet");
        assert!(filters.narrowed());
        assert!(!Filters::default().narrowed());
    }

    #[test]
    fn unknown_statuses_and_flags_are_refused_with_the_field() {
        for (filters, field) in [
            (
                Filters {
                    status: "up".into(),
                    ..Filters::default()
                },
                "status:",
            ),
            (
                Filters {
                    enrollment: "<script>".into(),
                    ..Filters::default()
                },
                "enrollment:",
            ),
            (
                Filters {
                    desc: "yes".into(),
                    ..Filters::default()
                },
                "desc:",
            ),
        ] {
            let message = filters.machine_query().unwrap_err();
            assert!(message.starts_with(field), "{message}");
        }
    }

    #[test]
    fn sync_errors_read_as_file_and_line() {
        let error = SyncFileError {
            file: Some("links.yaml".into()),
            line: Some(7),
            path: Some("machines[2].host".into()),
            message: "host is missing".into(),
        };
        assert_eq!(
            file_error(&error),
            "links.yaml:7: host is missing (machines[2].host)"
        );
        let bare = SyncFileError {
            file: None,
            line: None,
            path: None,
            message: "fetch failed".into(),
        };
        assert_eq!(file_error(&bare), "fetch failed");
        let changed = Changes {
            added: vec!["m1".into(), "m2".into()],
            changed: Vec::new(),
            removed: vec!["m3".into()],
        };
        assert_eq!(changes(&changed), "added m1, m2; removed m3");
        assert_eq!(changes(&Changes::default()), "");
    }
}
