//! Asking the person at the terminal: a line, or a password without echo.
//!
//! Questions go to `/dev/tty`, not stdin/stdout, so they work when output is piped. Ctrl-C while
//! echo is off would leave the terminal silent, so the read runs on a thread while the command
//! waits for it or for Ctrl-C, and the terminal is restored either way.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};

use rustix::termios::{self, LocalModes, OptionalActions, Termios};

use super::errors::CliError;

/// Passwords and usernames longer than this are refused rather than read on.
const MAX_LINE: usize = 4096;

fn open_tty(what: &str) -> Result<File, CliError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| {
            CliError::new(format!("no terminal to ask for the {what}"))
                .hint("give it on the command line (--username, --password-stdin or --token)")
        })
}

/// Restores the terminal's modes when dropped.
struct Restore {
    tty: File,
    saved: Termios,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.tty, OptionalActions::Now, &self.saved);
    }
}

/// Asks `prompt` on the terminal and reads one line; with `echo` false the typing is not shown.
async fn ask(prompt: &str, what: &str, echo: bool) -> Result<String, CliError> {
    let mut tty = open_tty(what)?;
    let restore = if echo {
        None
    } else {
        let saved = termios::tcgetattr(&tty)
            .map_err(|e| CliError::new(format!("cannot read the terminal's modes: {e}")))?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        // The Enter key still moves to the next line.
        quiet.local_modes.insert(LocalModes::ECHONL);
        termios::tcsetattr(&tty, OptionalActions::Flush, &quiet)
            .map_err(|e| CliError::new(format!("cannot turn off echo: {e}")))?;
        Some(Restore {
            tty: tty.try_clone()?,
            saved,
        })
    };
    tty.write_all(prompt.as_bytes())?;
    tty.flush()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A plain thread, not `spawn_blocking`: after Ctrl-C it stays blocked on the terminal, and
    // the runtime must not wait for it to finish.
    std::thread::spawn(move || {
        let _ = tx.send(read_line(tty));
    });
    let line = tokio::select! {
        line = rx => line.map_err(|_| CliError::new("could not read from the terminal"))?,
        _ = tokio::signal::ctrl_c() => {
            drop(restore);
            eprintln!();
            return Err(CliError::interrupted());
        }
    };
    drop(restore);
    let line = line?;
    if line.is_empty() {
        return Err(CliError::new(format!("no {what} given")));
    }
    Ok(line)
}

/// Asks for a line with echo (a username).
pub async fn line(prompt: &str, what: &str) -> Result<String, CliError> {
    ask(prompt, what, true).await.map(|l| l.trim().to_owned())
}

/// Asks for a password without echo.
pub async fn password(prompt: &str) -> Result<String, CliError> {
    ask(prompt, "password", false).await
}

fn read_line(input: impl Read) -> Result<String, CliError> {
    let mut line = String::new();
    BufReader::new(input.take(MAX_LINE as u64 + 1))
        .read_line(&mut line)
        .map_err(|e| CliError::new(format!("cannot read the terminal: {e}")))?;
    if line.len() > MAX_LINE {
        return Err(CliError::new("the line is too long"));
    }
    Ok(strip_newline(&line).to_owned())
}

/// `--password-stdin`: all of stdin, less one trailing newline, as `docker login` reads it.
pub fn password_from_stdin() -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_LINE as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| CliError::new(format!("cannot read the password from stdin: {e}")))?;
    if text.len() > MAX_LINE {
        return Err(CliError::new("the password on stdin is too long"));
    }
    let password = strip_newline(&text);
    if password.is_empty() {
        return Err(CliError::new("--password-stdin: stdin was empty")
            .hint("pipe the password in: `echo \"$PASSWORD\" | berth login SERVER --username NAME --password-stdin`"));
    }
    Ok(password.to_owned())
}

fn strip_newline(text: &str) -> &str {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.strip_suffix('\r').unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_dropped() {
        assert_eq!(strip_newline("pw\n"), "pw");
        assert_eq!(strip_newline("pw\r\n"), "pw");
        assert_eq!(strip_newline("pw \n\n"), "pw \n");
        assert_eq!(read_line(&b"secret\nrest"[..]).unwrap(), "secret");
        assert!(read_line(&vec![b'x'; MAX_LINE + 10][..]).is_err());
    }
}
