//! The state every handler shares.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use berth_config::ConfigStore;
use berth_core::{
    Accounts, Audit, Clients, Clusters, Fleet, Invites, LiveConfig, Logins, Retention, Tables,
    Terminals, WebSessions, Workspaces,
};
use berth_store::Store;
use bytes::Bytes;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, broadcast, watch};

use crate::auth::{ClientTokens, JwtKey};
use crate::host::CpuSample;
use crate::limits::RateLimits;
use crate::metrics::Metrics;
use crate::pings::Pings;

/// How often recording retention runs (and once at start-up).
const RECORDING_RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// How many password hashes may be computed at once: each takes 19 MiB and tens of
/// milliseconds, so a flood of logins must queue rather than exhaust memory.
const PASSWORD_SLOTS: usize = 2;

/// Services shared by all handlers; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The configuration in force, swapped whole on reload.
    pub config: LiveConfig,
    /// Locked, validated edits of the configuration files (admin API and UI).
    pub config_store: Arc<ConfigStore>,
    /// Runtime state: workspaces, clients, login attempts, audit.
    pub store: Arc<dyn Store>,
    /// The workspace manager.
    pub workspaces: Workspaces,
    /// Terminals on every kind of target, their recordings, presence and grids.
    pub terminals: Terminals,
    /// The audit log.
    pub audit: Audit,
    /// What an account has across every kind of resource (renames, deletions).
    pub accounts: Accounts,
    /// Client pings.
    pub clients: Clients,
    /// Login attempts, for the lockout.
    pub logins: Logins,
    /// Table queries over runtime state.
    pub tables: Tables,
    /// The fleet of machines, when main.yaml sets `fleet.repository`.
    pub fleet: Option<Fleet>,
    /// Script runs on the fleet's machines, with the fleet.
    pub operations: Option<berth_core::Operations>,
    /// Ephemeral Kubernetes clusters, when main.yaml sets `clusters.enabled`.
    pub clusters: Option<Clusters>,
    /// Invite codes for self-service sign-up.
    pub invites: Invites,
    /// The SSH gateway, when main.yaml sets `ssh.listen`: what the UI tells users.
    pub ssh_gateway: Option<SshGatewayInfo>,
    /// Its backend, told of every reload (revoked keys and disabled users).
    ssh_backend: Option<berth_core::gateway::SshGateway>,
    /// Web sessions as stored.
    pub(crate) web_sessions: WebSessions,
    pub(crate) shared: Arc<Shared>,
}

/// Waits for the next fleet event and says whether it may change who reaches a machine;
/// never ends without a fleet.
async fn fleet_change(events: &mut Option<broadcast::Receiver<berth_core::FleetEvent>>) -> bool {
    use berth_core::FleetEvent;
    use tokio::sync::broadcast::error::RecvError;
    let Some(receiver) = events else {
        return std::future::pending().await;
    };
    match receiver.recv().await {
        Ok(FleetEvent::Removed(_) | FleetEvent::Sync(_)) | Err(RecvError::Lagged(_)) => true,
        Ok(FleetEvent::Machine(record)) => {
            record.enrollment != berth_types::fleet::EnrollmentStatus::Enrolled
        }
        Err(RecvError::Closed) => {
            *events = None;
            false
        }
    }
}

/// The SSH gateway as users reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshGatewayInfo {
    /// What users type after `ssh -p PORT` (`ssh.public_address`, else the host of
    /// `public_url` or the listen address), without the port.
    pub host: String,
    /// The port users connect to.
    pub port: u16,
    /// The host key's SHA256 fingerprint.
    pub fingerprint: String,
    /// The host key's public half (`ssh-ed25519 AAAA...`), for a known_hosts line.
    pub public_key: String,
}

impl SshGatewayInfo {
    /// `ssh -p PORT USER@HOST`, or without `-p` on port 22.
    #[must_use]
    pub fn command(&self, login: &str) -> String {
        if self.port == 22 {
            format!("ssh {login}@{}", self.host)
        } else {
            format!("ssh -p {} {login}@{}", self.port, self.host)
        }
    }

    /// The known_hosts line that lets `ssh` in without asking.
    #[must_use]
    pub fn known_hosts(&self) -> String {
        if self.port == 22 {
            format!("{} {}", self.host, self.public_key)
        } else {
            format!("[{}]:{} {}", self.host, self.port, self.public_key)
        }
    }
}

/// What the server itself keeps in memory.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) jwt: JwtKey,
    pub(crate) client_tokens: ClientTokens,
    /// Berth's home, whose file system the monitor reports.
    pub(crate) home: PathBuf,
    pub(crate) limits: RateLimits,
    pub(crate) pings: Pings,
    pub(crate) metrics: Metrics,
    pub(crate) cpu: Mutex<Option<CpuSample>>,
    pub(crate) password_slots: Semaphore,
    /// Login attempts for one account, one at a time (see `auth::lockout`).
    pub(crate) login_queue: crate::auth::AccountQueue,
    /// The throttled accounts' last reported delay periods (see `auth::lockout`).
    pub(crate) throttle_reports: crate::auth::ThrottleReports,
    /// Serializes configuration writes with the reload that follows each, so a slow reload
    /// never swaps in a configuration older than one already in force.
    pub(crate) config_writes: Mutex<()>,
    pub(crate) openapi: OnceLock<Bytes>,
    /// The counters of the terminal sessions open now.
    pub(crate) live: crate::terminal::Live,
    /// Web sessions of the admin UI, served from memory and written behind to the store.
    pub(crate) sessions: crate::auth::session::Sessions,
    /// Set by `serve_tls`: this process terminates TLS (cookies `__Host-`/`Secure`, HSTS).
    pub(crate) serving_tls: std::sync::atomic::AtomicBool,
}

impl AppState {
    /// The state over Berth's services, made by the binary (which decides, for instance, which
    /// terminal sources `terminals` has). `jwt` signs login tokens (see [`JwtKey`]); `home` is
    /// Berth's home directory.
    #[must_use]
    pub fn new(
        config: LiveConfig,
        config_store: Arc<ConfigStore>,
        store: Arc<dyn Store>,
        workspaces: Workspaces,
        terminals: Terminals,
        jwt: JwtKey,
        home: PathBuf,
    ) -> Self {
        let clock = workspaces.clock();
        Self {
            config,
            config_store,
            audit: Audit::new(Arc::clone(&store)),
            accounts: Accounts::standard(&workspaces, &terminals, None),
            invites: Invites::new(Arc::clone(&store)),
            clusters: None,
            clients: Clients::new(Arc::clone(&store)),
            logins: Logins::new(Arc::clone(&store)),
            tables: Tables::new(Arc::clone(&store)),
            fleet: None,
            ssh_gateway: None,
            ssh_backend: None,
            operations: None,
            web_sessions: WebSessions::new(Arc::clone(&store)),
            store,
            workspaces,
            terminals,
            shared: Arc::new(Shared {
                jwt: jwt.clone(),
                client_tokens: ClientTokens::default(),
                home,
                limits: RateLimits::default(),
                pings: Pings::default(),
                metrics: Metrics::default(),
                cpu: Mutex::new(None),
                password_slots: Semaphore::new(PASSWORD_SLOTS),
                login_queue: crate::auth::AccountQueue::default(),
                throttle_reports: crate::auth::ThrottleReports::default(),
                config_writes: Mutex::new(()),
                openapi: OnceLock::new(),
                live: crate::terminal::Live::default(),
                sessions: crate::auth::session::Sessions::with_clock(jwt.clone(), clock),
                serving_tls: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The same state with the cluster service `clusters` (reconciled by the caller); account
    /// renames and deletions then reach clusters too.
    #[must_use]
    pub fn with_clusters(mut self, clusters: Clusters) -> Self {
        self.accounts = Accounts::standard(&self.workspaces, &self.terminals, Some(&clusters));
        self.clusters = Some(clusters);
        self
    }

    /// The same state with the fleet `fleet` (started by the caller).
    #[must_use]
    pub fn with_fleet(mut self, fleet: Fleet) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// The same state with the SSH gateway `info` and its `backend` (served by the caller):
    /// every reload rechecks the backend's sessions.
    #[must_use]
    pub fn with_ssh_gateway(
        mut self,
        info: SshGatewayInfo,
        backend: berth_core::gateway::SshGateway,
    ) -> Self {
        self.ssh_gateway = Some(info);
        self.ssh_backend = Some(backend);
        self
    }

    /// The same state with the operations `operations` on the fleet's machines (started by
    /// the caller: [`berth_core::Operations::start`]).
    #[must_use]
    pub fn with_operations(mut self, operations: berth_core::Operations) -> Self {
        self.operations = Some(operations);
        self
    }

    /// Takes the turn of `username` in the login queue, as an admitted login attempt does from
    /// its second look at the verdict to the record of its outcome, and keeps it until the
    /// guard is dropped; `None` if it did not come within the queue's deadline. Tests hold it
    /// to show what does and does not wait for it.
    #[doc(hidden)]
    pub async fn hold_login_turn(
        &self,
        username: &str,
    ) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        self.shared
            .login_queue
            .enter(username, crate::auth::LOGIN_QUEUE_DEADLINE)
            .await
            .ok()
    }

    /// Writes buffered client pings and web-session changes to the database.
    /// [`crate::serve`] calls it periodically and at shutdown.
    pub async fn flush(&self) {
        self.shared.pings.flush(&self.clients).await;
        self.shared.sessions.flush(&self.web_sessions).await;
    }

    /// Reads the web sessions an earlier run saved, so its browsers stay logged in.
    /// [`crate::serve`] calls it before it accepts connections.
    pub(crate) async fn load_sessions(&self) {
        let security = self.config.current().main.security.clone();
        let loaded = self
            .shared
            .sessions
            .load(
                &self.web_sessions,
                security.session_idle.get(),
                security.session_ttl.get(),
            )
            .await;
        match loaded {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "web sessions restored"),
            Err(err) => {
                tracing::warn!(error = %err, "could not read saved web sessions; browsers log in again");
            }
        }
    }

    /// Periodic chores until `stop` turns true: flush pings, forget idle rate-limit buckets,
    /// prune old login attempts.
    pub(crate) async fn housekeeping(self, mut stop: watch::Receiver<bool>) {
        let stopping = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        tokio::pin!(stopping);
        let mut flush = tokio::time::interval(crate::PING_FLUSH_INTERVAL);
        let mut prune = tokio::time::interval(std::time::Duration::from_secs(60));
        let mut retention = tokio::time::interval(RECORDING_RETENTION_INTERVAL);
        let mut reloads = self.config.subscribe();
        let mut fleet_events = self.fleet.as_ref().map(Fleet::subscribe);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stopping => break,
                _ = flush.tick() => self.flush().await,
                _ = retention.tick() => self.expire_recordings().await,
                Ok(()) = reloads.changed() => {
                    reloads.mark_unchanged();
                    self.recheck_terminals().await;
                }
                // A sync that took a machine away or changed its tags, or a machine no
                // longer enrolled: its terminals are rechecked too.
                changed = fleet_change(&mut fleet_events) => if changed {
                    self.recheck_terminals().await;
                },
                _ = prune.tick() => {
                    self.shared.limits.prune();
                    let security = self.config.current().main.security.clone();
                    self.shared
                        .sessions
                        .prune(security.session_idle.get(), security.session_ttl.get());
                    // Failures older than a day count toward no lockout; successes name
                    // the addresses an account is used from for as long as that lasts.
                    let now = self.workspaces.now();
                    let failures = now - time::Duration::days(1);
                    let successes =
                        now - time::Duration::days(crate::auth::KNOWN_ADDRESS_DAYS);
                    if let Err(err) = self.logins.prune(failures, successes).await {
                        tracing::warn!(error = %err, "could not prune old login attempts");
                    }
                }
            }
        }
    }

    /// Ends the machine terminals their users may no longer use: of users disabled or gone
    /// (4401, also after a hand edit of users.yaml), on machines their `machines:` selectors
    /// no longer match (4403); and the SSH gateway's sessions of users disabled or removed and of
    /// keys no longer theirs, after the configuration in force changed. [`crate::serve`]
    /// runs it at every reload.
    pub async fn recheck_terminals(&self) {
        if let Some(backend) = &self.ssh_backend {
            let closed = backend.recheck();
            if closed > 0 {
                tracing::info!(
                    sessions = closed,
                    "SSH gateway sessions closed: their key or account is gone"
                );
            }
        }
        let config = self.config.current();
        // Machine terminals only: a workspace's access lives in the store (members) and its
        // account changes are the users API's cascade, which a recheck here would race
        // (a rename would end as "deleted" instead of reconnecting).
        let told = self
            .terminals
            .recheck(berth_types::TargetKind::Machine, |user| {
                berth_core::role_of(&config, user).ok_or(
                    // In the words of the users API's own cascade, which may come first.
                    if config.user(user.as_str()).is_some() {
                        "Your account was disabled."
                    } else {
                        "Your account was deleted."
                    },
                )
            })
            .await;
        if told > 0 {
            tracing::info!(
                sessions = told,
                "terminals closed: their users may no longer use them"
            );
        }
    }

    /// Deletes the recordings that main.yaml's `recordings` limits no longer keep, and audits
    /// it. [`crate::serve`] runs it at start-up and every ten minutes.
    pub async fn expire_recordings(&self) {
        let limits = self.config.current().main.recordings.clone();
        let retention = Retention {
            max_age: limits.max_age.map(berth_config::HumanDuration::get),
            max_total_bytes: limits.max_total_size.map(berth_config::DiskSize::bytes),
        };
        let mut described = serde_json::Map::new();
        described.insert(
            "max_age".into(),
            limits.max_age.map(|a| a.to_string()).into(),
        );
        described.insert(
            "max_total_size".into(),
            limits.max_total_size.map(|s| s.to_string()).into(),
        );
        self.terminals
            .recordings()
            .apply_retention(retention, OffsetDateTime::now_utc(), &self.audit, described)
            .await;
    }

    /// Runs a configuration change in a blocking task, then reloads the configuration in
    /// force, so the change applies to the very next request.
    pub(crate) async fn change_config<T: Send + 'static>(
        &self,
        change: impl FnOnce(&ConfigStore) -> Result<T, berth_config::StoreError> + Send + 'static,
    ) -> Result<T, crate::error::ApiError> {
        let state = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let _serial = state
                .shared
                .config_writes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let result = change(&state.config_store);
            if result.is_ok()
                && let Err(errors) = state.config.reload()
            {
                tracing::error!(errors = %errors, "the configuration changed through the API does not load");
            }
            result
        })
        .await;
        match joined {
            Ok(result) => result.map_err(crate::error::ApiError::from),
            Err(err) => Err(crate::error::ApiError::internal(err)),
        }
    }
}
