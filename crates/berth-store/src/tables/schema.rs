//! The whitelist: which tables and columns a table query may touch, and their types.

use berth_types::TargetKind;

use crate::StoreError;
use crate::audit::AuditOutcome;
use crate::workspaces::WorkspaceState;

/// The type of a column, which decides how filter values are checked and bound and how stored
/// values are turned into JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A UUID, as a hyphenated lowercase string in JSON.
    Uuid,
    /// Free text.
    Text,
    /// Text from a fixed vocabulary.
    Enum(&'static [&'static str]),
    /// A timestamp, RFC 3339 in JSON (UTC, microseconds on output).
    Time,
    /// A boolean.
    Bool,
    /// A 64-bit integer.
    Int,
    /// A JSON document: returned, never filtered or sorted on.
    Json,
}

#[derive(Debug)]
pub(crate) struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
}

#[derive(Debug)]
pub(crate) struct Table {
    /// The name in queries.
    pub name: &'static str,
    /// The name in SQL.
    pub sql_name: &'static str,
    /// A unique, never-null column: the last sort key of every query.
    pub key: &'static str,
    /// The column a user's scope restricts (the owner of a row).
    pub scope: &'static str,
    /// The order of a query that gives none: (column, descending).
    pub default_sort: &'static [(&'static str, bool)],
    pub columns: &'static [Column],
}

impl Table {
    pub(crate) fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The column named `name`, or the error a table query gets for an unknown one.
    pub(crate) fn lookup(&self, name: &str) -> Result<&'static Column, StoreError> {
        self.column(name).ok_or_else(|| {
            StoreError::InvalidQuery(format!(
                "unknown column {name:?} in table {:?}; columns: {}",
                self.name,
                self.column_names()
            ))
        })
    }

    pub(crate) fn column_names(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: false,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: true,
    }
}

static TABLES: [Table; 4] = [
    Table {
        name: "workspaces",
        sql_name: "workspaces",
        key: "id",
        scope: "owner",
        default_sort: &[("created_at", true)],
        columns: &[
            col("id", Kind::Uuid),
            col("owner", Kind::Text),
            col("template", Kind::Text),
            col("state", Kind::Enum(&WorkspaceState::NAMES)),
            opt("container_id", Kind::Text),
            col("persistent", Kind::Bool),
            col("network", Kind::Text),
            col("created_at", Kind::Time),
            opt("started_at", Kind::Time),
            col("last_activity", Kind::Time),
            opt("expires_at", Kind::Time),
            col("state_reason", Kind::Text),
        ],
    },
    Table {
        name: "clients",
        sql_name: "clients",
        key: "client_id",
        scope: "username",
        default_sort: &[("last_seen", true)],
        columns: &[
            col("client_id", Kind::Uuid),
            col("username", Kind::Text),
            col("hostname", Kind::Text),
            col("version", Kind::Text),
            col("first_seen", Kind::Time),
            col("last_seen", Kind::Time),
            col("last_ip", Kind::Text),
            col("local_workspaces", Kind::Json),
        ],
    },
    Table {
        name: "audit",
        sql_name: "audit_log",
        key: "id",
        scope: "actor",
        default_sort: &[("id", true)],
        columns: &[
            col("id", Kind::Int),
            col("at", Kind::Time),
            col("actor", Kind::Text),
            col("action", Kind::Text),
            col("target", Kind::Text),
            opt("ip", Kind::Text),
            col("details", Kind::Json),
            col("outcome", Kind::Enum(&AuditOutcome::NAMES)),
        ],
    },
    Table {
        name: "recordings",
        sql_name: "recordings",
        key: "id",
        scope: "owner",
        default_sort: &[("started_at", true)],
        columns: &[
            col("id", Kind::Uuid),
            col("target_kind", Kind::Enum(&TargetKind::NAMES)),
            col("target_id", Kind::Text),
            // The same id for workspace recordings, null for others: the name table queries
            // used before recordings had targets (a generated column).
            opt("workspace_id", Kind::Text),
            col("owner", Kind::Text),
            col("username", Kind::Text),
            col("started_at", Kind::Time),
            opt("ended_at", Kind::Time),
            col("bytes", Kind::Int),
        ],
    },
];

pub(crate) fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

pub(crate) fn table_names() -> String {
    TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_consistent() {
        for t in &TABLES {
            let key = t.column(t.key).unwrap();
            assert!(!key.nullable, "{}: the key must never be null", t.name);
            assert!(t.column(t.scope).is_some(), "{}: scope column", t.name);
            for (c, _) in t.default_sort {
                assert!(t.column(c).is_some(), "{}: default sort {c}", t.name);
            }
            assert_eq!(table(t.name).map(|x| x.name), Some(t.name));
        }
    }
}
