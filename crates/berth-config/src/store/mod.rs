//! [`ConfigStore`]: changes to the configuration files, each a locked read-modify-write.
//!
//! Every change follows the same steps: take the locks (the file written exclusively, the files
//! it is checked against shared, always in the order main.yaml, containers.yaml, users.yaml),
//! read and validate the files as they are now, apply the change, render the changed files,
//! validate the result exactly as it will be read back, and replace the files atomically. A
//! change that would leave an invalid configuration is refused and nothing is written.

pub(crate) mod files;
pub(crate) mod render;
mod templates;
pub(crate) mod users;

use std::io;
use std::path::{Path, PathBuf};

use files::Mode;
pub use files::clean_stray_temp_files;

use crate::error::{ConfigError, ConfigErrors};
use crate::load;
use crate::model::{Admin, Config};
use crate::passwords::PasswordError;
use crate::secret::Secret;

/// Which file a change writes (users.yaml also stands for `users.d/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Main,
    Containers,
    Users,
}

/// Why a change was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or lock could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The files on disk are invalid, so no change is made until they are fixed.
    #[error("the configuration on disk is invalid; fix it first:\n{0}")]
    InvalidOnDisk(ConfigErrors),
    /// The change would make the configuration invalid; nothing was written.
    #[error("refused, the configuration would be invalid:\n{0}")]
    Invalid(ConfigErrors),
    /// No user has this name.
    #[error("there is no user {0:?}")]
    NoSuchUser(String),
    /// The username is taken.
    #[error("a user {0:?} already exists")]
    UserExists(String),
    /// The name is the admin's of main.yaml, which no user of users.yaml may take.
    #[error("{0:?} is the admin's name; choose another username")]
    AdminName(String),
    /// No template has this name.
    #[error("there is no template {0:?}")]
    NoSuchTemplate(String),
    /// The template name is taken.
    #[error("a template {0:?} already exists")]
    TemplateExists(String),
    /// The template cannot be removed or renamed while users may start it.
    #[error(
        "template {template:?} cannot be {action}: {} may start it (users.yaml or users.d); \
         take it from them first",
        users.join(", ")
    )]
    TemplateInUse {
        /// The template.
        template: String,
        /// "removed" or "renamed".
        action: &'static str,
        /// The users whose templates list it.
        users: Vec<String>,
    },
    /// The user's access is locked in users.yaml.
    #[error(
        "the access of {username:?} is locked (access_locked: true in users.yaml): its {what} \
         cannot be changed here; edit users.yaml to change it"
    )]
    AccessLocked {
        /// The user.
        username: String,
        /// What the change tried to alter: "templates", "role", ...
        what: &'static str,
    },
    /// A field that this operation does not change, e.g. a user's id.
    #[error("{0}")]
    Unchangeable(&'static str),
    /// No client token with this id.
    #[error("{username:?} has no client {client}")]
    NoSuchClient {
        /// The user.
        username: String,
        /// The client id asked for.
        client: berth_types::ClientId,
    },
    /// The user already has this SSH key.
    #[error("{username:?} already has the SSH key {fingerprint}")]
    SshKeyExists {
        /// The user.
        username: String,
        /// The key's fingerprint.
        fingerprint: String,
    },
    /// The user has no SSH key with this fingerprint.
    #[error("{username:?} has no SSH key {fingerprint:?}")]
    NoSuchSshKey {
        /// The user.
        username: String,
        /// The fingerprint asked for.
        fingerprint: String,
    },
    /// A password could not be hashed.
    #[error(transparent)]
    Password(#[from] PasswordError),
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The configuration directory, for reading and changing it.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    dir: PathBuf,
}

impl ConfigStore {
    /// Opens the configuration in `dir` and removes temporary files left by a writer that died
    /// mid-write. The files are validated by every read and change, not here.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(StoreError::io(
                &dir,
                io::Error::new(io::ErrorKind::NotFound, "not a directory"),
            ));
        }
        clean_stray_temp_files(&dir).map_err(|e| StoreError::io(&dir, e))?;
        Ok(Self { dir })
    }

    /// The configuration directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads and validates every file, under shared locks so that no change is seen half-done.
    pub fn load(&self) -> Result<Config, ConfigErrors> {
        crate::check(&self.dir)
    }

    /// Changes the admin account of main.yaml (username, password hash). The file is edited in
    /// place when it can be, so its comments stay.
    pub fn update_admin(&self, edit: impl FnOnce(&mut Admin)) -> Result<Admin, StoreError> {
        self.transaction(Scope::Main, |config| {
            edit(&mut config.main.admin);
            Ok(config.main.admin.clone())
        })
    }

    /// Makes a new metrics token, replacing any other, and returns it once; main.yaml keeps
    /// only its SHA-256 (`security.metrics_token_hash`).
    pub fn issue_metrics_token(&self) -> Result<Secret, StoreError> {
        self.transaction(Scope::Main, |config| {
            let (token, hash) = crate::tokens::new_metrics_token();
            config.main.security.metrics_token_hash = Some(hash);
            Ok(token)
        })
    }

    /// Removes the metrics token: `/metrics` answers anyone again. True if there was one.
    pub fn remove_metrics_token(&self) -> Result<bool, StoreError> {
        self.transaction(Scope::Main, |config| {
            Ok(config.main.security.metrics_token_hash.take().is_some())
        })
    }

    /// Runs `apply` on the current configuration under the locks of `scope`, then saves the
    /// files of `scope` that changed.
    pub(crate) fn transaction<T>(
        &self,
        scope: Scope,
        apply: impl FnOnce(&mut Config) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        use Mode::{Exclusive as X, Shared as S};
        let modes = match scope {
            Scope::Main => [X, S, S],
            Scope::Containers => [S, X, S],
            Scope::Users => [S, S, X],
        };
        let _locks = files::lock(&self.dir, modes).map_err(|e| StoreError::io(&self.dir, e))?;
        let sources = load::read_sources(&self.dir);
        let old = load::build(&sources).map_err(StoreError::InvalidOnDisk)?;
        let mut new = old.clone();
        let value = apply(&mut new)?;
        let plan = render::Plan::new(&sources, &old, &new, scope)?;
        let reread = load::build(&plan.apply_to(&sources))
            .map_err(|e| StoreError::Invalid(plan.unlocate(e)))?;
        if reread != new {
            return Err(StoreError::Invalid(ConfigErrors::single(ConfigError::new(
                self.dir.display().to_string(),
                None,
                "",
                "the saved files would read back differently from the change; nothing was written",
            ))));
        }
        plan.write(&self.dir)?;
        Ok(value)
    }
}

/// Reads and validates the configuration in `dir`: every file, cross-checked, every error.
///
/// Takes shared locks, so a change in progress is seen before or after, never half-done; when
/// the lock files cannot be created (a read-only directory) it reads without them, relying on
/// atomic replacement. Hidden files and `*~` backups in `users.d/` are ignored.
pub fn check(dir: &Path) -> Result<Config, ConfigErrors> {
    let _locks = files::lock_for_reading(dir);
    load::load_dir_unlocked(dir)
}
