//! `/clusters`: my ephemeral Kubernetes clusters: ask for one (name and TTL), watch it go
//! from provisioning to running without a reload (`static/live.js` over `/api/v1/events`),
//! see the time it has left, download its kubeconfig, extend it, delete it. Admins see
//! everyone's, as on the dashboard.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use berth_types::api::{ClusterQuery, ClusterView, ExtendCluster, NewCluster, Timeout};
use berth_types::{ClusterId, ClusterName};
use time::format_description::well_known::Rfc3339;

use super::{CsrfForm, Nav, Viewer, api_error_page, render};
use crate::auth::ClientIp;
use crate::extract::{Json, NoQuery, PagePath, Path, Query};
use crate::state::AppState;

/// One cluster row; `static/live.js` keeps it current.
pub(crate) struct ClusterRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) owner: String,
    pub(crate) state: String,
    pub(crate) reason: String,
    pub(crate) api_url: String,
    /// RFC 3339, counted down in the browser.
    pub(crate) expires_at: String,
}

pub(crate) fn row(view: &ClusterView) -> ClusterRow {
    ClusterRow {
        id: view.id.to_string(),
        name: view.name.to_string(),
        owner: view.owner.to_string(),
        state: view.state.to_string(),
        reason: view.state_reason.clone(),
        api_url: view.api_url.clone().unwrap_or_default(),
        expires_at: view.expires_at.format(&Rfc3339).unwrap_or_default(),
    }
}

/// The empty row of the page's `<template>`.
pub(crate) fn blank() -> ClusterRow {
    ClusterRow {
        id: String::new(),
        name: String::new(),
        owner: String::new(),
        state: String::new(),
        reason: String::new(),
        api_url: String::new(),
        expires_at: String::new(),
    }
}

#[derive(Template)]
#[template(path = "clusters.html")]
struct ClustersPage {
    nav: Nav,
    /// main.yaml enables clusters.
    enabled: bool,
    /// The viewer may ask for one (users.yaml `clusters: true`, or an admin).
    may_create: bool,
    default_ttl: String,
    max_ttl: String,
    max_per_user: u32,
    clusters: Vec<ClusterRow>,
    /// The row `static/live.js` copies for a cluster it learns of (one, empty).
    blank_row: Vec<ClusterRow>,
    error: String,
}

async fn clusters_page(state: AppState, viewer: Viewer, error: String) -> Response {
    let enabled = state.clusters.is_some();
    let clusters = if enabled {
        match crate::clusters::list(
            State(state.clone()),
            viewer.auth(),
            Query(ClusterQuery::default()),
        )
        .await
        {
            Ok(Json(list)) => list.clusters.iter().map(row).collect(),
            Err(e) => return api_error_page(&e),
        }
    } else {
        Vec::new()
    };
    // The limits in force (read at start-up), not those of a main.yaml edited since.
    let (default_ttl, max_ttl, max_per_user) = match &state.clusters {
        Some(clusters) => {
            let settings = clusters.settings();
            let human = |d: std::time::Duration| {
                berth_types::units::HumanDuration::from_secs(d.as_secs())
                    .map_or_else(|| format!("{}s", d.as_secs()), |h| h.to_string())
            };
            (
                human(settings.default_ttl),
                human(settings.max_ttl),
                settings.max_per_user,
            )
        }
        None => (String::new(), String::new(), 0),
    };
    let page = ClustersPage {
        nav: viewer.nav(&state),
        enabled,
        may_create: crate::clusters::may_create(&state, &viewer.caller),
        default_ttl,
        max_ttl,
        max_per_user,
        clusters,
        blank_row: vec![blank()],
        error,
    };
    render(&page)
}

/// `GET /clusters`.
pub(crate) async fn page(State(state): State<AppState>, viewer: Viewer) -> Response {
    clusters_page(state, viewer, String::new()).await
}

/// A TTL typed in the form: empty for the default.
fn ttl(text: &str) -> Result<Option<Timeout>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(|d| Some(Timeout(d)))
        .map_err(|e: String| format!("ttl: {e}"))
}

/// `POST /clusters`: ask for one.
pub(crate) async fn create(
    State(state): State<AppState>,
    ip: ClientIp,
    CsrfForm(viewer, form): CsrfForm,
) -> Response {
    let name = match ClusterName::new(form.text("name")) {
        Ok(name) => name,
        Err(e) => return clusters_page(state, viewer, format!("name: {e}")).await,
    };
    let ttl = match ttl(&form.text("ttl")) {
        Ok(ttl) => ttl,
        Err(e) => return clusters_page(state, viewer, e).await,
    };
    let body = NewCluster { name, ttl };
    match crate::clusters::create(State(state.clone()), viewer.auth(), ip, Json(body)).await {
        Ok(_) => Redirect::to("/clusters").into_response(),
        Err(e) => clusters_page(state, viewer, e.message).await,
    }
}

/// `POST /clusters/{id}/extend`.
pub(crate) async fn extend(
    State(state): State<AppState>,
    ip: ClientIp,
    PagePath(id): PagePath<ClusterId>,
    CsrfForm(viewer, form): CsrfForm,
) -> Response {
    let by = match ttl(&form.text("ttl")) {
        Ok(Some(by)) => by,
        Ok(None) => return clusters_page(state, viewer, "ttl: say how long".to_owned()).await,
        Err(e) => return clusters_page(state, viewer, e).await,
    };
    let body = ExtendCluster { ttl: by };
    match crate::clusters::extend(
        State(state.clone()),
        viewer.auth(),
        ip,
        Path(id),
        Json(body),
    )
    .await
    {
        Ok(_) => Redirect::to("/clusters").into_response(),
        Err(e) => clusters_page(state, viewer, e.message).await,
    }
}

/// `POST /clusters/{id}/delete`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    ip: ClientIp,
    PagePath(id): PagePath<ClusterId>,
    CsrfForm(viewer, _form): CsrfForm,
) -> Response {
    match crate::clusters::delete(
        State(state.clone()),
        viewer.auth(),
        ip,
        Path(id),
        Query(NoQuery {}),
    )
    .await
    {
        Ok(_) => Redirect::to("/clusters").into_response(),
        Err(e) => clusters_page(state, viewer, e.message).await,
    }
}

#[cfg(test)]
mod tests {
    use super::ttl;

    #[test]
    fn the_form_ttl_is_a_duration_or_nothing() {
        assert_eq!(ttl("  "), Ok(None));
        assert_eq!(ttl("2h").map(|t| t.map(|t| t.0.as_secs())), Ok(Some(7200)));
        assert!(ttl("soon").is_err());
        assert!(ttl("0s").is_err());
    }
}
