//! Invites: one-time registration codes that admins make for self-service sign-up
//! (`registration.mode: invite`), and [`InviteStore`], the store that owns them (`invites`).
//!
//! Only the SHA-256 of a code is stored. A code is used once however many sign-ups race for
//! it: [`InviteStore::use_invite`] is one conditional `UPDATE`, never a read followed by a
//! write.

use std::fmt;

use async_trait::async_trait;
use berth_types::{InviteId, Username};
use time::OffsetDateTime;

use crate::db::{Bind, Row, SqlStore};
use crate::{StoreError, sql};

/// One invite. Timestamps come back normalized (UTC, microseconds; see
/// [`crate::normalize_time`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteRecord {
    /// The invite id, chosen by the caller.
    pub id: InviteId,
    /// The SHA-256 of the code, as 64 lowercase hex digits; unique.
    pub code_hash: String,
    /// The admin who made it.
    pub created_by: Username,
    /// A note for admins ("course 2026-A").
    pub note: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it stops being accepted: a use at or after this instant is refused.
    pub expires_at: OffsetDateTime,
    /// The account it made, once used.
    pub used_by: Option<Username>,
    /// When it was used (set exactly when `used_by` is).
    pub used_at: Option<OffsetDateTime>,
}

/// What [`InviteStore::use_invite`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InviteUse {
    /// The code was valid and is now used by the caller: the invite as stored afterwards.
    Accepted(InviteRecord),
    /// No invite has this code.
    Unknown,
    /// The code was used already.
    AlreadyUsed,
    /// The code expired unused.
    Expired,
}

/// The invites table: one row per invite until an admin deletes it.
#[async_trait]
pub trait InviteStore: Send + Sync + fmt::Debug {
    /// Records a new invite. [`StoreError::InvalidInput`] if `code_hash` is not 64 lowercase
    /// hex digits or only one of `used_by` and `used_at` is set; [`StoreError::Conflict`] if
    /// the id or the code is taken.
    async fn insert_invite(&self, invite: &InviteRecord) -> Result<(), StoreError>;

    /// Every invite, newest first (by `created_at`, then id).
    async fn list_invites(&self) -> Result<Vec<InviteRecord>, StoreError>;

    /// Uses the invite whose code hashes to `code_hash` for `username`'s sign-up at `now`:
    /// [`InviteUse::Accepted`] if it is unused and `now` is before its `expires_at`, in one
    /// statement, so of concurrent uses of one code exactly one is accepted. Otherwise nothing
    /// changes and the answer says why (a used code is [`InviteUse::AlreadyUsed`] even once
    /// expired). [`StoreError::InvalidInput`] if `code_hash` is not 64 lowercase hex digits.
    async fn use_invite(
        &self,
        code_hash: &str,
        username: &Username,
        now: OffsetDateTime,
    ) -> Result<InviteUse, StoreError>;

    /// Makes invite `id` unused again (`used_by` and `used_at` cleared): the account its use
    /// was for could not be made. Nothing changes for an unused invite.
    /// [`StoreError::NotFound`] if there is no invite `id`.
    async fn release_invite(&self, id: InviteId) -> Result<(), StoreError>;

    /// Forgets invite `id`; its code is no longer accepted. [`StoreError::NotFound`] if there
    /// is none.
    async fn delete_invite(&self, id: InviteId) -> Result<(), StoreError>;

    /// `from` becomes `to` as the maker and as the user of invites (the account was renamed);
    /// how many fields changed.
    async fn rename_invites(&self, from: &Username, to: &Username) -> Result<u64, StoreError>;
}

macro_rules! invite_columns {
    () => {
        "id, code_hash, created_by, note, created_at, expires_at, used_by, used_at"
    };
}

const INSERT_INVITE: &str = concat!(
    "INSERT INTO invites (",
    invite_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);

const INVITE_ID_TAKEN: &str = "SELECT 1 FROM invites WHERE id = $1";

const LIST_INVITES: &str = concat!(
    "SELECT ",
    invite_columns!(),
    " FROM invites ORDER BY created_at DESC, id DESC"
);

const USE_INVITE: &str = concat!(
    "UPDATE invites SET used_by = $2, used_at = $3 \
     WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $3 RETURNING ",
    invite_columns!()
);

const INVITE_BY_CODE: &str = "SELECT used_at, expires_at FROM invites WHERE code_hash = $1";

const RELEASE_INVITE: &str = "UPDATE invites SET used_by = NULL, used_at = NULL WHERE id = $1";

const DELETE_INVITE: &str = "DELETE FROM invites WHERE id = $1";

const RENAME_CREATOR: &str = "UPDATE invites SET created_by = $2 WHERE created_by = $1";

const RENAME_USER: &str = "UPDATE invites SET used_by = $2 WHERE used_by = $1";

/// How often [`InviteStore::use_invite`] tries again when a refused use finds the invite
/// usable: it was released between the two statements.
const USE_ATTEMPTS: usize = 3;

fn check_hash(code_hash: &str) -> Result<(), StoreError> {
    if code_hash.len() == 64
        && code_hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "an invite's code hash is 64 lowercase hex digits (a SHA-256), not {:?}",
            code_hash.chars().take(80).collect::<String>()
        )))
    }
}

fn invite_row(row: &Row) -> Result<InviteRecord, StoreError> {
    Ok(InviteRecord {
        id: InviteId::from(row.get_uuid("id")?),
        code_hash: row.get_str("code_hash")?,
        created_by: sql::username(row.get_str("created_by")?)?,
        note: row.get_str("note")?,
        created_at: row.get_time("created_at")?,
        expires_at: row.get_time("expires_at")?,
        used_by: row.get_opt_str("used_by")?.map(sql::username).transpose()?,
        used_at: row.get_opt_time("used_at")?,
    })
}

#[async_trait]
impl InviteStore for SqlStore {
    async fn insert_invite(&self, i: &InviteRecord) -> Result<(), StoreError> {
        check_hash(&i.code_hash)?;
        if i.used_by.is_some() != i.used_at.is_some() {
            return Err(StoreError::InvalidInput(format!(
                "invite {}: used_by and used_at are set together or not at all",
                i.id
            )));
        }
        let inserted = self
            .execute(
                INSERT_INVITE,
                &[
                    Bind::Uuid(i.id.as_uuid()),
                    Bind::text(&i.code_hash),
                    Bind::text(i.created_by.as_str()),
                    Bind::text(&i.note),
                    Bind::Time(i.created_at),
                    Bind::Time(i.expires_at),
                    Bind::OptText(i.used_by.as_ref().map(|u| u.as_str().to_owned())),
                    Bind::OptTime(i.used_at),
                ],
            )
            .await;
        match inserted {
            Ok(_) => Ok(()),
            // Two unique keys: say which one was taken (never the code's hash).
            Err(StoreError::Conflict(_)) => {
                let id_taken = self
                    .fetch_optional(INVITE_ID_TAKEN, &[Bind::Uuid(i.id.as_uuid())])
                    .await?
                    .is_some();
                Err(StoreError::Conflict(if id_taken {
                    format!("invite {} exists", i.id)
                } else {
                    "an invite with this code exists".to_owned()
                }))
            }
            Err(other) => Err(other),
        }
    }

    async fn list_invites(&self) -> Result<Vec<InviteRecord>, StoreError> {
        self.fetch_all(LIST_INVITES, &[])
            .await?
            .iter()
            .map(invite_row)
            .collect()
    }

    async fn use_invite(
        &self,
        code_hash: &str,
        username: &Username,
        now: OffsetDateTime,
    ) -> Result<InviteUse, StoreError> {
        check_hash(code_hash)?;
        let binds = [
            Bind::text(code_hash),
            Bind::text(username.as_str()),
            Bind::Time(now),
        ];
        for _ in 0..USE_ATTEMPTS {
            if let Some(row) = self.fetch_optional(USE_INVITE, &binds).await? {
                return invite_row(&row).map(InviteUse::Accepted);
            }
            let Some(row) = self.fetch_optional(INVITE_BY_CODE, &binds[..1]).await? else {
                return Ok(InviteUse::Unknown);
            };
            if row.get_opt_time("used_at")?.is_some() {
                return Ok(InviteUse::AlreadyUsed);
            }
            if row.get_time("expires_at")? <= now {
                return Ok(InviteUse::Expired);
            }
        }
        // Used, then released, each time we looked: it was in use when we asked.
        Ok(InviteUse::AlreadyUsed)
    }

    async fn release_invite(&self, id: InviteId) -> Result<(), StoreError> {
        let changed = self
            .execute(RELEASE_INVITE, &[Bind::Uuid(id.as_uuid())])
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_invite(&self, id: InviteId) -> Result<(), StoreError> {
        let deleted = self
            .execute(DELETE_INVITE, &[Bind::Uuid(id.as_uuid())])
            .await?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn rename_invites(&self, from: &Username, to: &Username) -> Result<u64, StoreError> {
        let names = [Bind::text(from.as_str()), Bind::text(to.as_str())];
        let mut tx = self.begin_write().await?;
        let mut changed = 0;
        for statement in [RENAME_CREATOR, RENAME_USER] {
            changed += tx.execute(statement, &names).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sha256_hex_is_a_code_hash() {
        assert!(check_hash(&"0123456789abcdef".repeat(4)).is_ok());
        for bad in [
            String::new(),
            "a".repeat(63),
            "a".repeat(65),
            "A".repeat(64),
            "g".repeat(64),
            format!("{}é", "a".repeat(62)),
        ] {
            assert!(
                matches!(check_hash(&bad), Err(StoreError::InvalidInput(_))),
                "{bad:?}"
            );
        }
    }
}
