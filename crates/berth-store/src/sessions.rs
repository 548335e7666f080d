//! Web sessions of the admin UI, kept so that a restart does not log every browser out. The
//! server holds them in memory and writes changes behind; the database only ever sees the
//! SHA-256 of a session's id.

use berth_types::{UserId, Username};
use time::OffsetDateTime;

/// One web session as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct WebSession {
    /// SHA-256 of the session id, 64 lowercase hex digits.
    pub id_hash: String,
    /// Who logged in.
    pub username: Username,
    /// Their id in users.yaml; `None` for the main.yaml admin.
    pub user_id: Option<UserId>,
    /// The password fingerprint at login: a changed password ends the session.
    pub password_fingerprint: String,
    /// The session's CSRF token (useless without the session cookie).
    pub csrf: String,
    /// When the user logged in.
    pub created_at: OffsetDateTime,
    /// The last request seen (as last written: the server writes it behind).
    pub last_seen: OffsetDateTime,
}

impl std::fmt::Debug for WebSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSession")
            .field("username", &self.username)
            .field("created_at", &self.created_at)
            .field("last_seen", &self.last_seen)
            .finish_non_exhaustive()
    }
}

macro_rules! session_columns {
    () => {
        "id_hash, username, user_id, password_fingerprint, csrf, created_at, last_seen"
    };
}

/// Saving a known session again only moves its last use.
pub(crate) const SAVE_SESSION: &str = concat!(
    "INSERT INTO web_sessions (",
    session_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (id_hash) DO UPDATE SET last_seen = excluded.last_seen"
);

pub(crate) const DELETE_SESSION: &str = "DELETE FROM web_sessions WHERE id_hash = $1";

pub(crate) const LIST_SESSIONS: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM web_sessions ORDER BY created_at, id_hash"
);

/// A stored hash must look like one: it is a primary key compared with computed hashes.
pub(crate) fn check_hash(hash: &str) -> Result<(), crate::StoreError> {
    if hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(crate::StoreError::InvalidInput(
            "a web session is stored by the SHA-256 of its id, 64 lowercase hex digits".into(),
        ))
    }
}

pub(crate) fn user_id(text: Option<String>) -> Result<Option<UserId>, crate::StoreError> {
    text.map(|t| {
        uuid::Uuid::try_parse(&t)
            .map(UserId::from)
            .map_err(|_| crate::StoreError::Corrupt(format!("web session user id {t:?}")))
    })
    .transpose()
}
