//! Recordings of terminal sessions: one row per asciicast file under `$BERTH_HOME/recordings`,
//! kept by [`RecordingStore`].
//!
//! A recording is of a terminal on a [`TerminalTarget`] (a workspace or a fleet machine),
//! stored as `target_kind` and `target_id`. It outlives its target (it is evidence of what was
//! done), so the table has no foreign key and keeps the owner itself: who may see it does not
//! depend on a workspace row that may be gone.

use std::fmt;
use std::path::{Component, Path};

use async_trait::async_trait;
pub use berth_types::RecordingId;
use berth_types::{TerminalTarget, Username};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::{Bind, Row, SqlStore};
use crate::{StoreError, sql};

/// One recorded terminal session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    /// Its id.
    pub id: RecordingId,
    /// What the recorded terminal was opened on.
    pub target: TerminalTarget,
    /// Whose recording it is (for a workspace, its owner when it was recorded): they (and
    /// admins) may watch it.
    pub owner: Username,
    /// Who attached.
    pub username: Username,
    /// When the session started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it ended; `None` while it runs (or if the server died during it).
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// The file, relative to the recordings directory (`<workspace id>/<id>.cast`, or
    /// `machines/<machine id>/<id>.cast`).
    pub path: String,
    /// Size of the file when the session ended.
    pub bytes: u64,
    /// Terminal width at the start, in columns.
    pub width: u16,
    /// Terminal height at the start, in rows.
    pub height: u16,
}

/// Only plain relative paths below the recordings directory: whoever reads a recording by id
/// joins this path to the directory, so `..`, absolute paths and NUL would escape it.
fn check_path(path: &str) -> Result<(), StoreError> {
    let bad = path.is_empty()
        || path.contains('\0')
        || Path::new(path)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)));
    if bad || path.len() > 1024 {
        return Err(StoreError::InvalidInput(format!(
            "recording path {:?} is not a plain relative path",
            path.chars().take(64).collect::<String>()
        )));
    }
    Ok(())
}

fn bytes_to_db(bytes: u64) -> Result<i64, StoreError> {
    i64::try_from(bytes)
        .map_err(|_| StoreError::InvalidInput(format!("recording of {bytes} bytes is too large")))
}

fn bytes_from_db(bytes: i64) -> Result<u64, StoreError> {
    u64::try_from(bytes).map_err(|_| StoreError::Corrupt(format!("recording of {bytes} bytes")))
}

fn dimension(value: i32) -> Result<u16, StoreError> {
    u16::try_from(value).map_err(|_| StoreError::Corrupt(format!("recording dimension {value}")))
}

macro_rules! recording_columns {
    () => {
        "id, target_kind, target_id, owner, username, started_at, ended_at, path, bytes, width, \
         height"
    };
}

const INSERT_RECORDING: &str = concat!(
    "INSERT INTO recordings (",
    recording_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
);

const FINISH_RECORDING: &str = "UPDATE recordings SET ended_at = $2, bytes = $3 WHERE id = $1";

const GET_RECORDING: &str = concat!(
    "SELECT ",
    recording_columns!(),
    " FROM recordings WHERE id = $1"
);

/// Every recording, oldest first: what retention goes through.
const LIST_ALL_RECORDINGS: &str = concat!(
    "SELECT ",
    recording_columns!(),
    " FROM recordings ORDER BY started_at, id"
);

const DELETE_RECORDING: &str = "DELETE FROM recordings WHERE id = $1";

const RENAME_OWNER: &str = "UPDATE recordings SET owner = $2 WHERE owner = $1";

const RENAME_ATTACHED: &str = "UPDATE recordings SET username = $2 WHERE username = $1";

const LIST_RECORDINGS: &str = concat!(
    "SELECT ",
    recording_columns!(),
    " FROM recordings WHERE target_kind = $1 AND target_id = $2 ORDER BY started_at DESC, id"
);

fn recording_row(row: &Row) -> Result<Recording, StoreError> {
    let (kind, id) = (row.get_str("target_kind")?, row.get_str("target_id")?);
    Ok(Recording {
        id: RecordingId::from(row.get_uuid("id")?),
        target: TerminalTarget::from_parts(&kind, &id)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        owner: sql::username(row.get_str("owner")?)?,
        username: sql::username(row.get_str("username")?)?,
        started_at: row.get_time("started_at")?,
        ended_at: row.get_opt_time("ended_at")?,
        path: row.get_str("path")?,
        bytes: bytes_from_db(row.get_i64("bytes")?)?,
        width: dimension(row.get("width")?)?,
        height: dimension(row.get("height")?)?,
    })
}

/// The index of terminal recordings (`recordings`): which file holds which session, on which
/// target, whose it is. The files themselves are the caller's.
#[async_trait]
pub trait RecordingStore: Send + Sync + fmt::Debug {
    /// Records a recording that starts now. [`StoreError::Conflict`] if the id or the path is
    /// taken; [`StoreError::InvalidInput`] if the path is not a plain relative path.
    async fn insert_recording(&self, recording: &Recording) -> Result<(), StoreError>;

    /// Records the end of a recording and its final size. [`StoreError::NotFound`] if there is
    /// no such recording.
    async fn finish_recording(
        &self,
        id: RecordingId,
        ended_at: OffsetDateTime,
        bytes: u64,
    ) -> Result<(), StoreError>;

    /// One recording. [`StoreError::NotFound`] if there is none with this id.
    async fn get_recording(&self, id: RecordingId) -> Result<Recording, StoreError>;

    /// A target's recordings, newest first (also after a workspace was deleted).
    async fn list_recordings(&self, target: &TerminalTarget) -> Result<Vec<Recording>, StoreError>;

    /// Every recording, oldest first, for retention.
    async fn list_all_recordings(&self) -> Result<Vec<Recording>, StoreError>;

    /// Forgets a recording (its file is the caller's to remove). [`StoreError::NotFound`] if
    /// there is none with this id.
    async fn delete_recording(&self, id: RecordingId) -> Result<(), StoreError>;

    /// A renamed user keeps their recordings: `from` becomes `to` as owner and as who
    /// attached, in one transaction. Returns the rows changed.
    async fn rename_recordings(&self, from: &Username, to: &Username) -> Result<u64, StoreError>;
}

#[async_trait]
impl RecordingStore for SqlStore {
    async fn insert_recording(&self, r: &Recording) -> Result<(), StoreError> {
        check_path(&r.path)?;
        self.execute(
            INSERT_RECORDING,
            &[
                Bind::Uuid(r.id.as_uuid()),
                Bind::text(r.target.kind().as_str()),
                Bind::Text(r.target.id_string()),
                Bind::text(r.owner.as_str()),
                Bind::text(r.username.as_str()),
                Bind::Time(r.started_at),
                Bind::OptTime(r.ended_at),
                Bind::text(&r.path),
                Bind::Int(bytes_to_db(r.bytes)?),
                Bind::Int(i64::from(r.width)),
                Bind::Int(i64::from(r.height)),
            ],
        )
        .await?;
        Ok(())
    }

    async fn finish_recording(
        &self,
        id: RecordingId,
        ended_at: OffsetDateTime,
        bytes: u64,
    ) -> Result<(), StoreError> {
        let finished = self
            .execute(
                FINISH_RECORDING,
                &[
                    Bind::Uuid(id.as_uuid()),
                    Bind::Time(ended_at),
                    Bind::Int(bytes_to_db(bytes)?),
                ],
            )
            .await?;
        if finished == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn get_recording(&self, id: RecordingId) -> Result<Recording, StoreError> {
        let row = self
            .fetch_one(GET_RECORDING, &[Bind::Uuid(id.as_uuid())])
            .await?;
        recording_row(&row)
    }

    async fn list_recordings(&self, target: &TerminalTarget) -> Result<Vec<Recording>, StoreError> {
        self.fetch_all(
            LIST_RECORDINGS,
            &[
                Bind::text(target.kind().as_str()),
                Bind::Text(target.id_string()),
            ],
        )
        .await?
        .iter()
        .map(recording_row)
        .collect()
    }

    async fn list_all_recordings(&self) -> Result<Vec<Recording>, StoreError> {
        self.fetch_all(LIST_ALL_RECORDINGS, &[])
            .await?
            .iter()
            .map(recording_row)
            .collect()
    }

    async fn delete_recording(&self, id: RecordingId) -> Result<(), StoreError> {
        let deleted = self
            .execute(DELETE_RECORDING, &[Bind::Uuid(id.as_uuid())])
            .await?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn rename_recordings(&self, from: &Username, to: &Username) -> Result<u64, StoreError> {
        let names = [Bind::text(from.as_str()), Bind::text(to.as_str())];
        let mut tx = self.begin_write().await?;
        let mut changed = 0;
        for statement in [RENAME_OWNER, RENAME_ATTACHED] {
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
    fn only_plain_relative_paths_are_kept() {
        for good in ["a/b.cast", "0b6c/1f2e.cast", "x"] {
            assert!(check_path(good).is_ok(), "{good}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a\0b", "./a"] {
            assert!(
                matches!(check_path(bad), Err(StoreError::InvalidInput(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ids_round_trip() {
        let id = RecordingId::random();
        assert_eq!(id.to_string().parse::<RecordingId>().unwrap(), id);
        assert!("nope".parse::<RecordingId>().is_err());
    }
}
