//! The configuration in force: read by every service, replaced whole on reload (SIGHUP, or after an edit through the web UI).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use berth_config::{Config, ConfigErrors};
use tokio::sync::watch;

/// The configuration currently in force and the directory it was loaded from.
///
/// Readers take an `Arc<Config>` snapshot and never hold the lock across an `.await`; a reload
/// validates the files first and swaps the snapshot only when every file is valid, so a bad edit
/// leaves the old configuration in force.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    dir: PathBuf,
    current: Arc<RwLock<Arc<Config>>>,
    /// Counts reloads that put a configuration in force, for services that act on a change
    /// (terminals on machines a user may no longer reach).
    reloads: Arc<watch::Sender<u64>>,
}

impl LiveConfig {
    /// Loads and validates the configuration in `dir`.
    pub fn load(dir: &Path) -> Result<Self, ConfigErrors> {
        let config = berth_config::check(dir)?;
        Ok(Self::from_config(dir, config))
    }

    /// The configuration directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A snapshot of the configuration in force.
    #[must_use]
    pub fn current(&self) -> Arc<Config> {
        let guard = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(&guard)
    }

    /// Reads the files again; on any error keeps the configuration in force and returns why.
    pub fn reload(&self) -> Result<Arc<Config>, ConfigErrors> {
        let config = Arc::new(berth_config::check(&self.dir)?);
        let mut guard = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = Arc::clone(&config);
        drop(guard);
        self.reloads.send_modify(|n| *n += 1);
        Ok(config)
    }

    /// Told of every reload that put a configuration in force from now on.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.reloads.subscribe()
    }
}

impl LiveConfig {
    /// A handle over an already loaded configuration (tests, and callers that loaded it).
    #[must_use]
    pub fn from_config(dir: &Path, config: Config) -> Self {
        Self {
            dir: dir.to_owned(),
            current: Arc::new(RwLock::new(Arc::new(config))),
            reloads: Arc::new(watch::Sender::new(0)),
        }
    }
}
