//! Table queries: the small query language behind `POST /api/v1/tables/query`.
//!
//! A query names a table and columns from a whitelist: `workspaces`, `clients` and `audit`
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

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::StoreError;

/// Rows per page when the query gives no limit.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page a query may ask for.
pub const MAX_LIMIT: u32 = 500;

/// One page request over one table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableQuery {
    /// `workspaces`, `clients` or `audit`.
    pub table: String,
    /// The columns to return; empty means all of them.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Conditions a row must all meet.
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Sort keys, most significant first; the table's unique key is appended as a tie-breaker.
    /// Empty means the table's default order.
    #[serde(default)]
    pub sort: Vec<SortKey>,
    /// Rows per page, 1 to 500; 50 when absent.
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page, with the same table and sort.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `column op value`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// A filterable column of the table.
    pub column: String,
    /// The comparison.
    pub op: FilterOp,
    /// A JSON value of the column's type (an array of them for `in`); `null` with `eq` matches
    /// rows where the column is empty.
    pub value: Value,
}

/// A filter comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FilterOp {
    /// Equal (`null` matches empty columns).
    Eq,
    /// Equal to one of the values of an array.
    In,
    /// Greater than.
    Gt,
    /// Less than.
    Lt,
    /// Greater than or equal.
    Gte,
    /// Less than or equal.
    Lte,
}

/// One sort key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SortKey {
    /// A sortable column of the table.
    pub column: String,
    /// Descending; empty (`null`) values sort first ascending and last descending.
    #[serde(default)]
    pub desc: bool,
}

/// One page of rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TableResult {
    /// The rows, each an object of the requested columns.
    pub rows: Vec<Map<String, Value>>,
    /// How many rows match the filters (and scope), over all pages.
    pub total: u64,
    /// Pass it as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

pub(crate) fn invalid(message: String) -> StoreError {
    StoreError::InvalidQuery(message)
}
