//! The state every handler shares.

use std::sync::Arc;

use berth_config::ConfigStore;
use berth_core::{LiveConfig, Workspaces};
use berth_store::Store;

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
}
