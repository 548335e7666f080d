//! The workspace manager: start, stop, restart and delete, with every state change recorded.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use berth_runtime::{ContainerId, ContainerRuntime, ContainerState, NetworkMode, RuntimeError};
use berth_store::{StateUpdate, Store, StoreError, Workspace, WorkspaceFilter, WorkspaceState};
use berth_types::{Username, WorkspaceId};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::audit::Audit;
use crate::clock::Clock;
use crate::plan::{Persistence, Plan, Policy, StartOptions};
use crate::pool::Pools;
use crate::{WorkspaceError, WorkspaceEvent};

/// Labels Berth puts on the containers it creates.
pub(crate) const WORKSPACE_LABEL: &str = "berth.workspace";
pub(crate) const OWNER_LABEL: &str = "berth.owner";
pub(crate) const TEMPLATE_LABEL: &str = "berth.template";
pub(crate) const POOL_LABEL: &str = "berth.pool";
/// Names the Berth installation that owns a container, so two installations (or parallel test
/// runs) sharing one engine never touch each other's containers.
pub(crate) const INSTANCE_LABEL: &str = "berth.instance";

/// What [`Workspaces::remove_owner`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerRemoval {
    /// Workspaces deleted.
    pub workspaces: usize,
    /// Named volumes removed.
    pub volumes: Vec<String>,
}

/// Timings of the manager; the defaults suit production, tests shorten them.
#[derive(Debug, Clone)]
pub struct WorkspacesSettings {
    /// How long a container's main process gets to exit on stop before it is killed.
    pub stop_timeout: Duration,
    /// How often idle and expired workspaces are looked for and pools topped up.
    pub sweep_interval: Duration,
    /// How often terminal activity is written to the store.
    pub flush_interval: Duration,
    /// This installation's name on the engine (label `berth.instance`); reconciliation only
    /// looks at containers carrying it.
    pub instance: String,
    /// What idle timeouts, TTLs and activity are measured by (tests move a manual one).
    pub clock: Arc<dyn Clock>,
}

impl Default for WorkspacesSettings {
    fn default() -> Self {
        Self {
            stop_timeout: Duration::from_secs(10),
            sweep_interval: Duration::from_secs(10),
            flush_interval: Duration::from_secs(5),
            instance: "berth".into(),
            clock: crate::clock::system(),
        }
    }
}

/// Why a running workspace is still alive, for people and for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liveness {
    /// Terminals attached now.
    pub attached: u32,
    /// Time since the last terminal input or output or keep-alive.
    pub idle_for: Duration,
    /// The template's idle timeout.
    pub idle_timeout: Duration,
    /// Time left before the TTL removes it.
    pub expires_in: Option<Duration>,
    /// One sentence: "2 terminals attached", "idle for 3m of 15m", …
    pub reason: String,
}

/// The workspace manager. Cheap to clone; all clones share one state.
#[derive(Debug, Clone)]
pub struct Workspaces {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) runtime: Arc<dyn ContainerRuntime>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) audit: Audit,
    pub(crate) policy: Arc<dyn Policy>,
    pub(crate) settings: WorkspacesSettings,
    pub(crate) pools: Pools,
    /// Terminals attached and last activity of workspaces touched since start-up.
    pub(crate) live: Mutex<HashMap<WorkspaceId, Arc<LiveInfo>>>,
    /// Serializes lifecycle operations on one workspace (stop racing the idle sweep, …).
    pub(crate) op_locks: Mutex<HashMap<WorkspaceId, Arc<tokio::sync::Mutex<()>>>>,
    /// Serializes quota check and insert per user, so two starts cannot both pass the quota.
    user_locks: Mutex<HashMap<Username, Arc<tokio::sync::Mutex<()>>>>,
    pub(crate) events: broadcast::Sender<WorkspaceEvent>,
    /// Waiting terminals of claimed pool containers, for the workspace's first terminal.
    pub(crate) waiting: Mutex<HashMap<WorkspaceId, berth_terminal::Pty>>,
}

/// In-memory liveness of one workspace.
#[derive(Debug, Default)]
pub(crate) struct LiveInfo {
    pub(crate) attached: AtomicI64,
    /// Unix time (seconds) of the last activity; 0 when none since start-up.
    pub(crate) last_activity: AtomicI64,
    /// Unix time of the last activity already written to the store.
    pub(crate) flushed: AtomicI64,
}

/// How many lifecycle locks are kept before those nobody holds are pruned.
const OP_LOCKS_PRUNE_AT: usize = 256;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The lock of `id` in `locks`, made if need be; see [`Workspaces::op_lock`].
fn op_lock_in(
    locks: &mut HashMap<WorkspaceId, Arc<tokio::sync::Mutex<()>>>,
    id: WorkspaceId,
) -> Arc<tokio::sync::Mutex<()>> {
    if locks.len() >= OP_LOCKS_PRUNE_AT && !locks.contains_key(&id) {
        locks.retain(|_, op_lock| Arc::strong_count(op_lock) > 1);
    }
    Arc::clone(locks.entry(id).or_default())
}

pub(crate) fn container_name(id: WorkspaceId) -> String {
    format!("berth-{id}")
}

impl Workspaces {
    /// A manager over `runtime` and `store`, asking `policy` what users may do.
    #[must_use]
    pub fn new(
        runtime: Arc<dyn ContainerRuntime>,
        store: Arc<dyn Store>,
        policy: Arc<dyn Policy>,
        settings: WorkspacesSettings,
    ) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                runtime,
                audit: Audit::new(Arc::clone(&store)),
                store,
                policy,
                settings,
                pools: Pools::default(),
                live: Mutex::default(),
                op_locks: Mutex::default(),
                user_locks: Mutex::default(),
                events,
                waiting: Mutex::default(),
            }),
        }
    }

    /// Workspace events from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<WorkspaceEvent> {
        self.inner.events.subscribe()
    }

    /// The store the manager records into.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Now, by the manager's clock.
    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        self.inner.settings.clock.now()
    }

    /// The manager's clock, for services that measure time alike (web sessions).
    #[must_use]
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.inner.settings.clock)
    }

    /// The runtime the manager starts containers on.
    #[must_use]
    pub fn runtime(&self) -> &Arc<dyn ContainerRuntime> {
        &self.inner.runtime
    }

    /// Starts a workspace of `template` for `user`: refuses templates and options the policy
    /// does not allow and users at their limit of live workspaces; claims a pool container when
    /// one fits, creates one otherwise.
    pub async fn start(
        &self,
        user: &Username,
        template: &str,
        options: &StartOptions,
    ) -> Result<Workspace, WorkspaceError> {
        let plan = self.inner.policy.plan(user, template, options)?;
        let now = self.now();
        let workspace = Workspace {
            id: WorkspaceId::random(),
            owner: user.clone(),
            template: plan.template.clone(),
            state: WorkspaceState::Starting,
            container_id: None,
            persistent: plan.persistence == Persistence::Persistent,
            network: network_name(&plan.network),
            created_at: now,
            started_at: None,
            last_activity: now,
            expires_at: plan
                .ttl
                .and_then(|ttl| time::Duration::try_from(ttl).ok())
                .map(|ttl| now + ttl),
            state_reason: "starting".into(),
        };
        // Held from before the row exists, so reconciliation while serving never takes the
        // row of a start in progress for an interrupted one.
        let op_lock = self.op_lock(workspace.id);
        let _guard = op_lock.lock().await;
        let admitted = async {
            let user_lock = self.user_lock(user);
            let _guard = user_lock.lock().await;
            let limit = self.inner.policy.max_workspaces(user);
            let live = self
                .inner
                .store
                .count_workspaces(user, &WorkspaceState::LIVE)
                .await?;
            if live >= limit {
                return Err(WorkspaceError::QuotaExceeded { limit });
            }
            if let Some(per_template) = plan.max_per_user {
                let filter = WorkspaceFilter {
                    owner: Some(user.clone()),
                    states: WorkspaceState::LIVE.to_vec(),
                    ..WorkspaceFilter::default()
                };
                let of_template = self
                    .list(&filter)
                    .await?
                    .iter()
                    .filter(|w| w.template == plan.template)
                    .count();
                if of_template >= per_template as usize {
                    return Err(WorkspaceError::TemplateQuotaExceeded {
                        template: plan.template.clone(),
                        limit: per_template,
                    });
                }
            }
            self.inner.store.insert_workspace(&workspace).await?;
            Ok::<(), WorkspaceError>(())
        }
        .await;
        if let Err(err) = admitted {
            lock(&self.inner.op_locks).remove(&workspace.id);
            return Err(err);
        }
        self.publish_changed(&workspace);
        self.run_container(&workspace, &plan).await
    }

    /// Starts a stopped (or failed) workspace again: its own container when it kept one, a new
    /// one from its template otherwise. Starting a running workspace does nothing.
    pub async fn start_existing(&self, id: WorkspaceId) -> Result<Workspace, WorkspaceError> {
        let op_lock = self.op_lock(id);
        let _guard = op_lock.lock().await;
        let workspace = self.get(id).await?;
        match workspace.state {
            WorkspaceState::Running | WorkspaceState::Starting | WorkspaceState::Pending => {
                return Ok(workspace);
            }
            WorkspaceState::Stopping => {
                return Err(WorkspaceError::Conflict(
                    "the workspace is stopping; try again".into(),
                ));
            }
            WorkspaceState::Stopped | WorkspaceState::Failed => {}
        }
        let persistence = if workspace.persistent {
            Persistence::Persistent
        } else {
            Persistence::Ephemeral
        };
        let plan = self
            .inner
            .policy
            .plan_existing(
                &workspace.owner,
                &workspace.template,
                persistence,
                &workspace.network,
            )
            .ok_or_else(|| {
                WorkspaceError::Conflict(format!(
                    "template {:?} no longer exists",
                    workspace.template
                ))
            })?;
        {
            let user_lock = self.user_lock(&workspace.owner);
            let _user_guard = user_lock.lock().await;
            let limit = self.inner.policy.max_workspaces(&workspace.owner);
            let live = self
                .inner
                .store
                .count_workspaces(&workspace.owner, &WorkspaceState::LIVE)
                .await?;
            if live >= limit {
                return Err(WorkspaceError::QuotaExceeded { limit });
            }
            let now = self.now();
            let mut update = StateUpdate::to(WorkspaceState::Starting, "starting again")
                .expecting(workspace.state);
            if let Some(ttl) = plan.ttl.and_then(|ttl| time::Duration::try_from(ttl).ok()) {
                update = update.expiring(now + ttl);
            }
            let starting = self.update(id, &update).await?;
            self.touch_at(id, now);
            if let Some(container) = starting.container_id.clone().map(ContainerId::new)
                && self.inner.runtime.inspect(&container).await? != ContainerState::Missing
            {
                {
                    return match self.inner.runtime.start(&container).await {
                        Ok(()) => self.mark_running(&starting, &container).await,
                        Err(err) => Err(self.fail(&starting, Some(&container), err.into()).await),
                    };
                }
            }
            drop(_user_guard);
            self.run_container(&starting, &plan).await
        }
    }

    /// Stops a workspace: an ephemeral one loses its container and volumes, a persistent one
    /// keeps them. Stopping a stopped workspace does nothing. `reason` is recorded ("stopped by
    /// alice", "idle for 15m").
    pub async fn stop(&self, id: WorkspaceId, reason: &str) -> Result<Workspace, WorkspaceError> {
        let op_lock = self.op_lock(id);
        let _guard = op_lock.lock().await;
        self.stop_locked(id, reason, false).await
    }

    /// Stops a workspace and removes its container (persistent or not), as its TTL demands.
    pub(crate) async fn expire(
        &self,
        id: WorkspaceId,
        reason: &str,
    ) -> Result<Workspace, WorkspaceError> {
        let op_lock = self.op_lock(id);
        let _guard = op_lock.lock().await;
        self.stop_locked(id, reason, true).await
    }

    async fn stop_locked(
        &self,
        id: WorkspaceId,
        reason: &str,
        remove: bool,
    ) -> Result<Workspace, WorkspaceError> {
        let workspace = self.get(id).await?;
        if matches!(
            workspace.state,
            WorkspaceState::Stopped | WorkspaceState::Failed
        ) && !remove
        {
            return Ok(workspace);
        }
        let stopping = if workspace.state == WorkspaceState::Stopped {
            workspace
        } else {
            self.update(
                id,
                &StateUpdate::to(WorkspaceState::Stopping, reason).expecting(workspace.state),
            )
            .await?
        };
        if let Some(container) = stopping.container_id.clone().map(ContainerId::new) {
            let result = async {
                // A container already gone (an ephemeral workspace stopped earlier) is stopped.
                match self
                    .inner
                    .runtime
                    .stop(&container, self.inner.settings.stop_timeout)
                    .await
                {
                    Ok(()) | Err(RuntimeError::ContainerMissing { .. }) => {}
                    Err(err) => return Err(err.into()),
                }
                if remove || !stopping.persistent {
                    self.inner.runtime.remove(&container).await?;
                }
                Ok::<_, WorkspaceError>(())
            }
            .await;
            if let Err(err) = result {
                return Err(self.fail(&stopping, None, err).await);
            }
        }
        self.forget_live(id).await;
        self.update(id, &StateUpdate::to(WorkspaceState::Stopped, reason))
            .await
    }

    /// Stops a workspace if needed, removes its container, and forgets it. Persistent named
    /// volumes stay for the owner's next persistent workspace of the template.
    pub async fn delete(&self, id: WorkspaceId, reason: &str) -> Result<(), WorkspaceError> {
        let op_lock = self.op_lock(id);
        let _guard = op_lock.lock().await;
        let workspace = self.stop_locked(id, reason, true).await?;
        debug_assert_eq!(workspace.state, WorkspaceState::Stopped);
        match self.inner.store.delete_workspace(id).await {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(err) => return Err(err.into()),
        }
        lock(&self.inner.op_locks).remove(&id);
        let _ = self.inner.events.send(WorkspaceEvent::Deleted(id));
        Ok(())
    }

    /// Everything `owner` has, for an account being deleted: every workspace of theirs is
    /// deleted (containers removed), their named volumes of this instance are removed,
    /// persistent ones included (a name given to someone new later must not find the old
    /// files). Their memberships and recordings are other kinds of account resources
    /// ([`crate::Accounts`]); the audit log stays. Goes on past a workspace that cannot be
    /// deleted and returns the first error after trying them all.
    pub async fn remove_owner(
        &self,
        owner: &Username,
        reason: &str,
    ) -> Result<OwnerRemoval, WorkspaceError> {
        let filter = WorkspaceFilter {
            owner: Some(owner.clone()),
            ..WorkspaceFilter::default()
        };
        let mut removal = OwnerRemoval::default();
        let mut failed = None;
        for workspace in self.list(&filter).await? {
            match self.delete(workspace.id, reason).await {
                Ok(()) | Err(WorkspaceError::NotFound) => removal.workspaces += 1,
                Err(err) => {
                    tracing::error!(workspace = %workspace.id, %owner, error = %err, "cannot delete a workspace of a deleted account");
                    failed.get_or_insert(err);
                }
            }
        }
        if let Some(err) = failed {
            return Err(err);
        }
        let labels = BTreeMap::from([
            (
                INSTANCE_LABEL.to_owned(),
                self.inner.settings.instance.clone(),
            ),
            (OWNER_LABEL.to_owned(), owner.to_string()),
        ]);
        removal.volumes = self.inner.runtime.purge_volumes(&labels).await?;
        Ok(removal)
    }

    /// One workspace.
    pub async fn get(&self, id: WorkspaceId) -> Result<Workspace, WorkspaceError> {
        match self.inner.store.get_workspace(id).await {
            Ok(workspace) => Ok(workspace),
            Err(StoreError::NotFound) => Err(WorkspaceError::NotFound),
            Err(err) => Err(err.into()),
        }
    }

    /// Workspaces `filter` selects.
    pub async fn list(&self, filter: &WorkspaceFilter) -> Result<Vec<Workspace>, WorkspaceError> {
        Ok(self.inner.store.list_workspaces(filter).await?)
    }

    /// Records activity (a keep-alive) now.
    pub fn touch(&self, id: WorkspaceId) {
        self.touch_at(id, self.now());
    }

    pub(crate) fn touch_at(&self, id: WorkspaceId, at: OffsetDateTime) {
        self.live_info(id)
            .last_activity
            .fetch_max(at.unix_timestamp(), Ordering::Relaxed);
    }

    /// Why `workspace` is still alive (or, with `attached == 0` and idle beyond the timeout,
    /// about to be stopped).
    #[must_use]
    pub fn liveness(&self, workspace: &Workspace, now: OffsetDateTime) -> Liveness {
        let persistence = if workspace.persistent {
            Persistence::Persistent
        } else {
            Persistence::Ephemeral
        };
        let idle_timeout = self
            .inner
            .policy
            .plan_existing(
                &workspace.owner,
                &workspace.template,
                persistence,
                &workspace.network,
            )
            .map_or(Duration::from_secs(15 * 60), |plan| plan.idle_timeout);
        let (attached, last) = {
            let live = lock(&self.inner.live);
            live.get(&workspace.id).map_or((0, 0), |info| {
                (
                    u32::try_from(info.attached.load(Ordering::Relaxed).max(0)).unwrap_or(u32::MAX),
                    info.last_activity.load(Ordering::Relaxed),
                )
            })
        };
        let last = last.max(workspace.last_activity.unix_timestamp());
        let idle_for = Duration::from_secs(u64::try_from(now.unix_timestamp() - last).unwrap_or(0));
        let expires_in = workspace
            .expires_at
            .map(|at| Duration::try_from(at - now).unwrap_or(Duration::ZERO));
        let mut reason = if attached > 0 {
            format!(
                "{attached} terminal{} attached",
                if attached == 1 { "" } else { "s" }
            )
        } else {
            format!("idle for {} of {}", human(idle_for), human(idle_timeout))
        };
        if let Some(left) = expires_in {
            reason.push_str(&format!("; TTL ends in {}", human(left)));
        }
        Liveness {
            attached,
            idle_for,
            idle_timeout,
            expires_in,
            reason,
        }
    }

    /// Creates (or claims from the pool) and starts the container of a `Starting` workspace.
    async fn run_container(
        &self,
        workspace: &Workspace,
        plan: &Plan,
    ) -> Result<Workspace, WorkspaceError> {
        if let Some(pooled) = self.inner.pools.claim(plan, &self.inner.settings.instance) {
            tracing::debug!(workspace = %workspace.id, container = %pooled.container, "claimed a pool container");
            if let Some(waiting) = pooled.waiting {
                lock(&self.inner.waiting).insert(workspace.id, waiting);
            }
            let claimed = self.mark_running(workspace, &pooled.container).await;
            self.refill_soon();
            return match claimed {
                Ok(running) => self.settle_claimed(running, &pooled.container).await,
                Err(err) => Err(err),
            };
        }
        let spec = self.container_spec(workspace, plan);
        let container = match self.inner.runtime.create(&spec).await {
            Ok(container) => container,
            Err(err) => return Err(self.fail(workspace, None, err.into()).await),
        };
        if let Err(err) = self.inner.runtime.start(&container).await {
            return Err(self.fail(workspace, Some(&container), err.into()).await);
        }
        self.mark_running(workspace, &container).await
    }

    fn container_spec(&self, workspace: &Workspace, plan: &Plan) -> berth_runtime::ContainerSpec {
        let mut spec = plan.spec.clone();
        spec.name = container_name(workspace.id);
        spec.network = plan.network.clone();
        let persistent = plan.persistence == Persistence::Persistent;
        for volume in &mut spec.volumes {
            volume.persistent = persistent;
            volume.name = if persistent {
                format!(
                    "berth-{}-{}-{}",
                    workspace.owner, workspace.template, volume.name
                )
            } else {
                format!("berth-{}-{}", workspace.id, volume.name)
            };
        }
        spec.labels.extend(BTreeMap::from([
            (WORKSPACE_LABEL.to_owned(), workspace.id.to_string()),
            (OWNER_LABEL.to_owned(), workspace.owner.to_string()),
            (TEMPLATE_LABEL.to_owned(), workspace.template.clone()),
            (
                INSTANCE_LABEL.to_owned(),
                self.inner.settings.instance.clone(),
            ),
        ]));
        spec
    }

    /// A pool container that died between its claim and the row naming it sent an event that
    /// found no owner: inspected again now that the row names it, and settled (under the lock
    /// the start holds) if it no longer runs.
    async fn settle_claimed(
        &self,
        running: Workspace,
        container: &ContainerId,
    ) -> Result<Workspace, WorkspaceError> {
        if self.inner.runtime.inspect(container).await? == ContainerState::Running {
            return Ok(running);
        }
        tracing::warn!(workspace = %running.id, %container, "a claimed pool container stopped before its workspace ran");
        let mut report = crate::ReconcileReport::default();
        self.settle_locked(running.id, &[], crate::reconcile::Pass::Resync, &mut report)
            .await?;
        self.get(running.id).await
    }

    async fn mark_running(
        &self,
        workspace: &Workspace,
        container: &ContainerId,
    ) -> Result<Workspace, WorkspaceError> {
        let now = self.now();
        let update = StateUpdate::to(WorkspaceState::Running, "running")
            .expecting(WorkspaceState::Starting)
            .with_container(container.as_str())
            .started(now);
        self.update(workspace.id, &update).await
    }

    /// Records a failure (removing a half-made container) and returns the error to report.
    async fn fail(
        &self,
        workspace: &Workspace,
        container: Option<&ContainerId>,
        err: WorkspaceError,
    ) -> WorkspaceError {
        tracing::warn!(workspace = %workspace.id, error = %err, "workspace failed");
        if let Some(container) = container
            && let Err(remove) = self.inner.runtime.remove(container).await
        {
            {
                tracing::warn!(%container, error = %remove, "could not remove the container of a failed workspace");
            }
        }
        let update = StateUpdate::to(WorkspaceState::Failed, format!("failed: {err}"));
        if let Err(store) = self.update(workspace.id, &update).await {
            tracing::error!(workspace = %workspace.id, error = %store, "could not record the failure");
        }
        self.forget_live(workspace.id).await;
        err
    }

    pub(crate) async fn update(
        &self,
        id: WorkspaceId,
        update: &StateUpdate,
    ) -> Result<Workspace, WorkspaceError> {
        let workspace = match self.inner.store.update_workspace_state(id, update).await {
            Ok(workspace) => workspace,
            Err(StoreError::NotFound) => return Err(WorkspaceError::NotFound),
            Err(StoreError::Conflict(message)) => return Err(WorkspaceError::Conflict(message)),
            Err(err) => return Err(err.into()),
        };
        self.publish_changed(&workspace);
        Ok(workspace)
    }

    fn publish_changed(&self, workspace: &Workspace) {
        let _ = self
            .inner
            .events
            .send(WorkspaceEvent::Changed(Box::new(workspace.clone())));
    }

    /// The lifecycle lock of workspace `id`. Entries nobody holds or waits for are pruned
    /// when the map has grown (each pass while serving touches every live workspace, each
    /// event its own): an entry only the map refers to guards nothing, and since every clone is
    /// taken under the map's mutex, the next caller simply gets a fresh one.
    pub(crate) fn op_lock(&self, id: WorkspaceId) -> Arc<tokio::sync::Mutex<()>> {
        op_lock_in(&mut lock(&self.inner.op_locks), id)
    }

    fn user_lock(&self, user: &Username) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(
            lock(&self.inner.user_locks)
                .entry(user.clone())
                .or_default(),
        )
    }

    pub(crate) fn live_info(&self, id: WorkspaceId) -> Arc<LiveInfo> {
        Arc::clone(lock(&self.inner.live).entry(id).or_default())
    }

    /// Drops the in-memory liveness of a workspace that stopped, keeping its last activity.
    pub(crate) async fn forget_live(&self, id: WorkspaceId) {
        lock(&self.inner.waiting).remove(&id);
        let last = lock(&self.inner.live)
            .remove(&id)
            .map(|info| info.last_activity.load(Ordering::Relaxed))
            .and_then(|at| OffsetDateTime::from_unix_timestamp(at).ok());
        if let Some(at) = last
            && let Err(err) = self.inner.store.touch_workspaces(&[(id, at)]).await
        {
            {
                tracing::warn!(workspace = %id, error = %err, "could not record the last activity");
            }
        }
    }
}

/// The name stored for a network mode.
pub(crate) fn network_name(network: &NetworkMode) -> String {
    match network {
        NetworkMode::None => "none".into(),
        NetworkMode::Host => "host".into(),
        NetworkMode::Named(name) => name.clone(),
    }
}

/// `90s` → "1m30s", for reasons people read.
pub(crate) fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_locks_nobody_holds_are_pruned_and_held_ones_kept() {
        let mut locks = HashMap::new();
        let held = WorkspaceId::random();
        let held_lock = op_lock_in(&mut locks, held);
        for _ in 0..OP_LOCKS_PRUNE_AT * 2 {
            drop(op_lock_in(&mut locks, WorkspaceId::random()));
        }
        assert!(
            locks.len() <= OP_LOCKS_PRUNE_AT,
            "unheld locks pile up: {}",
            locks.len()
        );
        // The held lock is still the one every caller gets: its guarantee stands.
        assert!(Arc::ptr_eq(&held_lock, &op_lock_in(&mut locks, held)));
    }
}
