//! Web sessions of the admin UI, kept so that a restart does not log every browser out. The
//! server holds them in memory and writes changes behind; the database only ever sees the
//! SHA-256 of a session's id. [`WebSessionStore`] keeps them.

use std::fmt;

use async_trait::async_trait;
use berth_types::{UserId, Username};
use time::OffsetDateTime;

use crate::db::{Bind, Row, SqlStore};
use crate::{StoreError, sql};

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

impl fmt::Debug for WebSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
const SAVE_SESSION: &str = concat!(
    "INSERT INTO web_sessions (",
    session_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (id_hash) DO UPDATE SET last_seen = excluded.last_seen"
);

const DELETE_SESSION: &str = "DELETE FROM web_sessions WHERE id_hash = $1";

const LIST_SESSIONS: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM web_sessions ORDER BY created_at, id_hash"
);

/// A stored hash must look like one: it is a primary key compared with computed hashes.
fn check_hash(hash: &str) -> Result<(), StoreError> {
    if hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(
            "a web session is stored by the SHA-256 of its id, 64 lowercase hex digits".into(),
        ))
    }
}

fn user_id(text: Option<String>) -> Result<Option<UserId>, StoreError> {
    text.map(|t| {
        uuid::Uuid::try_parse(&t)
            .map(UserId::from)
            .map_err(|_| StoreError::Corrupt(format!("web session user id {t:?}")))
    })
    .transpose()
}

fn session_row(row: &Row) -> Result<WebSession, StoreError> {
    Ok(WebSession {
        id_hash: row.get_str("id_hash")?,
        username: sql::username(row.get_str("username")?)?,
        user_id: user_id(row.get_opt_str("user_id")?)?,
        password_fingerprint: row.get_str("password_fingerprint")?,
        csrf: row.get_str("csrf")?,
        created_at: row.get_time("created_at")?,
        last_seen: row.get_time("last_seen")?,
    })
}

/// The web sessions of the admin UI (`web_sessions`), by the SHA-256 of their ids.
#[async_trait]
pub trait WebSessionStore: Send + Sync + fmt::Debug {
    /// Saves web sessions in one transaction: new ones whole, known ones only their
    /// `last_seen`. [`StoreError::InvalidInput`] (and nothing of the batch saved) if an
    /// `id_hash` is not 64 lowercase hex digits.
    async fn save_sessions(&self, sessions: &[WebSession]) -> Result<(), StoreError>;

    /// Forgets web sessions by the SHA-256 of their ids; unknown ones are ignored.
    async fn delete_sessions(&self, id_hashes: &[String]) -> Result<(), StoreError>;

    /// Every stored web session, oldest first (expired ones too: expiry is the server's call).
    /// Rows that cannot be read are skipped (and logged).
    async fn list_sessions(&self) -> Result<Vec<WebSession>, StoreError>;
}

#[async_trait]
impl WebSessionStore for SqlStore {
    async fn save_sessions(&self, saved: &[WebSession]) -> Result<(), StoreError> {
        if saved.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for session in saved {
            check_hash(&session.id_hash)?;
            tx.execute(
                SAVE_SESSION,
                &[
                    Bind::text(&session.id_hash),
                    Bind::text(session.username.as_str()),
                    Bind::OptText(session.user_id.map(|u| u.to_string())),
                    Bind::text(&session.password_fingerprint),
                    Bind::text(&session.csrf),
                    Bind::Time(session.created_at),
                    Bind::Time(session.last_seen),
                ],
            )
            .await?;
        }
        tx.commit().await
    }

    async fn delete_sessions(&self, id_hashes: &[String]) -> Result<(), StoreError> {
        if id_hashes.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for hash in id_hashes {
            tx.execute(DELETE_SESSION, &[Bind::text(hash)]).await?;
        }
        tx.commit().await
    }

    async fn list_sessions(&self) -> Result<Vec<WebSession>, StoreError> {
        let rows = self.fetch_all(LIST_SESSIONS, &[]).await?;
        // A row that no longer reads (a name a newer rule refuses) is one browser logged out,
        // not all of them.
        Ok(rows
            .iter()
            .filter_map(|row| {
                session_row(row)
                    .map_err(
                        |err| tracing::warn!(error = %err, "skipping an unreadable web session"),
                    )
                    .ok()
            })
            .collect())
    }
}
