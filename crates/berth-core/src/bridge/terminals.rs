//! The terminal service: who may attach and as what, the recording, presence and the audit of
//! every attach and detach around one [`Bridge`].

use std::fmt::Display;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_runtime::TtySize;
use berth_store::{AuditOutcome, NewAuditEntry, RecordingId, Store, Workspace};
use berth_types::{Role, Username, WorkspaceId};
use futures_util::{Sink, Stream};
use serde_json::json;
use time::OffsetDateTime;

use super::Message;
use super::grid::{GridError, GridId, Grids};
use super::mux::{GridPane, GridSession};
use super::presence::{Presence, Revocation, Seat};
use super::protocol::{self, Connected};
use super::session::{Bridge, Ended};
use super::stats::BridgeStats;
use crate::recordings::{RecordingStart, Recordings};
use crate::terminal::{Attachment, INITIAL_SIZE, Terminal};
use crate::{SessionRole, WorkspaceError, Workspaces};

/// Timings of terminal sessions; the defaults suit production, tests shorten them.
#[derive(Debug, Clone)]
pub struct TerminalSettings {
    /// A grid socket with no input for this long is closed (1000, "idle").
    pub grid_idle_timeout: Duration,
}

impl Default for TerminalSettings {
    fn default() -> Self {
        Self {
            grid_idle_timeout: Duration::from_secs(3600),
        }
    }
}

/// Terminals into workspaces, their recordings, who is attached, and grids. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Terminals {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    workspaces: Workspaces,
    recordings: Recordings,
    presence: Presence,
    grids: Grids,
    settings: TerminalSettings,
}

/// Someone asking for a workspace's terminal.
#[derive(Debug, Clone)]
pub struct AttachRequest {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// Who asks.
    pub user: Username,
    /// Their account role (admins may attach to any workspace as a peer).
    pub account: Role,
    /// Attach with less than they may (e.g. an admin or the owner watching as a viewer).
    pub want: Option<SessionRole>,
    /// The terminal size to start with (1 to 1000 columns and rows).
    pub size: TtySize,
    /// Where the request came from, for the audit log.
    pub ip: Option<IpAddr>,
}

impl AttachRequest {
    /// A request by `user` for the workspace's terminal at 80x24, with the most they may do.
    #[must_use]
    pub fn new(workspace: WorkspaceId, user: Username, account: Role) -> Self {
        Self {
            workspace,
            user,
            account,
            want: None,
            size: INITIAL_SIZE,
            ip: None,
        }
    }
}

/// Someone opening a grid.
#[derive(Debug, Clone)]
pub struct GridRequest {
    /// Who asks.
    pub user: Username,
    /// Their account role (admins may open anyone's grid).
    pub account: Role,
    /// Where the request came from, for the audit log.
    pub ip: Option<IpAddr>,
}

impl Terminals {
    /// The service over `workspaces`, recording under `recordings_dir`
    /// (`$BERTH_HOME/recordings`) and indexing recordings in the manager's store.
    #[must_use]
    pub fn new(workspaces: Workspaces, recordings_dir: impl Into<PathBuf>) -> Self {
        let recordings = Recordings::new(recordings_dir, Arc::clone(workspaces.store()));
        Self::with(workspaces, recordings, TerminalSettings::default())
    }

    /// The service with its parts given (tests: a small recording cap, a short grid timeout).
    #[must_use]
    pub fn with(
        workspaces: Workspaces,
        recordings: Recordings,
        settings: TerminalSettings,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                workspaces,
                recordings,
                presence: Presence::default(),
                grids: Grids::default(),
                settings,
            }),
        }
    }

    /// The workspace manager.
    #[must_use]
    pub fn workspaces(&self) -> &Workspaces {
        &self.inner.workspaces
    }

    /// Recordings: listing and finding them.
    #[must_use]
    pub fn recordings(&self) -> &Recordings {
        &self.inner.recordings
    }

    /// Grids.
    #[must_use]
    pub fn grids(&self) -> &Grids {
        &self.inner.grids
    }

    /// Who is attached to the workspace's terminal now: each user once, owner first.
    #[must_use]
    pub fn connected(&self, workspace: WorkspaceId) -> Vec<Connected> {
        self.inner.presence.connected(workspace)
    }

    /// Ends the open terminals (and grid panes) of `username` in `workspace` (`None`: in every
    /// workspace): each gets `revocation`'s message and close code. For access that changed
    /// while they were attached: a member removed or given another role, an account deleted
    /// or disabled. The number of sessions told.
    pub fn revoke(
        &self,
        workspace: Option<WorkspaceId>,
        username: &Username,
        revocation: &Revocation,
    ) -> usize {
        self.inner.presence.revoke(workspace, username, revocation)
    }

    /// Opens the workspace's terminal for `request.user`, if they may see it:
    /// [`WorkspaceError::NotFound`] when the workspace does not exist or they have no role in
    /// it (a denied attempt is audited), [`WorkspaceError::Conflict`] when it is not running,
    /// [`WorkspaceError::InvalidOption`] for a size out of range. The attach is audited
    /// (`terminal.attach`, details: role, recording id); the session is recorded when the
    /// template says so. A recording that cannot be started is logged and the terminal opens
    /// anyway.
    pub async fn attach(&self, request: AttachRequest) -> Result<TerminalSession, WorkspaceError> {
        let manager = &self.inner.workspaces;
        let ws = manager.get(request.workspace).await?;
        let Some(most) = manager.role_in(&ws, &request.user, request.account).await? else {
            self.audit_denied(&ws, &request).await;
            return Err(WorkspaceError::NotFound);
        };
        let role = request.want.map_or(most, |want| want.min(most));
        protocol::size(u64::from(request.size.cols), u64::from(request.size.rows))
            .map_err(WorkspaceError::InvalidOption)?;
        let plan = manager.plan_of(&ws);
        // A template that is gone records, as the default does.
        let record = plan.as_ref().is_none_or(|p| p.record);
        let shared = plan.as_ref().is_some_and(|p| p.shared);
        let terminal = manager.open_terminal(ws.id, request.size).await?;
        let recorder = if record {
            let start = RecordingStart {
                workspace: ws.id,
                owner: ws.owner.clone(),
                username: request.user.clone(),
                size: request.size,
                title: format!(
                    "{} in {}'s {} workspace {}",
                    request.user, ws.owner, ws.template, ws.id
                ),
            };
            match self.inner.recordings.start(start).await {
                Ok(recorder) => Some(recorder),
                Err(err) => {
                    tracing::error!(workspace = %ws.id, user = %request.user, error = %err, "cannot record a terminal session");
                    None
                }
            }
        } else {
            None
        };
        let recording = recorder.as_ref().map(crate::recordings::Recorder::id);
        let attach = NewAuditEntry {
            at: OffsetDateTime::now_utc(),
            actor: request.user.to_string(),
            action: "terminal.attach".into(),
            target: ws.id.to_string(),
            ip: request.ip,
            details: json!({"role": role, "recording": recording, "shared": shared}),
            outcome: AuditOutcome::Success,
        };
        let Terminal {
            session,
            activity,
            attachment,
        } = terminal;
        let mut bridge =
            Bridge::new(session, ws.id, request.user.clone(), role).with_activity(activity);
        if let Some(recorder) = recorder {
            bridge = bridge.with_recorder(recorder);
        }
        // No terminal without its audit entry: on failure, dropping the bridge hangs the
        // process up and the recorder closes its file.
        manager.store().append_audit(&attach).await?;
        let audit = DetachAudit {
            store: Arc::clone(manager.store()),
            pending: Some(AuditInfo {
                actor: request.user.clone(),
                workspace: ws.id,
                ip: request.ip,
                role,
                recording,
                started: Instant::now(),
                stats: bridge.stats(),
            }),
        };
        let seat = self.inner.presence.join(
            ws.id,
            Connected {
                username: request.user.clone(),
                role,
            },
        );
        let bridge = bridge
            .with_members(seat.list.clone())
            .with_revocation(seat.revoked.clone());
        Ok(TerminalSession {
            bridge,
            title: format!("{}@{}", ws.owner, ws.template),
            role,
            seat,
            attachment,
            audit,
        })
    }

    /// Opens a grid for `request.user` (its owner, or an admin): every pane's workspace is
    /// attached as [`Terminals::attach`] would, and a pane that cannot be shows an error.
    pub async fn open_grid(
        &self,
        id: GridId,
        request: GridRequest,
    ) -> Result<GridSession, GridError> {
        let grid = self.inner.grids.grid(id)?;
        if grid.owner != request.user && request.account != Role::Admin {
            return Err(GridError::NotFound);
        }
        let mut panes = Vec::with_capacity(grid.panes.len());
        for workspace in grid.panes {
            let attach = AttachRequest {
                ip: request.ip,
                ..AttachRequest::new(workspace, request.user.clone(), request.account)
            };
            panes.push(match self.attach(attach).await {
                Ok(session) => GridPane::session(session),
                Err(err) => GridPane::failed(workspace.to_string(), &err.to_string()),
            });
        }
        Ok(GridSession::new(
            panes,
            self.inner.settings.grid_idle_timeout,
        ))
    }

    async fn audit_denied(&self, ws: &Workspace, request: &AttachRequest) {
        let entry = NewAuditEntry {
            at: OffsetDateTime::now_utc(),
            actor: request.user.to_string(),
            action: "terminal.attach".into(),
            target: ws.id.to_string(),
            ip: request.ip,
            details: json!({"reason": "not the owner, a member or an admin"}),
            outcome: AuditOutcome::Denied,
        };
        if let Err(err) = self.inner.workspaces.store().append_audit(&entry).await {
            tracing::error!(workspace = %ws.id, error = %err, "cannot audit a denied attach");
        }
    }
}

/// An attached terminal, ready to run over a client's socket. The workspace counts it as
/// attached and the user as connected until it ends.
#[derive(Debug)]
pub struct TerminalSession {
    bridge: Bridge,
    title: String,
    role: SessionRole,
    seat: Seat,
    attachment: Attachment,
    audit: DetachAudit,
}

impl TerminalSession {
    /// What the user may do in it.
    #[must_use]
    pub fn role(&self) -> SessionRole {
        self.role
    }

    /// The session's counters (bytes in flight, in and out).
    #[must_use]
    pub fn stats(&self) -> BridgeStats {
        self.bridge.stats()
    }

    /// `owner@template`, for a pane's title.
    #[must_use]
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Runs the session until it ends (see [`Bridge::run`]), then audits the detach
    /// (`terminal.detach`, details: role, recording, how it ended, exit code, seconds, bytes in
    /// and out). If this future is dropped before it ends, the detach is still audited.
    pub async fn run<S, R, E>(self, sink: S, stream: R) -> Ended
    where
        S: Sink<Message> + Unpin,
        S::Error: Display,
        R: Stream<Item = Result<Message, E>> + Unpin,
        E: Display,
    {
        let Self {
            bridge,
            seat,
            attachment,
            mut audit,
            ..
        } = self;
        let ended = bridge.run(sink, stream).await;
        drop(seat);
        drop(attachment);
        if let Some(info) = audit.pending.take() {
            let exit_code = match ended.end {
                super::BridgeEnd::Exited(code) => code,
                _ => None,
            };
            let entry = info.entry(ended.end.as_str(), exit_code);
            if let Err(err) = audit.store.append_audit(&entry).await {
                tracing::error!(error = %err, "cannot audit a terminal detach");
            }
        }
        ended
    }
}

#[derive(Debug)]
struct AuditInfo {
    actor: Username,
    workspace: WorkspaceId,
    ip: Option<IpAddr>,
    role: SessionRole,
    recording: Option<RecordingId>,
    started: Instant,
    stats: BridgeStats,
}

impl AuditInfo {
    fn entry(self, end: &str, exit_code: Option<i64>) -> NewAuditEntry {
        NewAuditEntry {
            at: OffsetDateTime::now_utc(),
            actor: self.actor.to_string(),
            action: "terminal.detach".into(),
            target: self.workspace.to_string(),
            ip: self.ip,
            details: json!({
                "role": self.role,
                "recording": self.recording,
                "end": end,
                "exit_code": exit_code,
                "seconds": self.started.elapsed().as_secs(),
                "bytes_in": self.stats.input_bytes(),
                "bytes_out": self.stats.output_bytes(),
            }),
            outcome: AuditOutcome::Success,
        }
    }
}

/// Audits the detach of a session whose `run` future was dropped (server shutdown, a handler
/// cancelled): a terminal.attach entry always gets its terminal.detach.
#[derive(Debug)]
struct DetachAudit {
    store: Arc<dyn Store>,
    pending: Option<AuditInfo>,
}

impl Drop for DetachAudit {
    fn drop(&mut self) {
        let Some(info) = self.pending.take() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::error!(workspace = %info.workspace, "terminal detach not audited: no runtime");
            return;
        };
        let store = Arc::clone(&self.store);
        handle.spawn(async move {
            let entry = info.entry("cancelled", None);
            if let Err(err) = store.append_audit(&entry).await {
                tracing::error!(error = %err, "cannot audit a terminal detach");
            }
        });
    }
}
