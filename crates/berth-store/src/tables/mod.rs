//! Table queries: the small query language behind `POST /api/v1/tables/query`.
//!
//! [`TableStore::query_table`] runs them. A query names a table and columns from a
//! whitelist: `workspaces`, `clients`, `audit`, `recordings`, `machines` and `operations`
//! (`docs/store.md` lists their columns). Every column has a type, so filter values are checked
//! and bound as parameters, never spliced into SQL; a wrong name or type is
//! [`crate::StoreError::InvalidQuery`]. Results come in pages with keyset pagination: a cursor
//! holds the last row's sort-key values, so the next page starts strictly after that row and
//! pages stay consistent while rows are inserted between fetches.
//!
//! ```json
//! {"table": "workspaces", "columns": ["id", "owner", "state"],
//!  "filters": [{"column": "state", "op": "in", "value": ["running", "starting"]}],
//!  "sort": [{"column": "created_at", "desc": true}], "limit": 50}
//! ```

pub(crate) mod cursor;
pub(crate) mod filters;
pub(crate) mod plan;
pub(crate) mod schema;

use std::fmt;

use async_trait::async_trait;
use berth_types::{MachineSelector, Username};

use crate::StoreError;
use crate::db::SqlStore;

/// Rows per page when the query gives no limit.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page a query may ask for.
pub const MAX_LIMIT: u32 = 500;

// The wire types are the API's: a query arrives from the API as it is stored here.
pub use berth_types::api::{FilterOp, SortKey, TableFilter, TableQuery, TableResult};

pub(crate) fn invalid(message: String) -> StoreError {
    StoreError::InvalidQuery(message)
}

/// What a user who is not an admin may see in a table query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableScope {
    /// Tables with an owner restrict to this user's rows: `owner` of workspaces and
    /// recordings, `username` of clients, `actor` of audit entries, `user` of operations.
    pub user: Username,
    /// The machines table restricts to the machines one of these picks (users.yaml
    /// `machines:`): an id, or a tag the machine has. None when empty.
    pub machines: Vec<MachineSelector>,
}

impl TableScope {
    /// `user`'s rows, and no machines.
    #[must_use]
    pub fn new(user: Username) -> Self {
        Self {
            user,
            machines: Vec::new(),
        }
    }
}

/// Table queries over the whitelisted tables: read-only, for the API's lists and admin pages.
#[async_trait]
pub trait TableStore: Send + Sync + fmt::Debug {
    /// Runs a table query (see [`crate::tables`]). `scope` restricts the rows to those its
    /// user may see (see [`TableScope`]); `None` is an admin's query, over every row.
    /// [`StoreError::InvalidQuery`] for an unknown table or column, a value of the wrong type,
    /// an operator the column does not take or a bad cursor.
    async fn query_table(
        &self,
        query: &TableQuery,
        scope: Option<&TableScope>,
    ) -> Result<TableResult, StoreError>;
}

#[async_trait]
impl TableStore for SqlStore {
    async fn query_table(
        &self,
        query: &TableQuery,
        scope: Option<&TableScope>,
    ) -> Result<TableResult, StoreError> {
        let plan = plan::plan(query, scope)?;
        let total = self
            .fetch_one(plan.count.text.clone(), &plan.count.binds)
            .await?
            .get_i64(0)?;
        let rows = self
            .fetch_all(plan.select.text.clone(), &plan.select.binds)
            .await?
            .iter()
            .map(|row| {
                plan.fetched
                    .iter()
                    .enumerate()
                    .map(|(i, column)| row.cell(i, column))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(plan.finish(rows, total))
    }
}
