//! Processes started inside a running container: terminals (with a PTY) and plain commands.
//!
//! An exec is a [`berth_terminal::Pty`]: the output as a `Stream` of byte chunks, the input as
//! an `AsyncWrite`, and a control to resize the terminal and learn the exit code. The output is
//! read from the engine connection only when the consumer polls it, so a consumer that stops
//! reading (a slow WebSocket) stops the engine from sending and, through the PTY, the process
//! from writing: nothing is buffered without bound.
//!
//! A terminal whose handles are all dropped hangs its process up (SIGHUP), so a closed browser
//! tab leaves no shell behind; a shared tmux session survives its clients.

use berth_terminal::{DEFAULT_TERM, TtySize};

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
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use berth_terminal::{Pty, PtyControl, TerminalError};
    use bytes::Bytes;

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
    impl PtyControl for Exited {
        async fn resize(&self, _: TtySize) -> Result<(), TerminalError> {
            Ok(())
        }
        async fn wait(&self) -> Result<i64, TerminalError> {
            Ok(self.0)
        }
        async fn hang_up(&self) -> Result<(), TerminalError> {
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
        fn events(
            &self,
            _: &BTreeMap<String, String>,
            _: Option<std::time::SystemTime>,
        ) -> crate::ContainerEvents {
            Box::pin(futures_util::stream::empty())
        }
        async fn exec(&self, _: &ContainerId, spec: ExecSpec) -> Result<Pty> {
            let found =
                spec.cmd[..2] == ["test", "-x"] && self.executables.contains(&spec.cmd[2].as_str());
            let output = futures_util::stream::iter([Ok(Bytes::from_static(b"out"))]);
            Ok(Pty::new(
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
