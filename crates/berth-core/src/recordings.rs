//! Recordings of terminal sessions as asciicast v2 files (`docs/recordings.md`).
//!
//! Each session of a target that records (a workspace of a template with `record: true`, the
//! default) is written to `<recordings dir>/<workspace id>/<recording id>.cast` (a machine's to
//! `machines/<machine id>/<recording id>.cast`): a JSON header line, then one line per
//! event: `[seconds, "o", text]` for output, `[seconds, "r", "COLSxROWS"]` for a resize and
//! `[seconds, "m", note]` for Berth's own markers. Input is never recorded: it holds passwords.
//! The store indexes the files ([`berth_store::Recording`]) so they are listed per target and
//! found by id; only the target's owner and admins may see them (the server enforces it).

mod utf8;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_store::{Recording, RecordingId, Store, StoreError};
use berth_terminal::{DEFAULT_TERM, TerminalTarget, TtySize};
use berth_types::Username;
use time::OffsetDateTime;
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::audit::{Audit, AuditAction, AuditEvent};

pub use utf8::Utf8Stream;
pub use writer::Recorder;

/// The largest recording file; at the cap recording stops with a final marker event.
pub const MAX_RECORDING_BYTES: u64 = 256 * 1024 * 1024;
/// Bytes gathered before a write to the file: large writes keep a fast terminal's recording
/// up with it.
const WRITE_BUFFER: usize = 256 * 1024;
/// Events waiting for the disk per session; when they are this many, output is dropped (and
/// counted in a marker) rather than holding up the terminal.
pub const RECORDER_QUEUE: usize = 64;

/// Why a recording could not be started, written or found.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// No recording with this id.
    #[error("no such recording")]
    NotFound,
    /// The file could not be created.
    #[error("cannot create recording {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing failed midway; what was written before stays.
    #[error("cannot write the recording: {0}")]
    Write(std::io::Error),
    /// The writer task failed.
    #[error("the recording task failed: {0}")]
    Task(String),
    /// The index in the database failed.
    #[error("the recordings index failed: {0}")]
    Store(#[from] StoreError),
    /// The session is still being recorded.
    #[error("the session is still being recorded; delete the recording once it has ended")]
    Live,
}

/// A recording's metadata and where its file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingFile {
    /// What the store knows about it.
    pub recording: Recording,
    /// The asciicast file (it may be gone if someone removed it by hand).
    pub path: PathBuf,
}

/// What a new recording is about.
#[derive(Debug, Clone)]
pub struct RecordingStart {
    /// What the terminal was opened on.
    pub target: TerminalTarget,
    /// Its owner, who may watch the recording.
    pub owner: Username,
    /// Who attached.
    pub username: Username,
    /// The terminal size at the start.
    pub size: TtySize,
    /// The header's title.
    pub title: String,
}

/// How long, and how much, recordings are kept (main.yaml `recordings`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Recordings whose session ended (or whose file was last written) longer ago than this
    /// are deleted. `None`: age alone deletes nothing.
    pub max_age: Option<std::time::Duration>,
    /// While all recordings together take more bytes than this, the oldest finished ones are
    /// deleted. `None`: no limit.
    pub max_total_bytes: Option<u64>,
}

/// What one retention pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expired {
    /// The recordings deleted, oldest first.
    pub recordings: Vec<RecordingId>,
    /// The bytes their files took.
    pub bytes: u64,
}

/// The recordings being written now, by id: retention leaves them alone.
#[derive(Debug, Default)]
struct Live(std::sync::Mutex<std::collections::HashSet<RecordingId>>);

impl Live {
    fn ids(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<RecordingId>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Marks one recording live until dropped (when its writer has finished the file and row).
#[derive(Debug)]
pub(crate) struct LiveGuard {
    live: Arc<Live>,
    id: RecordingId,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.live.ids().remove(&self.id);
    }
}

/// The recordings directory and its index in the store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Recordings {
    dir: PathBuf,
    store: Arc<dyn Store>,
    max_bytes: u64,
    queue: usize,
    /// One retention pass at a time, so two never delete (and report) the same recording.
    expiring: Arc<tokio::sync::Mutex<()>>,
    live: Arc<Live>,
}

impl Recordings {
    /// Recordings under `dir` (`$BERTH_HOME/recordings`; created on first use, mode 0700),
    /// indexed in `store`.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>, store: Arc<dyn Store>) -> Self {
        Self {
            dir: dir.into(),
            store,
            max_bytes: MAX_RECORDING_BYTES,
            queue: RECORDER_QUEUE,
            expiring: Arc::default(),
            live: Arc::default(),
        }
    }

    /// The same with another size cap per file (tests).
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The same with another queue length (tests of a slow disk).
    #[must_use]
    pub fn with_queue(mut self, events: usize) -> Self {
        self.queue = events.max(1);
        self
    }

    /// The recordings directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A target's recordings, newest first (also after a workspace was deleted).
    pub async fn recordings_for(
        &self,
        target: &TerminalTarget,
    ) -> Result<Vec<Recording>, RecordingError> {
        Ok(self.store.list_recordings(target).await?)
    }

    /// One recording and its file.
    pub async fn recording(&self, id: RecordingId) -> Result<RecordingFile, RecordingError> {
        let recording = match self.store.get_recording(id).await {
            Ok(recording) => recording,
            Err(StoreError::NotFound) => return Err(RecordingError::NotFound),
            Err(err) => return Err(err.into()),
        };
        // The store only keeps plain relative paths, so this stays inside the directory.
        let path = self.dir.join(&recording.path);
        Ok(RecordingFile { recording, path })
    }

    /// Applies `retention` as of `now`: deletes the files and rows of recordings past
    /// `max_age` (by when their session ended; for one never finished, by when its file was
    /// last written), then, oldest first, of others while all indexed recordings together
    /// exceed `max_total_bytes`. A recording being written now is never deleted. A file that
    /// cannot be removed keeps its row, and a row that cannot be deleted is left for the next
    /// pass: what was deleted is reported either way.
    pub async fn expire(
        &self,
        retention: Retention,
        now: OffsetDateTime,
    ) -> Result<Expired, RecordingError> {
        if retention == Retention::default() {
            return Ok(Expired::default());
        }
        let _one_pass = self.expiring.lock().await;
        let live = self.live.ids().clone();
        // (recording, bytes on disk, when it last changed), oldest first.
        let mut entries = Vec::new();
        for recording in self.store.list_all_recordings().await? {
            let path = self.dir.join(&recording.path);
            let (bytes, written) = match tokio::fs::metadata(&path).await {
                Ok(meta) => (meta.len(), meta.modified().ok().map(OffsetDateTime::from)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => (0, None),
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "cannot read a recording's size; keeping it");
                    continue;
                }
            };
            let last = recording
                .ended_at
                .or(written)
                .unwrap_or(recording.started_at);
            entries.push((recording, bytes, last));
        }
        let mut doomed = vec![false; entries.len()];
        if let Some(max_age) = retention.max_age {
            for (i, (recording, _, last)) in entries.iter().enumerate() {
                doomed[i] = now - *last > max_age && !live.contains(&recording.id);
            }
        }
        if let Some(max_total) = retention.max_total_bytes {
            let mut total: u64 = entries
                .iter()
                .zip(&doomed)
                .filter(|(_, doomed)| !**doomed)
                .map(|((_, bytes, _), _)| bytes)
                .sum();
            for (i, (recording, bytes, _)) in entries.iter().enumerate() {
                if total <= max_total {
                    break;
                }
                if !doomed[i] && !live.contains(&recording.id) {
                    doomed[i] = true;
                    total -= bytes;
                }
            }
        }
        let doomed = entries
            .into_iter()
            .zip(doomed)
            .filter(|(_, doomed)| *doomed)
            .map(|((recording, bytes, _), _)| (recording, bytes));
        Ok(self.delete(doomed).await)
    }

    /// Applies `retention` as [`Recordings::expire`] does, logs what went and writes one
    /// `recording.expire` audit entry (actor `(berth)`) for a pass that deleted anything; the
    /// entry's details are `limits` (the configuration's words for them) plus what went.
    pub async fn apply_retention(
        &self,
        retention: Retention,
        now: OffsetDateTime,
        audit: &Audit,
        limits: serde_json::Map<String, serde_json::Value>,
    ) {
        /// The most recording ids one entry lists.
        const AUDITED_IDS: usize = 100;
        match self.expire(retention, now).await {
            Ok(expired) if expired.recordings.is_empty() => {}
            Ok(expired) => {
                tracing::info!(
                    recordings = expired.recordings.len(),
                    bytes = expired.bytes,
                    "expired recordings deleted"
                );
                let listed: Vec<String> = expired
                    .recordings
                    .iter()
                    .take(AUDITED_IDS)
                    .map(ToString::to_string)
                    .collect();
                let mut details = limits;
                details.insert("deleted".into(), expired.recordings.len().into());
                details.insert("bytes".into(), expired.bytes.into());
                details.insert("ids".into(), listed.into());
                AuditEvent::system(AuditAction::RecordingExpire, "recordings")
                    .at(now)
                    .details(details.into())
                    .record_to(audit)
                    .await;
            }
            Err(err) => tracing::warn!(error = %err, "recording retention failed"),
        }
    }

    /// A renamed account keeps its recordings: `from` becomes `to` as owner and as who
    /// attached. The rows changed.
    pub async fn rename_owner(
        &self,
        from: &Username,
        to: &Username,
    ) -> Result<u64, RecordingError> {
        Ok(self.store.rename_recordings(from, to).await?)
    }

    /// Deletes every recording of `owner`'s targets, files and rows (a deleted account:
    /// a name given to someone new later must not find them), also those being written.
    pub async fn remove_owner(&self, owner: &Username) -> Result<Expired, RecordingError> {
        let _one_pass = self.expiring.lock().await;
        let mut theirs = Vec::new();
        for recording in self.store.list_all_recordings().await? {
            if recording.owner != *owner {
                continue;
            }
            let bytes = tokio::fs::metadata(self.dir.join(&recording.path))
                .await
                .map_or(0, |meta| meta.len());
            theirs.push((recording, bytes));
        }
        Ok(self.delete(theirs.into_iter()).await)
    }

    /// Deletes one finished recording, its file and its row, and returns what it was. Refused
    /// while the session is still being recorded.
    pub async fn delete_one(&self, id: RecordingId) -> Result<Recording, RecordingError> {
        let _one_pass = self.expiring.lock().await;
        if self.live.ids().contains(&id) {
            return Err(RecordingError::Live);
        }
        let file = self.recording(id).await?;
        let bytes = tokio::fs::metadata(&file.path)
            .await
            .map_or(0, |meta| meta.len());
        let deleted = self
            .delete(std::iter::once((file.recording.clone(), bytes)))
            .await;
        if deleted.recordings.is_empty() {
            // The file could not be removed, or the row not deleted: the log says which.
            return Err(RecordingError::Write(std::io::Error::other(
                "the recording could not be deleted; the server's log says why",
            )));
        }
        Ok(file.recording)
    }

    /// Removes each recording's file, then its row; reports what went. A file that cannot be
    /// removed keeps its row; a row that cannot be deleted is left for a later pass.
    async fn delete(&self, doomed: impl Iterator<Item = (Recording, u64)>) -> Expired {
        let mut expired = Expired::default();
        for (recording, bytes) in doomed {
            let path = self.dir.join(&recording.path);
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "cannot delete a recording");
                    continue;
                }
            }
            // The target's directory goes with its last recording.
            if let Some(parent) = path.parent().filter(|p| *p != self.dir) {
                let _ = tokio::fs::remove_dir(parent).await;
            }
            match self.store.delete_recording(recording.id).await {
                Ok(()) => {}
                // Gone already (deleted by hand in the database): nothing of ours to report.
                Err(StoreError::NotFound) => continue,
                Err(err) => {
                    // Its file is gone; the row goes in a later pass (as a missing file).
                    tracing::warn!(recording = %recording.id, error = %err, "cannot delete a recording's row");
                    continue;
                }
            }
            expired.recordings.push(recording.id);
            expired.bytes += bytes;
        }
        expired
    }

    /// Starts recording: creates the file (mode 0600) with its header and indexes it.
    pub async fn start(&self, start: RecordingStart) -> Result<Recorder, RecordingError> {
        let id = RecordingId::random();
        // Live before its file exists, so a retention pass never takes it for abandoned.
        self.live.ids().insert(id);
        let live = LiveGuard {
            live: Arc::clone(&self.live),
            id,
        };
        let relative = match &start.target {
            TerminalTarget::Workspace(workspace) => format!("{workspace}/{id}.cast"),
            TerminalTarget::Machine(machine) => format!("machines/{machine}/{id}.cast"),
        };
        let path = self.dir.join(&relative);
        let created = |source| RecordingError::Create {
            path: path.clone(),
            source,
        };
        let mut attempts = 0;
        let file = loop {
            if let Some(parent) = path.parent() {
                tokio::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .await
                    .map_err(created)?;
            }
            let opened = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .await;
            match opened {
                // Retention removed the emptied workspace directory in between: once more.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound && attempts == 0 => {
                    attempts += 1;
                }
                other => break other.map_err(created)?,
            }
        };
        let started_at = berth_store::normalize_time(OffsetDateTime::now_utc());
        let header = header(&start, started_at);
        let mut file = BufWriter::with_capacity(WRITE_BUFFER, file);
        file.write_all(header.as_bytes()).await.map_err(created)?;
        file.flush().await.map_err(created)?;
        let recording = Recording {
            id,
            target: start.target,
            owner: start.owner,
            username: start.username,
            started_at,
            ended_at: None,
            path: relative,
            bytes: header.len() as u64,
            width: start.size.cols,
            height: start.size.rows,
        };
        if let Err(err) = self.store.insert_recording(&recording).await {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(err.into());
        }
        Ok(Recorder::spawn(
            recording,
            file,
            header.len() as u64,
            Arc::clone(&self.store),
            self.max_bytes,
            self.queue,
            live,
        ))
    }
}

/// The asciicast v2 header line.
fn header(start: &RecordingStart, at: OffsetDateTime) -> String {
    let header = serde_json::json!({
        "version": 2,
        "width": start.size.cols,
        "height": start.size.rows,
        "timestamp": at.unix_timestamp(),
        "env": {"TERM": DEFAULT_TERM},
        "title": start.title,
    });
    format!("{header}\n")
}
