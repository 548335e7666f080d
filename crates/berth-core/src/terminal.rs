//! Terminals into running workspaces, counted as attached while they live, and
//! [`WorkspaceTerminals`], the terminal source of workspace targets.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use berth_runtime::{ContainerId, Env, ExecSpec};
use berth_store::WorkspaceState;
use berth_terminal::{
    Caller, Grant, OpenError, Opened, Pty, SessionRole, TargetKind, TerminalSource, TerminalTarget,
    TtySize, Unavailability,
};
use berth_types::WorkspaceId;
use tokio::io::AsyncWriteExt;

use crate::plan::Persistence;
use crate::workspaces::{LiveInfo, Workspaces, lock};
use crate::{WorkspaceError, WorkspaceEvent};

/// The size of a terminal before its client says otherwise.
pub(crate) const INITIAL_SIZE: TtySize = TtySize::DEFAULT;

/// Records terminal activity for a workspace; cheap to clone and to call on every chunk.
#[derive(Debug, Clone)]
pub struct Activity {
    info: Arc<LiveInfo>,
    clock: Arc<dyn crate::Clock>,
}

impl berth_terminal::Activity for Activity {
    fn touch(&self) {
        Activity::touch(self);
    }
}

impl Activity {
    /// Something was typed or printed now.
    pub fn touch(&self) {
        self.info
            .last_activity
            .fetch_max(self.clock.now().unix_timestamp(), Ordering::Relaxed);
    }

    /// A clock of its own, counted for no workspace: for bridges over sessions that are not a
    /// workspace's (tests, tools).
    #[must_use]
    pub fn detached() -> Self {
        Self {
            info: Arc::default(),
            clock: crate::clock::system(),
        }
    }

    /// Unix time (seconds) of the last activity; 0 if none.
    #[must_use]
    pub fn last(&self) -> i64 {
        self.info.last_activity.load(Ordering::Relaxed)
    }
}

/// A terminal in a workspace: the exec and its activity handle. The workspace counts it as
/// attached until it is dropped.
#[derive(Debug)]
pub struct Terminal {
    /// The process on a PTY.
    pub session: Pty,
    /// Call on input and output so the workspace is not culled as idle.
    pub activity: Activity,
    /// Decrements the attached count on drop.
    pub attachment: Attachment,
}

/// Keeps a workspace counted as attached.
#[derive(Debug)]
pub struct Attachment {
    manager: Workspaces,
    id: WorkspaceId,
    info: Arc<LiveInfo>,
}

impl Attachment {
    fn new(manager: &Workspaces, id: WorkspaceId) -> Self {
        let info = manager.live_info(id);
        let attached = info.attached.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = manager.inner.events.send(WorkspaceEvent::Attachments {
            id,
            attached: u32::try_from(attached).unwrap_or(0),
        });
        Self {
            manager: manager.clone(),
            id,
            info,
        }
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let attached = self.info.attached.fetch_sub(1, Ordering::Relaxed) - 1;
        // The idle clock starts when the last terminal leaves.
        self.info
            .last_activity
            .fetch_max(self.manager.now().unix_timestamp(), Ordering::Relaxed);
        let _ = self.manager.inner.events.send(WorkspaceEvent::Attachments {
            id: self.id,
            attached: u32::try_from(attached).unwrap_or(0),
        });
    }
}

impl Workspaces {
    /// Opens a terminal of `size` in a running workspace: the template's shell, or the shared
    /// tmux session for shared templates. The process gets `BERTH_USER` (the owner) and
    /// `BERTH_WORKSPACE`.
    pub async fn open_terminal(
        &self,
        id: WorkspaceId,
        size: TtySize,
    ) -> Result<Terminal, WorkspaceError> {
        let workspace = self.get(id).await?;
        if workspace.state != WorkspaceState::Running {
            return Err(WorkspaceError::Conflict(format!(
                "the workspace is {}, not running; start it first",
                workspace.state
            )));
        }
        let container = workspace
            .container_id
            .clone()
            .map(ContainerId::new)
            .ok_or_else(|| WorkspaceError::Conflict("the workspace has no container".into()))?;
        let env_line = format!(
            "BERTH_USER={} BERTH_WORKSPACE={}\n",
            workspace.owner, workspace.id
        );
        let waiting = lock(&self.inner.waiting).remove(&id);
        if let Some(mut session) = waiting {
            // Usernames and ids contain no blanks, quotes or globs: the line splits as meant.
            debug_assert!(env_line.trim_end().split(' ').all(|w| {
                w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "=_.-".contains(c))
            }));
            if session.write_all(env_line.as_bytes()).await.is_ok() {
                if size != INITIAL_SIZE {
                    session
                        .resize(size)
                        .await
                        .map_err(berth_runtime::RuntimeError::from)?;
                }
                return Ok(self.attach(id, session));
            }
        }
        let persistence = if workspace.persistent {
            Persistence::Persistent
        } else {
            Persistence::Ephemeral
        };
        let plan = self.inner.policy.plan_existing(
            &workspace.owner,
            &workspace.template,
            persistence,
            &workspace.network,
        );
        let shared = plan.as_ref().is_some_and(|p| p.shared);
        let mut spec = if shared {
            ExecSpec::shared_session(size)
        } else {
            let shell = plan.as_ref().map(|p| p.shell.clone()).unwrap_or_default();
            ExecSpec::login_shell(shell.argv(), size)
        };
        let env: Env = [
            ("BERTH_USER", workspace.owner.to_string()),
            ("BERTH_WORKSPACE", workspace.id.to_string()),
        ]
        .into_iter()
        .collect();
        for (key, value) in env.iter() {
            spec.env.insert(key, value);
        }
        let session = self.inner.runtime.exec(&container, spec).await?;
        Ok(self.attach(id, session))
    }

    /// `session`, a process in workspace `id`, as one of its terminals: counted attached
    /// and touching its activity clock.
    pub(crate) fn attach(&self, id: WorkspaceId, session: Pty) -> Terminal {
        let attachment = Attachment::new(self, id);
        let activity = Activity {
            info: Arc::clone(&attachment.info),
            clock: Arc::clone(&self.inner.settings.clock),
        };
        activity.touch();
        Terminal {
            session,
            activity,
            attachment,
        }
    }
}

/// The terminal source of workspace targets: the owner, the workspace's members (as their
/// role says) and admins (as peers) may attach; a terminal is the template's shell, or the
/// shared tmux session of a shared template, and counts as attached while it lives.
#[derive(Debug, Clone)]
pub struct WorkspaceTerminals {
    workspaces: Workspaces,
}

impl WorkspaceTerminals {
    /// The source over `workspaces`.
    #[must_use]
    pub fn new(workspaces: Workspaces) -> Self {
        Self { workspaces }
    }
}

/// A workspace failure as the terminal seam reports it.
pub(crate) fn open_error(err: WorkspaceError) -> OpenError {
    match err {
        WorkspaceError::NotFound => OpenError::NotFound(TargetKind::Workspace),
        WorkspaceError::Forbidden(m) => OpenError::Forbidden(m),
        WorkspaceError::Conflict(m) => OpenError::unavailable(Unavailability::NotRunning, m),
        WorkspaceError::InvalidOption(m) => OpenError::Invalid(m),
        other => OpenError::Failed(Box::new(other)),
    }
}

fn workspace_of(target: &TerminalTarget) -> Result<WorkspaceId, OpenError> {
    target
        .workspace()
        .ok_or(OpenError::NotFound(TargetKind::Workspace))
}

#[async_trait]
impl TerminalSource for WorkspaceTerminals {
    fn kind(&self) -> TargetKind {
        TargetKind::Workspace
    }

    async fn authorize(
        &self,
        target: &TerminalTarget,
        caller: &Caller,
    ) -> Result<Option<Grant>, OpenError> {
        let ws = self
            .workspaces
            .get(workspace_of(target)?)
            .await
            .map_err(open_error)?;
        let Some(role) = self
            .workspaces
            .role_in(&ws, &caller.username, caller.role)
            .await
            .map_err(open_error)?
        else {
            return Ok(None);
        };
        let plan = self.workspaces.plan_of(&ws);
        Ok(Some(Grant {
            target: target.clone(),
            role,
            owner: ws.owner.clone(),
            title: format!("{}@{}", ws.owner, ws.template),
            label: format!("{}'s {} workspace {}", ws.owner, ws.template, ws.id),
            // A template that is gone records, as the default does.
            record: plan.as_ref().is_none_or(|p| p.record),
            shared: plan.as_ref().is_some_and(|p| p.shared),
            unavailable: (ws.state != WorkspaceState::Running).then(|| {
                (
                    Unavailability::NotRunning,
                    format!("the workspace is {}, not running", ws.state),
                )
            }),
        }))
    }

    async fn open(
        &self,
        grant: &Grant,
        _role: SessionRole,
        size: TtySize,
    ) -> Result<Opened, OpenError> {
        let id = workspace_of(&grant.target)?;
        let Terminal {
            session,
            activity,
            attachment,
        } = self
            .workspaces
            .open_terminal(id, size)
            .await
            .map_err(open_error)?;
        Ok(Opened {
            pty: session,
            activity: Some(Arc::new(activity)),
            hold: Some(Box::new(attachment)),
        })
    }
}
