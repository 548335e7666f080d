//! The runtime records that are not a workspace's: client pings, login attempts, web
//! sessions, invites, and the table queries over every table. Small services over the store, so the
//! server reaches the database only through the core, and rules about these records (how a
//! lockout counts, what a user may list) have one home.

use std::net::IpAddr;
use std::sync::Arc;

use berth_store::{
    Client, ClientPing, InviteRecord, InviteUse, LoginPressure, Store, StoreError, TableQuery,
    TableResult, TableScope, WebSession,
};
use berth_types::Username;
use time::OffsetDateTime;

/// Clients of the CLI and agent, as they ping.
#[derive(Debug, Clone)]
pub struct Clients {
    store: Arc<dyn Store>,
}

impl Clients {
    /// Clients in `store`.
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Records a batch of pings; for a client pinging more than once, the latest wins.
    pub async fn record_pings(&self, pings: &[ClientPing]) -> Result<(), StoreError> {
        self.store.record_pings(pings).await
    }

    /// Known clients, most recently seen first; only `username`'s when given.
    pub async fn list(&self, username: Option<&Username>) -> Result<Vec<Client>, StoreError> {
        self.store.list_clients(username).await
    }
}

/// Login attempts, which the lockout counts.
#[derive(Debug, Clone)]
pub struct Logins {
    store: Arc<dyn Store>,
}

impl Logins {
    /// Attempts in `store`.
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Records an attempt for what was typed as the username (it may name no user).
    pub async fn record(
        &self,
        username: &str,
        ip: IpAddr,
        success: bool,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.store
            .record_login_attempt(username, ip, success, at)
            .await
    }

    /// What the attempts for `username` since `since` say about it and about `ip`, and
    /// whether `ip` logged in to it since `known_since`.
    pub async fn pressure(
        &self,
        username: &str,
        ip: IpAddr,
        since: OffsetDateTime,
        known_since: OffsetDateTime,
    ) -> Result<LoginPressure, StoreError> {
        self.store
            .login_pressure(username, ip, since, known_since)
            .await
    }

    /// Forgets failures older than `failures_before` and successes older than
    /// `successes_before`; how many.
    pub async fn prune(
        &self,
        failures_before: OffsetDateTime,
        successes_before: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.store
            .prune_login_attempts(failures_before, successes_before)
            .await
    }
}

/// Browser sessions as the store keeps them (by the hash of their id only).
#[derive(Debug, Clone)]
pub struct WebSessions {
    store: Arc<dyn Store>,
}

impl WebSessions {
    /// Sessions in `store`.
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Saves sessions: new ones whole, known ones their `last_seen`.
    pub async fn save(&self, sessions: &[WebSession]) -> Result<(), StoreError> {
        self.store.save_sessions(sessions).await
    }

    /// Forgets sessions by the hashes of their ids.
    pub async fn delete(&self, id_hashes: &[String]) -> Result<(), StoreError> {
        self.store.delete_sessions(id_hashes).await
    }

    /// Every stored session, oldest first (rows that cannot be read are skipped and logged).
    pub async fn list(&self) -> Result<Vec<WebSession>, StoreError> {
        self.store.list_sessions().await
    }
}

/// One page of a table of runtime state, for the API's table queries and the admin pages.
#[derive(Debug, Clone)]
pub struct Tables {
    store: Arc<dyn Store>,
}

impl Tables {
    /// Tables in `store`.
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Runs `query`; `scope` restricts the rows to a user's (their own rows, and the machines
    /// their selectors match); `None` is an admin's query.
    pub async fn query(
        &self,
        query: &TableQuery,
        scope: Option<&TableScope>,
    ) -> Result<TableResult, StoreError> {
        self.store.query_table(query, scope).await
    }
}

/// One-time registration codes (main.yaml `registration.mode: invite`). Only a SHA-256 of a
/// code is stored; the code itself is shown once, to the admin who made it.
#[derive(Debug, Clone)]
pub struct Invites {
    store: Arc<dyn Store>,
}

/// The stored form of an invite code: SHA-256 in lowercase hex.
#[must_use]
pub fn invite_hash(code: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(code.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Invites {
    /// Invites in `store`.
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Records a new invite for `code`, made by `by`, valid until `expires_at`.
    pub async fn create(
        &self,
        code: &str,
        by: &Username,
        note: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<InviteRecord, StoreError> {
        let invite = InviteRecord {
            id: berth_types::InviteId::random(),
            code_hash: invite_hash(code),
            created_by: by.clone(),
            note: note.to_owned(),
            created_at: now,
            expires_at,
            used_by: None,
            used_at: None,
        };
        self.store.insert_invite(&invite).await?;
        Ok(invite)
    }

    /// Every invite, newest first.
    pub async fn list(&self) -> Result<Vec<InviteRecord>, StoreError> {
        self.store.list_invites().await
    }

    /// Uses `code` for the new account `username`: exactly one caller wins a code.
    pub async fn redeem(
        &self,
        code: &str,
        username: &Username,
        now: OffsetDateTime,
    ) -> Result<InviteUse, StoreError> {
        self.store
            .use_invite(&invite_hash(code), username, now)
            .await
    }

    /// Whether `code` would be accepted now (unused, not expired), without spending it.
    pub async fn usable(&self, code: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        let hash = invite_hash(code);
        Ok(self
            .store
            .list_invites()
            .await?
            .iter()
            .any(|i| i.code_hash == hash && i.used_at.is_none() && i.expires_at > now))
    }

    /// Gives back an invite whose account could not be made after all.
    pub async fn release(&self, id: berth_types::InviteId) -> Result<(), StoreError> {
        self.store.release_invite(id).await
    }

    /// Withdraws an invite.
    pub async fn delete(&self, id: berth_types::InviteId) -> Result<(), StoreError> {
        self.store.delete_invite(id).await
    }
}
