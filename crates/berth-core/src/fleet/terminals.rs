//! [`MachineTerminals`], the terminal source of machine targets: a login shell on a PTY over
//! SSH, as the machine's inventory user, through the fleet's SSH client (host keys checked,
//! jump hosts followed). Only `enrolled` machines open; only admins and the users whose
//! users.yaml `machines:` selectors match a machine see it, everyone else is answered as for a
//! machine that does not exist.
//!
//! Each terminal has an SSH connection of its own, held as long as the session lives: closing
//! the session (a page closed, a revocation) hangs the shell up and closes the connection.

use std::sync::Arc;

use async_trait::async_trait;
use berth_fleet::EnrollmentStatus;
use berth_ssh::SshError;
use berth_store::MachineRecord;
use berth_terminal::{
    Caller, DEFAULT_TERM, Grant, OpenError, Opened, SessionRole, TargetKind, TerminalSource,
    TerminalTarget, TtySize, Unavailability,
};
use berth_types::fleet::MachineSelector;
use berth_types::{MachineId, Role, Username};

use super::{Fleet, FleetError};
use crate::LiveConfig;

/// Who may reach which machines: the `machines:` selectors of a user's users.yaml entry.
pub trait MachineAccess: Send + Sync + std::fmt::Debug {
    /// The selectors of `user` (none for a user who has none, or is not in users.yaml).
    fn selectors(&self, user: &Username) -> Vec<MachineSelector>;
}

impl MachineAccess for LiveConfig {
    fn selectors(&self, user: &Username) -> Vec<MachineSelector> {
        self.current()
            .user(user.as_str())
            .map(|u| u.machines.clone())
            .unwrap_or_default()
    }
}

/// Whether a caller of account `role` with `selectors` may reach machine `id` with `tags`:
/// admins reach every machine, users those a selector matches.
#[must_use]
pub fn may_reach(
    role: Role,
    selectors: &[MachineSelector],
    id: &MachineId,
    tags: &[String],
) -> bool {
    role == Role::Admin || selectors.iter().any(|s| s.matches(id, tags))
}

/// The terminal source of machine targets. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MachineTerminals {
    fleet: Fleet,
    access: Arc<dyn MachineAccess>,
}

impl MachineTerminals {
    /// The source over `fleet`'s machines, open to the users `access` lets reach them.
    #[must_use]
    pub fn new(fleet: Fleet, access: Arc<dyn MachineAccess>) -> Self {
        Self { fleet, access }
    }

    async fn record(&self, id: &MachineId) -> Result<MachineRecord, OpenError> {
        self.fleet.machine(id).await.map_err(fleet_error)
    }
}

fn machine_of(target: &TerminalTarget) -> Result<&MachineId, OpenError> {
    match target {
        TerminalTarget::Machine(id) => Ok(id),
        TerminalTarget::Workspace(_) => Err(OpenError::NotFound(TargetKind::Machine)),
    }
}

fn fleet_error(err: FleetError) -> OpenError {
    match err {
        FleetError::NotFound(_) => OpenError::NotFound(TargetKind::Machine),
        FleetError::Invalid(m) | FleetError::Unreachable(m) => {
            OpenError::unavailable(Unavailability::Unreachable, m)
        }
        FleetError::HostKey(m) => OpenError::unavailable(Unavailability::HostKey, m),
        other => OpenError::Failed(Box::new(other)),
    }
}

/// An SSH failure as the terminal seam reports it: each says what to do about it. The
/// detail (addresses, jump hosts, the fleet's key file) goes to the log, not to the user:
/// a machine's user need not learn the fleet's insides.
#[must_use]
pub fn ssh_open_error(err: &SshError) -> OpenError {
    let reason = match err {
        SshError::Unreachable { .. } | SshError::Protocol { .. } | SshError::Closed { .. } => {
            Unavailability::Unreachable
        }
        SshError::AuthFailed { .. } | SshError::ClientKey { .. } => Unavailability::Auth,
        SshError::HostKeyUnknown { .. }
        | SshError::HostKeyChanged { .. }
        | SshError::HostKeyRevoked { .. }
        | SshError::HostKeys(_) => Unavailability::HostKey,
    };
    tracing::warn!(error = %err, "a machine terminal could not open");
    let message = match reason {
        Unavailability::HostKey => {
            "the machine's host key is not the one Berth trusts; an admin checks it on the \
             fleet page (berth fleet verify, berth fleet trust)"
        }
        Unavailability::Auth => {
            "Berth could not log in to the machine; an admin finds why in Berth's log"
        }
        _ => "the machine cannot be reached now; an admin finds why in Berth's log",
    };
    OpenError::unavailable(reason, message)
}

/// Why a machine of this enrollment has no terminal; `None` when it is enrolled.
fn not_enrolled(record: &MachineRecord) -> Option<(Unavailability, String)> {
    (record.enrollment != EnrollmentStatus::Enrolled).then(|| {
        (
            Unavailability::NotEnrolled,
            format!(
                "machine {} is not enrolled ({}): terminals open only on enrolled machines; \
                 an admin verifies it on the fleet page or with `berth fleet verify {}`",
                record.spec.id, record.enrollment, record.spec.id
            ),
        )
    })
}

#[async_trait]
impl TerminalSource for MachineTerminals {
    fn kind(&self) -> TargetKind {
        TargetKind::Machine
    }

    async fn authorize(
        &self,
        target: &TerminalTarget,
        caller: &Caller,
    ) -> Result<Option<Grant>, OpenError> {
        let id = machine_of(target)?;
        let record = self.record(id).await?;
        let selectors = if caller.role == Role::Admin {
            Vec::new()
        } else {
            self.access.selectors(&caller.username)
        };
        if !may_reach(caller.role, &selectors, id, &record.spec.tags) {
            return Ok(None);
        }
        let spec = &record.spec;
        Ok(Some(Grant {
            target: target.clone(),
            role: SessionRole::Owner,
            // Each user's sessions on a machine are theirs to replay (and admins').
            owner: caller.username.clone(),
            title: format!("{}@{}", spec.user, spec.id),
            label: format!("machine {} ({}@{})", spec.id, spec.user, spec.host),
            record: true,
            shared: false,
            unavailable: not_enrolled(&record),
        }))
    }

    async fn open(
        &self,
        grant: &Grant,
        _role: SessionRole,
        size: TtySize,
    ) -> Result<Opened, OpenError> {
        let id = machine_of(&grant.target)?;
        // Enrollment may have changed since the grant.
        let record = self.record(id).await?;
        if let Some((reason, message)) = not_enrolled(&record) {
            return Err(OpenError::unavailable(reason, message));
        }
        let inventory = self.fleet.inventory();
        let target = self.fleet.target(&inventory, id).map_err(fleet_error)?;
        let session = berth_ssh::connect(&target, &self.fleet.settings().connect)
            .await
            .map_err(|e| ssh_open_error(&e))?;
        let pty = berth_ssh::open_pty(&session, size, DEFAULT_TERM)
            .await
            .map_err(|e| ssh_open_error(&e))?;
        tracing::debug!(machine = %id, address = session.address(), "machine terminal opened");
        Ok(Opened {
            pty,
            activity: None,
            // The connection lives as long as the session.
            hold: Some(Box::new(session)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_reach_every_machine_users_what_their_selectors_match() {
        let web1 = MachineId::new("web-1").unwrap();
        let db1 = MachineId::new("db-1").unwrap();
        let tags = |t: &[&str]| t.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let selectors: Vec<MachineSelector> =
            vec!["web-1".parse().unwrap(), "tag:far".parse().unwrap()];
        assert!(may_reach(Role::User, &selectors, &web1, &[]));
        assert!(may_reach(Role::User, &selectors, &db1, &tags(&["far"])));
        assert!(!may_reach(Role::User, &selectors, &db1, &tags(&["near"])));
        assert!(!may_reach(Role::User, &[], &web1, &[]));
        assert!(may_reach(Role::Admin, &[], &db1, &[]));
    }

    #[test]
    fn ssh_failures_say_which_kind_they_are() {
        let cases = [
            (
                SshError::Unreachable {
                    address: "a:22".into(),
                    reason: berth_ssh::UnreachableReason::Refused,
                    attempts: 1,
                },
                Unavailability::Unreachable,
            ),
            (
                SshError::AuthFailed {
                    address: "a:22".into(),
                    user: "u".into(),
                    key: "k".into(),
                },
                Unavailability::Auth,
            ),
            (
                SshError::HostKeyChanged {
                    address: "a:22".into(),
                    expected: "x".into(),
                    got: "y".into(),
                },
                Unavailability::HostKey,
            ),
        ];
        for (err, want) in cases {
            match ssh_open_error(&err) {
                OpenError::Unavailable { reason, message } => {
                    assert_eq!(reason, want);
                    // What to do, without the addresses and keys of the fleet.
                    assert!(message.contains("admin"), "{message}");
                    assert!(!message.contains("a:22"), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
