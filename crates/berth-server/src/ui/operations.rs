//! `/admin/operations`: the history of operations, newest first, filtered by status, script,
//! machine, user and a range of days with the query of `GET /api/v1/operations` (its handler
//! answers), a page at a time by its cursor.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use berth_types::api::OperationQuery;
use berth_types::operation::OperationStatus;
use berth_types::{MachineId, Username};
use serde::Deserialize;

use super::fleet::{Badge, Choice, choices, when};
use super::machine::fleet;
use super::paging::{day_start, next_page};
use super::{AdminViewer, Nav, api_error_page, error_page, render};
use crate::error::ApiError;
use crate::extract::{Json, Query};
use crate::state::AppState;

/// The page's query string, as its form sends it (a blank field filters nothing).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Filters {
    #[serde(default)]
    status: String,
    #[serde(default)]
    script: String,
    #[serde(default)]
    machine: String,
    #[serde(default)]
    user: String,
    /// `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    since: String,
    /// `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
}

impl Filters {
    /// The API's query; a value that cannot be one is a message that names its field.
    fn operation_query(&self) -> Result<OperationQuery, String> {
        let blank = |value: &str| {
            let value = value.trim();
            (!value.is_empty()).then(|| value.to_owned())
        };
        Ok(OperationQuery {
            status: blank(&self.status)
                .map(|s| s.parse::<OperationStatus>())
                .transpose()
                .map_err(|e| format!("status: {e}"))?,
            script: blank(&self.script),
            machine: blank(&self.machine)
                .map(MachineId::new)
                .transpose()
                .map_err(|e| format!("machine: {e}"))?,
            user: blank(&self.user)
                .map(Username::new)
                .transpose()
                .map_err(|e| format!("user: {e}"))?,
            since: day_start(&self.since, "since", false)?,
            until: day_start(&self.until, "until", true)?,
            limit: None,
            cursor: blank(&self.cursor),
        })
    }

    /// The filters (not the cursor), for the next page's link.
    fn fields(&self) -> [(&'static str, &str); 6] {
        [
            ("status", self.status.trim()),
            ("script", self.script.trim()),
            ("machine", self.machine.trim()),
            ("user", self.user.trim()),
            ("since", self.since.trim()),
            ("until", self.until.trim()),
        ]
    }

    fn narrowed(&self) -> bool {
        self.fields().iter().any(|(_, v)| !v.is_empty())
    }
}

struct Row {
    id: String,
    created: String,
    script: String,
    status: Badge,
    machines: usize,
    tally: String,
    user: String,
    finished: String,
}

#[derive(Template)]
#[template(path = "operations.html")]
struct OperationsPage {
    nav: Nav,
    statuses: Vec<Choice>,
    scripts: Vec<Choice>,
    machines: Vec<Choice>,
    user: String,
    since: String,
    until: String,
    rows: Vec<Row>,
    total: u64,
    narrowed: bool,
    /// The query string of the next page, empty on the last.
    next: String,
}

/// `GET /admin/operations?status=&script=&machine=&user=&since=&until=&cursor=`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: AdminViewer,
    query: Result<Query<Filters>, ApiError>,
) -> Response {
    let fleet = match fleet(&state) {
        Ok(fleet) => fleet,
        Err(page) => return page,
    };
    let filters = match query {
        Ok(Query(filters)) => filters,
        Err(e) => return api_error_page(&e),
    };
    let operation_query = match filters.operation_query() {
        Ok(query) => query,
        Err(message) => return error_page(StatusCode::BAD_REQUEST, &message),
    };
    let Json(list) = match crate::operations::list(
        State(state.clone()),
        viewer.0.auth(),
        Query(operation_query),
    )
    .await
    {
        Ok(list) => list,
        Err(e) => return api_error_page(&e),
    };
    let inventory = fleet.inventory();
    let rows = list
        .operations
        .iter()
        .map(|op| Row {
            id: op.id.to_string(),
            created: when(Some(op.created)),
            script: op.script.clone(),
            status: Badge::operation(op.status),
            machines: op.machines.len(),
            tally: super::operation::tally(op),
            user: op.user.to_string(),
            finished: when(op.finished),
        })
        .collect();
    render(&OperationsPage {
        nav: viewer.0.nav(&state),
        statuses: choices(OperationStatus::NAMES.map(str::to_owned), &filters.status),
        scripts: choices(
            inventory.scripts.iter().map(|s| s.script.name.clone()),
            &filters.script,
        ),
        machines: choices(
            inventory.machines.keys().map(ToString::to_string),
            &filters.machine,
        ),
        rows,
        total: list.total,
        narrowed: filters.narrowed(),
        next: next_page(&filters.fields(), list.next_cursor.as_deref()),
        user: filters.user,
        since: filters.since,
        until: filters.until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_api_query() {
        let filters = Filters {
            status: "failed".into(),
            script: " hello ".into(),
            machine: "m1".into(),
            user: "ann".into(),
            since: "2026-03-01".into(),
            until: "2026-03-31".into(),
            cursor: String::new(),
        };
        let query = filters.operation_query().unwrap();
        assert_eq!(query.status, Some(OperationStatus::Failed));
        assert_eq!(query.script.as_deref(), Some("hello"));
        assert_eq!(query.machine.unwrap().as_str(), "m1");
        assert_eq!(query.user.unwrap().as_str(), "ann");
        assert_eq!(
            query.since.unwrap(),
            time::macros::datetime!(2026-03-01 0:00 UTC)
        );
        assert_eq!(
            query.until.unwrap(),
            time::macros::datetime!(2026-04-01 0:00 UTC),
            "until is inclusive"
        );
        assert!(filters.narrowed());
        assert!(!Filters::default().narrowed());
        assert_eq!(
            Filters::default().operation_query().unwrap(),
            OperationQuery::default()
        );
    }

    #[test]
    fn bad_filters_are_refused_with_the_field() {
        for (filters, field) in [
            (
                Filters {
                    status: "exploded".into(),
                    ..Filters::default()
                },
                "status:",
            ),
            (
                Filters {
                    machine: "<script>".into(),
                    ..Filters::default()
                },
                "machine:",
            ),
            (
                Filters {
                    user: "no body".into(),
                    ..Filters::default()
                },
                "user:",
            ),
            (
                Filters {
                    since: "yesterday".into(),
                    ..Filters::default()
                },
                "since:",
            ),
        ] {
            let message = filters.operation_query().unwrap_err();
            assert!(message.starts_with(field), "{message}");
        }
    }
}
