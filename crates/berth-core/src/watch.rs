//! Following the engine while Berth runs: a workspace whose container dies or is removed behind
//! Berth's back (`docker kill`, `docker rm -f`, the OOM killer, its main process exiting)
//! becomes `stopped`, as if it had been stopped; a container that a killed Berth's request
//! created or started after reconciliation ran is settled the same way.
//!
//! Each event settles its workspace by the rules of reconciliation ([`crate::Workspaces`]'s
//! `settle`), under the workspace's lifecycle lock, from the row and the container as they are
//! once the lock is held, so the events of a stop or a start Berth is doing itself wait for it
//! to end and then find nothing to do. When the event stream breaks (the engine
//! restarts), it is reconnected with a growing delay, and each connection begins with a
//! reconciliation pass, so events missed meanwhile do not matter. A workspace that pass cannot
//! settle is a warning: the events are followed all the same (one stuck container must not
//! blind Berth to all the others); only a pass that cannot list counts as a lost connection.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use berth_runtime::{ContainerEvent, ContainerEventKind, ContainerInfo, ContainerState};
use berth_store::{WorkspaceFilter, WorkspaceState};
use berth_types::WorkspaceId;
use futures_util::StreamExt;
use tokio::task::JoinSet;

use crate::ReconcileReport;
use crate::WorkspaceError;
use crate::reconcile::Pass;
use crate::workspaces::{INSTANCE_LABEL, WORKSPACE_LABEL, Workspaces};

/// The first delay before reconnecting to a lost event stream; it doubles up to
/// [`RECONNECT_MAX`].
pub(crate) const RECONNECT_MIN: Duration = Duration::from_millis(500);
/// The longest delay between two attempts to reconnect.
pub(crate) const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// A connection that lasted this long was healthy: the next failure starts the delays afresh.
const HEALTHY: Duration = Duration::from_secs(30);
/// How far back a new connection asks the engine for events, against clock granularity.
const OVERLAP: Duration = Duration::from_secs(1);

impl Workspaces {
    /// Follows the engine's container events until `shutdown` completes: reconnects when the
    /// stream breaks, reconciles on every connection, and settles the workspace of every
    /// container that dies or is removed.
    pub async fn watch_engine(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let scope = BTreeMap::from([(
            INSTANCE_LABEL.to_owned(),
            self.inner.settings.instance.clone(),
        )]);
        let mut delay = RECONNECT_MIN;
        // Handlers wait for lifecycle locks; one waiting for a long stop must not hold up the
        // others. Dropped (aborted) at shutdown.
        let mut handlers = JoinSet::new();
        loop {
            // Asked before the pass, so what happens during it is replayed once connected.
            let since = SystemTime::now()
                .checked_sub(OVERLAP)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let mut events = self.inner.runtime.events(&scope, Some(since));
            let connected = Instant::now();
            let lost = match self.reconcile_pass(Pass::Resync).await {
                // The containers or the rows could not be listed; unsettled workspaces are
                // in the report, and logged.
                Err(err) => format!("cannot reconcile: {err}"),
                Ok(_) => loop {
                    tokio::select! {
                        () = &mut shutdown => return,
                        Some(_) = handlers.join_next(), if !handlers.is_empty() => {}
                        event = events.next() => match event {
                            Some(Ok(event)) => {
                                delay = RECONNECT_MIN;
                                let manager = self.clone();
                                handlers.spawn(async move {
                                    if let Err(err) = manager.on_container_event(&event).await {
                                        tracing::warn!(container = %event.id, error = %err, "could not settle a workspace after an engine event");
                                    }
                                });
                            }
                            Some(Err(err)) => break err.to_string(),
                            None => break "the engine closed the event stream".to_owned(),
                        },
                    }
                },
            };
            if connected.elapsed() >= HEALTHY {
                delay = RECONNECT_MIN;
            }
            tracing::warn!(reason = %lost, retry_in = ?delay, "lost the engine's events; reconnecting");
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(RECONNECT_MAX);
        }
    }

    /// Settles the workspace of a container the engine reports on, by the rules of
    /// reconciliation: a running workspace whose container died or vanished becomes `stopped`
    /// (an ephemeral one loses the container, as on a stop); a container created or started
    /// for a workspace that is not meant to run it (a request the engine finished after a
    /// killed Berth sent it) is stopped or removed. A pool container that died leaves its pool.
    pub(crate) async fn on_container_event(
        &self,
        event: &ContainerEvent,
    ) -> Result<(), WorkspaceError> {
        let labelled: Option<WorkspaceId> = event
            .labels
            .get(WORKSPACE_LABEL)
            .and_then(|id| id.parse().ok());
        let id = match labelled {
            Some(id) => id,
            // A claimed pool container carries no workspace label; its row names it.
            None => {
                let filter = WorkspaceFilter {
                    states: WorkspaceState::LIVE.to_vec(),
                    ..WorkspaceFilter::default()
                };
                let owner = self
                    .list(&filter)
                    .await?
                    .into_iter()
                    .find(|w| w.container_id.as_deref() == Some(event.id.as_str()));
                match owner {
                    Some(workspace) => workspace.id,
                    None => {
                        let ended = matches!(
                            event.kind,
                            ContainerEventKind::Died { .. } | ContainerEventKind::Destroyed
                        );
                        if ended && self.inner.pools.forget(&event.id) {
                            tracing::info!(container = %event.id, "a pool container died; the pool refills");
                            self.inner.runtime.remove(&event.id).await?;
                        }
                        return Ok(());
                    }
                }
            }
        };
        let container = ContainerInfo {
            id: event.id.clone(),
            name: event.labels.get("name").cloned().unwrap_or_default(),
            image: event.labels.get("image").cloned().unwrap_or_default(),
            labels: event.labels.clone(),
            // Inspected again under the workspace's lock.
            state: ContainerState::Missing,
        };
        let mut report = ReconcileReport::default();
        self.settle(id, &[&container], Pass::Resync, &mut report)
            .await?;
        if !report.stopped.is_empty() || !report.removed.is_empty() {
            tracing::info!(workspace = %id, container = %event.id, kind = ?event.kind, ?report, "settled a workspace after an engine event");
        }
        Ok(())
    }
}
