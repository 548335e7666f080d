//! Start-up reconciliation: make the store and the engine agree after a crash or a kill.
//!
//! The store says what Berth meant to run, the engine what runs. For each managed container:
//! one the store knows is adopted (a live workspace becomes `running` again, or `stopped` if its
//! container stopped meanwhile); one the store does not know, and every pool container, is
//! removed (pools are filled afresh). For each live workspace whose container is gone, the
//! record becomes `stopped` (or `failed` if it never got a container).

use std::collections::{BTreeMap, HashMap};

use berth_runtime::ContainerState;
use berth_store::{StateUpdate, WorkspaceFilter, WorkspaceState};
use berth_types::WorkspaceId;

use crate::WorkspaceError;
use crate::workspaces::{INSTANCE_LABEL, POOL_LABEL, Workspaces};

/// What reconciliation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Live workspaces whose container still runs, adopted.
    pub adopted: Vec<WorkspaceId>,
    /// Workspaces recorded as stopped because their container stopped or vanished.
    pub stopped: Vec<WorkspaceId>,
    /// Containers removed: unknown to the store, pool leftovers, or ephemeral and stopped.
    pub removed: Vec<String>,
}

impl Workspaces {
    /// Reconciles store and engine; run once at start-up, before serving.
    pub async fn reconcile(&self) -> Result<ReconcileReport, WorkspaceError> {
        let runtime = &self.inner.runtime;
        let scope = BTreeMap::from([(
            INSTANCE_LABEL.to_owned(),
            self.inner.settings.instance.clone(),
        )]);
        let containers = runtime.list(&scope).await?;
        let workspaces = self.list(&WorkspaceFilter::default()).await?;
        let by_container: HashMap<&str, usize> = workspaces
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.container_id.as_deref().map(|c| (c, i)))
            .collect();
        let mut report = ReconcileReport::default();
        let mut seen = vec![false; workspaces.len()];
        let now = self.now();

        for container in &containers {
            let known = by_container.get(container.id.as_str()).copied();
            let Some(index) = known.filter(|_| !is_unclaimed_pool(container, &by_container)) else {
                runtime.remove(&container.id).await?;
                report.removed.push(container.name.clone());
                continue;
            };
            seen[index] = true;
            let workspace = &workspaces[index];
            let running = container.state == ContainerState::Running;
            let live = WorkspaceState::LIVE.contains(&workspace.state);
            match (live, running) {
                (true, true) => {
                    let update =
                        StateUpdate::to(WorkspaceState::Running, "running; adopted at start-up")
                            .with_container(container.id.as_str());
                    self.update(workspace.id, &update).await?;
                    self.touch_at(workspace.id, now.max(workspace.last_activity));
                    report.adopted.push(workspace.id);
                }
                (true, false) => {
                    if !workspace.persistent {
                        runtime.remove(&container.id).await?;
                        report.removed.push(container.name.clone());
                    }
                    let update = StateUpdate::to(
                        WorkspaceState::Stopped,
                        "container stopped while Berth was down",
                    );
                    self.update(workspace.id, &update).await?;
                    report.stopped.push(workspace.id);
                }
                (false, _) => {
                    // Recorded as stopped: the container must not run, and only a persistent
                    // workspace keeps one.
                    if workspace.persistent {
                        if running {
                            runtime
                                .stop(&container.id, self.inner.settings.stop_timeout)
                                .await?;
                        }
                    } else {
                        runtime.remove(&container.id).await?;
                        report.removed.push(container.name.clone());
                    }
                }
            }
        }

        for (index, workspace) in workspaces.iter().enumerate() {
            if seen[index] || !WorkspaceState::LIVE.contains(&workspace.state) {
                continue;
            }
            let (state, reason) = if workspace.container_id.is_some() {
                (
                    WorkspaceState::Stopped,
                    "container gone while Berth was down",
                )
            } else {
                (WorkspaceState::Failed, "interrupted while starting")
            };
            self.update(workspace.id, &StateUpdate::to(state, reason))
                .await?;
            report.stopped.push(workspace.id);
        }
        if !report.removed.is_empty() || !report.stopped.is_empty() || !report.adopted.is_empty() {
            tracing::info!(
                adopted = report.adopted.len(),
                stopped = report.stopped.len(),
                removed = report.removed.len(),
                "reconciled workspaces with the engine"
            );
        }
        Ok(report)
    }
}

/// A pool container no workspace has claimed (claimed ones are found by container id).
fn is_unclaimed_pool(
    container: &berth_runtime::ContainerInfo,
    by_container: &HashMap<&str, usize>,
) -> bool {
    container.labels.contains_key(POOL_LABEL) && !by_container.contains_key(container.id.as_str())
}
