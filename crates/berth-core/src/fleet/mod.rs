//! The fleet service: machines and scripts from the inventory repository, reached over SSH.
//!
//! [`Fleet`] syncs the repository into a bare mirror (on a timer, on request, on a webhook),
//! validates `links.yaml`, `scripts.yaml`, the scripts and `secrets.ini` as a whole and puts
//! the result in force in one store transaction, or records the sync as failed and keeps the
//! inventory that was in force. It checks every machine's enrollment and health over SSH
//! (concurrency limited by `fleet.max_concurrency`), lets an admin trust a host key, audits
//! what changes and publishes [`FleetEvent`]s for the dashboard. [`MachineTerminals`] is the
//! terminal source of its machines (an SSH PTY as the machine's inventory user).
//!
//! It is a sibling of [`crate::Workspaces`]: same store, same audit, same clock; no HTTP.

mod checks;
mod sync;
mod terminals;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use berth_fleet::inventory::Script;
use berth_fleet::secrets::{Secrets, SecretsError, SecretsKey};
use berth_fleet::{Health, Mirror, RepositoryUrl, WebhookError};
use berth_ssh::ConnectOptions;
use berth_store::{MachineRecord, MachineSpec, Store, StoreError, SyncRecord};
use berth_types::MachineId;
use tokio::sync::{Semaphore, broadcast};

use crate::audit::Audit;
use crate::clock::Clock;

pub use checks::VerifyOutcome;
pub use terminals::{MachineAccess, MachineTerminals, may_reach, ssh_open_error};

/// The bare mirror's directory in the fleet directory.
pub const MIRROR_DIR: &str = "inventory.git";
/// The OpenSSH known_hosts file of machines (and of git over SSH) in the fleet directory.
pub const KNOWN_HOSTS_FILE: &str = "known_hosts";
/// The webhook's shared secret in the keys dir.
pub const WEBHOOK_SECRET_FILE: &str = "webhook.secret";
/// Syncs kept in the history the API answers.
pub const HISTORY_SHOWN: u32 = 50;

/// How the fleet is set up (main.yaml `fleet`, resolved against Berth's home).
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// The inventory repository.
    pub repository: RepositoryUrl,
    /// The branch synced.
    pub branch: String,
    /// `$BERTH_HOME/fleet`: the mirror and known_hosts.
    pub dir: PathBuf,
    /// Private keys, the webhook secret, git credentials, the age identity.
    pub keys_dir: PathBuf,
    /// Time between scheduled syncs.
    pub sync_interval: Duration,
    /// Time between health checks of every machine (jittered).
    pub health_interval: Duration,
    /// Timeouts, retries and keepalive of SSH connections.
    pub connect: ConnectOptions,
    /// The client id file on machines.
    pub client_id_path: String,
    /// Record the host key of a machine seen for the first time.
    pub trust_on_first_use: bool,
    /// SSH connections at once.
    pub max_concurrency: usize,
    /// How long one git command may take.
    pub git_timeout: Duration,
    /// The clock of every timestamp.
    pub clock: Arc<dyn Clock>,
}

impl FleetSettings {
    /// The settings of main.yaml's `fleet` section for a Berth whose home is `home`; `None`
    /// when `fleet.repository` is unset (no fleet). The section was checked when it was
    /// loaded, so a bad repository here is reported as the config checker words it.
    pub fn from_config(
        config: &berth_config::Fleet,
        home: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Self>, String> {
        let Some(repository) = &config.repository else {
            return Ok(None);
        };
        let repository = RepositoryUrl::parse(repository)?;
        let dir = home.join("fleet");
        let keys_dir = config.keys_dir.clone().unwrap_or_else(|| dir.join("keys"));
        let connect_timeout = config.connect_timeout.get();
        Ok(Some(Self {
            repository,
            branch: config.branch.clone(),
            dir,
            keys_dir,
            sync_interval: config.sync_interval.get(),
            health_interval: config.health_interval.get(),
            connect: ConnectOptions {
                connect_timeout,
                retries: config.connect_retries,
                ..ConnectOptions::default()
            },
            client_id_path: config.client_id_path.clone(),
            trust_on_first_use: config.trust_on_first_use,
            max_concurrency: usize::try_from(config.max_concurrency).unwrap_or(32).max(1),
            git_timeout: Duration::from_secs(120).max(connect_timeout * 2),
            clock,
        }))
    }

    /// The known_hosts file machines' host keys are checked against.
    #[must_use]
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join(KNOWN_HOSTS_FILE)
    }
}

/// Something changed in the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetEvent {
    /// A machine's row changed (enrollment, health, or its spec in a sync).
    Machine(Box<MachineRecord>),
    /// A machine left the inventory.
    Removed(MachineId),
    /// A sync started or finished.
    Sync(Box<SyncRecord>),
}

/// Why a fleet request failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// No machine has this id (or the caller may not see it).
    #[error("no machine {0}")]
    NotFound(MachineId),
    /// A request that makes no sense for this machine.
    #[error("{0}")]
    Invalid(String),
    /// The webhook secret file is missing or unusable.
    #[error("the webhook is not set up: {0}")]
    WebhookDisabled(String),
    /// The webhook request is not signed with the secret.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// The presented host key is not the one an admin asked to trust, or cannot be read.
    #[error("{0}")]
    HostKey(String),
    /// The machine could not be reached to read its host key.
    #[error("{0}")]
    Unreachable(String),
    /// The work was cut short (the runtime is shutting down).
    #[error("the fleet task was cancelled: {0}")]
    Cancelled(String),
    /// The age identity cannot be made or read.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The inventory in force: machines (as the store holds them), scripts and secrets of the
/// commit of the last good sync.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// The commit in force; `None` before the first good sync.
    pub commit: Option<String>,
    /// Machines by id.
    pub machines: BTreeMap<MachineId, MachineSpec>,
    /// Scripts in `scripts.yaml` order, with their checked content.
    pub scripts: Vec<InventoryScript>,
    /// The decrypted `secrets.ini` (empty without one).
    pub secrets: Secrets,
    /// Whether scripts and secrets were read for `commit` (false when the mirror could not be
    /// read at start-up: the next sync reads them).
    pub complete: bool,
}

/// A script of the inventory with the file it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryScript {
    /// Its entry in `scripts.yaml`.
    pub script: Script,
    /// The content of its file at the commit in force.
    pub content: Vec<u8>,
}

/// What the API shows about syncing.
#[derive(Debug, Clone)]
pub struct FleetStatus {
    /// The repository, as configured (it holds no credentials).
    pub repository: String,
    /// The branch synced.
    pub branch: String,
    /// The commit in force.
    pub commit: Option<String>,
    /// A sync is running now.
    pub syncing: bool,
    /// Recent syncs, newest first.
    pub history: Vec<SyncRecord>,
}

/// The fleet service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: FleetSettings,
    store: Arc<dyn Store>,
    audit: Audit,
    mirror: Mirror,
    secrets_key: SecretsKey,
    inventory: RwLock<Arc<Inventory>>,
    /// One sync at a time.
    sync_lock: tokio::sync::Mutex<()>,
    syncing: AtomicBool,
    /// A webhook sync is queued and has not started: later webhooks join it.
    webhook_pending: AtomicBool,
    /// Held for writing while a sync puts an inventory in force (store and memory), for
    /// reading while a check records its result: a check made with settings a sync just
    /// replaced is dropped instead of landing on the new row.
    in_force: tokio::sync::RwLock<()>,
    /// SSH connections at once (`fleet.max_concurrency`).
    permits: Arc<Semaphore>,
    /// Recent checks per machine.
    health: Mutex<HashMap<MachineId, Health>>,
    events: broadcast::Sender<FleetEvent>,
}

impl Fleet {
    /// The fleet of `settings`, recording into `store`. Call [`Fleet::start`] before use.
    #[must_use]
    pub fn new(settings: FleetSettings, store: Arc<dyn Store>) -> Self {
        let mirror = Mirror::new(
            settings.dir.join(MIRROR_DIR),
            settings.keys_dir.clone(),
            settings.known_hosts(),
            settings.git_timeout,
        );
        let (events, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                secrets_key: SecretsKey::in_dir(&settings.keys_dir),
                permits: Arc::new(Semaphore::new(settings.max_concurrency)),
                audit: Audit::new(Arc::clone(&store)),
                store,
                mirror,
                settings,
                inventory: RwLock::default(),
                sync_lock: tokio::sync::Mutex::new(()),
                syncing: AtomicBool::new(false),
                webhook_pending: AtomicBool::new(false),
                in_force: tokio::sync::RwLock::new(()),
                health: Mutex::default(),
                events,
            }),
        }
    }

    /// Prepares the fleet at start-up: makes the fleet and keys directories (0700), marks
    /// syncs a previous process left running `interrupted`, loads the machines in force from
    /// the store and re-reads the scripts and secrets of the commit in force from the mirror.
    pub async fn start(&self) -> Result<(), FleetError> {
        let settings = &self.inner.settings;
        for dir in [&settings.dir, &settings.keys_dir] {
            make_private_dir(dir)
                .map_err(|e| FleetError::Invalid(format!("cannot make {}: {e}", dir.display())))?;
        }
        let now = self.now();
        let interrupted = self.inner.store.interrupt_running_syncs(now).await?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "fleet syncs left running by a previous process are marked interrupted"
            );
        }
        let records = self.inner.store.list_machines().await?;
        {
            let mut health = crate::workspaces::lock(&self.inner.health);
            for record in &records {
                health.insert(record.spec.id.clone(), checks::health_of(record));
            }
        }
        let commit = self.inner.store.commit_in_force().await?;
        let mut inventory = Inventory {
            commit: commit.clone(),
            machines: records
                .into_iter()
                .map(|r| (r.spec.id.clone(), r.spec))
                .collect(),
            ..Inventory::default()
        };
        if let Some(commit) = &commit {
            match self.read_scripts_and_secrets(commit).await {
                Ok((scripts, secrets)) => {
                    inventory.scripts = scripts;
                    inventory.secrets = secrets;
                    inventory.complete = true;
                }
                Err(errors) => {
                    let first = errors
                        .first()
                        .map(|e| e.message.clone())
                        .unwrap_or_default();
                    tracing::warn!(%commit, error = %first, "cannot re-read the inventory in force from the mirror; the next sync reads it");
                }
            }
        }
        *self.inventory_lock_mut() = Arc::new(inventory);
        Ok(())
    }

    /// Starts the sync loop (a sync at once, then every `sync_interval`) and the health loop
    /// (every `health_interval`, jittered). They run until the runtime stops.
    pub fn spawn_loops(&self) {
        let fleet = self.clone();
        tokio::spawn(async move { fleet.sync_loop().await });
        let fleet = self.clone();
        tokio::spawn(async move { fleet.health_loop().await });
    }

    /// Fleet events from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<FleetEvent> {
        self.inner.events.subscribe()
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> &FleetSettings {
        &self.inner.settings
    }

    /// The SSH connections at once (`fleet.max_concurrency`), shared by checks and operations.
    pub(crate) fn permits(&self) -> Arc<Semaphore> {
        Arc::clone(&self.inner.permits)
    }

    /// The inventory in force.
    #[must_use]
    pub fn inventory(&self) -> Arc<Inventory> {
        Arc::clone(
            &self
                .inner
                .inventory
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Every machine's row, by id.
    pub async fn machines(&self) -> Result<Vec<MachineRecord>, FleetError> {
        Ok(self.inner.store.list_machines().await?)
    }

    /// One machine's row.
    pub async fn machine(&self, id: &MachineId) -> Result<MachineRecord, FleetError> {
        self.inner
            .store
            .machine(id)
            .await?
            .ok_or_else(|| FleetError::NotFound(id.clone()))
    }

    /// The commit in force, whether a sync runs, and the recent history.
    pub async fn status(&self) -> Result<FleetStatus, FleetError> {
        let settings = &self.inner.settings;
        Ok(FleetStatus {
            repository: settings.repository.to_string(),
            branch: settings.branch.clone(),
            commit: self.inventory().commit.clone(),
            syncing: self.inner.syncing.load(Ordering::SeqCst),
            history: self.inner.store.list_syncs(HISTORY_SHOWN).await?,
        })
    }

    /// The age recipient `secrets.ini` is encrypted to, making the identity on first use.
    pub async fn secrets_recipient(&self) -> Result<String, FleetError> {
        self.inner.secrets_key.ensure().await?;
        Ok(self.inner.secrets_key.recipient().await?)
    }

    fn now(&self) -> time::OffsetDateTime {
        self.inner.settings.clock.now()
    }

    fn inventory_lock_mut(&self) -> std::sync::RwLockWriteGuard<'_, Arc<Inventory>> {
        self.inner
            .inventory
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, event: FleetEvent) {
        let _ = self.inner.events.send(event);
    }
}

/// Runs `work` in a task of its own and waits for it, so that a caller that goes away (an
/// HTTP handler whose client disconnected) never leaves a sync, a check or a trust half done.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, FleetError> {
    match tokio::spawn(work).await {
        Ok(done) => Ok(done),
        // A panic stays a panic: the server answers it as every panic (a 500, cause logged).
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(FleetError::Cancelled(e.to_string())),
    }
}

/// Makes `dir` (and its parents) when missing; a directory Berth makes is 0700.
fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
