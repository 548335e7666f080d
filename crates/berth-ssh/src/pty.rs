//! A login shell on a PTY over an SSH channel, as a [`berth_terminal::Pty`].
//!
//! Like an execution, the channel is owned by a task: output is read from the channel only when
//! the consumer has pulled the previous chunk, so a slow reader slows the remote shell down
//! (through russh's channel buffer and the connection) instead of filling memory.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_terminal::{Pty, TerminalError, TtySize};
use bytes::Bytes;
use russh::{ChannelMsg, Sig};
use tokio::sync::{mpsc, oneshot, watch};

use crate::connect::Session;
use crate::error::SshError;
use crate::exec::ExitStatus;

enum Command {
    Resize(TtySize, oneshot::Sender<Result<(), russh::Error>>),
    HangUp(oneshot::Sender<()>),
}

#[derive(Debug)]
struct Control {
    commands: mpsc::Sender<Command>,
    exit: watch::Receiver<Option<ExitStatus>>,
    address: String,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Resize(size, _) => write!(f, "Resize({size:?})"),
            Self::HangUp(_) => f.write_str("HangUp"),
        }
    }
}

/// Opens a login shell on a PTY of `size` with `TERM=term` (e.g. `xterm-256color`).
///
/// Dropping the output stream and the control hangs the shell up: SIGHUP (the SSH "signal"
/// request, which OpenSSH delivers to the shell) and EOF, and the channel is closed when the
/// shell has exited or after two seconds. `wait` answers the exit code, or 128 + the signal number when
/// a signal ended the shell.
pub async fn open_pty(session: &Session, size: TtySize, term: &str) -> Result<Pty, SshError> {
    let mut channel = session.open_session_channel().await?;
    channel
        .request_pty(
            true,
            term,
            u32::from(size.cols),
            u32::from(size.rows),
            0,
            0,
            &[],
        )
        .await
        .map_err(|e| session.protocol(e))?;
    expect_success(&mut channel, session, "a PTY").await?;
    channel
        .request_shell(true)
        .await
        .map_err(|e| session.protocol(e))?;
    expect_success(&mut channel, session, "a login shell").await?;

    let (read, write) = channel.split();
    let input = write.make_writer();
    let (commands_tx, commands) = mpsc::channel(8);
    // One chunk in flight: the task reads the next message only after this one was taken.
    let (output_tx, output) = mpsc::channel::<Result<Bytes, TerminalError>>(1);
    let (exit_tx, exit) = watch::channel(None);
    tokio::spawn(run_pty(read, write, commands, output_tx, exit_tx));
    let control = Arc::new(Control {
        commands: commands_tx,
        exit,
        address: session.address().to_owned(),
    });
    let output = futures_util::stream::unfold(output, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok(Pty::new(Box::pin(output), Box::pin(input), control))
}

async fn expect_success(
    channel: &mut russh::Channel<russh::client::Msg>,
    session: &Session,
    what: &str,
) -> Result<(), SshError> {
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Success) => return Ok(()),
            Some(ChannelMsg::Failure) => {
                return Err(SshError::Protocol {
                    address: session.address().to_owned(),
                    reason: format!("the server refused {what}"),
                });
            }
            Some(_) => {}
            None => {
                return Err(SshError::Closed {
                    address: session.address().to_owned(),
                });
            }
        }
    }
}

async fn run_pty(
    mut read: russh::ChannelReadHalf,
    write: russh::ChannelWriteHalf<russh::client::Msg>,
    mut commands: mpsc::Receiver<Command>,
    output: mpsc::Sender<Result<Bytes, TerminalError>>,
    exit: watch::Sender<Option<ExitStatus>>,
) {
    let mut pending: Option<Bytes> = None;
    let mut status = ExitStatus::Unknown;
    let mut commands_open = true;
    // Set by a hang-up: when the shell has not ended by then, the channel is closed.
    let mut deadline: Option<Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        tokio::select! {
            biased;
            () = async { if let Some(d) = deadline.as_mut() { d.await } }, if deadline.is_some() => {
                // russh drops what arrives for a channel closed from this side: the end is now.
                let _ = write.close().await;
                break;
            },
            command = commands.recv(), if commands_open => match command {
                Some(Command::Resize(size, reply)) => {
                    let r = write
                        .window_change(u32::from(size.cols), u32::from(size.rows), 0, 0)
                        .await;
                    let _ = reply.send(r);
                }
                Some(Command::HangUp(done)) => {
                    hang_up(&write, &mut deadline).await;
                    let _ = done.send(());
                }
                None => {
                    commands_open = false;
                    if output.is_closed() {
                        hang_up(&write, &mut deadline).await;
                    }
                }
            },
            permit = output.reserve(), if pending.is_some() => match permit {
                Ok(permit) => {
                    if let Some(chunk) = pending.take() {
                        permit.send(Ok(chunk));
                    }
                }
                Err(_) => {
                    pending = None;
                    if !commands_open {
                        hang_up(&write, &mut deadline).await;
                    }
                }
            },
            message = read.wait(), if pending.is_none() => match message {
                Some(ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. }) => {
                    if !output.is_closed() {
                        pending = Some(data);
                    }
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => status = ExitStatus::Code(exit_status),
                Some(ChannelMsg::ExitSignal { signal_name, core_dumped, .. }) => {
                    status = ExitStatus::Signal {
                        name: crate::exec::signal_name(&signal_name),
                        core_dumped,
                    };
                }
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
        }
    }
    if let Some(chunk) = pending {
        let _ = output.send(Ok(chunk)).await;
    }
    drop(output);
    let _ = exit.send(Some(status));
}

/// How long a hung-up shell has to exit before its channel is closed.
const HANG_UP_GRACE: Duration = Duration::from_secs(2);

/// SIGHUP and EOF, as a terminal window closing; the channel closes when the shell exits, or
/// after [`HANG_UP_GRACE`].
async fn hang_up(
    write: &russh::ChannelWriteHalf<russh::client::Msg>,
    deadline: &mut Option<Pin<Box<tokio::time::Sleep>>>,
) {
    if deadline.is_some() {
        return;
    }
    *deadline = Some(Box::pin(tokio::time::sleep(HANG_UP_GRACE)));
    let _ = write.signal(Sig::HUP).await;
    let _ = write.eof().await;
}

impl Control {
    fn lost(&self) -> TerminalError {
        TerminalError::Lost(format!("the SSH channel to {} is closed", self.address))
    }
}

#[async_trait]
impl berth_terminal::PtyControl for Control {
    async fn resize(&self, size: TtySize) -> Result<(), TerminalError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Resize(size, reply))
            .await
            .map_err(|_| self.lost())?;
        answer
            .await
            .map_err(|_| self.lost())?
            .map_err(|e| TerminalError::Control(format!("resize: {e}")))
    }

    async fn wait(&self) -> Result<i64, TerminalError> {
        let mut exit = self.exit.clone();
        let status = exit
            .wait_for(Option::is_some)
            .await
            .map_err(|_| self.lost())?
            .clone()
            .unwrap_or(ExitStatus::Unknown);
        status.shell_code().ok_or_else(|| {
            TerminalError::Lost(format!(
                "the shell on {} ended without an exit status",
                self.address
            ))
        })
    }

    async fn hang_up(&self) -> Result<(), TerminalError> {
        if self.exit.borrow().is_some() {
            return Ok(());
        }
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::HangUp(done)).await.is_err() {
            return Ok(());
        }
        let _ = finished.await;
        Ok(())
    }
}
