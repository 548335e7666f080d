//! `/admin/fleet/machines/{id}`: one machine's SSH settings (no secrets), enrollment and
//! health with its history, **Verify**, and **Trust host key** for a key Berth does not know
//! yet, live over SSE (`…/events`, as the fleet page's stream, for this machine's events).
//!
//! Trusting posts the fingerprint the machine presented, shown on the page, after the admin
//! confirms it; the API's handler checks it against the key the machine presents now. A
//! changed host key gets a warning and no button: Berth never trusts one (docs/fleet.md).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use berth_core::{Fleet, FleetEvent};
use berth_types::MachineId;
use berth_types::api::{MachineView, TrustHostKey};
use berth_types::fleet::EnrollmentStatus;
use time::OffsetDateTime;

use super::fleet::{Badge, Notice, ago, latency, live_stream, when};
use super::{AdminViewer, CsrfForm, Nav, Viewer, api_error_page, error_page, render};
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, PagePath, Path, Query};
use crate::state::AppState;

struct Probe {
    at: String,
    latency: String,
}

#[derive(Template)]
#[template(path = "machine_live.html")]
struct MachineLive {
    csrf: String,
    id: String,
    name: String,
    description: String,
    host: String,
    port: u16,
    user: String,
    kind: String,
    tags: Vec<String>,
    key: String,
    host_key_pinned: bool,
    proxy_jump: String,
    client_id: String,
    commit: String,
    enrollment: Badge,
    message: String,
    fingerprint: String,
    verified_at: String,
    /// The key is unknown and its fingerprint is known: the admin may trust it.
    trust: bool,
    /// The key changed: a warning, and no way to trust it here.
    changed: bool,
    health: Badge,
    latency: String,
    last_seen: String,
    last_seen_at: String,
    failures: i64,
    checked_at: String,
    /// The recent checks, newest first.
    history: Vec<Probe>,
}

#[derive(Template)]
#[template(path = "machine.html")]
struct MachinePage {
    nav: Nav,
    id: String,
    live: String,
}

fn fragment(machine: MachineView, csrf: String) -> MachineLive {
    let now = OffsetDateTime::now_utc();
    let status = machine.enrollment.status;
    let fingerprint = machine.enrollment.fingerprint.unwrap_or_default();
    MachineLive {
        csrf,
        id: machine.id.to_string(),
        name: machine.name,
        description: machine.description,
        host: machine.host,
        port: machine.port,
        user: machine.user,
        kind: machine.kind.unwrap_or_default(),
        tags: machine.tags,
        key: machine.key,
        host_key_pinned: machine.host_key_pinned,
        proxy_jump: machine
            .proxy_jump
            .map(|m| m.to_string())
            .unwrap_or_default(),
        client_id: machine.client_id.unwrap_or_default(),
        commit: machine.commit,
        enrollment: Badge::enrollment(status),
        message: machine.enrollment.message,
        trust: status == EnrollmentStatus::HostKeyUnknown && !fingerprint.is_empty(),
        changed: status == EnrollmentStatus::HostKeyChanged,
        fingerprint,
        verified_at: when(machine.enrollment.verified_at),
        health: Badge::health(machine.health.status),
        latency: latency(machine.health.latency_ms),
        last_seen: ago(machine.health.last_seen, now),
        last_seen_at: when(machine.health.last_seen),
        failures: machine.health.consecutive_failures,
        checked_at: when(machine.health.checked_at),
        history: machine
            .health
            .history
            .iter()
            .rev()
            .map(|p| Probe {
                at: when(Some(p.at)),
                latency: p
                    .latency_ms
                    .map_or_else(|| "no answer".to_owned(), |ms| format!("{ms} ms")),
            })
            .collect(),
    }
}

async fn live(state: &AppState, viewer: &Viewer, id: &MachineId) -> Result<MachineLive, ApiError> {
    let Json(machine) = crate::fleet::get(
        State(state.clone()),
        viewer.auth(),
        Path(id.clone()),
        Query(NoQuery {}),
    )
    .await?;
    Ok(fragment(machine, viewer.session.csrf.clone()))
}

/// The fleet; without one there are no machines to show.
#[allow(clippy::result_large_err)] // the refusal is the page to answer with
pub(super) fn fleet(state: &AppState) -> Result<&Fleet, Response> {
    state.fleet.as_ref().ok_or_else(|| {
        error_page(
            StatusCode::NOT_FOUND,
            "There is no fleet: set fleet.repository in main.yaml (docs/fleet.md).",
        )
    })
}

/// `GET /admin/fleet/machines/{id}`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: AdminViewer,
    PagePath(id): PagePath<MachineId>,
) -> Response {
    if let Err(page) = fleet(&state) {
        return page;
    }
    match live(&state, &viewer.0, &id).await {
        Ok(live) => render(&MachinePage {
            nav: viewer.0.nav(&state),
            id: id.to_string(),
            live: live.render().unwrap_or_default(),
        }),
        Err(e) => api_error_page(&e),
    }
}

/// `GET /admin/fleet/machines/{id}/events`: the live part of the page as SSE.
pub(crate) async fn events(
    State(state): State<AppState>,
    _viewer: AdminViewer,
    headers: HeaderMap,
    PagePath(id): PagePath<MachineId>,
) -> Response {
    let events = match fleet(&state) {
        Ok(fleet) => fleet.subscribe(),
        Err(page) => return page,
    };
    let this = id.clone();
    let matters = move |event: &FleetEvent| match event {
        FleetEvent::Machine(record) => record.spec.id == this,
        FleetEvent::Removed(gone) => *gone == this,
        FleetEvent::Sync(_) => false,
    };
    live_stream(state, headers, events, matters, move |state, viewer| {
        let id = id.clone();
        async move {
            match live(&state, &viewer, &id).await {
                Ok(live) => live.render().unwrap_or_default(),
                Err(e) => Notice {
                    message: &e.message,
                }
                .render()
                .unwrap_or_default(),
            }
        }
    })
    .into_response()
}

fn machine_page(id: &MachineId) -> Redirect {
    Redirect::to(&format!("/admin/fleet/machines/{id}"))
}

/// `POST /admin/fleet/machines/{id}/verify`: checks its enrollment now.
pub(crate) async fn verify(
    State(state): State<AppState>,
    PagePath(id): PagePath<MachineId>,
    CsrfForm(viewer, _form): CsrfForm<AdminViewer>,
) -> Response {
    match crate::fleet::verify(
        State(state),
        viewer.0.auth(),
        Path(id.clone()),
        Query(NoQuery {}),
    )
    .await
    {
        Ok(_) => machine_page(&id).into_response(),
        Err(e) => api_error_page(&e),
    }
}

/// `POST /admin/fleet/machines/{id}/trust` with `fingerprint`: trusts the host key the
/// machine presents, if it is the one with this fingerprint.
pub(crate) async fn trust(
    State(state): State<AppState>,
    PagePath(id): PagePath<MachineId>,
    CsrfForm(viewer, form): CsrfForm<AdminViewer>,
) -> Response {
    let fingerprint = form.text("fingerprint");
    if fingerprint.is_empty() {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Give the fingerprint of the host key to trust (SHA256:…).",
        );
    }
    match crate::fleet::trust(
        State(state),
        viewer.0.auth(),
        Path(id.clone()),
        Json(TrustHostKey { fingerprint }),
    )
    .await
    {
        Ok(_) => machine_page(&id).into_response(),
        Err(e) => api_error_page(&e),
    }
}
