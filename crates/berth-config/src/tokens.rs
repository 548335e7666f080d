//! Client tokens and the metrics token: random UUIDs shown once, stored as SHA-256.
//!
//! A token has 122 random bits, so a fast hash is enough: nobody can guess their way to a
//! preimage, and checking a token on every API request must stay cheap.

use berth_types::ClientId;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::model::{ClientToken, Config, User};
use crate::secret::Secret;

/// A client token as handed out: its client id and the token itself, shown once.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The client the token belongs to.
    pub client_id: ClientId,
    /// The token (a UUID v4). Only its hash is stored; show it to the user now.
    pub token: Secret,
}

/// A fresh token and its stored form.
pub(crate) fn new_token(label: Option<String>) -> (IssuedToken, ClientToken) {
    let client_id = ClientId::random();
    let token = Uuid::new_v4().hyphenated().to_string();
    let stored = ClientToken {
        id: client_id,
        hash: hash_client_token(&token).unwrap_or_default(),
        created: time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        label,
    };
    (
        IssuedToken {
            client_id,
            token: Secret::new(token),
        },
        stored,
    )
}

/// The stored form of `token`: SHA-256 of its lowercase hyphenated UUID, in hex. `None` when
/// `token` is not a UUID, so it cannot be a Berth token.
#[must_use]
pub fn hash_client_token(token: &str) -> Option<String> {
    let uuid = Uuid::try_parse(token.trim()).ok()?;
    let digest = Sha256::digest(uuid.hyphenated().to_string().as_bytes());
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

impl Config {
    /// The enabled user and client that `token` belongs to. Every stored hash is compared, in
    /// constant time, so the time taken says nothing about which one matched.
    #[must_use]
    pub fn client_for_token(&self, token: &str) -> Option<(&User, &ClientToken)> {
        let hash = hash_client_token(token)?;
        let mut found = None;
        for user in &self.users {
            for client in &user.client_tokens {
                if bool::from(client.hash.as_bytes().ct_eq(hash.as_bytes())) && found.is_none() {
                    found = Some((user, client));
                }
            }
        }
        found.filter(|(user, _)| !user.disabled)
    }
}

/// A fresh metrics token and its stored form.
pub(crate) fn new_metrics_token() -> (Secret, String) {
    let token = Uuid::new_v4().hyphenated().to_string();
    let hash = hash_client_token(&token).unwrap_or_default();
    (Secret::new(token), hash)
}

impl Config {
    /// Whether `token` is the metrics token of main.yaml (compared in constant time). False
    /// when none is set.
    #[must_use]
    pub fn is_metrics_token(&self, token: &str) -> bool {
        match (
            &self.main.security.metrics_token_hash,
            hash_client_token(token),
        ) {
            (Some(stored), Some(hash)) => bool::from(stored.as_bytes().ct_eq(hash.as_bytes())),
            _ => false,
        }
    }
}

/// The enabled user a client token belongs to; see [`Config::client_for_token`].
#[must_use]
pub fn verify_client_token<'a>(config: &'a Config, token: &str) -> Option<&'a User> {
    config.client_for_token(token).map(|(user, _)| user)
}

#[cfg(test)]
mod tests {
    use berth_types::{Role, UserId, Username};

    use super::*;

    fn user(name: &str, tokens: Vec<ClientToken>) -> User {
        User {
            username: Username::new(name).unwrap(),
            id: UserId::random(),
            role: Role::User,
            password_hash: None,
            templates: Vec::new(),
            access_locked: false,
            clusters: false,
            disabled: false,
            client_tokens: tokens,
            metadata: Default::default(),
            machines: Vec::new(),
            ssh_keys: Vec::new(),
        }
    }

    #[test]
    fn tokens_verify_against_their_hash_only() {
        let (alice_token, alice_stored) = new_token(Some("laptop".into()));
        let (bob_token, bob_stored) = new_token(None);
        let mut config = Config {
            users: vec![
                user("alice", vec![alice_stored.clone()]),
                user("bob", vec![bob_stored]),
            ],
            ..Config::default()
        };
        assert_eq!(alice_stored.hash.len(), 64);
        assert!(!alice_stored.hash.contains(alice_token.token.expose()));
        let (found, client) = config.client_for_token(alice_token.token.expose()).unwrap();
        assert_eq!(
            (found.username.as_str(), client.id),
            ("alice", alice_token.client_id)
        );
        let upper = bob_token.token.expose().to_uppercase();
        assert_eq!(
            verify_client_token(&config, &upper)
                .unwrap()
                .username
                .as_str(),
            "bob"
        );
        assert!(verify_client_token(&config, &Uuid::new_v4().to_string()).is_none());
        assert!(verify_client_token(&config, "not a token").is_none());
        assert!(verify_client_token(&config, "").is_none());

        config.users[0].disabled = true;
        assert!(verify_client_token(&config, alice_token.token.expose()).is_none());
    }

    #[test]
    fn the_hash_is_sha256_of_the_hyphenated_uuid() {
        let token = "6F1C2A9E-8D4B-4C47-9A53-0B1D2E3F4A5B";
        let expected: String = Sha256::digest(b"6f1c2a9e-8d4b-4c47-9a53-0b1d2e3f4a5b")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hash_client_token(token), Some(expected));
        assert_eq!(format!("{:?}", new_token(None).0.token), "<secret>");
    }
}
