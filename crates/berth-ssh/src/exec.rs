//! Running a command: stdin bytes in, stdout and stderr out separately as they arrive, the exit
//! status or signal at the end, signals and close on the way.
//!
//! Each execution is a task that owns its SSH channel: commands ([`ExecControl`]) go in, output
//! chunks come out through a bounded queue. When the consumer does not read, the task stops
//! reading the channel, russh's per-channel buffer fills and the connection stops reading the
//! socket: output is never buffered without bound (which also pauses other channels of the same
//! connection; give a slow consumer its own connection).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use russh::{ChannelMsg, Sig};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{mpsc, oneshot, watch};

use crate::connect::Session;
use crate::error::SshError;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error (SSH extended data type 1).
    Stderr,
}

/// A chunk of output, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Where it came from.
    pub stream: OutputStream,
    /// The bytes.
    pub data: Bytes,
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(u32),
    /// A signal ended it (`TERM`, `KILL`, ... without the `SIG` prefix).
    Signal {
        /// The signal's name.
        name: String,
        /// Whether it dumped core.
        core_dumped: bool,
    },
    /// The channel closed without saying (the connection died, or it was closed early).
    Unknown,
}

impl ExitStatus {
    /// The exit code, when it exited normally.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Code(c) => Some(*c),
            _ => None,
        }
    }

    /// A shell's view: the code, or 128 + the signal number for a known signal.
    pub fn shell_code(&self) -> Option<i64> {
        match self {
            Self::Code(c) => Some(i64::from(*c)),
            Self::Signal { name, .. } => signal_number(name).map(|n| 128 + n),
            Self::Unknown => None,
        }
    }
}

fn signal_number(name: &str) -> Option<i64> {
    Some(match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => return None,
    })
}

pub(crate) fn signal_name(sig: &Sig) -> String {
    match sig {
        Sig::ABRT => "ABRT".into(),
        Sig::ALRM => "ALRM".into(),
        Sig::FPE => "FPE".into(),
        Sig::HUP => "HUP".into(),
        Sig::ILL => "ILL".into(),
        Sig::INT => "INT".into(),
        Sig::KILL => "KILL".into(),
        Sig::PIPE => "PIPE".into(),
        Sig::QUIT => "QUIT".into(),
        Sig::SEGV => "SEGV".into(),
        Sig::TERM => "TERM".into(),
        Sig::USR1 => "USR1".into(),
        Sig::Custom(name) => name.clone(),
    }
}

/// A signal for the remote process (the SSH "signal" channel request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM.
    Term,
    /// SIGKILL.
    Kill,
    /// SIGHUP.
    Hup,
    /// SIGINT.
    Int,
}

impl Signal {
    fn sig(self) -> Sig {
        match self {
            Self::Term => Sig::TERM,
            Self::Kill => Sig::KILL,
            Self::Hup => Sig::HUP,
            Self::Int => Sig::INT,
        }
    }
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The command line, run by the login user's shell on the machine (a POSIX shell: berth
    /// puts an `export BERTH_EXEC_ID=...` line before it, see [`ExecControl::signal_all`]).
    pub command: String,
    /// Bytes for its stdin, followed by EOF. Without them stdin is closed at once.
    pub stdin: Option<Bytes>,
}

impl ExecRequest {
    /// A command with stdin closed.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            stdin: None,
        }
    }

    /// Sends `stdin` to the command, then EOF (e.g. a script for `bash -s`).
    pub fn with_stdin(mut self, stdin: impl Into<Bytes>) -> Self {
        self.stdin = Some(stdin.into());
        self
    }
}

/// Chunks queued between the channel task and the consumer.
const OUTPUT_QUEUE: usize = 16;

enum Command {
    Signal(Sig, oneshot::Sender<Result<(), russh::Error>>),
    Close,
}

type Exit = watch::Receiver<Option<ExitStatus>>;

/// A running command: a `Stream` of [`Output`], then [`Execution::wait`].
#[derive(Debug)]
pub struct Execution {
    output: mpsc::Receiver<Output>,
    control: ExecControl,
}

/// Signals, closes and waits for a running command; cheap to clone.
#[derive(Clone)]
pub struct ExecControl {
    commands: mpsc::Sender<Command>,
    exit: Exit,
    address: String,
    /// For finding the command's processes from a second exec.
    session: Session,
    exec_id: String,
}

impl std::fmt::Debug for ExecControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecControl")
            .field("address", &self.address)
            .field("exec_id", &self.exec_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Signal(sig, _) => write!(f, "Signal({sig:?})"),
            Self::Close => f.write_str("Close"),
        }
    }
}

/// What [`Execution::collect`] gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// Standard output, up to the limit.
    pub stdout: Vec<u8>,
    /// Standard error, up to the limit.
    pub stderr: Vec<u8>,
    /// Whether output beyond the limit (per stream) was dropped.
    pub truncated: bool,
    /// How it ended.
    pub status: ExitStatus,
}

impl Session {
    /// Runs a command on the machine (a new session channel on this connection).
    pub async fn exec(&self, request: ExecRequest) -> Result<Execution, SshError> {
        let mut channel = self.open_session_channel().await?;
        let exec_id = new_exec_id(self.address())?;
        // Every process the command starts inherits the variable (unless it clears its
        // environment), so `signal_all` finds them even after the shell has died.
        let command = format!("export {EXEC_ID_VAR}={exec_id}\n{}", request.command);
        channel
            .exec(true, command.as_bytes())
            .await
            .map_err(|e| self.protocol(e))?;
        // The first message that is not the answer to the request belongs to the command.
        let mut first = None;
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => break,
                Some(ChannelMsg::Failure) => {
                    return Err(SshError::Protocol {
                        address: self.address().to_owned(),
                        reason: "the server refused to run the command".into(),
                    });
                }
                Some(ChannelMsg::WindowAdjusted { .. }) => {}
                Some(message) => {
                    first = Some(message);
                    break;
                }
                None => {
                    return Err(SshError::Closed {
                        address: self.address().to_owned(),
                    });
                }
            }
        }
        let (read, write) = channel.split();
        let mut stdin = write.make_writer();
        let feed = request.stdin;
        tokio::spawn(async move {
            // A separate task, so a command that writes before reading all its input is read
            // meanwhile; shutting the writer down sends EOF.
            if let Some(bytes) = feed
                && let Err(e) = stdin.write_all(&bytes).await
            {
                tracing::debug!("stdin of a remote command: {e}");
            }
            let _ = stdin.shutdown().await;
        });
        let (commands_tx, commands) = mpsc::channel(8);
        let (output_tx, output) = mpsc::channel(OUTPUT_QUEUE);
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(run_channel(
            first, read, write, commands, output_tx, exit_tx,
        ));
        Ok(Execution {
            output,
            control: ExecControl {
                commands: commands_tx,
                exit,
                address: self.address().to_owned(),
                session: self.clone(),
                exec_id,
            },
        })
    }
}

/// How long the second exec of [`ExecControl::signal_all`] may take.
const SIGNAL_ALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The environment variable that marks a command's processes.
pub const EXEC_ID_VAR: &str = "BERTH_EXEC_ID";

fn new_exec_id(address: &str) -> Result<String, SshError> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 12];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SshError::Protocol {
            address: address.to_owned(),
            reason: "the system has no randomness for an execution id".into(),
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The channel task: reads messages only when the consumer has room, obeys commands. `first`
/// is a message that arrived with the answer to the exec request.
async fn run_channel(
    first: Option<ChannelMsg>,
    mut read: russh::ChannelReadHalf,
    write: russh::ChannelWriteHalf<russh::client::Msg>,
    mut commands: mpsc::Receiver<Command>,
    output: mpsc::Sender<Output>,
    exit: watch::Sender<Option<ExitStatus>>,
) {
    let mut pending: Option<Output> = None;
    let mut status = ExitStatus::Unknown;
    let mut commands_open = true;
    let mut consumer_gone = false;
    let mut ended = false;
    match first {
        Some(ChannelMsg::Data { data }) => {
            pending = Some(Output {
                stream: OutputStream::Stdout,
                data,
            });
        }
        Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
            pending = Some(Output {
                stream: OutputStream::Stderr,
                data,
            });
        }
        Some(ChannelMsg::ExitStatus { exit_status }) => status = ExitStatus::Code(exit_status),
        Some(ChannelMsg::ExitSignal {
            signal_name: sig,
            core_dumped,
            ..
        }) => {
            status = ExitStatus::Signal {
                name: signal_name(&sig),
                core_dumped,
            };
        }
        Some(ChannelMsg::Close) => ended = true,
        _ => {}
    }
    // A channel closed with the exec request's answer has nothing more to read.
    if !ended {
        loop {
            tokio::select! {
                biased;
                command = commands.recv(), if commands_open => match command {
                    Some(Command::Signal(sig, reply)) => {
                        let _ = reply.send(write.signal(sig).await);
                    }
                    Some(Command::Close) => {
                        // russh drops what arrives for a channel closed from this side: the end is now.
                        let _ = write.close().await;
                        break;
                    }
                    None => {
                        commands_open = false;
                        if consumer_gone || output.is_closed() {
                            let _ = write.close().await;
                            break;
                        }
                    }
                },
                permit = output.reserve(), if pending.is_some() => match permit {
                    Ok(permit) => {
                        if let Some(chunk) = pending.take() {
                            permit.send(chunk);
                        }
                    }
                    Err(_) => {
                        // Nobody reads any more: drop output, keep going until the exit status.
                        consumer_gone = true;
                        pending = None;
                    }
                },
                message = read.wait(), if pending.is_none() => match message {
                    Some(ChannelMsg::Data { data }) if !consumer_gone => {
                        pending = Some(Output { stream: OutputStream::Stdout, data });
                    }
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) if !consumer_gone => {
                        pending = Some(Output { stream: OutputStream::Stderr, data });
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => status = ExitStatus::Code(exit_status),
                    Some(ChannelMsg::ExitSignal { signal_name: sig, core_dumped, .. }) => {
                        status = ExitStatus::Signal { name: signal_name(&sig), core_dumped };
                    }
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
            }
        }
    }
    // The last chunk still goes out (the consumer may be slow, not gone).
    if let Some(chunk) = pending {
        let _ = output.send(chunk).await;
    }
    drop(output);
    let _ = exit.send(Some(status));
}

impl ExecControl {
    /// Sends `signal` with the SSH "signal" request. OpenSSH (measured with 9.2) answers it with
    /// `killpg` on the command's process group: the shell and every process it started that
    /// stayed in its group. Processes that left the group (`setsid`, daemons) are not reached;
    /// [`ExecControl::signal_all`] reaches those too. sshd refuses the request for forced-command
    /// and subsystem sessions.
    pub async fn signal(&self, signal: Signal) -> Result<(), SshError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Signal(signal.sig(), reply))
            .await
            .map_err(|_| self.closed())?;
        answer
            .await
            .map_err(|_| self.closed())?
            .map_err(|e| SshError::Protocol {
                address: self.address.clone(),
                reason: e.to_string(),
            })
    }

    /// Closes the channel; the output ends and the status is what was known by then (usually
    /// [`ExitStatus::Unknown`]). sshd then closes the command's stdin and stdout; a command
    /// that ignores that keeps running, so signal it first.
    pub async fn close(&self) -> Result<(), SshError> {
        self.commands
            .send(Command::Close)
            .await
            .map_err(|_| self.closed())
    }

    /// Waits for the end; read (or drop) the output meanwhile, or the command stalls on a full
    /// queue.
    pub async fn wait(&self) -> ExitStatus {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(status) => status.clone().unwrap_or(ExitStatus::Unknown),
            Err(_) => ExitStatus::Unknown,
        }
    }

    /// Sends `signal` to the command's process group ([`ExecControl::signal`]) and, through a
    /// second exec on the same connection, to every process of the login user whose environment
    /// holds this command's [`EXEC_ID_VAR`]: also the ones that left the group (`setsid`,
    /// `nohup ... &` daemons), and even after the shell is gone. Needs Linux's /proc and GNU grep
    /// on the machine; a process that clears its environment escapes. Returns how many processes
    /// the second exec signalled.
    pub async fn signal_all(&self, signal: Signal) -> Result<usize, SshError> {
        if self.exit.borrow().is_none() {
            // The shell may exit meanwhile: not an error.
            let _ = self.signal(signal).await;
        }
        let name = match signal {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
            Signal::Hup => "HUP",
            Signal::Int => "INT",
        };
        let script = format!(
            "pids=$(grep -lzx '{EXEC_ID_VAR}={id}' /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); \
             [ -z \"$pids\" ] || kill -s {name} $pids 2>/dev/null; echo $pids | wc -w",
            id = self.exec_id
        );
        let second = async {
            let mut channel = self.session.open_session_channel().await?;
            channel
                .exec(false, script.as_bytes())
                .await
                .map_err(|e| self.session.protocol(e))?;
            channel.eof().await.map_err(|e| self.session.protocol(e))?;
            let mut out = Vec::new();
            while let Some(message) = channel.wait().await {
                match message {
                    ChannelMsg::Data { data } => out.extend_from_slice(&data),
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            Ok::<_, SshError>(String::from_utf8_lossy(&out).trim().parse().unwrap_or(0))
        };
        // A machine that stopped answering (often why the command is being ended) must not
        // hang the one ending it.
        tokio::time::timeout(SIGNAL_ALL_TIMEOUT, second)
            .await
            .map_err(|_| SshError::Protocol {
                address: self.address.clone(),
                reason: format!(
                    "the machine did not answer the signal within {}s",
                    SIGNAL_ALL_TIMEOUT.as_secs()
                ),
            })?
    }

    /// For a command past its timeout: SIGTERM to it and all its processes
    /// ([`ExecControl::signal_all`]), `grace` to end, then SIGKILL to whatever is left; then
    /// the exit status (the shell's: usually `Signal { name: "TERM" }`).
    pub async fn terminate(&self, grace: Duration) -> Result<ExitStatus, SshError> {
        if self.exit.borrow().is_some() {
            return Ok(self.wait().await);
        }
        self.signal_all(Signal::Term).await?;
        if let Ok(status) = tokio::time::timeout(grace, self.wait()).await {
            return Ok(status);
        }
        self.signal_all(Signal::Kill).await?;
        match tokio::time::timeout(grace.max(SIGNAL_ALL_TIMEOUT), self.wait()).await {
            Ok(status) => Ok(status),
            Err(_) => {
                // Killed but never reported: give up on the channel rather than wait forever.
                let _ = self.close().await;
                Ok(ExitStatus::Unknown)
            }
        }
    }

    fn closed(&self) -> SshError {
        SshError::Closed {
            address: self.address.clone(),
        }
    }
}

impl Execution {
    /// The next output chunk; `None` once the command's output has ended.
    pub async fn next_output(&mut self) -> Option<Output> {
        self.output.recv().await
    }

    /// A handle to signal, close and wait, usable while the output is read elsewhere.
    pub fn control(&self) -> ExecControl {
        self.control.clone()
    }

    /// Drops the rest of the output and waits for the exit status.
    pub async fn wait(self) -> ExitStatus {
        let Self { output, control } = self;
        drop(output);
        control.wait().await
    }

    /// Reads all output, keeping at most `limit` bytes of each stream, then the exit status.
    pub async fn collect(mut self, limit: usize) -> Collected {
        let (mut stdout, mut stderr, mut truncated) = (Vec::new(), Vec::new(), false);
        while let Some(chunk) = self.output.recv().await {
            let buffer = match chunk.stream {
                OutputStream::Stdout => &mut stdout,
                OutputStream::Stderr => &mut stderr,
            };
            let room = limit.saturating_sub(buffer.len());
            truncated |= chunk.data.len() > room;
            buffer.extend_from_slice(&chunk.data[..chunk.data.len().min(room)]);
        }
        Collected {
            stdout,
            stderr,
            truncated,
            status: self.control.wait().await,
        }
    }
}

impl Stream for Execution {
    type Item = Output;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Output>> {
        self.output.poll_recv(cx)
    }
}
