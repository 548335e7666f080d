//! The audit log as typed events: every entry Berth writes is an [`AuditEvent`] of a known
//! [`AuditAction`], by a known [`Actor`], appended through the one [`Audit`] service. The
//! server's handlers, the terminal service and the background sweeps all write through it, so
//! an action's name is spelled once and `(berth)` marks what Berth did by itself.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use berth_store::{AuditOutcome, NewAuditEntry, Store};
use berth_types::Username;
use serde_json::Value;
use time::OffsetDateTime;

/// The actor of what Berth does by itself (sweeps, pools, retention): not a valid username,
/// so it can never be mistaken for an account.
pub const SYSTEM_ACTOR: &str = "(berth)";
/// The actor of a request that named no valid account (a failed login).
pub const ANONYMOUS_ACTOR: &str = "anonymous";

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A user (the main.yaml admin included).
    User(Username),
    /// Nobody that could be identified.
    Anonymous,
    /// Berth itself: a sweep, a pool, retention.
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(name) => f.write_str(name.as_str()),
            Self::Anonymous => f.write_str(ANONYMOUS_ACTOR),
            Self::System => f.write_str(SYSTEM_ACTOR),
        }
    }
}

impl From<&Username> for Actor {
    fn from(name: &Username) -> Self {
        Self::User(name.clone())
    }
}

impl From<Username> for Actor {
    fn from(name: Username) -> Self {
        Self::User(name)
    }
}

impl Actor {
    /// The account named `name`, or [`Actor::Anonymous`] when it is no valid username.
    #[must_use]
    pub fn named(name: &str) -> Self {
        Username::new(name).map_or(Self::Anonymous, Self::User)
    }
}

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// What was done, as `noun.verb`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($(#[$doc])* $variant,)*
        }

        impl AuditAction {
            /// Every action.
            pub const ALL: &'static [AuditAction] = &[$(Self::$variant,)*];

            /// The name stored in the audit log.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

actions! {
    /// A login attempt (success, denied).
    Login => "auth.login",
    /// A client token was minted.
    TokenCreate => "token.create",
    /// A user's client tokens were reset to one new token.
    TokenReset => "token.reset",
    /// A client token was revoked.
    TokenRevoke => "token.revoke",
    /// A user was added.
    UserCreate => "user.create",
    /// A user was changed or renamed.
    UserUpdate => "user.update",
    /// A user was deleted, with everything they had.
    UserDelete => "user.delete",
    /// An SSH public key was added to a user.
    SshKeyAdd => "user.key.add",
    /// An SSH public key of a user was removed.
    SshKeyRemove => "user.key.remove",
    /// A template was added.
    TemplateCreate => "template.create",
    /// A template was changed or renamed.
    TemplateUpdate => "template.update",
    /// A template was removed.
    TemplateDelete => "template.delete",
    /// A workspace was started.
    WorkspaceStart => "workspace.start",
    /// A workspace was stopped (by someone, or by the idle sweep).
    WorkspaceStop => "workspace.stop",
    /// A stopped workspace was started again.
    WorkspaceRestart => "workspace.restart",
    /// A workspace was deleted.
    WorkspaceDelete => "workspace.delete",
    /// A workspace reached its TTL and was removed.
    WorkspaceExpire => "workspace.expire",
    /// A member was added to a shared workspace (or got another role).
    MemberAdd => "workspace.member.add",
    /// A member was removed from a shared workspace.
    MemberRemove => "workspace.member.remove",
    /// A template's pool was topped up with pre-started containers.
    PoolFill => "pool.fill",
    /// A terminal was attached (or refused).
    TerminalAttach => "terminal.attach",
    /// A terminal was detached.
    TerminalDetach => "terminal.detach",
    /// A recording was deleted by an admin.
    RecordingDelete => "recording.delete",
    /// Recordings past the retention limits were deleted.
    RecordingExpire => "recording.expire",
    /// The fleet inventory was synced from its repository (applied, unchanged or failed).
    FleetSync => "fleet.sync",
    /// A machine's enrollment was checked on request.
    MachineVerify => "machine.verify",
    /// An admin trusted a machine's host key.
    MachineTrust => "machine.trust",
    /// A machine's health changed (online, degraded, offline).
    MachineHealth => "machine.health",
    /// A machine's enrollment changed (enrolled, mismatch, host key changed, ...).
    MachineEnrollment => "machine.enrollment",
    /// An operation was started (or rerun) on machines.
    OperationStart => "operation.start",
    /// Someone asked an operation to stop.
    OperationStop => "operation.stop",
    /// An operation ended (succeeded, failed, cancelled, or interrupted by a restart).
    OperationEnd => "operation.end",
    /// A cluster was asked for.
    ClusterCreate => "cluster.create",
    /// A cluster's API answered and its kubeconfig was stored.
    ClusterRunning => "cluster.running",
    /// A cluster failed (the provider's reason in the details).
    ClusterFail => "cluster.fail",
    /// A cluster's TTL was extended.
    ClusterExtend => "cluster.extend",
    /// Someone downloaded a cluster's kubeconfig (never its content).
    ClusterKubeconfig => "cluster.kubeconfig",
    /// Someone deleted a cluster.
    ClusterDelete => "cluster.delete",
    /// A cluster reached its TTL and was deleted.
    ClusterExpire => "cluster.expire",
    /// An account signed itself up (main.yaml `registration`).
    UserRegister => "user.register",
    /// An admin made an invite code.
    InviteCreate => "invite.create",
    /// An admin withdrew an invite code.
    InviteDelete => "invite.delete",
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry being put together: who did what to what, from where, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an audit event does nothing until it is recorded"]
pub struct AuditEvent {
    actor: Actor,
    action: AuditAction,
    target: String,
    ip: Option<IpAddr>,
    details: Value,
    outcome: AuditOutcome,
    at: Option<OffsetDateTime>,
}

impl AuditEvent {
    /// A successful `action` by `actor` on `target`, now.
    pub fn new(actor: impl Into<Actor>, action: AuditAction, target: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            action,
            target: target.into(),
            ip: None,
            details: Value::Null,
            outcome: AuditOutcome::Success,
            at: None,
        }
    }

    /// What Berth did by itself.
    pub fn system(action: AuditAction, target: impl Into<String>) -> Self {
        Self::new(Actor::System, action, target)
    }

    /// Where the request came from; the unspecified address (no request) is left out.
    pub fn from_ip(mut self, ip: impl Into<Option<IpAddr>>) -> Self {
        self.ip = ip.into().filter(|ip| !ip.is_unspecified());
        self
    }

    /// Before/after values and reasons. Leave secrets out: the log keeps everything forever.
    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// How it ended (success unless said otherwise).
    pub fn outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// When it happened, when not now (a clock passed in).
    pub fn at(mut self, at: OffsetDateTime) -> Self {
        self.at = Some(at);
        self
    }

    /// The action.
    #[must_use]
    pub fn action(&self) -> AuditAction {
        self.action
    }

    /// Appends it to `audit`, logging a failure (see [`Audit::record`]).
    pub async fn record_to(self, audit: &Audit) {
        audit.record(self).await;
    }

    fn entry(&self) -> NewAuditEntry {
        NewAuditEntry {
            at: self.at.unwrap_or_else(OffsetDateTime::now_utc),
            actor: self.actor.to_string(),
            action: self.action.as_str().to_owned(),
            target: self.target.clone(),
            ip: self.ip,
            details: self.details.clone(),
            outcome: self.outcome,
        }
    }
}

/// The audit log. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Audit {
    store: Arc<dyn Store>,
}

impl Audit {
    /// The log in `store`.
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Appends `event`; a failure is returned, for callers that must not act unaudited (a
    /// terminal opens only once its attach is in the log).
    pub async fn append(&self, event: &AuditEvent) -> Result<i64, berth_store::StoreError> {
        self.store.append_audit(&event.entry()).await
    }

    /// Appends `event`; a failure is logged, not returned: the action it records is done.
    pub async fn record(&self, event: AuditEvent) {
        if let Err(err) = self.append(&event).await {
            tracing::error!(error = %err, action = %event.action, actor = %event.actor, target = %event.target, "could not write the audit entry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_have_unique_noun_verb_names() {
        let mut names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert!(names.iter().all(|n| {
            n.contains('.')
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
        }));
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "two actions share a name");
    }

    #[test]
    fn the_system_actor_is_no_username() {
        assert!(Username::new(SYSTEM_ACTOR).is_err());
        assert_eq!(Actor::System.to_string(), SYSTEM_ACTOR);
        let event = AuditEvent::system(AuditAction::PoolFill, "python")
            .from_ip(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let entry = event.entry();
        assert_eq!(
            (entry.actor.as_str(), entry.action.as_str(), entry.ip),
            ("(berth)", "pool.fill", None)
        );
    }
}
