//! `/admin/audit`: the audit log, filtered by user, action and date, a page at a time through
//! the table query engine (cursor pagination).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_types::api::{SortKey, TableQuery};
use serde::Deserialize;

use super::paging::{self, text};
use super::{AdminViewer, Nav, api_error_page, render};
use crate::extract::{Json, Query};
use crate::state::AppState;

const PAGE: u32 = 50;

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
    let mut query = TableQuery {
        table: "audit".to_owned(),
        columns: Vec::new(),
        filters: Vec::new(),
        sort: vec![SortKey {
            column: "id".to_owned(),
            desc: true,
        }],
        limit: Some(PAGE),
        cursor: (!filters.cursor.is_empty()).then(|| filters.cursor.clone()),
    };
    query
        .filters
        .extend(paging::text_filter("actor", &filters.user));
    query
        .filters
        .extend(paging::text_filter("action", &filters.action));
    match paging::date_filters("at", &filters.from, &filters.to) {
        Ok(dates) => query.filters.extend(dates),
        Err(message) => return super::error_page(StatusCode::BAD_REQUEST, &message),
    }
    let result = match crate::tables::query(State(state), viewer.0.auth(), Json(query)).await {
        Ok(Json(result)) => result,
        Err(e) => return api_error_page(&e),
    };
    let next = paging::next_page(
        &[
            ("user", &filters.user),
            ("action", &filters.action),
            ("from", &filters.from),
            ("to", &filters.to),
        ],
        result.next_cursor.as_deref(),
    );
    render(&AuditPage {
        nav: viewer.0.nav(),
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
