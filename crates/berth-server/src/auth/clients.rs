//! Client tokens, found by the SHA-256 that users.yaml keeps of them.
//!
//! berth-config's `Config::client_for_token` compares the hash with every stored one in
//! constant time: sound, but linear in the number of clients, and a fleet pings often. Here the
//! hashes of the configuration in force are indexed once per configuration snapshot, and a
//! token is looked up by its hash. A hash-map lookup may take a time that depends on the hash
//! it is given, which reveals nothing useful: the attacker would learn about the SHA-256 of a
//! random 122-bit value, not about any stored token.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use berth_config::{Config, hash_client_token};

use super::{Caller, Via};

/// The client tokens of one configuration snapshot, by hash.
#[derive(Debug)]
struct Index {
    config: Arc<Config>,
    by_hash: HashMap<String, Caller>,
}

impl Index {
    fn build(config: &Arc<Config>) -> Self {
        let mut by_hash = HashMap::new();
        for user in config.users.iter().filter(|u| !u.disabled) {
            for client in &user.client_tokens {
                by_hash
                    .entry(client.hash.clone())
                    .or_insert_with(|| Caller {
                        username: user.username.clone(),
                        role: user.role,
                        via: Via::ClientToken(client.id),
                    });
            }
        }
        Self {
            config: Arc::clone(config),
            by_hash,
        }
    }
}

/// The index of the configuration last seen, rebuilt when the configuration is replaced.
#[derive(Debug, Default)]
pub(crate) struct ClientTokens(RwLock<Option<Arc<Index>>>);

impl ClientTokens {
    /// The enabled user and client `token` belongs to in `config`.
    pub(crate) fn lookup(&self, config: &Arc<Config>, token: &str) -> Option<Caller> {
        let hash = hash_client_token(token)?;
        self.index(config).by_hash.get(&hash).cloned()
    }

    fn index(&self, config: &Arc<Config>) -> Arc<Index> {
        {
            let current = self
                .0
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(index) = current.as_ref().filter(|i| Arc::ptr_eq(&i.config, config)) {
                return Arc::clone(index);
            }
        }
        let index = Arc::new(Index::build(config));
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(&index));
        index
    }
}

#[cfg(test)]
mod tests {
    use berth_config::{ClientToken, User};
    use berth_types::{ClientId, Role, UserId, Username};

    use super::*;

    fn user(name: &str, token: &str, disabled: bool) -> (User, ClientId) {
        let id = ClientId::random();
        let user = User {
            username: Username::new(name).unwrap(),
            id: UserId::random(),
            role: Role::User,
            password_hash: None,
            templates: Vec::new(),
            access_locked: false,
            clusters: false,
            disabled,
            client_tokens: vec![ClientToken {
                id,
                hash: hash_client_token(token).unwrap(),
                created: time::OffsetDateTime::UNIX_EPOCH,
                label: None,
            }],
            metadata: Default::default(),
            machines: Vec::new(),
            ssh_keys: Vec::new(),
        };
        (user, id)
    }

    #[test]
    fn finds_what_client_for_token_finds_and_follows_new_snapshots() {
        let alice_token = "6f1c2a9e-8d4b-4c47-9a53-0b1d2e3f4a5b";
        let bob_token = "0b1d2e3f-8d4b-4c47-9a53-6f1c2a9e4a5b";
        let (alice, alice_client) = user("alice", alice_token, false);
        let (bob, _) = user("bob", bob_token, true);
        let config = Arc::new(Config {
            users: vec![alice, bob],
            ..Config::default()
        });
        let tokens = ClientTokens::default();
        let found = tokens.lookup(&config, &alice_token.to_uppercase()).unwrap();
        assert_eq!(found.username.as_str(), "alice");
        assert_eq!(found.via, Via::ClientToken(alice_client));
        for token in [alice_token, bob_token, "not a token", "", "6f1c2a9e"] {
            assert_eq!(
                tokens
                    .lookup(&config, token)
                    .map(|c| c.username.to_string()),
                config
                    .client_for_token(token)
                    .map(|(u, _)| u.username.to_string()),
                "{token}"
            );
        }
        // A new snapshot without alice's token: the index follows.
        let mut changed = (*config).clone();
        changed.users[0].client_tokens.clear();
        let changed = Arc::new(changed);
        assert!(tokens.lookup(&changed, alice_token).is_none());
        assert!(tokens.lookup(&config, alice_token).is_some());
    }
}
