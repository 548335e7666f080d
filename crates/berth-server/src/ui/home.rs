//! `/`: my workspaces, starting one from an allowed template, stopping and deleting; the
//! workspaces shared with me; my newest recordings; my SSH keys for the SSH gateway.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use berth_config::Persist;
use berth_types::WorkspaceId;
use berth_types::api::{
    FilterOp, NewSshKey, StartWorkspace, TableFilter, TableQuery, WorkspaceQuery, WorkspaceState,
    WorkspaceView,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{CsrfForm, Nav, Viewer, age, api_error_page, paging, render};
use crate::auth::ClientIp;
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, PagePath, Path, Query};
use crate::state::AppState;

/// A template the viewer may start, with the choices it allows.
struct Startable {
    name: String,
    description: String,
    /// The persist checkbox is offered only when the template leaves it to the user.
    optional_persist: bool,
    networks: Vec<String>,
}

struct Row {
    id: String,
    template: String,
    state: String,
    network: String,
    persistent: bool,
    age: String,
    live: bool,
}

/// A workspace someone shared with the viewer.
struct SharedRow {
    id: String,
    owner: String,
    template: String,
    live: bool,
}

/// How many of their recordings the home page lists; the rest are a table query away.
const RECORDINGS_SHOWN: u32 = 20;

/// The viewer's newest recordings, also of workspaces deleted since: one table query, scoped
/// to them. The template is known while the workspace exists.
async fn my_recordings(
    state: &AppState,
    viewer: &Viewer,
    workspaces: &[WorkspaceView],
) -> Result<Vec<RecordingRow>, ApiError> {
    let query = TableQuery {
        table: "recordings".to_owned(),
        filters: vec![TableFilter {
            column: "owner".to_owned(),
            op: FilterOp::Eq,
            value: serde_json::json!(viewer.caller.username),
        }],
        limit: Some(RECORDINGS_SHOWN),
        ..TableQuery::default()
    };
    let Json(result) =
        crate::tables::query(State(state.clone()), viewer.auth(), Json(query)).await?;
    let now = OffsetDateTime::now_utc();
    Ok(result
        .rows
        .iter()
        .map(|row| {
            let workspace = paging::text(row, "target_id");
            let template = workspaces
                .iter()
                .find(|w| w.id.to_string() == workspace)
                .map_or_else(|| "(removed)".to_owned(), |w| w.template.clone());
            let started = OffsetDateTime::parse(&paging::text(row, "started_at"), &Rfc3339).ok();
            // The size is counted when the session ends.
            let finished = !paging::text(row, "ended_at").is_empty();
            let bytes = row.get("bytes").and_then(serde_json::Value::as_u64);
            RecordingRow {
                id: paging::text(row, "id"),
                template,
                username: paging::text(row, "username"),
                age: started.map_or_else(String::new, |s| age((now - s).whole_seconds())),
                size: match bytes {
                    Some(bytes) if finished => format!("{} KiB", bytes.div_ceil(1024)),
                    _ => "not finished".to_owned(),
                },
            }
        })
        .collect())
}

/// A recorded terminal session of one of the viewer's workspaces.
struct RecordingRow {
    id: String,
    template: String,
    username: String,
    age: String,
    size: String,
}

/// One of my SSH public keys.
struct KeyRow {
    fingerprint: String,
    /// The fingerprint as a path segment.
    path: String,
    algorithm: String,
    comment: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    nav: Nav,
    /// The viewer has a users.yaml entry to keep keys in (the main.yaml admin has none).
    may_keep_keys: bool,
    keys: Vec<KeyRow>,
    /// The SSH gateway: `ssh -p PORT me@HOST`, `me+TEMPLATE`'s, and its known_hosts line.
    ssh: Option<(String, String, String)>,
    templates: Vec<Startable>,
    workspaces: Vec<Row>,
    shared: Vec<SharedRow>,
    recordings: Vec<RecordingRow>,
    error: String,
}

async fn home(state: AppState, viewer: Viewer, error: String) -> Response {
    let config =
        match crate::client_config::config(State(state.clone()), viewer.auth(), Query(NoQuery {}))
            .await
        {
            Ok(Json(config)) => config,
            Err(e) => return api_error_page(&e),
        };
    let query = WorkspaceQuery {
        owner: Some(viewer.caller.username.clone()),
        ..WorkspaceQuery::default()
    };
    let list =
        match crate::workspaces::list(State(state.clone()), viewer.auth(), Query(query)).await {
            Ok(Json(list)) => list.workspaces,
            Err(e) => return api_error_page(&e),
        };
    let query = WorkspaceQuery {
        shared: true,
        ..WorkspaceQuery::default()
    };
    let shared =
        match crate::workspaces::list(State(state.clone()), viewer.auth(), Query(query)).await {
            Ok(Json(list)) => list.workspaces,
            Err(e) => return api_error_page(&e),
        };
    let now = OffsetDateTime::now_utc();
    // The workspaces matter more than the recordings: a failed query leaves the list empty.
    let recordings = my_recordings(&state, &viewer, &list)
        .await
        .unwrap_or_else(|err| {
            tracing::warn!(status = %err.status(), code = err.code(), "could not list recordings for the home page");
            Vec::new()
        });
    let config_now = state.config.current();
    let account = config_now.user(viewer.caller.username.as_str());
    let may_keep_keys = account.is_some();
    let keys = account
        .map(|user| {
            user.ssh_keys
                .iter()
                .map(|key| KeyRow {
                    fingerprint: key.fingerprint().to_owned(),
                    // A fingerprint holds `:`, `/` and `+`.
                    path: super::paging::encode(key.fingerprint()),
                    algorithm: key.algorithm(),
                    comment: key.comment(),
                })
                .collect()
        })
        .unwrap_or_default();
    let me = viewer.caller.username.as_str();
    let ssh = state.ssh_gateway.as_ref().map(|g| {
        (
            g.command(me),
            g.command(&format!("{me}+TEMPLATE")),
            g.known_hosts(),
        )
    });
    let page = HomePage {
        nav: viewer.nav(&state),
        may_keep_keys,
        keys,
        ssh,
        templates: config
            .templates
            .iter()
            .map(|t| {
                let mut networks = vec![t.network.clone()];
                networks.extend(t.networks.iter().cloned());
                Startable {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    optional_persist: t.persist == Persist::Optional,
                    networks,
                }
            })
            .collect(),
        workspaces: list
            .iter()
            .map(|w| {
                let state = serde_json::to_value(w.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                Row {
                    id: w.id.to_string(),
                    template: w.template.clone(),
                    live: matches!(state.as_str(), "running" | "starting" | "pending"),
                    state,
                    network: w.network.clone(),
                    persistent: w.persistent,
                    age: age((now - w.created_at).whole_seconds()),
                }
            })
            .collect(),
        shared: shared
            .iter()
            .map(|w| SharedRow {
                id: w.id.to_string(),
                owner: w.owner.to_string(),
                template: w.template.clone(),
                live: matches!(
                    w.state,
                    WorkspaceState::Running | WorkspaceState::Starting | WorkspaceState::Pending
                ),
            })
            .collect(),
        recordings,
        error,
    };
    render(&page)
}

/// `GET /`.
pub(crate) async fn page(State(state): State<AppState>, viewer: Viewer) -> Response {
    home(state, viewer, String::new()).await
}

/// `POST /workspaces`: start one.
pub(crate) async fn start(
    State(state): State<AppState>,
    ip: ClientIp,
    CsrfForm(viewer, form): CsrfForm,
) -> Response {
    let network = form.text("network");
    let body = StartWorkspace {
        template: form.text("template"),
        persist: form.checked("persist").then_some(true),
        network: (!network.is_empty()).then_some(network),
    };
    match crate::workspaces::create(State(state.clone()), viewer.auth(), ip, Json(body)).await {
        Ok(_) => Redirect::to("/").into_response(),
        Err(e) => home(state, viewer, e.message).await,
    }
}

/// `POST /workspaces/{id}/stop`.
pub(crate) async fn stop(
    State(state): State<AppState>,
    ip: ClientIp,
    PagePath(id): PagePath<WorkspaceId>,
    CsrfForm(viewer, _form): CsrfForm,
) -> Response {
    match crate::workspaces::stop(State(state.clone()), viewer.auth(), ip, Path(id)).await {
        Ok(_) => Redirect::to("/").into_response(),
        Err(e) => home(state, viewer, e.message).await,
    }
}

/// `POST /workspaces/{id}/delete`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    ip: ClientIp,
    PagePath(id): PagePath<WorkspaceId>,
    CsrfForm(viewer, _form): CsrfForm,
) -> Response {
    match crate::workspaces::delete(State(state.clone()), viewer.auth(), ip, Path(id)).await {
        Ok(_) => Redirect::to("/").into_response(),
        Err(e) => home(state, viewer, e.message).await,
    }
}

/// `POST /keys`: adds one of my SSH public keys.
pub(crate) async fn add_key(
    State(state): State<AppState>,
    ip: ClientIp,
    CsrfForm(viewer, form): CsrfForm,
) -> Response {
    let body = NewSshKey {
        key: form.text("key"),
    };
    let me = viewer.caller.username.to_string();
    match crate::keys::add(
        State(state.clone()),
        viewer.auth(),
        ip,
        Path(me),
        Json(body),
    )
    .await
    {
        Ok(_) => Redirect::to("/#keys").into_response(),
        Err(e) => home(state, viewer, e.message).await,
    }
}

/// `POST /keys/{fingerprint}/delete`: removes one of my SSH public keys.
pub(crate) async fn remove_key(
    State(state): State<AppState>,
    ip: ClientIp,
    PagePath(fingerprint): PagePath<String>,
    CsrfForm(viewer, _form): CsrfForm,
) -> Response {
    let me = viewer.caller.username.to_string();
    match crate::keys::remove(
        State(state.clone()),
        viewer.auth(),
        ip,
        Path((me, fingerprint)),
    )
    .await
    {
        Ok(_) => Redirect::to("/#keys").into_response(),
        Err(e) => home(state, viewer, e.message).await,
    }
}
