//! Process logging: JSON lines to `$BERTH_HOME/logs/berth.log` with size-based rotation, and
//! human-readable lines on stderr when stderr is a terminal.
//!
//! Each line of the file is one JSON object with the keys `time` (RFC 3339, UTC), `level`,
//! `target`, `message` and `fields` (the event's other fields). Logging never stops Berth from
//! starting: a truncated last line is closed with a newline before new lines are appended, and a
//! log file that cannot be opened at all is reported once on stderr and skipped.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Where and how much to log.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// The log file, e.g. `$BERTH_HOME/logs/berth.log`.
    pub file: PathBuf,
    /// Rotate when the file would grow past this many bytes.
    pub max_bytes: u64,
    /// How many rotated files (`berth.log.1` …) to keep besides the live one.
    pub files_kept: u32,
    /// A `tracing` filter directive such as `info` or `berth_server=debug,info`.
    pub level: String,
}

/// Installs the global subscriber and a panic hook that logs panics. Call once per process.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_env("BERTH_LOG")
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let file_layer =
        match RotatingFile::open(&settings.file, settings.max_bytes, settings.files_kept) {
            Ok(file) => Some(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLines)
                    .with_writer(SharedFile(Arc::new(Mutex::new(file))))
                    .with_ansi(false),
            ),
            Err(err) => {
                eprintln!(
                    "berth: cannot open log file {}: {err}; logging to stderr only",
                    settings.file.display()
                );
                None
            }
        };
    let stderr_is_terminal = io::stderr().is_terminal();
    let stderr_layer = (stderr_is_terminal || file_layer.is_none()).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(io::stderr)
            .with_ansi(stderr_is_terminal)
            .with_target(false)
    });
    let _ = tracing_subscriber::registry()
        .with(file_layer.with_filter(filter))
        .with(stderr_layer)
        .try_init();
    install_panic_hook();
}

/// Logs every panic (message, location, thread) before the default hook prints it.
fn install_panic_hook() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        tracing::error!(target: "berth::panic", %location, %thread, "panic: {message}");
        default_hook(info);
    }));
}

/// Formats one event as one JSON object on one line.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut visitor = JsonVisitor::default();
        event.record(&mut visitor);
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope
                .from_root()
                .map(|span| Value::String(span.name().to_owned()))
                .collect();
            if !spans.is_empty() {
                visitor.fields.insert("spans".into(), Value::Array(spans));
            }
        }
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut line = Map::new();
        line.insert("time".into(), Value::String(time));
        line.insert(
            "level".into(),
            Value::String(event.metadata().level().as_str().to_owned()),
        );
        line.insert(
            "target".into(),
            Value::String(event.metadata().target().to_owned()),
        );
        line.insert("message".into(), Value::String(visitor.message));
        line.insert("fields".into(), Value::Object(visitor.fields));
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| std::fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

#[derive(Default)]
struct JsonVisitor {
    message: String,
    fields: Map<String, Value>,
}

impl Visit for JsonVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.message);
        } else {
            self.fields.insert(field.name().into(), value.into());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.insert(field.name().into(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            let _ = write!(text, ": {cause}");
            source = cause.source();
        }
        self.fields.insert(field.name().into(), text.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields.insert(field.name().into(), text.into());
        }
    }
}

/// An append-only log file that rotates by size: `berth.log` → `berth.log.1` → … →
/// `berth.log.N`, dropping the oldest.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    files_kept: u32,
    file: File,
    size: u64,
}

impl RotatingFile {
    /// Opens (creating directories as needed, mode 0700) the log file for appending. Logs name
    /// users, addresses and failures: the files are 0600 whatever the umask, and an existing
    /// log (or rotated file) readable by others is restricted.
    pub fn open(path: &Path, max_bytes: u64, files_kept: u32) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let (file, size) = open_append(path)?;
        let rotated = (1..=files_kept).map(|n| {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        });
        for old in std::iter::once(path.to_owned()).chain(rotated) {
            restrict(&old);
        }
        Ok(Self {
            path: path.to_owned(),
            max_bytes: max_bytes.max(1),
            files_kept,
            file,
            size,
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.files_kept == 0 {
            let _ = fs::remove_file(&self.path);
        } else {
            let _ = fs::remove_file(self.rotated(self.files_kept));
            for n in (1..self.files_kept).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            fs::rename(&self.path, self.rotated(1))?;
        }
        let (file, size) = open_append(&self.path)?;
        self.file = file;
        self.size = size;
        Ok(())
    }
}

/// Makes an existing file 0600 if others may read it; a file that cannot be is reported on
/// stderr (logging is not set up yet) and left as it is.
fn restrict(path: &Path) {
    let Ok(meta) = fs::metadata(path) else {
        return;
    };
    if meta.permissions().mode() & 0o077 != 0
        && let Err(err) = fs::set_permissions(path, fs::Permissions::from_mode(0o600))
    {
        eprintln!(
            "berth: log file {} is readable by others and cannot be restricted: {err}",
            path.display()
        );
    }
}

/// Opens `path` for appending (creating it with mode 0600); when the last line was cut short (a crash mid-write, a disk that
/// filled up), ends it so the next JSON line starts on a line of its own.
fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(path)?;
    let mut size = file.metadata()?.len();
    if size > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::End(-1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
            size += 1;
        }
    }
    Ok((file, size))
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size > 0 && self.size + buf.len() as u64 > self.max_bytes {
            // A failed rotation must not lose the line: keep appending to the current file.
            if let Err(err) = self.rotate() {
                eprintln!("berth: log rotation failed: {err}");
            }
        }
        let written = self.file.write(buf)?;
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Shares one [`RotatingFile`] between threads; each event is written under the lock in one
/// `write_all`, so lines never interleave.
#[derive(Clone)]
struct SharedFile(Arc<Mutex<RotatingFile>>);

struct SharedFileGuard<'a>(MutexGuard<'a, RotatingFile>);

impl Write for SharedFileGuard<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<'a> MakeWriter<'a> for SharedFile {
    type Writer = SharedFileGuard<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        // A thread that panicked while logging leaves the file usable: take it back.
        SharedFileGuard(
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/berth.log");
        let mut file = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..20 {
            // One write per line, as the subscriber does.
            let line = format!("line {i:02} {}\n", "x".repeat(30));
            file.write_all(line.as_bytes()).unwrap();
        }
        assert!(path.exists());
        assert!(dir.path().join("logs/berth.log.1").exists());
        assert!(dir.path().join("logs/berth.log.2").exists());
        assert!(!dir.path().join("logs/berth.log.3").exists());
        for p in [path.clone(), dir.path().join("logs/berth.log.1")] {
            assert!(fs::metadata(&p).unwrap().len() <= 100, "{}", p.display());
        }
        // The newest line is in the live file, the ones before it in .1.
        assert!(lines(&path).last().unwrap().starts_with("line 19"));
        assert_eq!(
            lines(&path),
            [
                format!("line 18 {}", "x".repeat(30)),
                format!("line 19 {}", "x".repeat(30))
            ]
        );
        assert!(lines(&dir.path().join("logs/berth.log.1"))[0].starts_with("line 16"));
        assert!(lines(&dir.path().join("logs/berth.log.2"))[0].starts_with("line 14"));
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn log_files_and_their_directory_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/berth.log");
        let mut file = RotatingFile::open(&path, 40, 2).unwrap();
        for _ in 0..4 {
            file.write_all(&[b'x'; 30]).unwrap();
        }
        assert_eq!(mode(&dir.path().join("logs")), 0o700);
        for name in ["berth.log", "berth.log.1", "berth.log.2"] {
            assert_eq!(mode(&dir.path().join("logs").join(name)), 0o600, "{name}");
        }
        // Files of an older Berth, readable by others, are restricted at the next start.
        for name in ["berth.log", "berth.log.2"] {
            let old = dir.path().join("logs").join(name);
            fs::set_permissions(&old, fs::Permissions::from_mode(0o644)).unwrap();
        }
        drop(RotatingFile::open(&path, 40, 2).unwrap());
        for name in ["berth.log", "berth.log.1", "berth.log.2"] {
            assert_eq!(mode(&dir.path().join("logs").join(name)), 0o600, "{name}");
        }
    }

    #[test]
    fn a_truncated_last_line_is_closed_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.log");
        fs::write(&path, b"{\"time\":\"2026-01-01T00:00:00Z\",\"lev").unwrap();
        let mut file = RotatingFile::open(&path, 1 << 20, 3).unwrap();
        writeln!(file, "{{\"message\":\"after\"}}").unwrap();
        let got = lines(&path);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], "{\"message\":\"after\"}");
    }

    #[test]
    fn garbage_in_the_log_file_does_not_stop_logging() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.log");
        fs::write(&path, [0xff, 0x00, 0xfe, b'\n', 0x80]).unwrap();
        let mut file = RotatingFile::open(&path, 1 << 20, 3).unwrap();
        file.write_all(b"ok\n").unwrap();
        let bytes = fs::read(&path).unwrap();
        assert!(bytes.ends_with(b"\x80\nok\n"));
    }

    #[test]
    fn a_log_path_that_is_a_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.log");
        fs::create_dir(&path).unwrap();
        assert!(RotatingFile::open(&path, 100, 1).is_err());
    }

    #[test]
    fn panics_are_logged_with_their_message_and_location() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.log");
        let file = SharedFile(Arc::new(Mutex::new(
            RotatingFile::open(&path, 1 << 20, 1).unwrap(),
        )));
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines)
                .with_writer(file),
        );
        install_panic_hook();
        tracing::subscriber::with_default(subscriber, || {
            let result = std::panic::catch_unwind(|| panic!("the disk is made of {}", "cheese"));
            assert!(result.is_err());
        });
        let got = lines(&path);
        let value: Value = serde_json::from_str(&got[0]).unwrap();
        assert_eq!(value["level"], "ERROR");
        assert_eq!(value["target"], "berth::panic");
        assert_eq!(value["message"], "panic: the disk is made of cheese");
        assert!(
            value["fields"]["location"]
                .as_str()
                .unwrap()
                .contains("logging.rs")
        );
    }

    #[test]
    fn events_are_json_lines_with_the_documented_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.log");
        let file = SharedFile(Arc::new(Mutex::new(
            RotatingFile::open(&path, 1 << 20, 1).unwrap(),
        )));
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines)
                .with_writer(file),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request");
            let _entered = span.enter();
            tracing::warn!(user = "alice", attempts = 3_u64, "login \"failed\"\nagain");
        });
        let got = lines(&path);
        assert_eq!(got.len(), 1, "{got:?}");
        let value: Value = serde_json::from_str(&got[0]).unwrap();
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["message"], "login \"failed\"\nagain");
        assert_eq!(value["fields"]["user"], "alice");
        assert_eq!(value["fields"]["attempts"], 3);
        assert_eq!(value["fields"]["spans"][0], "request");
        assert!(value["target"].as_str().unwrap().contains("logging"));
        assert!(
            time::OffsetDateTime::parse(
                value["time"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339
            )
            .is_ok()
        );
    }
}
