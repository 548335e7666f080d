//! Running a script on one machine: connect, `bash -s` with the script on stdin, output as it
//! arrives, the end (exit code or signal, timeout, cancel).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use berth_ssh::{ConnectOptions, ExecRequest, ExitStatus, Target, connect};
use berth_types::operation::{MachineRunStatus, OutputStream};
use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::OutputBuffer;

/// What to run where.
#[derive(Clone)]
pub struct RunSpec {
    /// The machine, its key and host key policy, its jump hosts.
    pub target: Target,
    /// Timeouts and retries of the connect (retries happen only before the script starts).
    pub connect: ConnectOptions,
    /// The bash script.
    pub script: Bytes,
    /// Variables exported for the script: sent on stdin before it, never on a command line.
    /// Names are `[A-Za-z_][A-Za-z0-9_]*` (not `BERTH_EXEC_ID`); values hold no NUL byte.
    pub env: Vec<(String, String)>,
    /// How long the script may run, from its start.
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL when it is ended.
    pub grace: Duration,
    /// The most bytes kept of each of stdout and stderr (`fleet.max_output`).
    pub max_output: usize,
}

/// The variables' values are secrets (secrets.ini): only their names are shown.
impl std::fmt::Debug for RunSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSpec")
            .field("target", &self.target)
            .field("script_bytes", &self.script.len())
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("grace", &self.grace)
            .field("max_output", &self.max_output)
            .finish_non_exhaustive()
    }
}

/// What happens during a run, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// Connecting over SSH.
    Connecting,
    /// The script was sent; it runs (and will not be run again).
    Started,
    /// A chunk of output.
    Output {
        stream: OutputStream,
        data: Bytes,
        /// Whether the chunk lies within the head of its stream's [`OutputBuffer`]: kept chunks
        /// of a stream, in order, are exactly the start of [`RunEnd`]'s output, so they may be
        /// stored as they arrive. A chunk that crosses the head's end comes as two events.
        kept: bool,
    },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd {
    pub status: MachineRunStatus,
    /// The script's exit code, when it exited.
    pub exit_code: Option<i64>,
    /// The signal that ended the script (`TERM`, `KILL`, ... without `SIG`), when one did.
    pub signal: Option<String>,
    /// What happened, for a person.
    pub message: String,
    /// From the start of the script to its end; `None` when it never started.
    pub duration: Option<Duration>,
    /// At most `max_output` bytes of each stream, with a marker where the middle was dropped
    /// ([`OutputBuffer::finish`]).
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Whether the middle of either stream was dropped.
    pub truncated: bool,
}

impl RunEnd {
    fn before_start(status: MachineRunStatus, message: String) -> Self {
        Self {
            status,
            exit_code: None,
            signal: None,
            message,
            duration: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
            truncated: false,
        }
    }
}

/// How long the events still queued at the end may wait for a slow receiver.
pub const EVENTS_AT_END: Duration = Duration::from_secs(5);

/// Runs `spec.script` on `spec.target` with `bash -s`.
///
/// Connecting (with the SSH client's retries) comes first; a failure there is `unreachable`
/// with the SSH client's words (host key unknown or changed, key refused, no answer, ...), and
/// a cancel (`cancel` becoming `true`) is `cancelled`: the script never started. Once the
/// script has been sent it is never sent again. The end is its exit (`succeeded` for 0,
/// `failed` for another code, a signal, or a channel that closed without saying how it ended),
/// or, past `spec.timeout` (`timed_out`) or on a cancel (`cancelled`), SIGTERM to every process
/// of the script (also the ones that left its process group), `spec.grace`, then SIGKILL
/// ([`berth_ssh::ExecControl::terminate`]). A spec with a bad variable is `failed` without
/// connecting.
///
/// The script runs with stdin from /dev/null: it is sent as a `{ ... } </dev/null` group, so
/// bash reads all of it before running any of it, and a command that reads stdin cannot eat
/// the rest of the script.
///
/// Events: a slow receiver never slows the script. Events it has no room for wait in a queue
/// here: `Connecting`, `Started` and the kept chunks (at most `max_output` bytes per stream);
/// a chunk past the head that finds the channel full (or the queue not empty) is not sent as
/// an event: it is in [`RunEnd`] if it is in the tail. After the end the queue gets
/// [`EVENTS_AT_END`] to drain. A closed receiver gets nothing and the run goes on. A cancel
/// sender dropped without sending `true` never cancels.
pub async fn run_on_machine(
    spec: RunSpec,
    mut cancel: watch::Receiver<bool>,
    events: mpsc::Sender<RunEvent>,
) -> RunEnd {
    let mut events = Events::new(events);
    let end = run(spec, &mut cancel, &mut events).await;
    let _ = tokio::time::timeout(EVENTS_AT_END, events.drain()).await;
    end
}

async fn run(spec: RunSpec, cancel: &mut watch::Receiver<bool>, events: &mut Events) -> RunEnd {
    let stdin = match script_input(&spec.env, &spec.script) {
        Ok(stdin) => stdin,
        Err(message) => return RunEnd::before_start(MachineRunStatus::Failed, message),
    };
    if *cancel.borrow() {
        return RunEnd::before_start(MachineRunStatus::Cancelled, never_started());
    }
    events.push(RunEvent::Connecting, true);
    let connecting = connect(&spec.target, &spec.connect);
    tokio::pin!(connecting);
    let session = loop {
        tokio::select! {
            connected = &mut connecting => match connected {
                Ok(session) => break session,
                Err(e) => {
                    // Enrollment's words: they say what to do about a host key or a key.
                    let message = crate::enrollment::from_ssh_error(&e).message;
                    return RunEnd::before_start(MachineRunStatus::Unreachable, message);
                }
            },
            () = cancelled(cancel) => {
                return RunEnd::before_start(MachineRunStatus::Cancelled, never_started());
            }
            () = events.send_one() => {}
        }
    };
    // Dropped before its answer, the request leaves `bash -s` without its script: nothing runs.
    let starting = tokio::time::timeout(
        spec.connect.connect_timeout,
        session.exec(ExecRequest::new("bash -s").with_stdin(stdin)),
    );
    tokio::pin!(starting);
    let answer = loop {
        tokio::select! {
            answer = &mut starting => break Some(answer),
            () = cancelled(cancel) => break None,
            () = events.send_one() => {}
        }
    };
    let execution = match answer {
        Some(Ok(Ok(execution))) => execution,
        failed => {
            let end = match failed {
                None => RunEnd::before_start(MachineRunStatus::Cancelled, never_started()),
                Some(Ok(Err(e))) => RunEnd::before_start(
                    MachineRunStatus::Unreachable,
                    format!("the script could not be started: {e}"),
                ),
                Some(_) => RunEnd::before_start(
                    MachineRunStatus::Unreachable,
                    format!(
                        "{} did not start the script within {}s",
                        session.address(),
                        spec.connect.connect_timeout.as_secs()
                    ),
                ),
            };
            let _ = session.close().await;
            return end;
        }
    };
    events.push(RunEvent::Started, true);
    let end = follow(execution, &spec, cancel, events).await;
    let _ = session.close().await;
    end
}

fn never_started() -> String {
    "cancelled before the script started".to_owned()
}

/// Resolves once `cancel` is `true`; never when its sender is gone without cancelling.
async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What goes to `bash -s`: the exports, then the script as one group reading /dev/null.
fn script_input(env: &[(String, String)], script: &[u8]) -> Result<Bytes, String> {
    let mut input = Vec::with_capacity(script.len() + 64);
    for (name, value) in env {
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "{name:?} is not a variable name (letters, digits and _, not starting with a digit)"
            ));
        }
        if name == berth_ssh::EXEC_ID_VAR {
            return Err(format!(
                "{name} is Berth's own: it finds the script's processes to end them"
            ));
        }
        if value.contains('\0') {
            return Err(format!("the value of {name} holds a NUL byte"));
        }
        input.extend_from_slice(
            format!("export {name}='{}'\n", value.replace('\'', r"'\''")).as_bytes(),
        );
    }
    input.extend_from_slice(b"{\n");
    input.extend_from_slice(script);
    if !script.ends_with(b"\n") {
        input.push(b'\n');
    }
    input.extend_from_slice(b"} </dev/null\n");
    Ok(input.into())
}

/// Why Berth ended a running script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    TimedOut,
    Cancelled,
}

type Termination = JoinHandle<Result<ExitStatus, berth_ssh::SshError>>;

/// Reads the output until the end, ending the script past its timeout or on a cancel.
async fn follow(
    mut execution: berth_ssh::Execution,
    spec: &RunSpec,
    cancel: &mut watch::Receiver<bool>,
    events: &mut Events,
) -> RunEnd {
    let started = Instant::now();
    // A timeout beyond what a clock can count is none.
    let deadline = tokio::time::Instant::from_std(started).checked_add(spec.timeout);
    let control = execution.control();
    let mut stdout = OutputBuffer::new(spec.max_output);
    let mut stderr = OutputBuffer::new(spec.max_output);
    let mut ending: Option<Ending> = None;
    let mut terminating: Option<Termination> = None;
    let mut unended: Option<String> = None;
    loop {
        let chunk = tokio::select! {
            chunk = execution.next_output() => match chunk {
                Some(chunk) => chunk,
                None => break,
            },
            () = past(deadline), if ending.is_none() => {
                ending = Some(Ending::TimedOut);
                terminating = Some(terminate(&control, spec.grace));
                continue;
            }
            () = cancelled(cancel), if ending.is_none() => {
                ending = Some(Ending::Cancelled);
                terminating = Some(terminate(&control, spec.grace));
                continue;
            }
            joined = ended(&mut terminating), if terminating.is_some() => {
                terminating = None;
                let failure = match joined {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(e) => Some(format!("ending it failed: {e}")),
                };
                if let Some(failure) = failure {
                    // The machine may not answer any more: stop waiting for the channel.
                    let _ = control.close().await;
                    unended = Some(failure);
                }
                continue;
            }
            () = events.send_one() => continue,
        };
        let (buffer, stream) = match chunk.stream {
            berth_ssh::OutputStream::Stdout => (&mut stdout, OutputStream::Stdout),
            berth_ssh::OutputStream::Stderr => (&mut stderr, OutputStream::Stderr),
        };
        let kept = buffer.push(&chunk.data);
        if kept > 0 {
            events.push(output(stream, chunk.data.slice(..kept), true), true);
        }
        if kept < chunk.data.len() {
            events.push(output(stream, chunk.data.slice(kept..), false), false);
        }
    }
    let status = control.wait().await;
    let duration = started.elapsed();
    let (stdout, out_truncated) = stdout.finish();
    let (stderr, err_truncated) = stderr.finish();
    let end = conclude(&status, ending, spec.timeout, unended.as_deref());
    RunEnd {
        status: end.status,
        exit_code: end.exit_code,
        signal: end.signal,
        message: end.message,
        duration: Some(duration),
        stdout,
        stderr,
        truncated: out_truncated || err_truncated,
    }
}

async fn past(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Ends the script in a task of its own, so the output is read meanwhile (and the script is
/// ended even if the run is dropped).
fn terminate(control: &berth_ssh::ExecControl, grace: Duration) -> Termination {
    let control = control.clone();
    tokio::spawn(async move { control.terminate(grace).await })
}

async fn ended(
    terminating: &mut Option<Termination>,
) -> Result<Result<ExitStatus, berth_ssh::SshError>, tokio::task::JoinError> {
    match terminating {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}

fn output(stream: OutputStream, data: Bytes, kept: bool) -> RunEvent {
    RunEvent::Output { stream, data, kept }
}

/// A run's status from how the script ended and whether Berth ended it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Conclusion {
    status: MachineRunStatus,
    exit_code: Option<i64>,
    signal: Option<String>,
    message: String,
}

fn conclude(
    exit: &ExitStatus,
    ending: Option<Ending>,
    timeout: Duration,
    unended: Option<&str>,
) -> Conclusion {
    let (exit_code, signal, how) = match exit {
        ExitStatus::Code(code) => (Some(i64::from(*code)), None, format!("exit code {code}")),
        ExitStatus::Signal { name, .. } => {
            (None, Some(name.clone()), format!("killed by SIG{name}"))
        }
        ExitStatus::Unknown => (None, None, "no exit status".to_owned()),
    };
    let (status, mut message) = match ending {
        Some(Ending::TimedOut) => (
            MachineRunStatus::TimedOut,
            format!(
                "ran past its timeout of {}s and was ended ({how})",
                timeout.as_secs_f64()
            ),
        ),
        Some(Ending::Cancelled) => (
            MachineRunStatus::Cancelled,
            format!("cancelled while running ({how})"),
        ),
        None => match exit {
            ExitStatus::Code(0) => (MachineRunStatus::Succeeded, how),
            ExitStatus::Code(_) | ExitStatus::Signal { .. } => (MachineRunStatus::Failed, how),
            ExitStatus::Unknown => (
                MachineRunStatus::Failed,
                "the connection closed before the script said how it ended".to_owned(),
            ),
        },
    };
    if let Some(failure) = unended {
        message.push_str(&format!(
            "; ending its processes failed, some may still run: {failure}"
        ));
    }
    Conclusion {
        status,
        exit_code,
        signal,
        message,
    }
}

/// The events of a run, with the queue for a receiver that has no room.
#[derive(Debug)]
struct Events {
    sender: mpsc::Sender<RunEvent>,
    queue: VecDeque<RunEvent>,
    closed: bool,
}

impl Events {
    fn new(sender: mpsc::Sender<RunEvent>) -> Self {
        Self {
            sender,
            queue: VecDeque::new(),
            closed: false,
        }
    }

    /// Sends `event` now if there is room; else queues it when it must not be lost, and drops
    /// it otherwise.
    fn push(&mut self, event: RunEvent, must_arrive: bool) {
        if self.closed {
            return;
        }
        if !self.queue.is_empty() {
            // Behind queued events, sending now would change the order.
            if must_arrive {
                self.queue.push_back(event);
            }
            return;
        }
        match self.sender.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) if must_arrive => {
                self.queue.push_back(event);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => self.closed = true,
        }
    }

    /// Sends the first queued event once there is room; never resolves with nothing queued.
    async fn send_one(&mut self) {
        if self.queue.is_empty() {
            return std::future::pending().await;
        }
        match self.sender.reserve().await {
            Ok(permit) => {
                if let Some(event) = self.queue.pop_front() {
                    permit.send(event);
                }
            }
            Err(_) => {
                self.closed = true;
                self.queue.clear();
            }
        }
    }

    async fn drain(&mut self) {
        while !self.queue.is_empty() {
            self.send_one().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_spec_printed_for_debugging_shows_no_secret_value() {
        let spec = RunSpec {
            target: Target {
                host: "127.0.0.1".into(),
                port: 22,
                user: "ops".into(),
                key: berth_ssh::ClientKey::new("/nonexistent"),
                host_key: berth_ssh::HostKeyPolicy::Pinned("ssh-ed25519 AAAA".into()),
                jump: Vec::new(),
            },
            connect: ConnectOptions::default(),
            script: Bytes::from_static(b"echo hi"),
            env: env(&[("TOKEN", "hunter2-secret")]),
            timeout: Duration::from_secs(1),
            grace: Duration::from_secs(1),
            max_output: 10,
        };
        let shown = format!("{spec:?}");
        assert!(shown.contains("TOKEN"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn variables_are_exported_single_quoted_before_the_script_group() {
        let input = script_input(&env(&[("A_1", "it's $(x)\n`y`")]), b"echo hi").unwrap();
        assert_eq!(
            &input[..],
            &b"export A_1='it'\\''s $(x)\n`y`'\n{\necho hi\n} </dev/null\n"[..]
        );
        let input = script_input(&[], b"echo hi\n").unwrap();
        assert_eq!(&input[..], &b"{\necho hi\n} </dev/null\n"[..]);
    }

    #[test]
    fn bad_variables_are_refused_by_name() {
        for name in ["", "1A", "A-B", "A B", "É", "A=B", "BERTH_EXEC_ID"] {
            let refused = script_input(&env(&[(name, "v")]), b"true").unwrap_err();
            assert!(refused.contains(name), "{refused}");
        }
        let refused = script_input(&env(&[("A", "a\0b")]), b"true").unwrap_err();
        assert!(refused.contains("NUL"), "{refused}");
    }

    #[test]
    fn the_status_follows_the_exit_unless_berth_ended_it() {
        let t = Duration::from_secs(2);
        let term = ExitStatus::Signal {
            name: "TERM".into(),
            core_dumped: false,
        };
        let ok = conclude(&ExitStatus::Code(0), None, t, None);
        assert_eq!(
            (ok.status, ok.exit_code, ok.signal),
            (MachineRunStatus::Succeeded, Some(0), None)
        );
        let code = conclude(&ExitStatus::Code(7), None, t, None);
        assert_eq!(
            (code.status, code.exit_code),
            (MachineRunStatus::Failed, Some(7))
        );
        assert!(code.message.contains("exit code 7"), "{}", code.message);
        let killed = conclude(&term, None, t, None);
        assert_eq!(
            (killed.status, killed.exit_code, killed.signal.as_deref()),
            (MachineRunStatus::Failed, None, Some("TERM"))
        );
        let lost = conclude(&ExitStatus::Unknown, None, t, None);
        assert_eq!(lost.status, MachineRunStatus::Failed);
        assert!(lost.message.contains("closed"), "{}", lost.message);
        // Whatever the exit, a script Berth ended is timed out or cancelled.
        let timed_out = conclude(&ExitStatus::Code(0), Some(Ending::TimedOut), t, None);
        assert_eq!(timed_out.status, MachineRunStatus::TimedOut);
        assert!(timed_out.message.contains("2s"), "{}", timed_out.message);
        let cancelled = conclude(&term, Some(Ending::Cancelled), t, Some("no answer"));
        assert_eq!(cancelled.status, MachineRunStatus::Cancelled);
        assert_eq!(cancelled.signal.as_deref(), Some("TERM"));
        assert!(
            cancelled.message.contains("may still run: no answer"),
            "{}",
            cancelled.message
        );
    }

    fn chunk(data: &'static [u8], kept: bool) -> RunEvent {
        output(OutputStream::Stdout, Bytes::from_static(data), kept)
    }

    #[tokio::test]
    async fn a_full_receiver_queues_kept_events_in_order_and_skips_the_rest() {
        let (sender, mut receiver) = mpsc::channel(1);
        let mut events = Events::new(sender);
        events.push(RunEvent::Started, true);
        events.push(chunk(b"a", true), true);
        events.push(chunk(b"x", false), false);
        events.push(chunk(b"b", true), true);
        assert_eq!(events.queue.len(), 2, "{events:?}");
        let mut got = Vec::new();
        for _ in 0..2 {
            got.push(receiver.recv().await.unwrap());
            events.send_one().await;
        }
        // With the queue empty, an unkept chunk that finds room is sent.
        got.push(receiver.recv().await.unwrap());
        events.push(chunk(b"y", false), false);
        got.push(receiver.recv().await.unwrap());
        assert_eq!(
            got,
            vec![
                RunEvent::Started,
                chunk(b"a", true),
                chunk(b"b", true),
                chunk(b"y", false)
            ]
        );
        // A receiver that is gone gets nothing, and nothing waits.
        events.push(chunk(b"c", true), true);
        drop(receiver);
        events.push(chunk(b"d", true), true);
        events.drain().await;
        assert!(events.queue.is_empty() && events.closed, "{events:?}");
    }
}
