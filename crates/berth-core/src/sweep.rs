//! The background loop: stop idle workspaces, remove expired ones, flush activity, fill pools.

use std::future::Future;
use std::sync::atomic::Ordering;

use berth_store::{Workspace, WorkspaceFilter, WorkspaceState};
use berth_types::WorkspaceId;
use time::OffsetDateTime;

use crate::WorkspaceError;
use crate::audit::{AuditAction, AuditEvent};
use crate::workspaces::{Workspaces, human};

impl Workspaces {
    /// Runs the sweep, the activity flush and the pool fill on their intervals until
    /// `shutdown` completes, then flushes activity one last time.
    pub async fn run_background(&self, shutdown: impl Future<Output = ()>) {
        let settings = self.inner.settings.clone();
        let mut sweep = tokio::time::interval(settings.sweep_interval);
        let mut flush = tokio::time::interval(settings.flush_interval);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = sweep.tick() => {
                    if let Err(err) = self.sweep().await {
                        tracing::warn!(error = %err, "workspace sweep failed");
                    }
                    if let Err(err) = self.fill_pools().await {
                        tracing::warn!(error = %err, "could not fill the pools");
                    }
                }
                _ = flush.tick() => {
                    if let Err(err) = self.flush_activity().await {
                        tracing::warn!(error = %err, "could not record workspace activity");
                    }
                }
            }
        }
        if let Err(err) = self.flush_activity().await {
            tracing::warn!(error = %err, "could not record workspace activity at shutdown");
        }
    }

    /// Stops running workspaces idle past their timeout with no terminal attached, and stops
    /// and removes those past their TTL. Returns the workspaces it acted on.
    pub async fn sweep(&self) -> Result<Vec<WorkspaceId>, WorkspaceError> {
        let now = self.now();
        let filter = WorkspaceFilter {
            owner: None,
            states: vec![WorkspaceState::Running],
            ..WorkspaceFilter::default()
        };
        let mut acted = Vec::new();
        for workspace in self.list(&filter).await? {
            if workspace.expires_at.is_some_and(|at| at <= now) {
                let lived = (now - workspace.created_at)
                    .whole_seconds()
                    .max(0)
                    .unsigned_abs();
                let reason = format!(
                    "TTL reached after {}; removed",
                    human(std::time::Duration::from_secs(lived))
                );
                self.expire(workspace.id, &reason).await?;
                self.audit_sweep(AuditAction::WorkspaceExpire, &workspace, &reason, now)
                    .await;
                acted.push(workspace.id);
                continue;
            }
            let liveness = self.liveness(&workspace, now);
            if liveness.attached == 0 && liveness.idle_for >= liveness.idle_timeout {
                let reason = format!(
                    "idle for {} with no terminal attached",
                    human(liveness.idle_timeout)
                );
                self.stop(workspace.id, &reason).await?;
                self.audit_sweep(AuditAction::WorkspaceStop, &workspace, &reason, now)
                    .await;
                acted.push(workspace.id);
            }
        }
        Ok(acted)
    }

    /// What the sweep did to a workspace, in the audit log as Berth's own act, with the reason.
    async fn audit_sweep(
        &self,
        action: AuditAction,
        workspace: &Workspace,
        reason: &str,
        now: OffsetDateTime,
    ) {
        AuditEvent::system(action, workspace.id.to_string())
            .at(now)
            .details(serde_json::json!({
                "owner": workspace.owner,
                "template": workspace.template,
                "reason": reason,
            }))
            .record_to(&self.inner.audit)
            .await;
    }

    /// Writes the activity recorded in memory since the last flush to the store.
    pub async fn flush_activity(&self) -> Result<(), WorkspaceError> {
        let touches: Vec<(WorkspaceId, OffsetDateTime)> = {
            let live = self
                .inner
                .live
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            live.iter()
                .filter_map(|(id, info)| {
                    let last = info.last_activity.load(Ordering::Relaxed);
                    let flushed = info.flushed.swap(last, Ordering::Relaxed);
                    (last > flushed)
                        .then(|| {
                            OffsetDateTime::from_unix_timestamp(last)
                                .ok()
                                .map(|at| (*id, at))
                        })
                        .flatten()
                })
                .collect()
        };
        if !touches.is_empty() {
            self.inner.store.touch_workspaces(&touches).await?;
        }
        Ok(())
    }
}
