//! Output for people: colour only on a terminal (and never with `NO_COLOR`), aligned tables,
//! ages, and a spinner on stderr for waits longer than 300 ms.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use time::OffsetDateTime;

/// ANSI styling, on or off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    enabled: bool,
}

impl Style {
    fn for_terminal(is_terminal: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Self {
            enabled: is_terminal && !no_color && !dumb,
        }
    }

    /// No styling: for text painted as a whole, and what tests compare.
    pub fn plain() -> Self {
        Self { enabled: false }
    }

    /// Styling for stdout.
    pub fn stdout() -> Self {
        Self::for_terminal(std::io::stdout().is_terminal())
    }

    /// Styling for stderr.
    pub fn stderr() -> Self {
        Self::for_terminal(std::io::stderr().is_terminal())
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    pub fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// A state, coloured by what it means: of a workspace or container, a machine's health
    /// or enrollment, a sync's result.
    pub fn state(self, state: &str) -> String {
        match state {
            "running" | "online" | "enrolled" | "succeeded" | "unchanged" => self.green(state),
            "failed" | "offline" | "mismatch" | "missing" | "unreachable" | "auth_failed"
            | "host_key_changed" => self.red(state),
            "pending" | "starting" | "stopping" | "degraded" | "host_key_unknown"
            | "interrupted" => self.yellow(state),
            _ => self.dim(state),
        }
    }
}

/// `text` from the server (or from what it read: links.yaml, a machine's stderr, git) made
/// safe to print on a terminal: control characters (C0, DEL, C1: escape sequences could move
/// the cursor, retitle the window or hide text) and the bidirectional and invisible format
/// characters (which could make one line read as another) are shown as `\u{..}`; line breaks
/// and tabs become spaces, so a value stays on its line of a table.
#[must_use]
pub fn safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() || is_format(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Invisible characters that change how text around them reads: bidirectional marks,
/// embeddings, overrides and isolates, zero-width characters and the byte order mark.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
    )
}

/// Renders rows under a header with columns padded to their widest cell. Cells may carry ANSI
/// codes: widths are measured without them.
pub fn table(style: Style, header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(visible_len(cell));
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(&cell);
            if i < last {
                let pad = widths[i].saturating_sub(visible_len(&cell)) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    line(&mut out, header.iter().map(|h| style.bold(h)).collect());
    for row in rows {
        line(&mut out, row.iter().take(columns).cloned().collect());
    }
    out
}

/// Characters of `text` that show, skipping `ESC [ … m` sequences.
fn visible_len(text: &str) -> usize {
    let mut len = 0;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            len += 1;
        }
    }
    len
}

/// `value` as indented JSON, for `--json`.
pub fn pretty_json<T: serde::Serialize>(value: &T) -> Result<String, super::errors::CliError> {
    serde_json::to_string_pretty(value)
        .map_err(|e| super::errors::CliError::new(format!("cannot encode the answer as JSON: {e}")))
}

/// `90s` → `1m`, `3h` → `3h`, `2d` → `2d`: how long ago, coarsely.
pub fn age(since: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = u64::try_from((now - since).whole_seconds()).unwrap_or(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// A byte count for people: `1073741824` → `1g`, in the units of the YAML files.
pub fn bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "g"), (1 << 20, "m"), (1 << 10, "k")];
    for (size, unit) in UNITS {
        if n >= size && n.is_multiple_of(size) {
            return format!("{}{unit}", n / size);
        }
    }
    let mut out = String::new();
    let _ = write!(out, "{n}");
    out
}

/// A spinner on stderr while something is waited for. It shows only after 300 ms and only when
/// stderr is a terminal; [`Spinner::done`] (or dropping it) clears its line.
#[derive(Debug)]
pub struct Spinner {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Spinner {
    /// Starts waiting on `message` (e.g. "starting base"). Needs a Tokio runtime.
    pub fn start(message: impl Into<String>) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self { task: None };
        }
        let message = message.into();
        let task = tokio::spawn(async move {
            const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            tokio::time::sleep(Duration::from_millis(300)).await;
            for frame in FRAMES.iter().cycle() {
                {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{frame} {message}…");
                    let _ = err.flush();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { task: Some(task) }
    }

    /// Stops the spinner and clears its line.
    pub fn done(mut self) {
        self.clear();
    }

    fn clear(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod safe_tests {
    use super::safe;

    #[test]
    fn escape_sequences_and_bidi_overrides_are_shown_not_obeyed() {
        assert_eq!(safe("web-1"), "web-1");
        assert_eq!(safe("ünïcode ok"), "ünïcode ok");
        assert_eq!(safe("\x1b]0;pwn\x07x"), "\\u{1b}]0;pwn\\u{7}x");
        assert_eq!(safe("a\u{9b}31mb"), "a\\u{9b}31mb");
        assert_eq!(safe("evil\u{202e}txt.sh"), "evil\\u{202e}txt.sh");
        assert_eq!(safe("one\ntwo\tthree\r"), "one two three ");
        assert_eq!(safe("\u{7f}"), "\\u{7f}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_what_shows() {
        let plain = Style { enabled: false };
        let rows = vec![
            vec!["a".to_owned(), "running".to_owned(), "x".to_owned()],
            vec![
                "long-name".to_owned(),
                "\x1b[32mok\x1b[0m".to_owned(),
                "y".to_owned(),
            ],
        ];
        let text = table(plain, &["NAME", "STATE", "NOTE"], &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAME       STATE    NOTE");
        assert_eq!(lines[1], "a          running  x");
        assert_eq!(lines[2], "long-name  \x1b[32mok\x1b[0m       y");
    }

    #[test]
    fn ages_and_sizes_are_short() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(10);
        assert_eq!(age(now - time::Duration::seconds(5), now), "5s");
        assert_eq!(age(now - time::Duration::seconds(150), now), "2m");
        assert_eq!(age(now - time::Duration::hours(5), now), "5h");
        assert_eq!(age(now - time::Duration::days(3), now), "3d");
        assert_eq!(age(now + time::Duration::seconds(5), now), "0s");
        assert_eq!(bytes(1 << 30), "1g");
        assert_eq!(bytes(128 << 20), "128m");
        assert_eq!(bytes(1000), "1000");
    }
}
