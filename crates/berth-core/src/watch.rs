//! Following the engine while Berth runs: a workspace whose container dies or is removed behind
//! Berth's back (`docker kill`, `docker rm -f`, the OOM killer, its main process exiting)
//! becomes `stopped`, as if it had been stopped.
//!
//! Each event is handled under the workspace's lifecycle lock, from the row and the container
//! as they are once the lock is held, so the events of a stop or a start Berth is doing itself
//! wait for it to end and then find nothing to do. When the event stream breaks (the engine
//! restarts), it is reconnected with a growing delay, and each connection begins with a
//! reconciliation pass, so events missed meanwhile do not matter.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use berth_runtime::{ContainerEvent, ContainerState};
use berth_store::{StateUpdate, WorkspaceFilter, WorkspaceState};
use berth_types::WorkspaceId;
use futures_util::StreamExt;
use tokio::task::JoinSet;

use crate::WorkspaceError;
use crate::reconcile::{Pass, container_ended};
use crate::workspaces::{INSTANCE_LABEL, WORKSPACE_LABEL, Workspaces, lock};

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

    /// Settles the workspace of a container that died or was removed: a running workspace
    /// whose container no longer runs becomes `stopped` (an ephemeral one loses the container,
    /// as on a stop). An unclaimed pool container that died leaves its pool.
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
                        if self.inner.pools.forget(&event.id) {
                            tracing::info!(container = %event.id, "a pool container died; the pool refills");
                            self.inner.runtime.remove(&event.id).await?;
                        }
                        return Ok(());
                    }
                }
            }
        };
        let op_lock = self.op_lock(id);
        let _guard = op_lock.lock().await;
        let row = match self.get(id).await {
            Ok(row) => row,
            Err(WorkspaceError::NotFound) => {
                lock(&self.inner.op_locks).remove(&id);
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        if row.state != WorkspaceState::Running
            || row.container_id.as_deref() != Some(event.id.as_str())
        {
            // Stopped or started again by Berth meanwhile, or another container of it.
            return Ok(());
        }
        let state = self.inner.runtime.inspect(&event.id).await?;
        let reason = match state {
            ContainerState::Running => return Ok(()),
            ContainerState::Missing => container_ended(None, Pass::Resync),
            ended => container_ended(Some(ended), Pass::Resync),
        };
        if state != ContainerState::Missing && !row.persistent {
            self.inner.runtime.remove(&event.id).await?;
        }
        self.forget_live(id).await;
        let update = StateUpdate::to(WorkspaceState::Stopped, reason.clone())
            .expecting(WorkspaceState::Running);
        self.update(id, &update).await?;
        tracing::info!(workspace = %id, %reason, "workspace stopped by the engine");
        self.audit_settled(&row, WorkspaceState::Stopped, &reason, self.now())
            .await;
        Ok(())
    }
}
