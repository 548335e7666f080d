//! The recorder of one session: events go through a bounded queue to a task that writes them
//! through a buffered file, so a slow disk costs recorded output, never terminal latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_store::{Recording, RecordingId, Store};
use berth_terminal::TtySize;
use bytes::Bytes;
use time::OffsetDateTime;
use tokio::fs::File;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{RecordingError, Utf8Stream};

/// How long written events may wait in the buffer once output pauses.
const FLUSH_AFTER: Duration = Duration::from_millis(200);
/// Room kept under the size cap for the final marker, so the file never exceeds the cap.
const MARKER_RESERVE: u64 = 256;

enum Event {
    Output { at: Duration, data: Bytes },
    Resize { at: Duration, size: TtySize },
}

/// Records one terminal session. Cheap to call from the session's hot path: [`Recorder::output`]
/// and [`Recorder::resize`] never wait; when the disk falls behind, output is dropped and a
/// marker event in the file says how much.
#[derive(Debug)]
pub struct Recorder {
    id: RecordingId,
    started: Instant,
    tx: mpsc::Sender<Event>,
    shared: Arc<Shared>,
    task: JoinHandle<Result<Recording, RecordingError>>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Output bytes dropped since the last marker.
    dropped: AtomicU64,
    /// The recording stopped (size cap or write error): later events are ignored.
    stopped: AtomicBool,
}

impl Recorder {
    pub(super) fn spawn(
        recording: Recording,
        file: BufWriter<File>,
        header_bytes: u64,
        store: Arc<dyn Store>,
        max_bytes: u64,
        queue: usize,
        live: super::LiveGuard,
    ) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let shared = Arc::new(Shared::default());
        let writer = Writer {
            file,
            written: header_bytes,
            max_bytes,
            decoder: Utf8Stream::default(),
            last: 0.0,
            shared: Arc::clone(&shared),
            _live: live,
        };
        let id = recording.id;
        let task = tokio::spawn(writer.run(rx, recording, store));
        Self {
            id,
            started: Instant::now(),
            tx,
            shared,
            task,
        }
    }

    /// The recording's id.
    #[must_use]
    pub fn id(&self) -> RecordingId {
        self.id
    }

    /// Records terminal output (an `o` event) timed now.
    pub fn output(&self, data: &Bytes) {
        if data.is_empty() || self.shared.stopped.load(Ordering::Relaxed) {
            return;
        }
        let event = Event::Output {
            at: self.started.elapsed(),
            data: data.clone(),
        };
        if self.tx.try_send(event).is_err() {
            self.shared
                .dropped
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
    }

    /// Records a new terminal size (an `r` event) timed now.
    pub fn resize(&self, size: TtySize) {
        if self.shared.stopped.load(Ordering::Relaxed) {
            return;
        }
        let event = Event::Resize {
            at: self.started.elapsed(),
            size,
        };
        // A resize lost to a full queue only makes the replay's size wrong for a while.
        let _ = self.tx.try_send(event);
    }

    /// Writes what is queued, closes the file and records its end and size in the store.
    pub async fn finish(self) -> Result<Recording, RecordingError> {
        drop(self.tx);
        match self.task.await {
            Ok(result) => result,
            Err(err) => Err(RecordingError::Task(err.to_string())),
        }
    }
}

struct Writer {
    file: BufWriter<File>,
    written: u64,
    max_bytes: u64,
    decoder: Utf8Stream,
    /// Time of the last event written: times never go backwards in the file.
    last: f64,
    shared: Arc<Shared>,
    /// Keeps the recording from retention until the writer is done with it.
    _live: super::LiveGuard,
}

impl Writer {
    /// Runs until every sender is gone (the session ended and the [`Recorder`] was finished or
    /// dropped), then records the end in the store: a recorder dropped without `finish` still
    /// leaves a complete file and row behind.
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Event>,
        recording: Recording,
        store: Arc<dyn Store>,
    ) -> Result<Recording, RecordingError> {
        let mut io_error = None;
        let mut dirty = false;
        loop {
            // Written data reaches the file once output pauses, not after every event: a
            // flush waits for the disk, and a fast terminal would wait with it.
            let next = if dirty {
                match tokio::time::timeout(FLUSH_AFTER, rx.recv()).await {
                    Ok(next) => next,
                    Err(_) => {
                        dirty = false;
                        if let Err(err) = self.file.flush().await {
                            self.fail(&recording, err, &mut io_error);
                        }
                        continue;
                    }
                }
            } else {
                rx.recv().await
            };
            let Some(event) = next else { break };
            if self.shared.stopped.load(Ordering::Relaxed) {
                continue;
            }
            dirty = true;
            if let Err(err) = self.event(event).await {
                self.fail(&recording, err, &mut io_error);
            }
        }
        if io_error.is_none()
            && let Err(err) = self.end().await
        {
            io_error = Some(err);
        }
        let ended_at = berth_store::normalize_time(OffsetDateTime::now_utc());
        store
            .finish_recording(recording.id, ended_at, self.written)
            .await?;
        if let Some(err) = io_error {
            return Err(RecordingError::Write(err));
        }
        Ok(Recording {
            ended_at: Some(ended_at),
            bytes: self.written,
            ..recording
        })
    }

    fn fail(
        &self,
        recording: &Recording,
        err: std::io::Error,
        io_error: &mut Option<std::io::Error>,
    ) {
        tracing::warn!(recording = %recording.id, error = %err, "recording stopped: cannot write");
        self.shared.stopped.store(true, Ordering::Relaxed);
        io_error.get_or_insert(err);
    }

    async fn event(&mut self, event: Event) -> std::io::Result<()> {
        let at = match &event {
            Event::Output { at, .. } | Event::Resize { at, .. } => at.as_secs_f64(),
        };
        let at = at.max(self.last);
        self.last = at;
        let dropped = self.shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let rest = self.decoder.finish();
            self.line(at, "o", &rest).await?;
            let note = format!(
                "berth: {dropped} bytes of output were not recorded (the disk was too slow)"
            );
            self.line(at, "m", &note).await?;
        }
        match event {
            Event::Output { data, .. } => {
                let text = self.decoder.decode(&data);
                self.line(at, "o", &text).await
            }
            Event::Resize { size, .. } => {
                self.line(at, "r", &format!("{}x{}", size.cols, size.rows))
                    .await
            }
        }
    }

    /// Writes `[at, code, data]`, or the final marker and nothing more once the cap is near.
    async fn line(&mut self, at: f64, code: &str, data: &str) -> std::io::Result<()> {
        if data.is_empty() || self.shared.stopped.load(Ordering::Relaxed) {
            return Ok(());
        }
        let line = event_line(at, code, data);
        if self.written + line.len() as u64 + MARKER_RESERVE > self.max_bytes {
            self.shared.stopped.store(true, Ordering::Relaxed);
            let note = format!(
                "berth: recording stopped at its size limit of {} bytes",
                self.max_bytes
            );
            let marker = event_line(at, "m", &note);
            self.file.write_all(marker.as_bytes()).await?;
            self.written += marker.len() as u64;
            return self.file.flush().await;
        }
        self.file.write_all(line.as_bytes()).await?;
        self.written += line.len() as u64;
        Ok(())
    }

    /// The end of the stream: an incomplete character, then a marker for output dropped
    /// since the last event.
    async fn end(&mut self) -> std::io::Result<()> {
        let at = self.last;
        let rest = self.decoder.finish();
        self.line(at, "o", &rest).await?;
        let dropped = self.shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let note = format!(
                "berth: {dropped} bytes of output were not recorded (the disk was too slow)"
            );
            self.line(at, "m", &note).await?;
        }
        self.file.flush().await?;
        self.file.get_mut().sync_data().await
    }
}

/// One asciicast v2 event line: `[1.234567, "o", "text"]` and a newline.
pub(super) fn event_line(at: f64, code: &str, data: &str) -> String {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "\"\"".to_owned());
    format!("[{at:.6}, \"{code}\", {data}]\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_are_json_arrays_with_escaped_text() {
        assert_eq!(
            event_line(1.5, "o", "a\u{1b}[0m\"\n"),
            "[1.500000, \"o\", \"a\\u001b[0m\\\"\\n\"]\n"
        );
        let parsed: serde_json::Value =
            serde_json::from_str(&event_line(0.0000004, "r", "80x24")).unwrap();
        assert_eq!(parsed, serde_json::json!([0.0, "r", "80x24"]));
    }
}
