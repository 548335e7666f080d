//! The whitelist: which tables and columns a table query may touch, and their types.

use berth_types::operation::OperationStatus;
use berth_types::{EnrollmentStatus, HealthStatus, TargetKind};

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
    /// A list of tags (`a-z 0-9 _ . -`; machine ids are such labels too), a JSON array of
    /// strings. Stored as text with a comma before and after each tag (`,web,eu,`; empty text
    /// for none), so `has` is one `LIKE` and sorting is text order of that form. Filtered with
    /// `has` only.
    Tags,
}

#[derive(Debug)]
pub(crate) struct Column {
    /// The name in queries and in the rows returned.
    pub name: &'static str,
    /// The name in SQL: the same unless the query name is an SQL keyword (`user`, `type`).
    pub sql: &'static str,
    pub kind: Kind,
    pub nullable: bool,
}

impl Column {
    /// Stored under another name.
    const fn stored_as(self, sql: &'static str) -> Self {
        Self { sql, ..self }
    }
}

/// Which rows a scoped query (a user who is not an admin) may see.
#[derive(Debug)]
pub(crate) enum Scope {
    /// Rows whose owner column holds the user's name.
    Owner(&'static str),
    /// Machines that one of the user's selectors picks: by the id column or the tags column
    /// (query names).
    Selectors {
        id: &'static str,
        tags: &'static str,
    },
}

#[derive(Debug)]
pub(crate) struct Table {
    /// The name in queries.
    pub name: &'static str,
    /// The name in SQL.
    pub sql_name: &'static str,
    /// A unique, never-null column: the last sort key of every query.
    pub key: &'static str,
    /// What a user's scope restricts.
    pub scope: Scope,
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
        sql: name,
        kind,
        nullable: false,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        sql: name,
        kind,
        nullable: true,
    }
}

static TABLES: [Table; 6] = [
    Table {
        name: "workspaces",
        sql_name: "workspaces",
        key: "id",
        scope: Scope::Owner("owner"),
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
        scope: Scope::Owner("username"),
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
        scope: Scope::Owner("actor"),
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
        scope: Scope::Owner("owner"),
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
    Table {
        name: "machines",
        sql_name: "machines",
        key: "id",
        scope: Scope::Selectors {
            id: "id",
            tags: "tags",
        },
        default_sort: &[("id", false)],
        columns: &[
            col("id", Kind::Text),
            col("name", Kind::Text),
            col("host", Kind::Text),
            col("port", Kind::Int),
            col("user", Kind::Text).stored_as("ssh_user"),
            opt("type", Kind::Text).stored_as("kind"),
            col("tags", Kind::Tags),
            col("enrollment", Kind::Enum(&EnrollmentStatus::NAMES)),
            col("health", Kind::Enum(&HealthStatus::NAMES)),
            opt("latency_ms", Kind::Int),
            opt("last_seen", Kind::Time),
            col("consecutive_failures", Kind::Int),
            opt("verified_at", Kind::Time),
            opt("checked_at", Kind::Time),
            opt("client_id", Kind::Text),
            opt("proxy_jump", Kind::Text),
            col("description", Kind::Text),
            col("commit", Kind::Text).stored_as("commit_id"),
            col("created_at", Kind::Time),
            col("updated_at", Kind::Time),
        ],
    },
    Table {
        name: "operations",
        sql_name: "operations",
        key: "id",
        scope: Scope::Owner("user"),
        default_sort: &[("created_at", true)],
        columns: &[
            col("id", Kind::Uuid),
            col("script", Kind::Text),
            col("user", Kind::Text).stored_as("username"),
            col("status", Kind::Enum(&OperationStatus::NAMES)),
            col("commit", Kind::Text).stored_as("commit_id"),
            col("concurrency", Kind::Int),
            col("timeout_seconds", Kind::Int),
            opt("rerun_of", Kind::Uuid),
            col("created_at", Kind::Time),
            opt("finished_at", Kind::Time),
            // The machine ids, in the order given: `has` finds the operations that ran on one.
            col("machines", Kind::Tags),
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
            match t.scope {
                Scope::Owner(owner) => {
                    assert_eq!(
                        t.column(owner).map(|c| c.kind),
                        Some(Kind::Text),
                        "{}",
                        t.name
                    );
                }
                Scope::Selectors { id, tags } => {
                    assert_eq!(t.column(id).map(|c| c.kind), Some(Kind::Text), "{}", t.name);
                    assert_eq!(
                        t.column(tags).map(|c| c.kind),
                        Some(Kind::Tags),
                        "{}",
                        t.name
                    );
                }
            }
            for c in t.columns {
                let plain = |s: &str| s.chars().all(|c| c.is_ascii_lowercase() || c == '_');
                assert!(plain(c.name) && plain(c.sql), "{}.{}", t.name, c.name);
                // SQL keywords are stored under another name, never spliced as they are.
                assert!(!["user", "type", "commit", "key", "trigger"].contains(&c.sql));
            }
            for (c, _) in t.default_sort {
                assert!(t.column(c).is_some(), "{}: default sort {c}", t.name);
            }
            assert_eq!(table(t.name).map(|x| x.name), Some(t.name));
        }
    }
}
