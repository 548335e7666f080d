//! A terminal in a local workspace: a shell exec'd on the local engine through berth-runtime
//! (the shared tmux session for shared templates), pumped like the server's socket.

use std::sync::Arc;

use berth_runtime::{ContainerId, ExecSpec};
use berth_terminal::{PtyControl, PtyInput, PtyOutput, TtySize};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::Fuse;
use tokio::io::AsyncWriteExt;

use super::{Closed, Event, Incoming, Outgoing};
use crate::cli::errors::CliError;
use crate::cli::local::{Engine, LocalContainer};

/// Starts the shell (or joins the tmux session) of `container`.
pub async fn open(
    engine: &Engine,
    container: &LocalContainer,
    size: TtySize,
) -> Result<(ExecIn, ExecOut), CliError> {
    let id = ContainerId::new(container.id.clone());
    let spec = if container.shared {
        ExecSpec::shared_session(size)
    } else {
        ExecSpec::login_shell(container.shell.argv(), size)
    };
    let session = berth_runtime::ContainerRuntime::exec(&engine.runtime, &id, spec).await?;
    let (output, input, control) = session.into_parts();
    Ok((
        ExecIn {
            output: output.fuse(),
            control: Arc::clone(&control),
            exited: false,
        },
        ExecOut { input, control },
    ))
}

/// The shell's output, then its exit code.
pub struct ExecIn {
    output: Fuse<PtyOutput>,
    control: Arc<dyn PtyControl>,
    exited: bool,
}

impl std::fmt::Debug for ExecIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecIn").finish_non_exhaustive()
    }
}

impl Incoming for ExecIn {
    async fn next(&mut self) -> Event {
        if self.exited {
            return Event::Closed(Closed {
                code: 1000,
                reason: String::new(),
                message: None,
            });
        }
        match self.output.next().await {
            Some(Ok(bytes)) => Event::Output(bytes),
            Some(Err(err)) => Event::Closed(Closed {
                code: 1011,
                reason: err.to_string(),
                message: None,
            }),
            None => match self.control.wait().await {
                Ok(code) => {
                    self.exited = true;
                    Event::Exit(code)
                }
                Err(err) => Event::Closed(Closed {
                    code: 1011,
                    reason: err.to_string(),
                    message: None,
                }),
            },
        }
    }
}

/// Keystrokes and resizes for the shell.
pub struct ExecOut {
    input: PtyInput,
    control: Arc<dyn PtyControl>,
}

impl std::fmt::Debug for ExecOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecOut").finish_non_exhaustive()
    }
}

impl Outgoing for ExecOut {
    async fn input(&mut self, bytes: Bytes) -> Result<(), String> {
        self.input
            .write_all(&bytes)
            .await
            .map_err(|e| e.to_string())?;
        self.input.flush().await.map_err(|e| e.to_string())
    }

    async fn resize(&mut self, size: TtySize) -> Result<(), String> {
        self.control.resize(size).await.map_err(|e| e.to_string())
    }

    async fn ping(&mut self) -> Result<(), String> {
        Ok(())
    }

    async fn close(&mut self) {
        let _ = self.control.hang_up().await;
    }
}
