//! The typed configuration: one struct per file, and [`Config`] over all of them.

mod clusters;
mod main_config;
mod overrides;
mod registration;
mod templates;
mod users;

use std::collections::BTreeMap;

use berth_types::{Role, Username};

pub use clusters::{ClusterNetwork, ClusterProvider, Clusters, DEFAULT_CLUSTER_IMAGE};
pub(crate) use main_config::default_admin_username;
pub use main_config::{Admin, Fleet, Logging, MainConfig, Recordings, Runtime, Security, Ssh, Tls};
pub use overrides::UserOverrides;
pub use registration::{Registration, RegistrationDefaults, RegistrationMode};
pub use templates::{BindMount, ContainersFile, Persist, Shell, Template, Volume};
pub use users::{ClientToken, REGISTERED_AT_KEY, REGISTERED_KEY, REGISTERED_SELF, User, UsersFile};

/// A whole, validated configuration directory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// `main.yaml`.
    pub main: MainConfig,
    /// The users of `users.yaml`, in file order.
    pub users: Vec<User>,
    /// The templates of `containers.yaml`, in file order.
    pub templates: Vec<Template>,
    /// `users.d/<username>.yaml`, by username.
    pub overrides: BTreeMap<Username, UserOverrides>,
}

impl Config {
    /// The user called `username`.
    #[must_use]
    pub fn user(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username.as_str() == username)
    }

    /// The template called `name`.
    #[must_use]
    pub fn template(&self, name: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.name == name)
    }

    /// The overrides of `username`, if `users.d/<username>.yaml` exists.
    #[must_use]
    pub fn overrides(&self, username: &str) -> Option<&UserOverrides> {
        self.overrides.get(username)
    }

    /// The templates `username` may start, in `containers.yaml` order: those listed for the
    /// user plus the extras of `users.d/<username>.yaml`; every template for admins; none for
    /// disabled or unknown users.
    #[must_use]
    pub fn allowed_templates(&self, username: &Username) -> Vec<&Template> {
        let Some(user) = self.user(username.as_str()) else {
            return Vec::new();
        };
        if user.disabled {
            return Vec::new();
        }
        if user.role == Role::Admin {
            return self.templates.iter().collect();
        }
        let extra = self
            .overrides(username.as_str())
            .map(|o| o.templates.as_slice())
            .unwrap_or_default();
        self.templates
            .iter()
            .filter(|t| user.templates.contains(&t.name) || extra.contains(&t.name))
            .collect()
    }

    /// How many workspaces `username` may have at once.
    #[must_use]
    pub fn max_workspaces(&self, username: &str) -> u32 {
        self.overrides(username)
            .and_then(|o| o.max_workspaces)
            .unwrap_or(self.main.runtime.max_workspaces_per_user)
    }

    /// Whether `username` may ask for clusters: the admin of main.yaml and users with `role:
    /// admin` always, other users with `clusters: true`; disabled and unknown users never.
    /// Whether clusters are enabled at all is `main.clusters.enabled`.
    #[must_use]
    pub fn may_use_clusters(&self, username: &str) -> bool {
        if self.main.admin.username.as_str() == username {
            return true;
        }
        self.user(username)
            .is_some_and(|u| !u.disabled && (u.role == Role::Admin || u.clusters))
    }
}
