//! Processes started inside a running container: terminals (with a PTY) and plain commands.
//!
//! An [`ExecSession`] is the output as a [`Stream`] of byte chunks, the input as an
//! [`AsyncWrite`], and an [`ExecControl`] to resize the terminal and learn the exit code. The
//! output is read from the engine connection only when the consumer polls it, so a consumer that
//! stops reading (a slow WebSocket) stops the engine from sending and, through the PTY, the
//! process from writing: nothing is buffered without bound.
//!
//! A session whose handles are all dropped hangs its process up (SIGHUP), so a closed browser
//! tab leaves no shell behind; a shared tmux session survives its clients.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWrite;

use crate::error::{Result, RuntimeError};
use crate::runtime::ContainerRuntime;
use crate::spec::Env;
use crate::state::ContainerId;

/// The shell used when the template names none.
pub const DEFAULT_SHELL: &str = "/bin/bash";
/// The shell used when the wanted one is not in the image.
pub const FALLBACK_SHELL: &str = "/bin/sh";
/// The tmux session every user of a shared workspace joins.
pub const SHARED_SESSION_NAME: &str = "berth";
/// Attach to the shared tmux session, creating it on first use.
pub const SHARED_SESSION_COMMAND: [&str; 5] =
    ["tmux", "new-session", "-A", "-s", SHARED_SESSION_NAME];
/// `TERM` given to terminals: what xterm.js and most terminals understand.
pub const DEFAULT_TERM: &str = "xterm-256color";

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtySize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

/// A process to start in a running container.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecSpec {
    /// Program and arguments.
    pub cmd: Vec<String>,
    /// Extra environment variables.
    pub env: Env,
    /// `user`, `user:group`, `uid` or `uid:gid`; the container's user when `None`.
    pub user: Option<String>,
    /// Working directory; the container's when `None`.
    pub working_dir: Option<String>,
    /// A PTY of this size; `None` runs without a terminal (stdout and stderr merged).
    pub tty: Option<TtySize>,
    /// Attach stdin (always attached with a PTY).
    pub stdin: bool,
}

impl ExecSpec {
    /// A non-interactive command: no terminal, no stdin.
    pub fn command<S: Into<String>>(cmd: impl IntoIterator<Item = S>) -> Self {
        Self {
            cmd: cmd.into_iter().map(Into::into).collect(),
            env: Env::new(),
            user: None,
            working_dir: None,
            tty: None,
            stdin: false,
        }
    }

    /// An interactive program on a PTY of `size`, with `TERM` set.
    pub fn terminal<S: Into<String>>(cmd: impl IntoIterator<Item = S>, size: TtySize) -> Self {
        let mut spec = Self::command(cmd);
        spec.tty = Some(size);
        spec.stdin = true;
        spec.env.insert("TERM", DEFAULT_TERM);
        spec
    }

    /// A terminal attached to the shared tmux session ([`SHARED_SESSION_COMMAND`]).
    pub fn shared_session(size: TtySize) -> Self {
        Self::terminal(SHARED_SESSION_COMMAND, size)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.cmd.is_empty() || self.cmd.iter().any(|a| a.contains('\0')) {
            return Err(RuntimeError::InvalidSpec(
                "exec command is empty or contains NUL".into(),
            ));
        }
        if self.tty.is_some_and(|s| s.cols == 0 || s.rows == 0) {
            return Err(RuntimeError::InvalidSpec(
                "terminal size must be at least 1x1".into(),
            ));
        }
        self.env.validate()
    }
}

/// Resizes a running exec and reports its exit code; implemented by each runtime (and by fakes).
#[async_trait]
pub trait ExecControl: Send + Sync + std::fmt::Debug {
    /// Sets the PTY size (the process gets SIGWINCH).
    async fn resize(&self, size: TtySize) -> Result<()>;
    /// Waits until the process has exited and returns its exit code. Call it once the output
    /// has ended: it polls the engine until then.
    async fn wait(&self) -> Result<i64>;
    /// Sends the process SIGHUP, as closing a terminal window does; nothing when it has exited.
    /// The Docker runtime also does this when the last handle of a session is dropped.
    async fn hang_up(&self) -> Result<()>;
}

/// The output half of a session.
pub type ExecOutput = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;
/// The input half of a session; shutting it down closes the process's stdin.
pub type ExecInput = Pin<Box<dyn AsyncWrite + Send>>;

/// A started process: read its output (`Stream`), write its input (`AsyncWrite`), resize it and
/// wait for its exit code. [`ExecSession::into_parts`] splits it for two pumping tasks.
pub struct ExecSession {
    output: ExecOutput,
    input: ExecInput,
    control: Arc<dyn ExecControl>,
}

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// Output, up to the limit given to [`ExecSession::collect`].
    pub output: Vec<u8>,
    /// Whether output beyond the limit was dropped.
    pub truncated: bool,
    /// The process's exit code.
    pub exit_code: i64,
}

impl ExecSession {
    /// Assembles a session; runtimes (and fakes in tests of the core) build it from their parts.
    pub fn new(output: ExecOutput, input: ExecInput, control: Arc<dyn ExecControl>) -> Self {
        Self {
            output,
            input,
            control,
        }
    }

    /// Output, input and control, to be moved into separate tasks.
    pub fn into_parts(self) -> (ExecOutput, ExecInput, Arc<dyn ExecControl>) {
        (self.output, self.input, self.control)
    }

    /// A handle to resize and wait, usable while the halves are elsewhere.
    pub fn control(&self) -> Arc<dyn ExecControl> {
        Arc::clone(&self.control)
    }

    /// Sets the PTY size.
    ///
    /// The future owns a handle to the control, not a borrow of the session: a session is not
    /// `Sync` (its halves are `Send` only), and a borrow held across the await would make the
    /// caller's future not `Send`.
    pub fn resize(&self, size: TtySize) -> impl Future<Output = Result<()>> + Send + 'static {
        let control = Arc::clone(&self.control);
        async move { control.resize(size).await }
    }

    /// Ends the process (SIGHUP) if it still runs; see [`ExecControl::hang_up`].
    pub fn hang_up(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let control = Arc::clone(&self.control);
        async move { control.hang_up().await }
    }

    /// Reads the output to its end, keeping at most `limit` bytes, then returns the exit code.
    pub async fn collect(mut self, limit: usize) -> Result<ExecOutcome> {
        let mut output = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = self.output.next().await {
            let chunk = chunk?;
            let room = limit.saturating_sub(output.len());
            truncated |= chunk.len() > room;
            output.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        let exit_code = self.control.wait().await?;
        Ok(ExecOutcome {
            output,
            truncated,
            exit_code,
        })
    }
}

impl std::fmt::Debug for ExecSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSession")
            .field("control", &self.control)
            .finish_non_exhaustive()
    }
}

impl Stream for ExecSession {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.output.as_mut().poll_next(cx)
    }
}

impl AsyncWrite for ExecSession {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.input.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.input.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.input.as_mut().poll_shutdown(cx)
    }
}

/// The shell to start in `container`: `preferred` (or [`DEFAULT_SHELL`]) when it is an
/// executable there, [`FALLBACK_SHELL`] otherwise.
pub async fn resolve_shell(
    runtime: &dyn ContainerRuntime,
    container: &ContainerId,
    preferred: Option<&str>,
) -> Result<String> {
    let wanted = preferred.unwrap_or(DEFAULT_SHELL);
    if !wanted.starts_with('/') || wanted.contains('\0') {
        return Err(RuntimeError::InvalidSpec(format!(
            "shell `{wanted}` must be an absolute path"
        )));
    }
    let probe = runtime
        .exec(container, ExecSpec::command(["test", "-x", wanted]))
        .await?;
    let outcome = probe.collect(4096).await?;
    Ok(if outcome.exit_code == 0 {
        wanted.to_owned()
    } else {
        FALLBACK_SHELL.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::spec::ContainerSpec;
    use crate::state::{ContainerInfo, ContainerState};

    /// The kind of fake the core's unit tests use: only `exec` does something.
    #[derive(Debug)]
    struct Fake {
        executables: Vec<&'static str>,
    }

    #[derive(Debug)]
    struct Exited(i64);

    #[async_trait]
    impl ExecControl for Exited {
        async fn resize(&self, _: TtySize) -> Result<()> {
            Ok(())
        }
        async fn wait(&self) -> Result<i64> {
            Ok(self.0)
        }
        async fn hang_up(&self) -> Result<()> {
            Ok(())
        }
    }

    #[async_trait]
    impl ContainerRuntime for Fake {
        async fn create(&self, _: &ContainerSpec) -> Result<ContainerId> {
            Err(RuntimeError::InvalidSpec("fake".into()))
        }
        async fn start(&self, _: &ContainerId) -> Result<()> {
            Ok(())
        }
        async fn stop(&self, _: &ContainerId, _: Duration) -> Result<()> {
            Ok(())
        }
        async fn remove(&self, _: &ContainerId) -> Result<()> {
            Ok(())
        }
        async fn purge_volumes(&self, _: &BTreeMap<String, String>) -> Result<Vec<String>> {
            Ok(Vec::new())
        }
        async fn inspect(&self, _: &ContainerId) -> Result<ContainerState> {
            Ok(ContainerState::Missing)
        }
        async fn list(&self, _: &BTreeMap<String, String>) -> Result<Vec<ContainerInfo>> {
            Ok(Vec::new())
        }
        async fn exec(&self, _: &ContainerId, spec: ExecSpec) -> Result<ExecSession> {
            let found =
                spec.cmd[..2] == ["test", "-x"] && self.executables.contains(&spec.cmd[2].as_str());
            let output = futures_util::stream::iter([Ok(Bytes::from_static(b"out"))]);
            Ok(ExecSession::new(
                Box::pin(output),
                Box::pin(tokio::io::sink()),
                Arc::new(Exited(i64::from(!found))),
            ))
        }
    }

    #[tokio::test]
    async fn shell_falls_back_to_sh_behind_the_trait() {
        let id = ContainerId::new("c");
        let with_bash: Arc<dyn ContainerRuntime> = Arc::new(Fake {
            executables: vec!["/bin/bash", "/bin/zsh"],
        });
        assert_eq!(
            resolve_shell(&*with_bash, &id, None).await.unwrap(),
            "/bin/bash"
        );
        assert_eq!(
            resolve_shell(&*with_bash, &id, Some("/bin/zsh"))
                .await
                .unwrap(),
            "/bin/zsh"
        );
        let bare: Arc<dyn ContainerRuntime> = Arc::new(Fake {
            executables: vec![],
        });
        assert_eq!(
            resolve_shell(&*bare, &id, None).await.unwrap(),
            FALLBACK_SHELL
        );
        assert!(matches!(
            resolve_shell(&*bare, &id, Some("zsh")).await,
            Err(RuntimeError::InvalidSpec(_))
        ));
    }

    #[tokio::test]
    async fn collect_keeps_at_most_the_limit() {
        let output = futures_util::stream::iter([
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"def")),
        ]);
        let session = ExecSession::new(
            Box::pin(output),
            Box::pin(tokio::io::sink()),
            Arc::new(Exited(2)),
        );
        let outcome = session.collect(4).await.unwrap();
        assert_eq!(
            outcome,
            ExecOutcome {
                output: b"abcd".to_vec(),
                truncated: true,
                exit_code: 2
            }
        );
    }

    #[test]
    fn exec_specs_are_checked() {
        let spec = ExecSpec::shared_session(TtySize { cols: 80, rows: 24 });
        assert_eq!(spec.cmd, SHARED_SESSION_COMMAND);
        assert_eq!(spec.env.get("TERM"), Some(DEFAULT_TERM));
        assert!(spec.stdin && spec.validate().is_ok());
        assert!(ExecSpec::command(["a\0b"]).validate().is_err());
        assert!(
            ExecSpec::terminal(["sh"], TtySize { cols: 80, rows: 0 })
                .validate()
                .is_err()
        );
    }
}
