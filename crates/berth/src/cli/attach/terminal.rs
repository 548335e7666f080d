//! The local side of an attached terminal: raw mode on stdin (restored on every way out, panics
//! included), the window size, and stdin read on a thread of its own.

use std::io::{IsTerminal, Read};
use std::sync::{Mutex, Once};

use berth_terminal::TtySize;
use bytes::Bytes;
use rustix::termios::{self, OptionalActions, Termios};
use tokio::sync::mpsc;

use crate::cli::errors::CliError;

/// The modes to restore, for the panic hook (a panic may unwind past no `Drop` on the way).
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);
static HOOK: Once = Once::new();

fn saved() -> std::sync::MutexGuard<'static, Option<Termios>> {
    SAVED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn restore_saved() {
    if let Some(modes) = saved().take() {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &modes);
    }
}

/// Stdin in raw mode while it lives (when stdin is a terminal; otherwise nothing changes).
#[derive(Debug)]
pub struct RawMode {
    active: bool,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode: keys go to the workspace as typed, Ctrl-C included.
    pub fn enter() -> Result<Self, CliError> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Ok(Self { active: false });
        }
        let original = termios::tcgetattr(&stdin)
            .map_err(|e| CliError::new(format!("cannot read the terminal's modes: {e}")))?;
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore_saved();
                previous(info);
            }));
        });
        *saved() = Some(original.clone());
        let mut raw = original;
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw).map_err(|e| {
            restore_saved();
            CliError::new(format!("cannot put the terminal in raw mode: {e}"))
        })?;
        Ok(Self { active: true })
    }

    /// Whether stdin is a terminal in raw mode (and so the detach keys apply).
    pub fn is_active(&self) -> bool {
        self.active
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if self.active {
            restore_saved();
        }
    }
}

/// The terminal's size (stdout's, else stdin's), 80x24 when there is no terminal, kept within
/// 1..=1000 as the protocol asks.
pub fn size() -> TtySize {
    let from = |size: termios::Winsize| TtySize {
        cols: size.ws_col.clamp(1, 1000),
        rows: size.ws_row.clamp(1, 1000),
    };
    termios::tcgetwinsize(std::io::stdout())
        .or_else(|_| termios::tcgetwinsize(std::io::stdin()))
        .ok()
        .filter(|s| s.ws_col > 0 && s.ws_row > 0)
        .map_or(TtySize { cols: 80, rows: 24 }, from)
}

/// Reads stdin on a plain thread (never joined: it may stay blocked on the terminal after the
/// session ends, and the process exits without waiting for it). The channel closes at EOF.
pub fn stdin_chunks() -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0_u8; 8192];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                        break;
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    rx
}
