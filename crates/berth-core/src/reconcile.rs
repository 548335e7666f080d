//! Reconciliation: make the store and the engine agree after a crash, a kill, or engine events
//! missed while the event stream was down ([`crate::Workspaces::watch_engine`]), and for each
//! engine event while serving (one workspace at a time).
//!
//! The store says what the user last asked for, the engine what runs. Each workspace is settled
//! under its lifecycle lock (so a pass while serving never races a start or a stop), from the
//! row as it is then and the container as the engine inspects it then; [`decide`] is the whole
//! rulebook:
//!
//! - `running`, `starting` or `pending` with its container running: `running` (adopted).
//! - `running` whose container exited or vanished: `stopped`, like a stop (an ephemeral one
//!   loses the container).
//! - `starting` or `pending` whose container is not running: the start was interrupted:
//!   `stopped` if the workspace had a container before (a restart), `failed` if it never got one.
//!   A container the interrupted start made but never recorded is removed.
//! - `stopping`: the user's last request was stop, so the stop is finished: the container is
//!   stopped, removed unless the workspace is persistent (or past its TTL, which removes even a
//!   persistent one), and the row becomes `stopped` with the stop's own reason. Never adopted.
//! - `stopped` or `failed`: the container must not run; only a persistent workspace keeps one.
//!
//! At start-up, containers no row owns, and every pool container, are removed (pools are
//! filled afresh). A pass while serving leaves unclaimed pool containers alone: the pool in
//! memory owns them.

use std::collections::{BTreeMap, HashMap};

use berth_runtime::{ContainerId, ContainerInfo, ContainerState, RuntimeError};
use berth_store::{StateUpdate, Workspace, WorkspaceFilter, WorkspaceState};
use berth_types::WorkspaceId;
use time::OffsetDateTime;

use crate::WorkspaceError;
use crate::audit::{AuditAction, AuditEvent};
use crate::workspaces::{INSTANCE_LABEL, POOL_LABEL, WORKSPACE_LABEL, Workspaces};

/// What reconciliation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Workspaces whose container runs, adopted as `running` (live rows only).
    pub adopted: Vec<WorkspaceId>,
    /// Workspaces recorded as `stopped` or `failed`: their container stopped or vanished, their
    /// start was interrupted, or their interrupted stop was finished.
    pub stopped: Vec<WorkspaceId>,
    /// Containers removed: unknown to the store, pool leftovers, strays, or ephemeral and
    /// stopped.
    pub removed: Vec<String>,
    /// What the pass could not settle (an inspect or a removal the engine refused or did not
    /// answer in time), each logged as a warning; the next pass, or the next engine event of
    /// the workspace, tries again.
    pub unsettled: Vec<Unsettled>,
}

/// A workspace, or a container no workspace owns, that a pass could not settle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsettled {
    /// The workspace; `None` for a container no workspace owns.
    pub workspace: Option<WorkspaceId>,
    /// The container's name, for a container no workspace owns.
    pub container: Option<String>,
    /// Why.
    pub error: String,
}

impl ReconcileReport {
    fn is_empty(&self) -> bool {
        self.adopted.is_empty()
            && self.stopped.is_empty()
            && self.removed.is_empty()
            && self.unsettled.is_empty()
    }
}

/// When a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// At start-up, before serving: Berth was down.
    StartUp,
    /// While serving: after the engine's event stream was (re)connected (events may have been
    /// lost), or for one event.
    Resync,
}

impl Pass {
    fn adopted(self) -> &'static str {
        match self {
            Self::StartUp => "running; adopted at start-up",
            Self::Resync => "running; adopted by reconciliation",
        }
    }

    fn finished(self) -> &'static str {
        match self {
            Self::StartUp => "finished at start-up",
            Self::Resync => "finished by reconciliation",
        }
    }
}

/// The container a workspace's row is settled against, as the engine has it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    /// Running or stopped (a missing container is `None` instead of a `Found`).
    pub(crate) state: ContainerState,
    /// Whether the row records this container; an unrecorded one was made by a start that
    /// was interrupted before it could say so.
    pub(crate) recorded: bool,
}

/// What to do to settle one workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Stop the container: it runs and must not.
    pub(crate) stop: bool,
    /// Remove the container.
    pub(crate) remove: bool,
    /// The row's new state and reason; `None` leaves the row as it is.
    pub(crate) to: Option<(WorkspaceState, String)>,
}

impl Decision {
    const NOTHING: Self = Self {
        stop: false,
        remove: false,
        to: None,
    };

    fn to(state: WorkspaceState, reason: impl Into<String>) -> Self {
        Self {
            to: Some((state, reason.into())),
            ..Self::NOTHING
        }
    }
}

/// The rulebook (see the module's documentation): how to settle `row` given its container.
pub(crate) fn decide(
    row: &Workspace,
    container: Option<Found>,
    now: OffsetDateTime,
    pass: Pass,
) -> Decision {
    use WorkspaceState as S;
    let running = container.is_some_and(|c| c.state == ContainerState::Running);
    let recorded = container.is_some_and(|c| c.recorded);
    match row.state {
        S::Running | S::Starting | S::Pending if running => {
            if row.state == S::Running && recorded && pass == Pass::Resync {
                Decision::NOTHING
            } else {
                Decision::to(S::Running, pass.adopted())
            }
        }
        S::Running => {
            let reason = container_ended(container.map(|c| c.state), pass);
            Decision {
                remove: container.is_some() && (!row.persistent || !recorded),
                ..Decision::to(S::Stopped, reason)
            }
        }
        S::Starting | S::Pending => {
            let state = if row.container_id.is_some() {
                S::Stopped
            } else {
                S::Failed
            };
            Decision {
                remove: container.is_some() && (!row.persistent || !recorded),
                ..Decision::to(state, "interrupted while starting")
            }
        }
        S::Stopping => {
            let expired = row.expires_at.is_some_and(|at| at <= now);
            Decision {
                stop: running,
                remove: container.is_some() && (!row.persistent || !recorded || expired),
                ..Decision::to(
                    S::Stopped,
                    format!("{}; {}", row.state_reason, pass.finished()),
                )
            }
        }
        S::Stopped | S::Failed => match container {
            None => Decision::NOTHING,
            Some(found) if !row.persistent || !found.recorded => Decision {
                remove: true,
                ..Decision::NOTHING
            },
            Some(_) => Decision {
                stop: running,
                ..Decision::NOTHING
            },
        },
    }
}

/// Why a running workspace stopped when its container did (`None`: the container is gone). The
/// same words whether an engine event or a pass while serving saw it first.
fn container_ended(container: Option<ContainerState>, pass: Pass) -> String {
    let what = match container {
        Some(ContainerState::Stopped {
            exit_code: Some(code),
        }) => format!("container exited (code {code})"),
        Some(_) => "container stopped".to_owned(),
        None if pass == Pass::StartUp => "container gone".to_owned(),
        None => "container removed outside Berth".to_owned(),
    };
    match pass {
        Pass::StartUp => format!("{what} while Berth was down"),
        Pass::Resync => what,
    }
}

impl Workspaces {
    /// Reconciles store and engine; run once at start-up, before serving. A workspace it
    /// cannot settle is logged and reported in [`ReconcileReport::unsettled`], and the pass goes
    /// on; it fails only when it cannot list the engine's containers or the store's workspaces
    /// (the engine or the database is unreachable).
    pub async fn reconcile(&self) -> Result<ReconcileReport, WorkspaceError> {
        self.reconcile_pass(Pass::StartUp).await
    }

    pub(crate) async fn reconcile_pass(
        &self,
        pass: Pass,
    ) -> Result<ReconcileReport, WorkspaceError> {
        let runtime = &self.inner.runtime;
        let scope = BTreeMap::from([(
            INSTANCE_LABEL.to_owned(),
            self.inner.settings.instance.clone(),
        )]);
        let containers = runtime.list(&scope).await?;
        // At start-up every row; while serving the live ones (a stopped row changes only by a
        // request, which settles it itself) and, below, those a listed container names.
        let filter = match pass {
            Pass::StartUp => WorkspaceFilter::default(),
            Pass::Resync => WorkspaceFilter {
                states: WorkspaceState::LIVE.to_vec(),
                ..WorkspaceFilter::default()
            },
        };
        let workspaces = self.list(&filter).await?;
        let by_container: HashMap<&str, WorkspaceId> = workspaces
            .iter()
            .filter_map(|w| w.container_id.as_deref().map(|c| (c, w.id)))
            .collect();
        let mut report = ReconcileReport::default();
        // The rows, oldest first, then workspaces only a container names.
        let mut order: Vec<WorkspaceId> = workspaces.iter().map(|w| w.id).collect();
        let mut theirs: HashMap<WorkspaceId, Vec<&ContainerInfo>> = HashMap::new();
        for container in &containers {
            let owner = by_container
                .get(container.id.as_str())
                .copied()
                .or_else(|| {
                    container
                        .labels
                        .get(WORKSPACE_LABEL)
                        .and_then(|id| id.parse().ok())
                });
            match owner {
                Some(id) => {
                    order.push(id);
                    theirs.entry(id).or_default().push(container);
                }
                // Unclaimed pool containers are the pool's while serving (and so, then, is
                // the claimed one of a stopped persistent workspace: it carries no workspace
                // label, and only a request starts it again).
                None if pass == Pass::Resync && container.labels.contains_key(POOL_LABEL) => {}
                None => match runtime.remove(&container.id).await {
                    Ok(()) => report.removed.push(container.name.clone()),
                    Err(err) => {
                        tracing::warn!(container = %container.id, error = %err, "cannot remove a container no workspace owns");
                        report.unsettled.push(Unsettled {
                            workspace: None,
                            container: Some(container.name.clone()),
                            error: err.to_string(),
                        });
                    }
                },
            }
        }
        // One workspace that cannot be settled does not keep the others unsettled.
        let mut settled = std::collections::HashSet::new();
        for id in order {
            if !settled.insert(id) {
                continue;
            }
            let containers = theirs.remove(&id).unwrap_or_default();
            if let Err(err) = self.settle(id, &containers, pass, &mut report).await {
                tracing::warn!(workspace = %id, error = %err, "cannot settle a workspace with the engine");
                report.unsettled.push(Unsettled {
                    workspace: Some(id),
                    container: None,
                    error: err.to_string(),
                });
            }
        }
        if !report.is_empty() {
            tracing::info!(
                adopted = report.adopted.len(),
                stopped = report.stopped.len(),
                removed = report.removed.len(),
                unsettled = report.unsettled.len(),
                ?pass,
                "reconciled workspaces with the engine"
            );
        }
        Ok(report)
    }

    /// Settles one workspace under its lifecycle lock, from its row and containers as they
    /// are once the lock is held.
    pub(crate) async fn settle(
        &self,
        id: WorkspaceId,
        listed: &[&ContainerInfo],
        pass: Pass,
        report: &mut ReconcileReport,
    ) -> Result<(), WorkspaceError> {
        let op_lock = self.op_lock(id);
        let _guard = op_lock.lock().await;
        self.settle_locked(id, listed, pass, report).await
    }

    /// [`Self::settle`] for a caller that holds the workspace's lifecycle lock.
    pub(crate) async fn settle_locked(
        &self,
        id: WorkspaceId,
        listed: &[&ContainerInfo],
        pass: Pass,
        report: &mut ReconcileReport,
    ) -> Result<(), WorkspaceError> {
        let runtime = &self.inner.runtime;
        let row = match self.get(id).await {
            Ok(row) => row,
            Err(WorkspaceError::NotFound) => {
                // No row: its containers are leftovers of a deleted workspace.
                for container in listed {
                    runtime.remove(&container.id).await?;
                    report.removed.push(container.name.clone());
                }
                crate::workspaces::lock(&self.inner.op_locks).remove(&id);
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        // The recorded container if the engine has it; else, for an interrupted start, the
        // container it made without recording it. Any other is a stray.
        let recorded = row.container_id.as_deref();
        let mut candidates: Vec<(ContainerId, String, bool)> = listed
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    c.name.clone(),
                    Some(c.id.as_str()) == recorded,
                )
            })
            .collect();
        if let Some(recorded) = recorded
            && !candidates.iter().any(|(_, _, own)| *own)
        {
            // Listed before the lock: a start may have recorded a container since.
            candidates.push((ContainerId::new(recorded), String::new(), true));
        }
        candidates.sort_by_key(|(_, _, own)| !own);
        let mut found: Option<(ContainerId, String, Found)> = None;
        for (container, name, own) in candidates {
            let state = runtime.inspect(&container).await?;
            if state == ContainerState::Missing {
                continue;
            }
            let may_be_the_one = own
                || matches!(
                    row.state,
                    WorkspaceState::Starting | WorkspaceState::Pending
                );
            if found.is_none() && may_be_the_one {
                let found_state = Found {
                    state,
                    recorded: own,
                };
                found = Some((container, name, found_state));
            } else {
                runtime.remove(&container).await?;
                report.removed.push(name);
            }
        }

        let now = self.now();
        let decision = decide(&row, found.as_ref().map(|(_, _, f)| *f), now, pass);
        if let Some((container, name, _)) = &found {
            if decision.stop {
                match runtime
                    .stop(container, self.inner.settings.stop_timeout)
                    .await
                {
                    Ok(()) | Err(RuntimeError::ContainerMissing { .. }) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            if decision.remove {
                runtime.remove(container).await?;
                if !name.is_empty() {
                    report.removed.push(name.clone());
                }
            }
        }
        let Some((state, reason)) = decision.to else {
            return Ok(());
        };
        let mut update = StateUpdate::to(state, reason.clone());
        if state == WorkspaceState::Running {
            if let Some((container, _, _)) = &found {
                update = update.with_container(container.as_str());
            }
            if row.state != WorkspaceState::Running {
                update = update.started(now);
            }
            self.update(id, &update).await?;
            self.touch_at(id, now.max(row.last_activity));
            report.adopted.push(id);
        } else {
            self.forget_live(id).await;
            self.update(id, &update).await?;
            self.audit_settled(&row, state, &reason, now).await;
            report.stopped.push(id);
        }
        Ok(())
    }

    /// A workspace Berth stopped (or failed) on its own to match the engine, in the audit log
    /// as Berth's act with the reason.
    pub(crate) async fn audit_settled(
        &self,
        row: &Workspace,
        state: WorkspaceState,
        reason: &str,
        now: OffsetDateTime,
    ) {
        AuditEvent::system(AuditAction::WorkspaceStop, row.id.to_string())
            .at(now)
            .details(serde_json::json!({
                "owner": row.owner,
                "template": row.template,
                "state": state.as_str(),
                "reason": reason,
            }))
            .record_to(&self.inner.audit)
            .await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test: a panic is the failure report

    use super::*;
    use WorkspaceState as S;

    fn row(state: S, container: bool, persistent: bool) -> Workspace {
        let now = OffsetDateTime::UNIX_EPOCH;
        Workspace {
            id: WorkspaceId::random(),
            owner: berth_types::Username::new("ivy").unwrap(),
            template: "base".into(),
            state,
            container_id: container.then(|| "c1".to_owned()),
            persistent,
            network: "none".into(),
            created_at: now,
            started_at: None,
            last_activity: now,
            expires_at: None,
            state_reason: "stopped by ivy".into(),
        }
    }

    const RUNNING: Option<Found> = Some(Found {
        state: ContainerState::Running,
        recorded: true,
    });
    const EXITED: Option<Found> = Some(Found {
        state: ContainerState::Stopped {
            exit_code: Some(137),
        },
        recorded: true,
    });
    const UNRECORDED_RUNNING: Option<Found> = Some(Found {
        state: ContainerState::Running,
        recorded: false,
    });
    const UNRECORDED_CREATED: Option<Found> = Some(Found {
        state: ContainerState::Stopped { exit_code: None },
        recorded: false,
    });

    fn at_start(row: &Workspace, container: Option<Found>) -> Decision {
        decide(row, container, OffsetDateTime::UNIX_EPOCH, Pass::StartUp)
    }

    fn stopped(reason: &str, stop: bool, remove: bool) -> Decision {
        Decision {
            stop,
            remove,
            to: Some((S::Stopped, reason.to_owned())),
        }
    }

    #[test]
    fn a_stopping_row_is_stopped_never_adopted() {
        let reason = "stopped by ivy; finished at start-up";
        // Ephemeral: stopped and removed, whether the container still runs, exited or is gone.
        let ephemeral = row(S::Stopping, true, false);
        assert_eq!(at_start(&ephemeral, RUNNING), stopped(reason, true, true));
        assert_eq!(at_start(&ephemeral, EXITED), stopped(reason, false, true));
        assert_eq!(at_start(&ephemeral, None), stopped(reason, false, false));
        // Persistent: stopped, the container kept.
        let persistent = row(S::Stopping, true, true);
        assert_eq!(at_start(&persistent, RUNNING), stopped(reason, true, false));
        assert_eq!(at_start(&persistent, EXITED), stopped(reason, false, false));
        // Past its TTL the stop was an expiry, which removes even a persistent container.
        let mut expired = row(S::Stopping, true, true);
        expired.expires_at = Some(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(at_start(&expired, RUNNING), stopped(reason, true, true));
        // The same while serving, with its own wording.
        assert_eq!(
            decide(
                &ephemeral,
                RUNNING,
                OffsetDateTime::UNIX_EPOCH,
                Pass::Resync
            ),
            stopped("stopped by ivy; finished by reconciliation", true, true)
        );
    }

    #[test]
    fn a_running_row_is_adopted_or_stopped_as_its_container_is() {
        let ephemeral = row(S::Running, true, false);
        assert_eq!(
            at_start(&ephemeral, RUNNING),
            Decision::to(S::Running, "running; adopted at start-up")
        );
        assert_eq!(
            at_start(&ephemeral, EXITED),
            stopped(
                "container exited (code 137) while Berth was down",
                false,
                true
            )
        );
        assert_eq!(
            at_start(&ephemeral, None),
            stopped("container gone while Berth was down", false, false)
        );
        let persistent = row(S::Running, true, true);
        assert_eq!(
            at_start(&persistent, EXITED),
            stopped(
                "container exited (code 137) while Berth was down",
                false,
                false
            )
        );
        // While serving, a running row whose container runs needs nothing; the reasons are
        // those of the engine's events.
        let pass = Pass::Resync;
        let epoch = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(decide(&ephemeral, RUNNING, epoch, pass), Decision::NOTHING);
        assert_eq!(
            decide(&ephemeral, EXITED, epoch, pass),
            stopped("container exited (code 137)", false, true)
        );
        assert_eq!(
            decide(&ephemeral, None, epoch, pass),
            stopped("container removed outside Berth", false, false)
        );
    }

    #[test]
    fn an_interrupted_start_is_finished_when_its_container_runs_and_undone_otherwise() {
        // The container started but the row never said so: adopted.
        let new = row(S::Starting, false, false);
        assert_eq!(
            at_start(&new, UNRECORDED_RUNNING),
            Decision::to(S::Running, "running; adopted at start-up")
        );
        // Created, never started: removed, and the workspace never got a container.
        assert_eq!(
            at_start(&new, UNRECORDED_CREATED),
            Decision {
                remove: true,
                ..Decision::to(S::Failed, "interrupted while starting")
            }
        );
        assert_eq!(
            at_start(&new, None),
            Decision::to(S::Failed, "interrupted while starting")
        );
        // A persistent restart interrupted before its container ran keeps the container.
        let restart = row(S::Starting, true, true);
        assert_eq!(
            at_start(&restart, EXITED),
            Decision::to(S::Stopped, "interrupted while starting")
        );
        assert_eq!(
            at_start(&restart, RUNNING),
            Decision::to(S::Running, "running; adopted at start-up")
        );
        // An ephemeral restart's new, unrecorded container is removed.
        let again = row(S::Starting, true, false);
        assert_eq!(
            at_start(&again, UNRECORDED_CREATED),
            Decision {
                remove: true,
                ..Decision::to(S::Stopped, "interrupted while starting")
            }
        );
    }

    #[test]
    fn a_stopped_row_keeps_only_a_persistent_stopped_container() {
        for state in [S::Stopped, S::Failed] {
            let ephemeral = row(state, true, false);
            for container in [RUNNING, EXITED] {
                assert_eq!(
                    at_start(&ephemeral, container),
                    Decision {
                        remove: true,
                        ..Decision::NOTHING
                    }
                );
            }
            assert_eq!(at_start(&ephemeral, None), Decision::NOTHING);
            let persistent = row(state, true, true);
            assert_eq!(
                at_start(&persistent, RUNNING),
                Decision {
                    stop: true,
                    ..Decision::NOTHING
                }
            );
            assert_eq!(at_start(&persistent, EXITED), Decision::NOTHING);
        }
    }
}
