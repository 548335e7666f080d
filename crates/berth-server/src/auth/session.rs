//! Server-side web sessions of the admin UI.
//!
//! A session is a 256-bit random id in a cookie, mapped to who logged in and the session's
//! CSRF token. Idle (`security.session_idle`) and absolute (`security.session_ttl`) expiry are
//! enforced here, on the server, whatever the cookie says.
//!
//! Sessions are served from memory and kept in the database, so a restart or an upgrade does
//! not log every browser out: logging out and deleting a user are written at once
//! ([`Sessions::end`], [`Sessions::end_user`]); new sessions and the last use (at most once a
//! minute each) are written behind by [`Sessions::flush`], which the server runs with the ping
//! flush and at shutdown; [`Sessions::load`] reads them back at start-up. A session created
//! moments before a crash (not yet flushed) is lost, and its browser logs in again.
//!
//! The database keeps an HMAC of each id under the login-token key, which lives in
//! `$BERTH_HOME`, not in the database: reading the table logs nobody in, and writing to it
//! cannot make a session either. Writes happen one at a time, and a change is forgotten only
//! once it is written, so a cancelled or failed flush loses nothing.
//!
//! A session names the account as it was at login (id and password fingerprint): deleting
//! and re-creating the user or changing their password ends it, as for login tokens.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_core::{Clock, StoreError, WebSession, WebSessions};
use berth_types::{UserId, Username};
use time::OffsetDateTime;

use super::JwtKey;

/// The session cookie's name over plain HTTP.
pub(crate) const SESSION_COOKIE: &str = "berth_session";
/// The pre-session CSRF cookie of the login form, over plain HTTP.
pub(crate) const LOGIN_COOKIE: &str = "berth_login";
/// How long a login form stays valid.
pub(crate) const LOGIN_FORM_TTL: Duration = Duration::from_secs(600);
/// The most sessions kept; beyond it the oldest are dropped, so a login flood cannot grow
/// memory without bound.
const MAX_SESSIONS: usize = 10_000;

/// The cookie name for `name`: `__Host-`-prefixed when served over HTTPS, which pins the
/// cookie to this host, `Path=/` and `Secure`.
pub(crate) fn cookie_name(name: &str, https: bool) -> String {
    if https {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure over HTTPS. `max_age` of
/// `None` makes a browser-session cookie; `Some(0)` deletes it.
pub(crate) fn set_cookie(name: &str, value: &str, https: bool, max_age: Option<u64>) -> String {
    let mut cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax",
        cookie_name(name, https)
    );
    if https {
        cookie.push_str("; Secure");
    }
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    cookie
}

/// The value of cookie `name` (already prefixed) in the request, if exactly one is sent.
pub(crate) fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    // Two cookies of one name: one may be planted; trust neither.
                    return None;
                }
                found = Some(v);
            }
        }
    }
    found
}

/// 256 random bits, base64url.
pub(crate) fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    // The OS generator failing is not recoverable: refuse to hand out guessable ids.
    if let Err(err) = getrandom::fill(&mut bytes) {
        panic!("the operating system's random generator failed: {err}");
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two secrets in time that depends on their lengths only.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How stale the stored last use of a session may get before a request writes it again.
const LAST_SEEN_WRITE_EVERY: time::Duration = time::Duration::minutes(1);

/// One logged-in browser.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) username: String,
    /// `None` for the main.yaml admin.
    pub(crate) uid: Option<UserId>,
    /// The password fingerprint at login.
    pub(crate) pwd: String,
    pub(crate) csrf: String,
    created: OffsetDateTime,
    last_seen: OffsetDateTime,
    /// The `last_seen` the database has (or will have once the pending save is written).
    stored_seen: OffsetDateTime,
}

impl Session {
    fn expired(&self, idle: Duration, ttl: Duration, now: OffsetDateTime) -> bool {
        now - self.last_seen > idle || now - self.created > ttl
    }

    fn stored(&self, id_hash: &str) -> Option<WebSession> {
        Some(WebSession {
            id_hash: id_hash.to_owned(),
            username: Username::new(&self.username).ok()?,
            user_id: self.uid,
            password_fingerprint: self.pwd.clone(),
            csrf: self.csrf.clone(),
            created_at: self.created,
            last_seen: self.last_seen,
        })
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("username", &self.username)
            .field("csrf", &"<secret>")
            .finish_non_exhaustive()
    }
}

/// What the database has not been told yet, by id hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Save,
    Delete,
}

#[derive(Default)]
struct Inner {
    /// The sessions in force, by the SHA-256 of their id (as the database knows them).
    by_hash: HashMap<String, Session>,
    pending: HashMap<String, Pending>,
}

impl Inner {
    fn drop_session(&mut self, hash: &str) {
        if self.by_hash.remove(hash).is_some() {
            self.pending.insert(hash.to_owned(), Pending::Delete);
        }
    }
}

/// The sessions in force.
pub(crate) struct Sessions {
    inner: Mutex<Inner>,
    /// Turns ids into what the database keeps.
    key: JwtKey,
    /// One database write at a time, so a save never lands after the deletion that followed it.
    writing: tokio::sync::Mutex<()>,
    /// What idle and age limits are measured by (the installation's clock).
    clock: std::sync::Arc<dyn Clock>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions(<secret>)")
    }
}

impl Sessions {
    /// No sessions yet; ids are kept as HMACs under `key`.
    #[cfg(test)]
    pub(crate) fn new(key: JwtKey) -> Self {
        Self::with_clock(key, std::sync::Arc::new(berth_core::SystemClock))
    }

    /// The same, with idle and age limits measured by `clock`.
    pub(crate) fn with_clock(key: JwtKey, clock: std::sync::Arc<dyn Clock>) -> Self {
        Self {
            inner: Mutex::default(),
            key,
            writing: tokio::sync::Mutex::new(()),
            clock,
        }
    }

    /// The key of session `id` in memory and in the database.
    fn id_hash(&self, id: &str) -> String {
        self.key.session_id_hash(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session with a fresh id (never one the browser sent: no fixation), ending
    /// `replaces` if given. Returns the id.
    pub(crate) fn create(
        &self,
        username: &str,
        uid: Option<UserId>,
        pwd: String,
        replaces: Option<&str>,
    ) -> String {
        self.create_at(username, uid, pwd, replaces, self.clock.now())
    }

    fn create_at(
        &self,
        username: &str,
        uid: Option<UserId>,
        pwd: String,
        replaces: Option<&str>,
        now: OffsetDateTime,
    ) -> String {
        let id = random_token();
        let hash = self.id_hash(&id);
        let mut inner = self.lock();
        if let Some(old) = replaces {
            inner.drop_session(&self.id_hash(old));
        }
        if inner.by_hash.len() >= MAX_SESSIONS
            && let Some(oldest) = inner
                .by_hash
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
        {
            inner.drop_session(&oldest);
        }
        inner.by_hash.insert(
            hash.clone(),
            Session {
                username: username.to_owned(),
                uid,
                pwd,
                csrf: random_token(),
                created: now,
                last_seen: now,
                stored_seen: now,
            },
        );
        inner.pending.insert(hash, Pending::Save);
        id
    }

    /// The session `id`, if it has been used within `idle` and began within `ttl`; touches it.
    /// An expired session is removed.
    pub(crate) fn get(&self, id: &str, idle: Duration, ttl: Duration) -> Option<Session> {
        self.get_at(id, idle, ttl, self.clock.now())
    }

    fn get_at(
        &self,
        id: &str,
        idle: Duration,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Option<Session> {
        let hash = self.id_hash(id);
        let mut inner = self.lock();
        let session = inner.by_hash.get_mut(&hash)?;
        if session.expired(idle, ttl, now) {
            inner.drop_session(&hash);
            return None;
        }
        session.last_seen = session.last_seen.max(now);
        let found = session.clone();
        if found.last_seen - found.stored_seen >= LAST_SEEN_WRITE_EVERY {
            if let Some(session) = inner.by_hash.get_mut(&hash) {
                session.stored_seen = found.last_seen;
            }
            inner.pending.entry(hash).or_insert(Pending::Save);
        }
        Some(found)
    }

    /// Ends the session `id` (logging out), in memory and in the database at once, so a crash
    /// cannot bring it back. A failed write is retried by the next flush.
    pub(crate) async fn end(&self, store: &WebSessions, id: &str) {
        let hash = self.id_hash(id);
        self.lock().drop_session(&hash);
        self.flush(store).await;
    }

    /// Ends every session of `username` (a deleted user), as [`Sessions::end`] does.
    pub(crate) async fn end_user(&self, store: &WebSessions, username: &str) {
        {
            let mut inner = self.lock();
            let theirs: Vec<String> = inner
                .by_hash
                .iter()
                .filter(|(_, s)| s.username == username)
                .map(|(k, _)| k.clone())
                .collect();
            for hash in theirs {
                inner.drop_session(&hash);
            }
        }
        self.flush(store).await;
    }

    /// Forgets expired sessions.
    pub(crate) fn prune(&self, idle: Duration, ttl: Duration) {
        let now = self.clock.now();
        let mut inner = self.lock();
        let expired: Vec<String> = inner
            .by_hash
            .iter()
            .filter(|(_, s)| s.expired(idle, ttl, now))
            .map(|(k, _)| k.clone())
            .collect();
        for hash in expired {
            inner.drop_session(&hash);
        }
    }

    /// Reads the sessions an earlier run saved, keeping those still within `idle` and `ttl`
    /// (the most recently used first, up to the limit) and deleting the rest from the
    /// database. Sessions made since start-up are kept.
    pub(crate) async fn load(
        &self,
        store: &WebSessions,
        idle: Duration,
        ttl: Duration,
    ) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut stored = store.list().await?;
        stored.sort_by_key(|s| std::cmp::Reverse(s.last_seen));
        let mut inner = self.lock();
        let mut loaded = 0;
        for s in stored {
            let session = Session {
                username: s.username.to_string(),
                uid: s.user_id,
                pwd: s.password_fingerprint,
                csrf: s.csrf,
                created: s.created_at,
                last_seen: s.last_seen,
                stored_seen: s.last_seen,
            };
            if session.expired(idle, ttl, now) || inner.by_hash.len() >= MAX_SESSIONS {
                inner.pending.insert(s.id_hash, Pending::Delete);
            } else if !inner.pending.contains_key(&s.id_hash) {
                inner.by_hash.entry(s.id_hash).or_insert(session);
                loaded += 1;
            }
        }
        Ok(loaded)
    }

    /// Writes what changed since the last flush: new sessions, deletions, and last uses more
    /// than a minute newer than the stored ones. A change is forgotten only once it is
    /// written: on a database error, or if this future is dropped midway, the next flush
    /// writes it.
    pub(crate) async fn flush(&self, store: &WebSessions) {
        let _one_at_a_time = self.writing.lock().await;
        let (saves, deletes, snapshot) = {
            let inner = self.lock();
            let snapshot = inner.pending.clone();
            let mut saves = Vec::new();
            let mut deletes = Vec::new();
            for (hash, change) in &snapshot {
                match change {
                    Pending::Delete => deletes.push(hash.clone()),
                    Pending::Save => {
                        if let Some(stored) = inner.by_hash.get(hash).and_then(|s| s.stored(hash)) {
                            saves.push(stored);
                        }
                    }
                }
            }
            (saves, deletes, snapshot)
        };
        if snapshot.is_empty() {
            return;
        }
        let written = match store.delete(&deletes).await {
            Ok(()) => store.save(&saves).await,
            Err(err) => Err(err),
        };
        match written {
            Ok(()) => {
                let mut inner = self.lock();
                for (hash, change) in snapshot {
                    if inner.pending.get(&hash) == Some(&change) {
                        inner.pending.remove(&hash);
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not save web sessions; retrying later");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_long() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
    }

    const T0: OffsetDateTime = time::macros::datetime!(2026-01-01 12:00 UTC);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn idle_and_absolute_expiry() {
        let sessions = Sessions::new(JwtKey::from_bytes([7; 32]));
        let id = sessions.create_at("ann", None, String::new(), None, T0);
        let (idle, ttl) = (secs(10), secs(25));
        assert!(sessions.get_at(&id, idle, ttl, T0 + secs(8)).is_some());
        assert!(sessions.get_at(&id, idle, ttl, T0 + secs(16)).is_some());
        // Active, but older than the absolute limit.
        assert!(sessions.get_at(&id, idle, ttl, T0 + secs(26)).is_none());
        // And gone for good.
        assert!(sessions.get_at(&id, idle, ttl, T0).is_none());
        let id = sessions.create_at("ann", None, String::new(), None, T0);
        assert!(sessions.get_at(&id, idle, ttl, T0 + secs(11)).is_none());
    }

    #[test]
    fn login_replaces_the_old_session() {
        let sessions = Sessions::new(JwtKey::from_bytes([7; 32]));
        let old = sessions.create("ann", None, String::new(), None);
        let new = sessions.create("ann", None, String::new(), Some(&old));
        assert_ne!(old, new);
        let long = secs(60);
        assert!(sessions.get(&old, long, long).is_none());
        assert!(sessions.get(&new, long, long).is_some());
    }

    /// Web sessions in a fresh in-memory database (and the database, to look inside and to
    /// break).
    async fn memory_store() -> (WebSessions, std::sync::Arc<dyn berth_store::Store>) {
        let store = berth_store::open("sqlite::memory:").await.unwrap();
        (WebSessions::new(std::sync::Arc::clone(&store)), store)
    }

    #[tokio::test]
    async fn sessions_outlive_a_restart_through_the_store_which_never_sees_an_id() {
        let (store, _db) = memory_store().await;
        let before = Sessions::new(JwtKey::from_bytes([7; 32]));
        let uid = UserId::random();
        let ann = before.create("ann", Some(uid), "fp".into(), None);
        let admin = before.create("admin", None, "fp-admin".into(), None);
        let gone = before.create("bob", None, "fp".into(), None);
        before.end(&store, &gone).await;
        before.flush(&store).await;
        let stored = store.list().await.unwrap();
        assert_eq!(stored.len(), 2);
        for s in &stored {
            assert_ne!(s.id_hash, ann);
            assert_ne!(s.id_hash, admin);
            assert!(![&ann, &admin].iter().any(|id| s.csrf.contains(id.as_str())));
        }

        // A new process: the same cookies still work, with the same CSRF tokens.
        let after = Sessions::new(JwtKey::from_bytes([7; 32]));
        let long = secs(3600);
        assert_eq!(after.load(&store, long, long).await.unwrap(), 2);
        let found = after.get(&ann, long, long).unwrap();
        assert_eq!(
            (found.username.as_str(), found.uid, found.pwd.as_str()),
            ("ann", Some(uid), "fp")
        );
        assert_eq!(found.csrf, before.get(&ann, long, long).unwrap().csrf);
        assert!(after.get(&admin, long, long).unwrap().uid.is_none());
        assert!(after.get(&gone, long, long).is_none());
        assert!(after.get("planted", long, long).is_none());

        // Logging out and deleting a user reach the database at once, without a flush.
        after.end(&store, &ann).await;
        after.end_user(&store, "admin").await;
        assert!(store.list().await.unwrap().is_empty());
        let again = Sessions::new(JwtKey::from_bytes([7; 32]));
        assert_eq!(again.load(&store, long, long).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_row_written_without_the_key_is_no_session() {
        use sha2::{Digest, Sha256};
        let (store, _db) = memory_store().await;
        let now = OffsetDateTime::now_utc();
        let plain: String = Sha256::digest(b"chosen-id")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let forged = WebSession {
            id_hash: plain,
            username: Username::new("admin").unwrap(),
            user_id: None,
            password_fingerprint: "copied".into(),
            csrf: "x".into(),
            created_at: now,
            last_seen: now,
        };
        store.save(&[forged]).await.unwrap();
        // Sessions made under another key (another installation's) are no use either.
        let elsewhere = Sessions::new(JwtKey::from_bytes([9; 32]));
        let theirs = elsewhere.create("admin", None, "fp".into(), None);
        elsewhere.flush(&store).await;
        let sessions = Sessions::new(JwtKey::from_bytes([7; 32]));
        let long = secs(3600);
        sessions.load(&store, long, long).await.unwrap();
        assert!(sessions.get("chosen-id", long, long).is_none());
        assert!(sessions.get(&theirs, long, long).is_none());
    }

    #[tokio::test]
    async fn expired_sessions_are_not_loaded_and_leave_the_database() {
        let (store, _db) = memory_store().await;
        let before = Sessions::new(JwtKey::from_bytes([7; 32]));
        let old = before.create_at("ann", None, String::new(), None, T0);
        let fresh = before.create("bob", None, String::new(), None);
        before.flush(&store).await;
        let after = Sessions::new(JwtKey::from_bytes([7; 32]));
        let day = secs(86_400);
        assert_eq!(after.load(&store, day, day).await.unwrap(), 1);
        assert!(after.get(&old, day, day).is_none());
        assert!(after.get(&fresh, day, day).is_some());
        after.flush(&store).await;
        let stored = store.list().await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].username.as_str(), "bob");
    }

    #[tokio::test]
    async fn the_last_use_is_written_at_most_once_a_minute() {
        let (store, _db) = memory_store().await;
        let sessions = Sessions::new(JwtKey::from_bytes([7; 32]));
        let id = sessions.create_at("ann", None, String::new(), None, T0);
        sessions.flush(&store).await;
        let long = secs(86_400 * 365 * 100);
        let stored_seen = |s: &[WebSession]| s[0].last_seen;
        sessions.get_at(&id, long, long, T0 + secs(30)).unwrap();
        assert!(sessions.lock().pending.is_empty(), "30 s: nothing to write");
        sessions.get_at(&id, long, long, T0 + secs(61)).unwrap();
        sessions.flush(&store).await;
        assert_eq!(stored_seen(&store.list().await.unwrap()), T0 + secs(61));
        sessions.get_at(&id, long, long, T0 + secs(90)).unwrap();
        sessions.flush(&store).await;
        assert_eq!(stored_seen(&store.list().await.unwrap()), T0 + secs(61));
    }

    #[tokio::test]
    async fn a_failed_write_is_retried_by_the_next_flush() {
        let (broken, broken_db) = memory_store().await;
        let sessions = Sessions::new(JwtKey::from_bytes([7; 32]));
        let id = sessions.create("ann", None, String::new(), None);
        broken_db.close().await;
        sessions.flush(&broken).await;
        assert_eq!(sessions.lock().pending.len(), 1, "kept for later");
        let (store, _db) = memory_store().await;
        sessions.flush(&store).await;
        assert!(sessions.lock().pending.is_empty());
        let after = Sessions::new(JwtKey::from_bytes([7; 32]));
        let long = secs(3600);
        after.load(&store, long, long).await.unwrap();
        assert!(after.get(&id, long, long).is_some());
    }

    #[test]
    fn cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; berth_session=xyz".parse().unwrap());
        assert_eq!(read_cookie(&headers, "berth_session"), Some("xyz"));
        headers.append(header::COOKIE, "berth_session=planted".parse().unwrap());
        assert_eq!(read_cookie(&headers, "berth_session"), None);
        let set = set_cookie(SESSION_COOKIE, "v", true, None);
        assert!(set.starts_with("__Host-berth_session=v; Path=/; HttpOnly; SameSite=Lax; Secure"));
        assert!(!set_cookie(SESSION_COOKIE, "v", false, None).contains("Secure"));
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", "ab"));
    }
}
