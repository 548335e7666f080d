//! The audit log: who did what to what, from where, with what outcome. Append-only: the
//! database refuses updates and deletes of its rows. [`AuditStore`] appends; reading goes
//! through table queries ([`crate::TableStore`], table `audit`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::{Bind, SqlStore};
use crate::{StoreError, sql};

/// How an audited action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    /// It was done.
    Success,
    /// It was allowed but failed.
    Failure,
    /// It was refused (authentication or authorization).
    Denied,
}

impl AuditOutcome {
    /// The name stored in the database and used on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }

    pub(crate) const NAMES: [&'static str; 3] = ["success", "failure", "denied"];
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditOutcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Success, Self::Failure, Self::Denied]
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("unknown audit outcome {s:?}"))
    }
}

/// An entry to append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who did it: a username, or `system` for Berth itself.
    pub actor: String,
    /// What was done, as `noun.verb`: `user.create`, `workspace.start`, `auth.login`.
    pub action: String,
    /// What it was done to: a username, a workspace id, a template name.
    pub target: String,
    /// Where the request came from, when there was one.
    pub ip: Option<IpAddr>,
    /// Before/after values. The caller removes secrets before appending: the store keeps
    /// whatever it is given, forever.
    pub details: serde_json::Value,
    /// How it ended.
    pub outcome: AuditOutcome,
}

/// The audit log (`audit_log`), append-only.
#[async_trait]
pub trait AuditStore: Send + Sync + fmt::Debug {
    /// Appends an audit entry and returns its id.
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<i64, StoreError>;
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<i64, StoreError> {
        let row = self
            .fetch_one(
                sql::APPEND_AUDIT,
                &[
                    Bind::Time(entry.at),
                    Bind::text(&entry.actor),
                    Bind::text(&entry.action),
                    Bind::text(&entry.target),
                    Bind::OptText(entry.ip.map(|ip| ip.to_string())),
                    Bind::Text(entry.details.to_string()),
                    Bind::text(entry.outcome.as_str()),
                ],
            )
            .await?;
        row.get_i64("id")
    }
}
