//! [`Clusters`]: ephemeral Kubernetes clusters with a TTL, a sibling of [`crate::Workspaces`].
//!
//! A cluster is recorded at once in `provisioning` (so `POST` answers 201 with the record), then
//! a task of its own asks the provider to create it and waits for its API to answer `/readyz`;
//! it turns `running` with its kubeconfig sealed in the store, or `failed` with the reason
//! (and its provider resources removed). Deleting, by someone or by the reaper when the TTL
//! runs out, goes `deleting → deleted`. At start-up [`Clusters::reconcile`] removes provider
//! resources without a live row, fails live rows without resources and resumes what a killed
//! Berth left half done. Every change is audited and published ([`ClusterEvent`]).
//!
//! One Berth runs the reaper and holds the per-user quota lock in memory; several replicas
//! would need the store's leases (docs/architecture.md).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_clusters::{ClusterProvider, ClusterSpec, Kubeconfig, KubeconfigKey, ProviderStatus};
use berth_store::{ClusterFilter, ClusterRecord, ClusterTransition, Store, StoreError};
use berth_types::{ClusterId, ClusterName, ClusterState, Username};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::audit::{Actor, Audit, AuditAction, AuditEvent};
use crate::clock::Clock;
use crate::workspaces::lock;

/// Something happened to a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// It changed; the record as stored afterwards.
    Changed(Box<ClusterRecord>),
    /// Its row was removed (its owner's account went).
    Removed {
        /// The cluster.
        id: ClusterId,
        /// Its owner.
        owner: Username,
    },
}

/// Why a cluster request is refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No such cluster (or not the caller's).
    #[error("no such cluster")]
    NotFound,
    /// The owner already has a live cluster of that name.
    #[error("you already have a cluster named {0}")]
    NameTaken(ClusterName),
    /// The owner is at `clusters.max_per_user`.
    #[error("{}", quota_message(*max))]
    Quota {
        /// The limit.
        max: u32,
    },
    /// A TTL (or an extension) beyond `clusters.max_ttl`.
    #[error("{0}")]
    TtlTooLong(String),
    /// The cluster is not in a state that allows it (a kubeconfig before `running`, an
    /// extension of a deleted one).
    #[error("the cluster is {state}: {action}")]
    WrongState {
        /// Its state.
        state: ClusterState,
        /// What cannot be done.
        action: &'static str,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The provider failed (the engine is unreachable, say).
    #[error("the cluster provider: {0}")]
    Provider(String),
    /// The sealed kubeconfig could not be opened (wrong key file, tampered row).
    #[error("the kubeconfig cannot be decrypted: {0}")]
    Seal(String),
}

/// The reason of a cluster the reaper deleted.
const TTL_REACHED: &str = "ttl reached";

fn quota_message(max: u32) -> String {
    if max == 0 {
        "nobody may have a cluster here (clusters.max_per_user is 0)".to_owned()
    } else {
        format!(
            "you already have {max} live cluster(s), the most allowed \
             (clusters.max_per_user); delete one first"
        )
    }
}

/// Limits and timings; main.yaml's `clusters` section, tests shorten the timings.
#[derive(Debug, Clone)]
pub struct ClustersSettings {
    /// The TTL of a cluster asked for without one.
    pub default_ttl: Duration,
    /// The longest life from creation, extensions included.
    pub max_ttl: Duration,
    /// Live clusters one user may have.
    pub max_per_user: u32,
    /// How long a cluster may take to answer `/readyz` before it turns failed.
    pub ready_timeout: Duration,
    /// How often a provisioning cluster is asked whether it is ready.
    pub poll_interval: Duration,
    /// How often expired clusters are looked for.
    pub reap_interval: Duration,
    /// What TTLs are measured by.
    pub clock: Arc<dyn Clock>,
}

impl Default for ClustersSettings {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(2 * 3600),
            max_ttl: Duration::from_secs(24 * 3600),
            max_per_user: 1,
            ready_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            reap_interval: Duration::from_secs(10),
            clock: crate::clock::system(),
        }
    }
}

/// What [`Clusters::reconcile`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterReconcile {
    /// Provider resources without a live row, removed.
    pub removed: Vec<ClusterId>,
    /// Live rows without provider resources, now failed.
    pub failed: Vec<ClusterId>,
    /// Provisioning or deleting rows whose task was started again.
    pub resumed: Vec<ClusterId>,
}

/// The cluster service. Cheap to clone; clones share one state.
#[derive(Debug, Clone)]
pub struct Clusters {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    provider: Arc<dyn ClusterProvider>,
    store: Arc<dyn Store>,
    audit: Audit,
    key: KubeconfigKey,
    settings: ClustersSettings,
    events: broadcast::Sender<ClusterEvent>,
    /// Serializes quota check and insert per user.
    user_locks: Mutex<HashMap<Username, Arc<tokio::sync::Mutex<()>>>>,
    /// Clusters with a provisioning or deleting task running, so a resume never starts a
    /// second one.
    busy: Mutex<HashSet<ClusterId>>,
}

/// Marks a cluster busy while its task runs.
struct Busy {
    inner: Arc<Inner>,
    id: ClusterId,
}

impl Drop for Busy {
    fn drop(&mut self) {
        lock(&self.inner.busy).remove(&self.id);
    }
}

fn to_time(duration: Duration) -> time::Duration {
    time::Duration::try_from(duration).unwrap_or(time::Duration::MAX)
}

/// "2h", "1h30m", "45s": how people write durations in Berth.
fn human(duration: time::Duration) -> String {
    let secs = duration.whole_seconds().max(0);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut text = String::new();
    if h > 0 {
        text.push_str(&format!("{h}h"));
    }
    if m > 0 {
        text.push_str(&format!("{m}m"));
    }
    if s > 0 || text.is_empty() {
        text.push_str(&format!("{s}s"));
    }
    text
}

impl Clusters {
    /// The service over `provider`, recording into `store`, sealing kubeconfigs with `key`.
    #[must_use]
    pub fn new(
        provider: Arc<dyn ClusterProvider>,
        store: Arc<dyn Store>,
        key: KubeconfigKey,
        settings: ClustersSettings,
    ) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                provider,
                audit: Audit::new(Arc::clone(&store)),
                store,
                key,
                settings,
                events,
                user_locks: Mutex::default(),
                busy: Mutex::default(),
            }),
        }
    }

    /// Cluster events from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<ClusterEvent> {
        self.inner.events.subscribe()
    }

    /// The provider's name (`docker`).
    #[must_use]
    pub fn provider(&self) -> &'static str {
        self.inner.provider.name()
    }

    /// The limits in force.
    #[must_use]
    pub fn settings(&self) -> &ClustersSettings {
        &self.inner.settings
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.settings.clock.now()
    }

    fn publish(&self, record: &ClusterRecord) {
        let _ = self
            .inner
            .events
            .send(ClusterEvent::Changed(Box::new(record.clone())));
    }

    fn user_lock(&self, owner: &Username) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = lock(&self.inner.user_locks);
        if locks.len() >= 256 && !locks.contains_key(owner) {
            locks.retain(|_, user_lock| Arc::strong_count(user_lock) > 1);
        }
        Arc::clone(locks.entry(owner.clone()).or_default())
    }

    /// One cluster, in any state.
    pub async fn get(&self, id: ClusterId) -> Result<ClusterRecord, ClusterError> {
        match self.inner.store.cluster(id).await {
            Ok(record) => Ok(record),
            Err(StoreError::NotFound) => Err(ClusterError::NotFound),
            Err(err) => Err(err.into()),
        }
    }

    /// The clusters `filter` selects, oldest first.
    pub async fn list(&self, filter: &ClusterFilter) -> Result<Vec<ClusterRecord>, ClusterError> {
        Ok(self.inner.store.list_clusters(filter).await?)
    }

    /// Asks for a cluster named `name` for `owner`, living `ttl` (the default when `None`):
    /// recorded in `provisioning` and returned at once; a task creates it.
    pub async fn create(
        &self,
        owner: &Username,
        name: ClusterName,
        ttl: Option<Duration>,
        ip: Option<IpAddr>,
    ) -> Result<ClusterRecord, ClusterError> {
        let settings = &self.inner.settings;
        let ttl = ttl.unwrap_or(settings.default_ttl);
        if ttl > settings.max_ttl {
            return Err(ClusterError::TtlTooLong(format!(
                "a cluster lives at most {} (clusters.max_ttl), {} was asked",
                human(to_time(settings.max_ttl)),
                human(to_time(ttl))
            )));
        }
        let user_lock = self.user_lock(owner);
        let _held = user_lock.lock().await;
        let live = self
            .inner
            .store
            .count_clusters(owner, &ClusterState::LIVE)
            .await?;
        if live >= u64::from(settings.max_per_user) {
            return Err(ClusterError::Quota {
                max: settings.max_per_user,
            });
        }
        let now = self.now();
        let record = ClusterRecord {
            id: ClusterId::random(),
            name: name.clone(),
            owner: owner.clone(),
            provider: self.provider().to_owned(),
            state: ClusterState::Provisioning,
            state_reason: "provisioning".to_owned(),
            api_url: None,
            created_at: now,
            running_at: None,
            expires_at: now + to_time(ttl),
            max_expires_at: now + to_time(settings.max_ttl),
            deleted_at: None,
        };
        match self.inner.store.insert_cluster(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(ClusterError::NameTaken(name)),
            Err(err) => return Err(err.into()),
        }
        // Re-read: the store normalizes timestamps.
        let record = self.get(record.id).await?;
        AuditEvent::new(owner, AuditAction::ClusterCreate, record.id.to_string())
            .from_ip(ip)
            .details(json!({"name": record.name, "ttl": human(to_time(ttl)), "provider": record.provider}))
            .at(now)
            .record_to(&self.inner.audit)
            .await;
        self.publish(&record);
        self.spawn_provisioning(record.clone());
        Ok(record)
    }

    fn claim(&self, id: ClusterId) -> Option<Busy> {
        lock(&self.inner.busy).insert(id).then(|| Busy {
            inner: Arc::clone(&self.inner),
            id,
        })
    }

    fn spawn_provisioning(&self, record: ClusterRecord) {
        let Some(busy) = self.claim(record.id) else {
            return;
        };
        let clusters = self.clone();
        tokio::spawn(async move {
            let _busy = busy;
            clusters.provision(record).await;
        });
    }

    /// Creates the cluster on the provider and waits for it to be ready, then records
    /// `running`, or `failed` with the reason.
    async fn provision(&self, record: ClusterRecord) {
        let id = record.id;
        let outcome = self.bring_up(&record).await;
        let transition = match outcome {
            Ok((api_url, kubeconfig)) => {
                match self.inner.key.seal(id, kubeconfig.expose().as_bytes()) {
                    Err(err) => Err(format!("cannot encrypt the kubeconfig: {err}")),
                    Ok(sealed) => match self.inner.store.store_kubeconfig(id, &sealed).await {
                        Err(err) => Err(format!("cannot store the kubeconfig: {err}")),
                        Ok(()) => Ok(api_url),
                    },
                }
            }
            Err(reason) => Err(reason),
        };
        let (to, action, details) = match transition {
            Ok(api_url) => (
                ClusterTransition {
                    state: ClusterState::Running,
                    reason: "running".to_owned(),
                    at: self.now(),
                    api_url: Some(api_url.clone()),
                },
                AuditAction::ClusterRunning,
                json!({"name": record.name, "api_url": api_url}),
            ),
            Err(reason) => (
                ClusterTransition {
                    state: ClusterState::Failed,
                    reason: reason.clone(),
                    at: self.now(),
                    api_url: None,
                },
                AuditAction::ClusterFail,
                json!({"name": record.name, "reason": reason}),
            ),
        };
        let failed = to.state == ClusterState::Failed;
        match self
            .inner
            .store
            .transition_cluster(id, &[ClusterState::Provisioning], &to)
            .await
        {
            Ok(updated) => {
                AuditEvent::system(action, id.to_string())
                    .details(details)
                    .at(to.at)
                    .record_to(&self.inner.audit)
                    .await;
                self.publish(&updated);
                if failed {
                    // A failed cluster holds nothing: its reason says what happened.
                    if let Err(err) = self.inner.provider.delete(id).await {
                        tracing::warn!(cluster = %id, error = %err, "cannot remove a failed cluster's resources; reconciliation at the next start retries");
                    }
                }
            }
            Err(err) => {
                // Deleted (or reaped) while it was coming up: whatever the provider made
                // after the deletion's own removal goes now.
                tracing::info!(cluster = %id, error = %err, "cluster left provisioning before it came up");
                // This task holds the cluster: it finishes the deletion that came meanwhile.
                match self.inner.store.cluster(id).await {
                    Ok(current) if current.state == ClusterState::Deleting => {
                        self.tear_down(id).await;
                    }
                    _ => {
                        if let Err(err) = self.inner.provider.delete(id).await {
                            tracing::warn!(cluster = %id, error = %err, "cannot remove a cluster deleted while provisioning");
                        }
                    }
                }
            }
        }
    }

    /// The provider's part of provisioning: create, then poll until ready, within the
    /// ready timeout. `Err` is the reason for people.
    async fn bring_up(&self, record: &ClusterRecord) -> Result<(String, Kubeconfig), String> {
        let provider = &self.inner.provider;
        let settings = &self.inner.settings;
        let spec = ClusterSpec {
            id: record.id,
            name: record.name.clone(),
            owner: record.owner.clone(),
        };
        provider.create(&spec).await.map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + settings.ready_timeout;
        let mut last;
        loop {
            // Stop early when someone deleted it meanwhile.
            match self.inner.store.cluster(record.id).await {
                Ok(current) if current.state != ClusterState::Provisioning => {
                    return Err(format!("left provisioning ({})", current.state));
                }
                Err(StoreError::NotFound) => {
                    return Err("its record was removed (its owner's account went)".to_owned());
                }
                _ => {}
            }
            match provider.status(record.id).await {
                Ok(ProviderStatus::Ready { api_url }) => {
                    let kubeconfig = provider
                        .kubeconfig(record.id)
                        .await
                        .map_err(|e| e.to_string())?;
                    return Ok((api_url, kubeconfig));
                }
                Ok(ProviderStatus::Failed { reason }) => return Err(reason),
                Ok(ProviderStatus::Missing) => {
                    return Err("its container disappeared while it was starting".to_owned());
                }
                Ok(ProviderStatus::Provisioning { detail }) => last = detail,
                Err(err) => last = err.to_string(),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "not ready after {} (clusters.ready_timeout): {last}",
                    human(to_time(settings.ready_timeout))
                ));
            }
            tokio::time::sleep(settings.poll_interval).await;
        }
    }

    /// Deletes a cluster: `deleting` at once, `deleted` when the provider has removed it.
    /// A cluster already deleted is returned as it is.
    pub async fn delete(
        &self,
        id: ClusterId,
        actor: Actor,
        reason: &str,
        ip: Option<IpAddr>,
    ) -> Result<ClusterRecord, ClusterError> {
        let current = self.get(id).await?;
        let action = if matches!(actor, Actor::System) && reason == TTL_REACHED {
            AuditAction::ClusterExpire
        } else {
            AuditAction::ClusterDelete
        };
        match current.state {
            ClusterState::Deleted | ClusterState::Deleting => return Ok(current),
            _ => {}
        }
        let to = ClusterTransition {
            state: ClusterState::Deleting,
            reason: reason.to_owned(),
            at: self.now(),
            api_url: None,
        };
        let updated = match self
            .inner
            .store
            .transition_cluster(
                id,
                &[
                    ClusterState::Provisioning,
                    ClusterState::Running,
                    ClusterState::Failed,
                ],
                &to,
            )
            .await
        {
            Ok(updated) => updated,
            // Someone else moved it first: theirs stands.
            Err(StoreError::Conflict(_)) => return self.get(id).await,
            Err(err) => return Err(err.into()),
        };
        AuditEvent::new(actor, action, id.to_string())
            .from_ip(ip)
            .details(json!({"name": updated.name, "owner": updated.owner, "reason": reason}))
            .at(to.at)
            .record_to(&self.inner.audit)
            .await;
        self.publish(&updated);
        self.spawn_deletion(id);
        Ok(updated)
    }

    fn spawn_deletion(&self, id: ClusterId) {
        let clusters = self.clone();
        tokio::spawn(async move {
            // A task may still hold the cluster: a provisioning that just finished lets go
            // at once, another deletion when it is done. Wait while the row wants deleting.
            let _busy = loop {
                if let Some(busy) = clusters.claim(id) {
                    break busy;
                }
                match clusters.inner.store.cluster(id).await {
                    Ok(current) if current.state == ClusterState::Deleting => {}
                    _ => return,
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            clusters.tear_down(id).await;
        });
    }

    /// The provider's part of deleting; a failure leaves the cluster `deleting` for the
    /// reaper's next pass.
    async fn tear_down(&self, id: ClusterId) {
        if let Err(err) = self.inner.provider.delete(id).await {
            tracing::warn!(cluster = %id, error = %err, "cannot delete a cluster; retried on the next reaper pass");
            return;
        }
        let current = match self.inner.store.cluster(id).await {
            Ok(current) => current,
            Err(err) => {
                tracing::warn!(cluster = %id, error = %err, "deleted cluster's row is unreadable");
                return;
            }
        };
        let to = ClusterTransition {
            state: ClusterState::Deleted,
            reason: current.state_reason.clone(),
            at: self.now(),
            api_url: None,
        };
        match self
            .inner
            .store
            .transition_cluster(id, &[ClusterState::Deleting], &to)
            .await
        {
            Ok(updated) => self.publish(&updated),
            Err(err) => {
                tracing::debug!(cluster = %id, error = %err, "cluster was no longer deleting");
            }
        }
    }

    /// Adds `by` to a live cluster's expiry, at most to `max_expires_at`.
    pub async fn extend(
        &self,
        id: ClusterId,
        by: Duration,
        actor: &Username,
        ip: Option<IpAddr>,
    ) -> Result<ClusterRecord, ClusterError> {
        let current = self.get(id).await?;
        if !matches!(
            current.state,
            ClusterState::Provisioning | ClusterState::Running
        ) {
            return Err(ClusterError::WrongState {
                state: current.state,
                action: "only a provisioning or running cluster can be extended",
            });
        }
        let wanted = current.expires_at + to_time(by);
        if wanted > current.max_expires_at {
            let room = (current.max_expires_at - current.expires_at).max(time::Duration::ZERO);
            return Err(ClusterError::TtlTooLong(format!(
                "a cluster lives at most {} from its creation (clusters.max_ttl): it can be extended by {} at most",
                human(to_time(self.inner.settings.max_ttl)),
                human(room)
            )));
        }
        let updated = match self.inner.store.extend_cluster(id, wanted).await {
            Ok(updated) => updated,
            Err(StoreError::Conflict(_)) => {
                let now = self.get(id).await?;
                return Err(ClusterError::WrongState {
                    state: now.state,
                    action: "only a provisioning or running cluster can be extended",
                });
            }
            Err(err) => return Err(err.into()),
        };
        AuditEvent::new(actor, AuditAction::ClusterExtend, id.to_string())
            .from_ip(ip)
            .details(json!({
                "name": updated.name,
                "by": human(to_time(by)),
                "expires_at": updated.expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            }))
            .at(self.now())
            .record_to(&self.inner.audit)
            .await;
        self.publish(&updated);
        Ok(updated)
    }

    /// The kubeconfig of a running cluster, decrypted; the download is audited (never its
    /// content).
    pub async fn kubeconfig(
        &self,
        id: ClusterId,
        actor: &Username,
        ip: Option<IpAddr>,
    ) -> Result<Kubeconfig, ClusterError> {
        let current = self.get(id).await?;
        if current.state != ClusterState::Running {
            return Err(ClusterError::WrongState {
                state: current.state,
                action: "its kubeconfig exists only while it is running",
            });
        }
        let sealed = self
            .inner
            .store
            .kubeconfig(id)
            .await?
            .ok_or(ClusterError::WrongState {
                state: current.state,
                action: "its kubeconfig is not stored yet",
            })?;
        let kubeconfig = self
            .inner
            .key
            .open(id, &sealed)
            .map_err(|e| ClusterError::Seal(e.to_string()))?;
        AuditEvent::new(actor, AuditAction::ClusterKubeconfig, id.to_string())
            .from_ip(ip)
            .details(json!({"name": current.name, "owner": current.owner}))
            .at(self.now())
            .record_to(&self.inner.audit)
            .await;
        Ok(kubeconfig)
    }

    /// One reaper pass: deletes expired clusters (failed ones too, which frees their names),
    /// retries deletions left `deleting`, removes what failed clusters still hold, and fails
    /// running clusters whose server stopped or vanished. How many expired.
    pub async fn reap(&self) -> Result<usize, ClusterError> {
        let now = self.now();
        let mut expired = self.inner.store.expired_clusters(now).await?;
        let failed = self
            .inner
            .store
            .list_clusters(&ClusterFilter {
                owner: None,
                states: vec![ClusterState::Failed],
            })
            .await?;
        let (failed_expired, failed_kept): (Vec<_>, Vec<_>) =
            failed.into_iter().partition(|c| c.expires_at <= now);
        expired.extend(failed_expired);
        let count = expired.len();
        for cluster in expired {
            if let Err(err) = self
                .delete(cluster.id, Actor::System, TTL_REACHED, None)
                .await
            {
                tracing::warn!(cluster = %cluster.id, error = %err, "cannot delete an expired cluster");
            }
        }
        let stuck = self
            .inner
            .store
            .list_clusters(&ClusterFilter {
                owner: None,
                states: vec![ClusterState::Deleting],
            })
            .await?;
        for cluster in stuck {
            self.spawn_deletion(cluster.id);
        }
        let running = self
            .inner
            .store
            .list_clusters(&ClusterFilter {
                owner: None,
                states: vec![ClusterState::Running],
            })
            .await?;
        if failed_kept.is_empty() && running.is_empty() {
            return Ok(count);
        }
        // One listing of what the provider holds serves both checks below.
        let held: HashMap<ClusterId, bool> = match self.inner.provider.list().await {
            Ok(held) => held.into_iter().map(|c| (c.id, c.running)).collect(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot list the provider's clusters");
                return Ok(count);
            }
        };
        // A failed cluster holds nothing: what a failed removal left goes now.
        for cluster in failed_kept.iter().filter(|c| held.contains_key(&c.id)) {
            if let Err(err) = self.inner.provider.delete(cluster.id).await {
                tracing::warn!(cluster = %cluster.id, error = %err, "cannot remove a failed cluster's resources");
            }
        }
        // A running cluster whose server exited (a restarted engine, the OOM killer) or whose
        // resources vanished (`docker rm`) fails; only those are asked why.
        for cluster in running {
            match held.get(&cluster.id) {
                Some(true) => {}
                Some(false) => {
                    let reason = match self.inner.provider.status(cluster.id).await {
                        Ok(ProviderStatus::Failed { reason }) => reason,
                        Ok(_) | Err(_) => "it is not running".to_owned(),
                    };
                    self.fail_running(&cluster, format!("its server stopped: {reason}"))
                        .await;
                }
                None => {
                    self.fail_running(&cluster, "its resources are gone".to_owned())
                        .await;
                }
            }
        }
        Ok(count)
    }

    /// Turns a running cluster `failed` with `reason` and removes what it holds; whether it
    /// was still running.
    async fn fail_running(&self, cluster: &ClusterRecord, reason: String) -> bool {
        let to = ClusterTransition {
            state: ClusterState::Failed,
            reason: reason.clone(),
            at: self.now(),
            api_url: None,
        };
        if let Ok(updated) = self
            .inner
            .store
            .transition_cluster(cluster.id, &[ClusterState::Running], &to)
            .await
        {
            AuditEvent::system(AuditAction::ClusterFail, cluster.id.to_string())
                .details(json!({"name": cluster.name, "reason": reason}))
                .at(to.at)
                .record_to(&self.inner.audit)
                .await;
            self.publish(&updated);
            if let Err(err) = self.inner.provider.delete(cluster.id).await {
                tracing::warn!(cluster = %cluster.id, error = %err, "cannot remove a stopped cluster's resources; the reaper retries");
            }
            return true;
        }
        false
    }

    /// Settles the store with what the provider holds, before serving: provider resources
    /// without a live row go, running rows without resources fail, provisioning rows are
    /// brought up again (the provider's create is idempotent) and deleting rows deleted.
    pub async fn reconcile(&self) -> Result<ClusterReconcile, ClusterError> {
        let mut report = ClusterReconcile::default();
        let held = self.inner.provider.list().await.map_err(|e| {
            ClusterError::Provider(format!("cannot list the provider's clusters: {e}"))
        })?;
        let held_ids: HashSet<ClusterId> = held.iter().map(|c| c.id).collect();
        let rows = self
            .inner
            .store
            .list_clusters(&ClusterFilter::default())
            .await?;
        let live: HashMap<ClusterId, &ClusterRecord> = rows
            .iter()
            .filter(|row| row.state.is_live())
            .map(|row| (row.id, row))
            .collect();
        for cluster in &held {
            if !live.contains_key(&cluster.id) {
                match self.inner.provider.delete(cluster.id).await {
                    Ok(()) => report.removed.push(cluster.id),
                    Err(err) => {
                        tracing::warn!(cluster = %cluster.id, error = %err, "cannot remove a cluster without a row");
                    }
                }
            }
        }
        for row in live.values() {
            match row.state {
                ClusterState::Deleting => {
                    report.resumed.push(row.id);
                    self.spawn_deletion(row.id);
                }
                ClusterState::Running if !held_ids.contains(&row.id) => {
                    let gone = "its resources were gone when Berth started".to_owned();
                    if self.fail_running(row, gone).await {
                        report.failed.push(row.id);
                    }
                }
                // A provisioning row is brought up whether or not its container was made
                // before Berth died: the provider's create is idempotent.
                ClusterState::Provisioning => {
                    report.resumed.push(row.id);
                    self.spawn_provisioning((*row).clone());
                }
                _ => {}
            }
        }
        report.removed.sort();
        report.failed.sort();
        report.resumed.sort();
        Ok(report)
    }

    /// Runs the reaper every `reap_interval` until `shutdown` resolves.
    pub async fn run_reaper(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(self.inner.settings.reap_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => {
                    if let Err(err) = self.reap().await {
                        tracing::warn!(error = %err, "cluster reaper pass failed");
                    }
                }
            }
        }
    }

    /// `owner`'s account goes: their live clusters are removed from the provider and every
    /// row of theirs deleted. The ids removed.
    pub async fn remove_owner(&self, owner: &Username) -> Result<Vec<ClusterId>, ClusterError> {
        let rows = self
            .inner
            .store
            .list_clusters(&ClusterFilter {
                owner: Some(owner.clone()),
                states: Vec::new(),
            })
            .await?;
        for row in rows.iter().filter(|row| row.state != ClusterState::Deleted) {
            self.inner.provider.delete(row.id).await.map_err(|e| {
                ClusterError::Provider(format!("cannot delete cluster {}: {e}", row.name))
            })?;
        }
        let ids = self.inner.store.delete_clusters_of(owner).await?;
        for id in &ids {
            let _ = self.inner.events.send(ClusterEvent::Removed {
                id: *id,
                owner: owner.clone(),
            });
        }
        Ok(ids)
    }

    /// Deletes every live cluster of `owner` (their account was disabled), as Berth; how many.
    pub async fn delete_owned(
        &self,
        owner: &Username,
        reason: &str,
    ) -> Result<usize, ClusterError> {
        let live = self
            .inner
            .store
            .list_clusters(&ClusterFilter {
                owner: Some(owner.clone()),
                states: vec![
                    ClusterState::Provisioning,
                    ClusterState::Running,
                    ClusterState::Failed,
                ],
            })
            .await?;
        for cluster in &live {
            self.delete(cluster.id, Actor::System, reason, None).await?;
        }
        Ok(live.len())
    }

    /// `from` was renamed `to`: their clusters follow.
    pub async fn rename_owner(&self, from: &Username, to: &Username) -> Result<u64, ClusterError> {
        Ok(self.inner.store.rename_cluster_owner(from, to).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_config() {
        assert_eq!(human(time::Duration::hours(2)), "2h");
        assert_eq!(human(time::Duration::minutes(90)), "1h30m");
        assert_eq!(human(time::Duration::seconds(45)), "45s");
        assert_eq!(human(time::Duration::ZERO), "0s");
    }
}
