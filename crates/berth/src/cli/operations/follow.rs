//! Following an operation live: each machine's output line by line, prefixed with its id as
//! `pdsh` does (`m1: text` on stdout; standard error on stderr as `m1 (stderr): text`), its
//! state changes as `* m1 failed (exit 1)` on stderr, and Ctrl-C: once stops the operation
//! (`berth run`), twice leaves at once.

use std::collections::HashMap;
use std::io::Write;

use berth_client::api::{MachineStatusEvent, OperationView};
use berth_client::{ClientError, MachineId, OperationEvent, OperationId, output_bytes};
use berth_types::operation::{MachineRunStatus, OutputStream};
use tokio::signal::unix::Signal;

use crate::cli::Session;
use crate::cli::errors::CliError;
use crate::cli::output::{self, Style};

/// The longest line kept waiting for its end: a machine printing more without a newline
/// has it printed in pieces of this size.
const MAX_PENDING_LINE: usize = 64 * 1024;

/// One machine's stream cut into lines: bytes wait until their newline (or the end), and a
/// character split across chunks is whole again before it is shown.
#[derive(Debug, Default)]
pub struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    /// Adds `bytes`; answers the lines they complete, without their line ends.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &byte in bytes {
            if byte == b'\n' {
                lines.push(self.take());
            } else {
                self.pending.push(byte);
                if self.pending.len() >= MAX_PENDING_LINE {
                    lines.push(self.take());
                }
            }
        }
        lines
    }

    /// What is left after the last newline, if anything.
    pub fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let mut line = std::mem::take(&mut self.pending);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8_lossy(&line).into_owned()
    }
}

/// Where the live view goes: `berth run --json` keeps stdout for the JSON and shows the
/// machines' output on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// Standard output on stdout, the rest on stderr.
    Split,
    /// Everything on stderr.
    Stderr,
}

/// Prints the events of an operation as they come.
#[derive(Debug)]
pub struct Printer {
    live: Live,
    out: Style,
    err: Style,
    buffers: HashMap<(MachineId, OutputStream), LineBuffer>,
}

impl Printer {
    pub fn new(live: Live) -> Self {
        Self {
            live,
            out: if live == Live::Split {
                Style::stdout()
            } else {
                Style::stderr()
            },
            err: Style::stderr(),
            buffers: HashMap::new(),
        }
    }

    /// Prints one event; an output event whose bytes cannot be read is an error.
    pub fn event(&mut self, event: &OperationEvent) -> Result<(), CliError> {
        match event {
            OperationEvent::Output(output) => {
                let bytes = output_bytes(output).map_err(|e| CliError::new(e.to_string()))?;
                let lines = self
                    .buffers
                    .entry((output.machine.clone(), output.stream))
                    .or_default()
                    .push(&bytes);
                for line in lines {
                    self.line(&output.machine, output.stream, &line);
                }
            }
            OperationEvent::Machine(machine) => {
                if machine.status.is_finished() {
                    self.flush(Some(&machine.machine));
                }
                if let Some(text) = state_line(machine) {
                    eprintln!("{}", self.err.dim(&text));
                }
            }
            OperationEvent::Operation(_) => {}
        }
        Ok(())
    }

    /// Prints what `machine`'s streams (or every machine's) hold after their last newline.
    pub fn flush(&mut self, machine: Option<&MachineId>) {
        let mut keys: Vec<(MachineId, OutputStream)> = self
            .buffers
            .keys()
            .filter(|(m, _)| machine.is_none_or(|id| id == m))
            .cloned()
            .collect();
        keys.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
        for key in keys {
            if let Some(line) = self.buffers.get_mut(&key).and_then(LineBuffer::finish) {
                self.line(&key.0, key.1, &line);
            }
            self.buffers.remove(&key);
        }
    }

    fn line(&self, machine: &MachineId, stream: OutputStream, line: &str) {
        let text = prefixed(machine, stream, line);
        match (stream, self.live) {
            (OutputStream::Stdout, Live::Split) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", self.paint(self.out, stream, &text));
                let _ = out.flush();
            }
            _ => eprintln!("{}", self.paint(self.err, stream, &text)),
        }
    }

    fn paint(&self, style: Style, stream: OutputStream, text: &str) -> String {
        match stream {
            OutputStream::Stdout => text.to_owned(),
            OutputStream::Stderr => style.yellow(text),
        }
    }
}

/// `m1: text`, or `m1 (stderr): text`, made safe to print.
pub fn prefixed(machine: &MachineId, stream: OutputStream, line: &str) -> String {
    match stream {
        OutputStream::Stdout => format!("{machine}: {}", output::safe(line)),
        OutputStream::Stderr => format!("{machine} (stderr): {}", output::safe(line)),
    }
}

/// `exit 0`, `signal TERM`, or nothing.
pub fn ending(exit_code: Option<i64>, signal: Option<&str>) -> Option<String> {
    match (exit_code, signal) {
        (_, Some(signal)) => Some(format!("signal {}", output::safe(signal))),
        (Some(code), None) => Some(format!("exit {code}")),
        (None, None) => None,
    }
}

/// `failed (exit 1)`, `unreachable: connection refused`: a machine's state and how it ended —
/// the exit code or signal for `succeeded` and `failed` (the server's message only repeats
/// them), else the server's message, which says why (and how the script was ended).
pub fn how(
    style: Style,
    status: MachineRunStatus,
    exit_code: Option<i64>,
    signal: Option<&str>,
    message: &str,
) -> String {
    let state = style.state(status.as_str());
    let ending = ending(exit_code, signal);
    let plain_end = matches!(
        status,
        MachineRunStatus::Succeeded | MachineRunStatus::Failed
    );
    match ending {
        Some(ending) if plain_end || message.is_empty() => format!("{state} ({ending})"),
        _ if message.is_empty() => state,
        _ => format!("{state}: {}", output::safe(message)),
    }
}

/// `* m1 failed (exit 1)` for a machine's new state; nothing for `queued` (where every
/// machine begins).
pub fn state_line(event: &MachineStatusEvent) -> Option<String> {
    (event.status != MachineRunStatus::Queued).then(|| {
        format!(
            "* {} {}",
            event.machine,
            how(
                Style::plain(),
                event.status,
                event.exit_code,
                event.signal.as_deref(),
                &event.message
            )
        )
    })
}

/// What Ctrl-C does while following.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInterrupt {
    /// Stop the operation and go on following it to its end; a second Ctrl-C leaves.
    Stop,
    /// Leave; the operation goes on.
    Leave,
}

/// Follows operation `id` to its end (printing as [`Printer`] does; `interrupt` is SIGINT)
/// and answers it as `GET /api/v1/operations/{id}` has it then.
pub async fn follow(
    session: &Session,
    id: OperationId,
    mut interrupt: Signal,
    live: Live,
    on_interrupt: OnInterrupt,
) -> Result<OperationView, CliError> {
    let mut events = session.client.operation_events(id);
    let mut printer = Printer::new(live);
    let mut stopping: Option<tokio::task::JoinHandle<Result<OperationView, ClientError>>> = None;
    let mut interrupted = false;
    loop {
        tokio::select! {
            next = events.next() => match next {
                Ok(Some(event)) => printer.event(&event)?,
                Ok(None) => break,
                Err(e) => {
                    printer.flush(None);
                    return Err(CliError::new(format!(
                        "lost the operation's events: {}",
                        session.fail(&e)
                    ))
                    .hint(format!(
                        "it goes on on the server: `berth ops watch {id}` follows it again, \
                         `berth ops show {id}` shows where it stands"
                    )));
                }
            },
            _ = interrupt.recv() => {
                if on_interrupt == OnInterrupt::Leave || interrupted {
                    printer.flush(None);
                    let what = if interrupted { "is being stopped" } else { "goes on" };
                    return Err(CliError::interrupted().hint(format!(
                        "the operation {what} on the server: `berth ops show {id}`"
                    )));
                }
                interrupted = true;
                eprintln!(
                    "{}",
                    Style::stderr().yellow(&format!(
                        "* stopping operation {id} (Ctrl-C again leaves at once)"
                    ))
                );
                let client = session.client.clone();
                stopping = Some(tokio::spawn(async move { client.stop_operation(id).await }));
            },
            stopped = async {
                match stopping.as_mut() {
                    Some(stop) => stop.await,
                    None => std::future::pending().await,
                }
            } => {
                stopping = None;
                match stopped {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => eprintln!("berth: could not stop the operation: {}", session.fail(&e)),
                    Err(e) => eprintln!("berth: could not stop the operation: {e}"),
                }
            },
        }
    }
    printer.flush(None);
    super::overview(session, id)
        .await
        .map_err(|e| session.fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_for_their_end_and_split_characters_join() {
        let mut buffer = LineBuffer::default();
        assert!(buffer.push(b"hel").is_empty());
        assert_eq!(buffer.push(b"lo\nwor"), ["hello"]);
        // é is 0xc3 0xa9: split across two chunks, it is one character again.
        assert_eq!(buffer.push(b"ld \xc3"), Vec::<String>::new());
        assert_eq!(buffer.push(b"\xa9\r\n\n"), ["world é", ""]);
        assert_eq!(buffer.finish(), None);
        assert!(buffer.push(b"no newline \xff").is_empty());
        assert_eq!(buffer.finish().as_deref(), Some("no newline \u{fffd}"));
        assert_eq!(buffer.finish(), None);

        let long = vec![b'x'; MAX_PENDING_LINE * 2 + 5];
        let lines = buffer.push(&long);
        assert_eq!(lines.len(), 2, "a line without end is printed in pieces");
        assert!(lines.iter().all(|l| l.len() == MAX_PENDING_LINE));
        assert_eq!(buffer.finish().map(|l| l.len()), Some(5));
    }

    #[test]
    fn output_is_prefixed_and_shown_safely() {
        let m1 = MachineId::new("m1").unwrap();
        assert_eq!(
            prefixed(&m1, OutputStream::Stdout, "ok\tdone"),
            "m1: ok done"
        );
        assert_eq!(
            prefixed(&m1, OutputStream::Stderr, "\x1b[2Jgone"),
            "m1 (stderr): \\u{1b}[2Jgone"
        );
    }

    #[test]
    fn states_read_compactly() {
        let event = |status, exit_code, signal: Option<&str>, message: &str| MachineStatusEvent {
            machine: MachineId::new("m2").unwrap(),
            status,
            exit_code,
            signal: signal.map(str::to_owned),
            message: message.to_owned(),
        };
        use MachineRunStatus as S;
        assert_eq!(state_line(&event(S::Queued, None, None, "")), None);
        assert_eq!(
            state_line(&event(S::Running, None, None, "")).unwrap(),
            "* m2 running"
        );
        assert_eq!(
            state_line(&event(S::Failed, Some(3), None, "exit code 3")).unwrap(),
            "* m2 failed (exit 3)"
        );
        assert_eq!(
            state_line(&event(S::Failed, None, None, "the connection closed")).unwrap(),
            "* m2 failed: the connection closed"
        );
        assert_eq!(
            state_line(&event(
                S::TimedOut,
                None,
                Some("TERM"),
                "ran past 5m (killed)"
            ))
            .unwrap(),
            "* m2 timed_out: ran past 5m (killed)"
        );
        assert_eq!(
            state_line(&event(S::Cancelled, None, Some("KILL"), "")).unwrap(),
            "* m2 cancelled (signal KILL)"
        );
        assert_eq!(
            state_line(&event(S::Unreachable, None, None, "refused\n\x1b]0;x")).unwrap(),
            "* m2 unreachable: refused \\u{1b}]0;x"
        );
    }
}
