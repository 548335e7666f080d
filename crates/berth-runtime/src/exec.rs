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
use crate::spec::Env;

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

    /// A login shell on a PTY: `shell` (the program and its arguments; no arguments means
    /// `-l`) when the program is an executable in the container, else `/bin/sh -l`. Decided
    /// inside the container by `/bin/sh` in the same exec, so opening a terminal costs one
    /// round trip to the engine, not two. The words are arguments of that script, never spliced
    /// into it.
    pub fn login_shell(shell: &[String], size: TtySize) -> Self {
        Self::terminal(login_shell_command(shell), size)
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

/// The command of [`ExecSpec::login_shell`]: `/bin/sh -c SCRIPT PROGRAM ARGS...`.
pub fn login_shell_command(shell: &[String]) -> Vec<String> {
    let (program, args) = match shell.split_first() {
        Some((program, args)) => (program.as_str(), args),
        None => (DEFAULT_SHELL, &[][..]),
    };
    let mut cmd = vec![
        FALLBACK_SHELL.to_owned(),
        "-c".to_owned(),
        format!(r#"if [ -x "$0" ]; then exec "$0" "$@"; else exec {FALLBACK_SHELL} -l; fi"#),
        program.to_owned(),
    ];
    if args.is_empty() {
        cmd.push("-l".to_owned());
    } else {
        cmd.extend(args.iter().cloned());
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_is_passed_as_arguments_never_spliced_into_the_script() {
        let cmd = login_shell_command(&["/bin/zsh; rm -rf /".to_owned()]);
        assert_eq!(cmd[..2], ["/bin/sh", "-c"]);
        assert!(!cmd[2].contains("zsh"));
        assert_eq!(cmd[3..], ["/bin/zsh; rm -rf /", "-l"]);
        // Arguments replace the default -l.
        let cmd = login_shell_command(&["/usr/bin/fish".to_owned(), "--login".to_owned()]);
        assert_eq!(cmd[3..], ["/usr/bin/fish", "--login"]);
        // No shell at all: the default.
        assert_eq!(login_shell_command(&[])[3..], [DEFAULT_SHELL, "-l"]);
        let spec =
            ExecSpec::login_shell(&[DEFAULT_SHELL.to_owned()], TtySize { cols: 80, rows: 24 });
        assert!(spec.stdin && spec.tty.is_some() && spec.validate().is_ok());
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
