//! `/admin/recordings`: every recorded terminal session, newest first, filtered by the
//! workspace's owner, who attached and the day, a page at a time through the table query
//! engine. Each row links to its replay page and can be deleted.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use berth_types::RecordingId;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::paging::{self, PageQuery, text};
use super::{AdminViewer, CsrfForm, Nav, age, api_error_page, render};
use crate::auth::ClientIp;
use crate::extract::{PagePath, Path, Query};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filters {
    /// The workspace's owner.
    #[serde(default)]
    owner: String,
    /// Who attached.
    #[serde(default)]
    user: String,
    /// `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    from: String,
    /// `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
}

struct Row {
    id: String,
    started: String,
    owner: String,
    username: String,
    workspace: String,
    length: String,
    size: String,
    /// Only a finished recording may be deleted.
    finished: bool,
}

#[derive(Template)]
#[template(path = "recordings.html")]
struct RecordingsPage {
    nav: Nav,
    owner: String,
    user: String,
    from: String,
    to: String,
    rows: Vec<Row>,
    total: u64,
    next: String,
}

fn time(value: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value, &Rfc3339).ok()
}

/// `GET /admin/recordings?owner=&user=&from=&to=&cursor=`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: AdminViewer,
    Query(filters): Query<Filters>,
) -> Response {
    let fields = [
        ("owner", "owner", filters.owner.as_str()),
        ("username", "user", filters.user.as_str()),
    ];
    let query = PageQuery {
        table: "recordings",
        sort: "started_at",
        time: "started_at",
        text: &fields,
        from: &filters.from,
        to: &filters.to,
        cursor: &filters.cursor,
    };
    let (result, next) = match paging::fetch(state.clone(), &viewer.0, &query).await {
        Ok(page) => page,
        Err(page) => return page,
    };
    let rows = result
        .rows
        .iter()
        .map(|row| {
            let started = time(&text(row, "started_at"));
            let length = match (started, time(&text(row, "ended_at"))) {
                (Some(from), Some(to)) => age((to - from).whole_seconds()),
                (Some(_), None) => "not finished".to_owned(),
                _ => String::new(),
            };
            // The size is counted when the session ends.
            let bytes = row
                .get("bytes")
                .and_then(serde_json::Value::as_u64)
                .filter(|_| !text(row, "ended_at").is_empty());
            Row {
                id: text(row, "id"),
                started: text(row, "started_at"),
                owner: text(row, "owner"),
                username: text(row, "username"),
                workspace: text(row, "target_id").chars().take(8).collect(),
                length,
                size: bytes.map_or_else(String::new, |b| format!("{} KiB", b.div_ceil(1024))),
                finished: !text(row, "ended_at").is_empty(),
            }
        })
        .collect();
    render(&RecordingsPage {
        nav: viewer.0.nav(&state),
        rows,
        total: result.total,
        next,
        owner: filters.owner,
        user: filters.user,
        from: filters.from,
        to: filters.to,
    })
    .into_response()
}

/// `POST /admin/recordings/{id}/delete`: deletes one finished recording, back to the list.
pub(crate) async fn delete(
    State(state): State<AppState>,
    ip: ClientIp,
    PagePath(id): PagePath<RecordingId>,
    CsrfForm(viewer, _form): CsrfForm<AdminViewer>,
) -> Response {
    match crate::terminal::recordings::delete(State(state), viewer.0.auth(), ip, Path(id)).await {
        Ok(_) => Redirect::to("/admin/recordings").into_response(),
        Err(e) => api_error_page(&e),
    }
}
