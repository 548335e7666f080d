//! Exec sessions on the Docker Engine: created and controlled through the API, their bytes
//! carried by a hijacked connection ([`attach`]).
//!
//! The engine keeps an exec's process running when its connection closes (the PTY is never
//! hung up), so a closed browser tab would leave a shell behind, counting against the pids
//! limit. Each exec is therefore tagged with a token in its environment, and hanging up means a
//! second exec that sends SIGHUP to the process carrying that token whose parent is outside the
//! container (ppid 0): the exec's own process, not daemons it started (the shared tmux server).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::ExecConfig;
use bollard::query_parameters::ResizeExecOptionsBuilder;

use super::{DockerRuntime, attach};
use crate::error::{Result, RuntimeError};
use berth_terminal::{Pty, PtyControl, TerminalError, TtySize};

use crate::exec::ExecSpec;
use crate::state::ContainerId;

/// How often `wait` asks whether the process has exited; it is called once the output ended,
/// so the first or second answer is almost always final.
const EXIT_POLL: Duration = Duration::from_millis(50);
/// The environment variable carrying an exec's token.
const TOKEN_VAR: &str = "BERTH_EXEC";
/// SIGHUP to the exec-started process (ppid 0) whose environment holds `BERTH_EXEC=$1`.
/// `/proc/PID/stat` is `pid (comm) state ppid …`; comm may hold spaces, so cut after `) `.
const HANGUP_SCRIPT: &str = r#"for d in /proc/[0-9]*; do
  ppid=$(sed 's/.*) //' "$d/stat" 2>/dev/null | cut -d' ' -f2)
  [ "$ppid" = 0 ] || continue
  tr '\0' '\n' < "$d/environ" 2>/dev/null | grep -qx "BERTH_EXEC=$1" && kill -HUP "${d#/proc/}"
done
exit 0"#;

#[derive(Debug)]
struct DockerExec {
    runtime: DockerRuntime,
    exec_id: String,
    container: ContainerId,
    user: Option<String>,
    token: String,
    /// Set once the process is known to have exited: nothing left to hang up.
    exited: AtomicBool,
    /// False for the copy doing the hang-up of a dropped handle, so it never spawns another.
    hang_up_on_drop: bool,
}

impl DockerExec {
    async fn running(&self) -> Result<bool> {
        if self.exited.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let docker = &self.runtime.docker;
        let state = self
            .runtime
            .call("inspect exec", docker.inspect_exec(&self.exec_id))
            .await?;
        let running = state.running != Some(false);
        self.exited.store(!running, Ordering::Relaxed);
        Ok(running)
    }
}

/// A runtime failure as the terminal seam reports it.
fn control_error(err: RuntimeError) -> TerminalError {
    TerminalError::Control(err.to_string())
}

#[async_trait]
impl PtyControl for DockerExec {
    async fn resize(&self, size: TtySize) -> Result<(), TerminalError> {
        self.resize_exec(size).await.map_err(control_error)
    }

    async fn wait(&self) -> Result<i64, TerminalError> {
        self.wait_exec().await.map_err(control_error)
    }

    async fn hang_up(&self) -> Result<(), TerminalError> {
        self.hang_up_exec().await.map_err(control_error)
    }
}

impl DockerExec {
    async fn resize_exec(&self, size: TtySize) -> Result<()> {
        if size.cols == 0 || size.rows == 0 {
            return Err(RuntimeError::InvalidSpec(
                "terminal size must be at least 1x1".into(),
            ));
        }
        let options = ResizeExecOptionsBuilder::new()
            .h(i32::from(size.rows))
            .w(i32::from(size.cols))
            .build();
        let docker = &self.runtime.docker;
        self.runtime
            .call("resize exec", docker.resize_exec(&self.exec_id, options))
            .await
    }

    async fn wait_exec(&self) -> Result<i64> {
        loop {
            let docker = &self.runtime.docker;
            let state = self
                .runtime
                .call("inspect exec", docker.inspect_exec(&self.exec_id))
                .await?;
            if state.running == Some(false)
                && let Some(code) = state.exit_code
            {
                self.exited.store(true, Ordering::Relaxed);
                return Ok(code);
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
    }

    async fn hang_up_exec(&self) -> Result<()> {
        if !self.running().await? {
            return Ok(());
        }
        // As the same user: without CAP_KILL one may only signal one's own processes.
        let mut spec = ExecSpec::command(["sh", "-c", HANGUP_SCRIPT, "berth-hangup", &self.token]);
        spec.user.clone_from(&self.user);
        match self.runtime.start_exec(&self.container, spec).await {
            Ok(session) => Ok(session.collect(4096).await.map(drop)?),
            // The container is gone or stopped: so is the process.
            Err(
                RuntimeError::ContainerMissing { .. } | RuntimeError::ContainerNotRunning { .. },
            ) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for DockerExec {
    /// Dropping the last handle of a session hangs its process up, as closing a terminal does.
    fn drop(&mut self) {
        if !self.hang_up_on_drop || self.exited.load(Ordering::Relaxed) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return; // no runtime left to talk to the engine: the process stays
        };
        let exec = DockerExec {
            runtime: self.runtime.clone(),
            exec_id: std::mem::take(&mut self.exec_id),
            container: self.container.clone(),
            user: self.user.take(),
            token: std::mem::take(&mut self.token),
            exited: AtomicBool::new(false),
            hang_up_on_drop: false,
        };
        handle.spawn(async move {
            let _ = exec.hang_up_exec().await;
        });
    }
}

/// A token unique to this exec among all execs of this process (not a secret: it only lets a
/// process be hung up by its own user).
fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}-{nanos:x}-{n:x}", std::process::id())
}

impl DockerRuntime {
    pub(super) async fn start_exec(&self, id: &ContainerId, spec: ExecSpec) -> Result<Pty> {
        spec.validate()?;
        let tty = spec.tty.is_some();
        let token = new_token();
        let mut env = spec.env.to_engine();
        env.push(format!("{TOKEN_VAR}={token}"));
        let config = ExecConfig {
            attach_stdin: Some(spec.stdin || tty),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(tty),
            // API 1.42 takes the size at creation; older engines get a resize right after start.
            console_size: spec
                .tty
                .filter(|_| self.api >= (1, 42))
                .map(|s| vec![usize::from(s.rows), usize::from(s.cols)]),
            env: Some(env),
            cmd: Some(spec.cmd),
            user: spec.user.clone(),
            working_dir: spec.working_dir,
            ..Default::default()
        };
        let created = match self
            .call("create exec", self.docker.create_exec(id.as_str(), config))
            .await
        {
            Err(RuntimeError::Engine { status: 404, .. }) => {
                return Err(RuntimeError::ContainerMissing {
                    container: id.to_string(),
                });
            }
            Err(RuntimeError::Engine { status: 409, .. }) => {
                return Err(RuntimeError::ContainerNotRunning {
                    container: id.to_string(),
                });
            }
            other => other?,
        };
        let control = Arc::new(DockerExec {
            runtime: self.clone(),
            exec_id: created.id,
            container: id.clone(),
            user: spec.user,
            token,
            exited: AtomicBool::new(false),
            hang_up_on_drop: true,
        });
        let started =
            attach::start(&self.socket, self.api, &control.exec_id, tty, self.timeout).await;
        let (output, input) = match started {
            Err(RuntimeError::Engine { status: 409, .. }) => {
                return Err(RuntimeError::ContainerNotRunning {
                    container: id.to_string(),
                });
            }
            other => other?,
        };
        if let Some(size) = spec.tty.filter(|_| self.api < (1, 42)) {
            match control.resize_exec(size).await {
                // A short command may be gone before its first resize; nothing left to size.
                Err(RuntimeError::Engine { .. }) | Ok(()) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Pty::new(output, input, control))
    }
}
