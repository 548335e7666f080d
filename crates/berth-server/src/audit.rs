//! Audit entries: who did what to what, from where, with what outcome. Callers leave secrets
//! out of `details`; the store keeps whatever it is given, forever.

use std::net::IpAddr;

use berth_store::{AuditOutcome, NewAuditEntry, Store};
use serde_json::Value;
use time::OffsetDateTime;

/// An audit entry being put together.
#[derive(Debug)]
pub(crate) struct Audit(NewAuditEntry);

impl Audit {
    /// A successful `action` by `actor` on `target`, now.
    pub(crate) fn new(actor: &str, action: &str, target: impl Into<String>, ip: IpAddr) -> Self {
        Self(NewAuditEntry {
            at: OffsetDateTime::now_utc(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.into(),
            ip: (!ip.is_unspecified()).then_some(ip),
            details: Value::Null,
            outcome: AuditOutcome::Success,
        })
    }

    pub(crate) fn details(mut self, details: Value) -> Self {
        self.0.details = details;
        self
    }

    pub(crate) fn outcome(mut self, outcome: AuditOutcome) -> Self {
        self.0.outcome = outcome;
        self
    }

    /// Appends the entry; a failure is logged, not returned: the action it records is done.
    pub(crate) async fn record(self, store: &dyn Store) {
        if let Err(err) = store.append_audit(&self.0).await {
            tracing::error!(error = %err, action = %self.0.action, actor = %self.0.actor, target = %self.0.target, "could not write the audit entry");
        }
    }
}
