//! Recordings of terminal sessions: one row per asciicast file under `$BERTH_HOME/recordings`.
//!
//! A recording outlives its workspace (it is evidence of what was done), so the table has no
//! foreign key to `workspaces` and keeps the workspace's owner itself: who may see it does not
//! depend on a workspace row that may be gone.

use std::path::{Component, Path};

pub use berth_types::RecordingId;
use berth_types::{Username, WorkspaceId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::StoreError;

/// One recorded terminal session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    /// Its id.
    pub id: RecordingId,
    /// The workspace whose terminal was recorded.
    pub workspace: WorkspaceId,
    /// The workspace's owner when it was recorded: they (and admins) may watch it.
    pub owner: Username,
    /// Who attached.
    pub username: Username,
    /// When the session started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it ended; `None` while it runs (or if the server died during it).
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// The file, relative to the recordings directory (`<workspace>/<id>.cast`).
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
pub(crate) fn check_path(path: &str) -> Result<(), StoreError> {
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

pub(crate) fn bytes_to_db(bytes: u64) -> Result<i64, StoreError> {
    i64::try_from(bytes)
        .map_err(|_| StoreError::InvalidInput(format!("recording of {bytes} bytes is too large")))
}

pub(crate) fn bytes_from_db(bytes: i64) -> Result<u64, StoreError> {
    u64::try_from(bytes).map_err(|_| StoreError::Corrupt(format!("recording of {bytes} bytes")))
}

pub(crate) fn dimension(value: i32) -> Result<u16, StoreError> {
    u16::try_from(value).map_err(|_| StoreError::Corrupt(format!("recording dimension {value}")))
}

macro_rules! recording_columns {
    () => {
        "id, workspace_id, owner, username, started_at, ended_at, path, bytes, width, height"
    };
}

pub(crate) const INSERT_RECORDING: &str = concat!(
    "INSERT INTO recordings (",
    recording_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);

pub(crate) const FINISH_RECORDING: &str =
    "UPDATE recordings SET ended_at = $2, bytes = $3 WHERE id = $1";

pub(crate) const GET_RECORDING: &str = concat!(
    "SELECT ",
    recording_columns!(),
    " FROM recordings WHERE id = $1"
);

/// Every recording, oldest first: what retention goes through.
pub(crate) const LIST_ALL_RECORDINGS: &str = concat!(
    "SELECT ",
    recording_columns!(),
    " FROM recordings ORDER BY started_at, id"
);

pub(crate) const DELETE_RECORDING: &str = "DELETE FROM recordings WHERE id = $1";

pub(crate) const RENAME_OWNER: &str = "UPDATE recordings SET owner = $2 WHERE owner = $1";

pub(crate) const RENAME_ATTACHED: &str = "UPDATE recordings SET username = $2 WHERE username = $1";

pub(crate) const LIST_RECORDINGS: &str = concat!(
    "SELECT ",
    recording_columns!(),
    " FROM recordings WHERE workspace_id = $1 ORDER BY started_at DESC, id"
);

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
