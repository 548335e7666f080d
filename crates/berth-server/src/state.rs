//! The state every handler shares.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use berth_config::ConfigStore;
use berth_core::{LiveConfig, Retention, Terminals, Workspaces};
use berth_store::Store;
use bytes::Bytes;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, watch};

use crate::auth::{ClientTokens, JwtKey};
use crate::host::CpuSample;
use crate::limits::RateLimits;
use crate::metrics::Metrics;
use crate::pings::Pings;

/// How often recording retention runs (and once at start-up).
const RECORDING_RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);
/// The most recording ids one `recording.expire` audit entry lists.
const AUDITED_IDS: usize = 100;
/// The audit log's actor for what Berth does by itself: not a valid username.
const SYSTEM_ACTOR: &str = "(berth)";

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
    /// Terminals into workspaces, their recordings (`home/recordings`), presence and grids.
    pub terminals: Terminals,
    pub(crate) shared: Arc<Shared>,
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
    /// Serializes configuration writes with the reload that follows each, so a slow reload
    /// never swaps in a configuration older than one already in force.
    pub(crate) config_writes: Mutex<()>,
    pub(crate) openapi: OnceLock<Bytes>,
    /// The counters of the terminal sessions open now.
    pub(crate) live: crate::terminal::Live,
    /// Web sessions of the admin UI, served from memory and written behind to the store.
    pub(crate) sessions: crate::auth::session::Sessions,
}

impl AppState {
    /// The state over Berth's services. `jwt` signs login tokens (see [`JwtKey`]); `home` is
    /// Berth's home directory; terminal sessions are recorded under `home/recordings`.
    #[must_use]
    pub fn new(
        config: LiveConfig,
        config_store: Arc<ConfigStore>,
        store: Arc<dyn Store>,
        workspaces: Workspaces,
        jwt: JwtKey,
        home: PathBuf,
    ) -> Self {
        let terminals = Terminals::new(workspaces.clone(), home.join("recordings"));
        Self {
            config,
            config_store,
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
                config_writes: Mutex::new(()),
                openapi: OnceLock::new(),
                live: crate::terminal::Live::default(),
                sessions: crate::auth::session::Sessions::new(jwt.clone()),
            }),
        }
    }

    /// Writes buffered client pings and web-session changes to the database.
    /// [`crate::serve`] calls it periodically and at shutdown.
    pub async fn flush(&self) {
        self.shared.pings.flush(self.store.as_ref()).await;
        self.shared.sessions.flush(self.store.as_ref()).await;
    }

    /// Reads the web sessions an earlier run saved, so its browsers stay logged in.
    /// [`crate::serve`] calls it before it accepts connections.
    pub(crate) async fn load_sessions(&self) {
        let security = self.config.current().main.security.clone();
        let loaded = self
            .shared
            .sessions
            .load(
                self.store.as_ref(),
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
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stopping => break,
                _ = flush.tick() => self.flush().await,
                _ = retention.tick() => self.expire_recordings().await,
                _ = prune.tick() => {
                    self.shared.limits.prune();
                    let security = self.config.current().main.security.clone();
                    self.shared
                        .sessions
                        .prune(security.session_idle.get(), security.session_ttl.get());
                    // Attempts older than a day count toward no lockout.
                    let before = OffsetDateTime::now_utc() - time::Duration::days(1);
                    if let Err(err) = self.store.prune_login_attempts(before).await {
                        tracing::warn!(error = %err, "could not prune old login attempts");
                    }
                }
            }
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
        let expired = self
            .terminals
            .recordings()
            .expire(retention, OffsetDateTime::now_utc())
            .await;
        match expired {
            Ok(expired) if expired.recordings.is_empty() => {}
            Ok(expired) => {
                tracing::info!(
                    recordings = expired.recordings.len(),
                    bytes = expired.bytes,
                    "expired recordings deleted"
                );
                let listed: Vec<String> = expired
                    .recordings
                    .iter()
                    .take(AUDITED_IDS)
                    .map(ToString::to_string)
                    .collect();
                crate::audit::Audit::new(
                    SYSTEM_ACTOR,
                    "recording.expire",
                    "recordings",
                    std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                )
                .details(serde_json::json!({
                    "deleted": expired.recordings.len(),
                    "bytes": expired.bytes,
                    "ids": listed,
                    "max_age": limits.max_age.map(|a| a.to_string()),
                    "max_total_size": limits.max_total_size.map(|s| s.to_string()),
                }))
                .record(self.store.as_ref())
                .await;
            }
            Err(err) => tracing::warn!(error = %err, "recording retention failed"),
        }
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
