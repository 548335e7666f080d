//! `/admin/audit`: the audit log, filtered by user, action and date, a page at a time through
//! the table query engine (cursor pagination).

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::paging::{self, PageQuery, text};
use super::{AdminViewer, Nav, render};
use crate::extract::Query;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filters {
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    /// `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    from: String,
    /// `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
}

struct Entry {
    at: String,
    actor: String,
    action: String,
    target: String,
    ip: String,
    outcome: String,
    details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    user: String,
    action: String,
    from: String,
    to: String,
    entries: Vec<Entry>,
    total: u64,
    /// The query string of the next page, empty on the last.
    next: String,
}

/// `GET /admin/audit?user=&action=&from=&to=&cursor=`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: AdminViewer,
    Query(filters): Query<Filters>,
) -> Response {
    let fields = [
        ("actor", "user", filters.user.as_str()),
        ("action", "action", filters.action.as_str()),
    ];
    let query = PageQuery {
        table: "audit",
        sort: "id",
        time: "at",
        text: &fields,
        from: &filters.from,
        to: &filters.to,
        cursor: &filters.cursor,
    };
    let (result, next) = match paging::fetch(state.clone(), &viewer.0, &query).await {
        Ok(page) => page,
        Err(page) => return page,
    };
    render(&AuditPage {
        nav: viewer.0.nav(&state),
        entries: result
            .rows
            .iter()
            .map(|row| Entry {
                at: text(row, "at"),
                actor: text(row, "actor"),
                action: text(row, "action"),
                target: text(row, "target"),
                ip: text(row, "ip"),
                outcome: text(row, "outcome"),
                details: text(row, "details"),
            })
            .collect(),
        total: result.total,
        next,
        user: filters.user,
        action: filters.action,
        from: filters.from,
        to: filters.to,
    })
    .into_response()
}
