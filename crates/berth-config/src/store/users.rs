//! Adding, changing and removing users, their overrides and their client tokens.

use std::collections::BTreeMap;

use berth_types::{ClientId, Role, UserId, Username};

use super::{ConfigStore, Scope, StoreError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::{
    Config, REGISTERED_AT_KEY, REGISTERED_KEY, REGISTERED_SELF, User, UserOverrides,
};
use crate::passwords::PasswordHash;
use crate::ssh_keys::SshKey;
use crate::tokens::{IssuedToken, new_token};

/// What a new user is made of; the id is generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The login name.
    pub username: Username,
    /// `user` or `admin`.
    pub role: Role,
    /// The password hash ([`crate::hash_password`]), or none for token-only users.
    pub password_hash: Option<PasswordHash>,
    /// Templates the user may start.
    pub templates: Vec<String>,
    /// Lock the user's access against changes through Berth.
    pub access_locked: bool,
    /// Free-form labels.
    pub metadata: BTreeMap<String, String>,
}

impl NewUser {
    /// A user with no password, no templates and the `user` role.
    #[must_use]
    pub fn new(username: Username) -> Self {
        Self {
            username,
            role: Role::User,
            password_hash: None,
            templates: Vec::new(),
            access_locked: false,
            metadata: BTreeMap::new(),
        }
    }
}

fn find<'a>(config: &'a mut Config, username: &str) -> Result<&'a mut User, StoreError> {
    config
        .users
        .iter_mut()
        .find(|u| u.username.as_str() == username)
        .ok_or_else(|| StoreError::NoSuchUser(username.to_owned()))
}

impl ConfigStore {
    /// Adds a user with a fresh id and returns it as saved.
    pub fn add_user(&self, new: NewUser) -> Result<User, StoreError> {
        self.transaction(Scope::Users, |config| {
            if config.user(new.username.as_str()).is_some() {
                return Err(StoreError::UserExists(new.username.to_string()));
            }
            let user = User {
                username: new.username,
                id: UserId::random(),
                role: new.role,
                password_hash: new.password_hash,
                templates: new.templates,
                access_locked: new.access_locked,
                clusters: false,
                disabled: false,
                client_tokens: Vec::new(),
                metadata: new.metadata,
                machines: Vec::new(),
                ssh_keys: Vec::new(),
            };
            config.users.push(user.clone());
            Ok(user)
        })
    }

    /// Self-service sign-up: adds the account `username` with `password` (by the rules of
    /// [`crate::hash_password`], the same as for admin-made users), role `user`, a fresh id,
    /// the given `templates` and `clusters` (the `registration.defaults` of main.yaml, say),
    /// and the metadata `registered: self` and `registered_at: <RFC 3339 time>` so admins can
    /// tell such accounts apart. Goes through the same locked, validated, atomic path as
    /// [`ConfigStore::add_user`].
    ///
    /// The password is hashed before the lock is taken (it is slow on purpose): call this
    /// from `spawn_blocking`. Refused: the admin's name ([`StoreError::AdminName`]), a taken
    /// name ([`StoreError::UserExists`]), a password the rules refuse
    /// ([`StoreError::Password`]), unknown templates ([`StoreError::Invalid`]).
    pub fn register_user(
        &self,
        username: &Username,
        password: &str,
        templates: &[String],
        clusters: bool,
    ) -> Result<User, StoreError> {
        let password_hash = crate::passwords::hash_password(password)?;
        let registered_at = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
        self.transaction(Scope::Users, |config| {
            if &config.main.admin.username == username {
                return Err(StoreError::AdminName(username.to_string()));
            }
            if config.user(username.as_str()).is_some() {
                return Err(StoreError::UserExists(username.to_string()));
            }
            let metadata = BTreeMap::from([
                (REGISTERED_KEY.to_owned(), REGISTERED_SELF.to_owned()),
                (REGISTERED_AT_KEY.to_owned(), registered_at),
            ]);
            let user = User {
                username: username.clone(),
                id: UserId::random(),
                role: Role::User,
                password_hash: Some(password_hash),
                templates: templates.to_vec(),
                access_locked: false,
                clusters,
                disabled: false,
                client_tokens: Vec::new(),
                metadata,
                machines: Vec::new(),
                ssh_keys: Vec::new(),
            };
            config.users.push(user.clone());
            Ok(user)
        })
    }

    /// Changes a user with `edit`, run on the user as currently saved (so concurrent changes
    /// are never lost), and returns the user as saved.
    ///
    /// Refused: changing the id or the client tokens (see [`ConfigStore::issue_client_token`]),
    /// and, for a user with `access_locked`, changing `templates`, `role` or `machines` or
    /// clearing the lock. Renaming to a free name moves `users.d/<old>.yaml` along.
    pub fn update_user(
        &self,
        username: &str,
        edit: impl FnOnce(&mut User),
    ) -> Result<User, StoreError> {
        self.transaction(Scope::Users, |config| {
            let user = find(config, username)?;
            let before = user.clone();
            edit(user);
            let after = user.clone();
            if after.id != before.id {
                return Err(StoreError::Unchangeable("a user's id never changes"));
            }
            if after.ssh_keys != before.ssh_keys {
                return Err(StoreError::Unchangeable(
                    "SSH keys are changed with add_ssh_key and remove_ssh_key",
                ));
            }
            if after.client_tokens != before.client_tokens {
                return Err(StoreError::Unchangeable(
                    "client tokens are changed with issue_client_token, reset_client_tokens and revoke_client_token",
                ));
            }
            if before.access_locked {
                let locked = |what| StoreError::AccessLocked { username: username.to_owned(), what };
                if after.templates != before.templates {
                    return Err(locked("templates"));
                }
                if after.role != before.role {
                    return Err(locked("role"));
                }
                if after.machines != before.machines {
                    return Err(locked("machines"));
                }
                if !after.access_locked {
                    return Err(locked("access_locked flag"));
                }
            }
            if after.username != before.username {
                let taken = config.users.iter().filter(|u| u.username == after.username).count() > 1;
                if taken {
                    return Err(StoreError::UserExists(after.username.to_string()));
                }
                if let Some(overrides) = config.overrides.remove(&before.username) {
                    config.overrides.insert(after.username.clone(), overrides);
                }
            }
            Ok(after)
        })
    }

    /// Removes a user and their `users.d/<username>.yaml`; returns the user as it was.
    pub fn remove_user(&self, username: &str) -> Result<User, StoreError> {
        self.transaction(Scope::Users, |config| {
            let index = config
                .users
                .iter()
                .position(|u| u.username.as_str() == username)
                .ok_or_else(|| StoreError::NoSuchUser(username.to_owned()))?;
            let user = config.users.remove(index);
            config.overrides.remove(&user.username);
            Ok(user)
        })
    }

    /// Writes `users.d/<username>.yaml`, or removes it with `None`. For a user with
    /// `access_locked`, the override's `templates` cannot change.
    pub fn set_user_overrides(
        &self,
        username: &str,
        overrides: Option<UserOverrides>,
    ) -> Result<(), StoreError> {
        self.transaction(Scope::Users, |config| {
            let user = find(config, username)?;
            let (name, locked) = (user.username.clone(), user.access_locked);
            let old_templates = config
                .overrides
                .get(&name)
                .map(|o| o.templates.clone())
                .unwrap_or_default();
            let new_templates = overrides
                .as_ref()
                .map(|o| o.templates.clone())
                .unwrap_or_default();
            if locked && old_templates != new_templates {
                return Err(StoreError::AccessLocked {
                    username: username.to_owned(),
                    what: "extra templates (users.d)",
                });
            }
            match overrides {
                Some(overrides) => config.overrides.insert(name, overrides),
                None => config.overrides.remove(&name),
            };
            Ok(())
        })
    }

    /// Issues a new client token for `username`, keeping the others. The token is returned
    /// once; only its SHA-256 is saved.
    pub fn issue_client_token(
        &self,
        username: &str,
        label: Option<String>,
    ) -> Result<IssuedToken, StoreError> {
        self.transaction(Scope::Users, |config| {
            let (issued, stored) = new_token(label);
            find(config, username)?.client_tokens.push(stored);
            Ok(issued)
        })
    }

    /// Revokes every client token of `username` and issues a new one, returned once.
    pub fn reset_client_tokens(
        &self,
        username: &str,
        label: Option<String>,
    ) -> Result<IssuedToken, StoreError> {
        self.transaction(Scope::Users, |config| {
            let (issued, stored) = new_token(label);
            find(config, username)?.client_tokens = vec![stored];
            Ok(issued)
        })
    }

    /// Revokes one client token.
    pub fn revoke_client_token(&self, username: &str, client: ClientId) -> Result<(), StoreError> {
        self.transaction(Scope::Users, |config| {
            let user = find(config, username)?;
            let before = user.client_tokens.len();
            user.client_tokens.retain(|t| t.id != client);
            if user.client_tokens.len() == before {
                return Err(StoreError::NoSuchClient {
                    username: username.to_owned(),
                    client,
                });
            }
            Ok(())
        })
    }

    /// Adds an SSH public key to `username`'s `ssh_keys` and returns it as saved. The same
    /// key (by fingerprint, whatever its comment) is refused with [`StoreError::SshKeyExists`],
    /// a key past the 64th by validation.
    pub fn add_ssh_key(&self, username: &str, key: SshKey) -> Result<SshKey, StoreError> {
        self.transaction(Scope::Users, |config| {
            let user = find(config, username)?;
            if user.ssh_keys.iter().any(|k| k.same_key(&key)) {
                return Err(StoreError::SshKeyExists {
                    username: username.to_owned(),
                    fingerprint: key.fingerprint().to_owned(),
                });
            }
            user.ssh_keys.push(key.clone());
            Ok(key)
        })
    }

    /// Removes the SSH key of `username` with this fingerprint (`SHA256:...`, as
    /// [`SshKey::fingerprint`] and `ssh-keygen -l` print it) and returns it.
    pub fn remove_ssh_key(&self, username: &str, fingerprint: &str) -> Result<SshKey, StoreError> {
        self.transaction(Scope::Users, |config| {
            let user = find(config, username)?;
            let index = user
                .ssh_keys
                .iter()
                .position(|k| k.fingerprint() == fingerprint)
                .ok_or_else(|| StoreError::NoSuchSshKey {
                    username: username.to_owned(),
                    fingerprint: fingerprint.to_owned(),
                })?;
            Ok(user.ssh_keys.remove(index))
        })
    }
}
