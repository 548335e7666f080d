//! `/admin/audit`: the audit log, filtered by user, action and date, a page at a time through
//! the table query engine (cursor pagination).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_types::api::{FilterOp, SortKey, TableFilter, TableQuery};
use serde::Deserialize;
use serde_json::{Value, json};

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

fn text(row: &serde_json::Map<String, Value>, key: &str) -> String {
    match row.get(key) {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

fn day(value: &str, field: &str) -> Result<time::Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, format).map_err(|_| format!("{field}: give a date as YYYY-MM-DD"))
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
    for (column, value) in [("actor", &filters.user), ("action", &filters.action)] {
        if !value.trim().is_empty() {
            query.filters.push(TableFilter {
                column: column.to_owned(),
                op: FilterOp::Eq,
                value: json!(value.trim()),
            });
        }
    }
    for (value, field, op, next_day) in [
        (&filters.from, "from", FilterOp::Gte, false),
        (&filters.to, "to", FilterOp::Lt, true),
    ] {
        if value.is_empty() {
            continue;
        }
        let date = match day(value, field) {
            Ok(date) => date,
            Err(message) => return super::error_page(StatusCode::BAD_REQUEST, &message),
        };
        let date = if next_day {
            date.next_day().unwrap_or(date)
        } else {
            date
        };
        query.filters.push(TableFilter {
            column: "at".to_owned(),
            op,
            value: json!(format!("{date}T00:00:00Z")),
        });
    }
    let result = match crate::tables::query(State(state), viewer.0.auth(), Json(query)).await {
        Ok(Json(result)) => result,
        Err(e) => return api_error_page(&e),
    };
    let next = result
        .next_cursor
        .map(|cursor| {
            let mut url = String::new();
            for (k, v) in [
                ("user", &filters.user),
                ("action", &filters.action),
                ("from", &filters.from),
                ("to", &filters.to),
                ("cursor", &cursor),
            ] {
                url.push_str(&format!("{k}={}&", encode(v)));
            }
            url
        })
        .unwrap_or_default();
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

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
