//! Server-side web sessions of the admin UI.
//!
//! A session is a 256-bit random id in a cookie, mapped in memory to who logged in and the
//! session's CSRF token. Idle (`security.session_idle`) and absolute (`security.session_ttl`)
//! expiry are enforced here, on the server, whatever the cookie says. The store is in memory
//! on purpose: a restart logs everyone out, and nothing about a session ever reaches a file.
//!
//! A session names the account as it was at login (id and password fingerprint): deleting
//! and re-creating the user or changing their password ends it, as for login tokens.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_types::UserId;

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

/// One logged-in browser.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) username: String,
    /// `None` for the main.yaml admin.
    pub(crate) uid: Option<UserId>,
    /// The password fingerprint at login.
    pub(crate) pwd: String,
    pub(crate) csrf: String,
    created: Instant,
    last_seen: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("username", &self.username)
            .field("csrf", &"<secret>")
            .finish_non_exhaustive()
    }
}

/// The sessions in force, by id.
#[derive(Default)]
pub(crate) struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions(<secret>)")
    }
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id
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
        let id = random_token();
        let now = Instant::now();
        let mut map = self.map();
        if let Some(old) = replaces {
            map.remove(old);
        }
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                username: username.to_owned(),
                uid,
                pwd,
                csrf: random_token(),
                created: now,
                last_seen: now,
            },
        );
        id
    }

    /// The session `id`, if it has been used within `idle` and began within `ttl`; touches it.
    /// An expired session is removed.
    pub(crate) fn get(&self, id: &str, idle: Duration, ttl: Duration) -> Option<Session> {
        self.get_at(id, idle, ttl, Instant::now())
    }

    fn get_at(&self, id: &str, idle: Duration, ttl: Duration, now: Instant) -> Option<Session> {
        let mut map = self.map();
        let session = map.get_mut(id)?;
        if now.duration_since(session.last_seen) > idle || now.duration_since(session.created) > ttl
        {
            map.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    /// Ends the session `id`.
    pub(crate) fn remove(&self, id: &str) {
        self.map().remove(id);
    }

    /// Ends every session of `username` (deleted users).
    pub(crate) fn remove_user(&self, username: &str) {
        self.map().retain(|_, s| s.username != username);
    }

    /// Forgets expired sessions.
    pub(crate) fn prune(&self, idle: Duration, ttl: Duration) {
        let now = Instant::now();
        self.map().retain(|_, s| {
            now.duration_since(s.last_seen) <= idle && now.duration_since(s.created) <= ttl
        });
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

    #[test]
    fn idle_and_absolute_expiry() {
        let sessions = Sessions::default();
        let id = sessions.create("ann", None, String::new(), None);
        let t0 = Instant::now();
        let (idle, ttl) = (Duration::from_secs(10), Duration::from_secs(25));
        assert!(
            sessions
                .get_at(&id, idle, ttl, t0 + Duration::from_secs(8))
                .is_some()
        );
        assert!(
            sessions
                .get_at(&id, idle, ttl, t0 + Duration::from_secs(16))
                .is_some()
        );
        // Active, but older than the absolute limit.
        assert!(
            sessions
                .get_at(&id, idle, ttl, t0 + Duration::from_secs(26))
                .is_none()
        );
        // And gone for good.
        assert!(sessions.get_at(&id, idle, ttl, t0).is_none());
        let id = sessions.create("ann", None, String::new(), None);
        assert!(
            sessions
                .get_at(&id, idle, ttl, t0 + Duration::from_secs(11))
                .is_none()
        );
    }

    #[test]
    fn login_replaces_the_old_session() {
        let sessions = Sessions::default();
        let old = sessions.create("ann", None, String::new(), None);
        let new = sessions.create("ann", None, String::new(), Some(&old));
        assert_ne!(old, new);
        let long = Duration::from_secs(60);
        assert!(sessions.get(&old, long, long).is_none());
        assert!(sessions.get(&new, long, long).is_some());
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
