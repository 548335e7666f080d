//! `/admin/dashboard`: clients, host stats and running workspaces, live over SSE.
//!
//! With a fleet, a client whose id is a machine's links.yaml `client_id` shows that machine
//! (linked to its page): the agent's pings and the fleet's checks in one row.
//!
//! `GET /admin/dashboard/events` sends the whole live part of the page, rendered on the server,
//! as one `update` event whenever a workspace changes (`Workspaces::subscribe`) and every 2 s
//! for the host stats and ping ages; `static/ui.js` swaps it in. The stream ends when the
//! session does.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use berth_core::MachineRecord;
use berth_types::WorkspaceId;
use berth_types::api::Monitor;
use futures_util::Stream;
use time::OffsetDateTime;
use tokio::sync::broadcast::error::RecvError;

use super::fleet::Badge;
use super::{AdminViewer, CsrfForm, Nav, age, api_error_page, bytes, current_session, render};
use crate::auth::ClientIp;
use crate::extract::{Json, NoQuery, PagePath, Path, Query};
use crate::state::AppState;

const TICK: Duration = Duration::from_secs(2);

struct Client {
    username: String,
    client_id: String,
    hostname: String,
    last_ping: String,
    templates: String,
    /// The fleet machine that expects this client id.
    machine: Option<Machine>,
}

/// A fleet machine beside the client it is enrolled as.
struct Machine {
    id: String,
    name: String,
    enrollment: Badge,
    health: Badge,
}

struct Running {
    id: String,
    owner: String,
    template: String,
    state: String,
    age: String,
    idle: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "dashboard_live.html")]
struct Live {
    csrf: String,
    cpu: String,
    cpus: u32,
    memory: String,
    disk: String,
    load: String,
    /// A fleet is configured: the clients table has a machine column.
    fleet: bool,
    clients: Vec<Client>,
    workspaces: Vec<Running>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    nav: Nav,
    /// The SSH gateway: `ssh -p PORT USER@HOST`, its host key's fingerprint, its
    /// known_hosts line.
    ssh: Option<(String, String, String)>,
    /// The live part, rendered (and escaped) by its own template.
    live: String,
    /// Every cluster that is not deleted, kept live by `static/live.js` over
    /// `/api/v1/events`; `None` while main.yaml does not enable clusters.
    clusters: Option<Vec<super::clusters::ClusterRow>>,
    /// The row `static/live.js` copies for a cluster it learns of.
    blank_row: Vec<super::clusters::ClusterRow>,
}

async fn live(state: &AppState, viewer: &AdminViewer) -> Result<Live, Response> {
    let Json(monitor) =
        crate::monitor::monitor(State(state.clone()), viewer.0.admin(), Query(NoQuery {}))
            .await
            .map_err(|e| api_error_page(&e))?;
    let machines = match &state.fleet {
        Some(fleet) => fleet.machines().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the dashboard cannot read the fleet's machines");
            Vec::new()
        }),
        None => Vec::new(),
    };
    Ok(fragment(
        state,
        &monitor,
        &machines,
        viewer.0.session.csrf.clone(),
    ))
}

/// The machine whose links.yaml `client_id` is `client_id` (ids compared without case).
fn enrolled_as<'a>(machines: &'a [MachineRecord], client_id: &str) -> Option<&'a MachineRecord> {
    machines.iter().find(|m| {
        m.spec
            .client_id
            .as_deref()
            .is_some_and(|expected| expected.trim().eq_ignore_ascii_case(client_id))
    })
}

fn fragment(state: &AppState, monitor: &Monitor, machines: &[MachineRecord], csrf: String) -> Live {
    let config = state.config.current();
    let now = OffsetDateTime::now_utc();
    let host = &monitor.host;
    let used_memory = host
        .memory
        .total_bytes
        .saturating_sub(host.memory.available_bytes);
    Live {
        csrf,
        cpu: format!("{:.1}", host.cpu_percent),
        cpus: host.cpus,
        memory: format!(
            "{} of {}",
            bytes(used_memory),
            bytes(host.memory.total_bytes)
        ),
        disk: format!(
            "{} of {}",
            bytes(
                host.disk
                    .total_bytes
                    .saturating_sub(host.disk.available_bytes)
            ),
            bytes(host.disk.total_bytes)
        ),
        load: format!(
            "{:.2} {:.2} {:.2}",
            host.load.one, host.load.five, host.load.fifteen
        ),
        fleet: state.fleet.is_some(),
        clients: monitor
            .clients
            .iter()
            .map(|c| {
                let client_id = c.client_id.to_string();
                Client {
                    username: c.username.to_string(),
                    hostname: c.hostname.clone(),
                    last_ping: age((now - c.last_seen).whole_seconds()),
                    templates: config
                        .user(c.username.as_str())
                        .map(|u| u.templates.join(", "))
                        .unwrap_or_default(),
                    machine: enrolled_as(machines, &client_id).map(|m| Machine {
                        id: m.spec.id.to_string(),
                        name: m.spec.name.clone(),
                        enrollment: Badge::enrollment(m.enrollment),
                        health: Badge::health(m.health),
                    }),
                    client_id,
                }
            })
            .collect(),
        workspaces: monitor
            .workspaces
            .iter()
            .map(|w| Running {
                id: w.id.to_string(),
                owner: w.owner.to_string(),
                template: w.template.clone(),
                state: serde_json::to_value(w.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                age: w
                    .started_at
                    .map(|s| age((now - s).whole_seconds()))
                    .unwrap_or_default(),
                idle: age(i64::try_from(w.idle_seconds).unwrap_or(i64::MAX)),
                reason: w.alive_reason.clone(),
            })
            .collect(),
    }
}

/// `GET /admin/dashboard`.
pub(crate) async fn page(State(state): State<AppState>, viewer: AdminViewer) -> Response {
    let clusters = if state.clusters.is_some() {
        match crate::clusters::list(
            State(state.clone()),
            viewer.0.auth(),
            Query(berth_types::api::ClusterQuery::default()),
        )
        .await
        {
            Ok(Json(list)) => Some(list.clusters.iter().map(super::clusters::row).collect()),
            Err(e) => return api_error_page(&e),
        }
    } else {
        None
    };
    match live(&state, &viewer).await {
        Ok(live) => render(&DashboardPage {
            clusters,
            blank_row: vec![super::clusters::blank()],
            nav: viewer.0.nav(&state),
            ssh: state
                .ssh_gateway
                .as_ref()
                .map(|g| (g.command("USER"), g.fingerprint.clone(), g.known_hosts())),
            live: live.render().unwrap_or_default(),
        }),
        Err(response) => response,
    }
}

/// `GET /admin/dashboard/events`: the live part of the page as SSE.
pub(crate) async fn events(
    State(state): State<AppState>,
    viewer: AdminViewer,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = state.workspaces.subscribe();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream = futures_util::stream::unfold(
        (state, viewer, headers, events, tick),
        |(state, _viewer, headers, mut events, mut tick)| async move {
            tokio::select! {
                _ = tick.tick() => {}
                received = events.recv() => {
                    if matches!(received, Err(RecvError::Closed)) {
                        return None;
                    }
                }
            }
            // The session may have expired or logged out since the stream began.
            let still = current_session(&state, &headers).filter(|v| v.caller.is_admin())?;
            let viewer = AdminViewer(still);
            let html = match live(&state, &viewer).await {
                Ok(live) => live.render().unwrap_or_default(),
                Err(_) => String::new(),
            };
            let event = Event::default().event("update").data(html);
            Some((Ok(event), (state, viewer, headers, events, tick)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `POST /admin/workspaces/{id}/stop`.
pub(crate) async fn stop(
    State(state): State<AppState>,
    ip: ClientIp,
    PagePath(id): PagePath<WorkspaceId>,
    CsrfForm(viewer, _form): CsrfForm<AdminViewer>,
) -> Response {
    match crate::workspaces::stop(State(state), viewer.0.auth(), ip, Path(id)).await {
        Ok(_) => Redirect::to("/admin/dashboard").into_response(),
        Err(e) => api_error_page(&e),
    }
}
