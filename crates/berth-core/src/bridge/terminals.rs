//! The terminal service: who may attach and as what, the recording, presence and the audit of
//! every attach and detach around one [`Bridge`], whatever the target.
//!
//! Each kind of [`TerminalTarget`] has one [`TerminalSource`] (workspaces: `WorkspaceTerminals`;
//! machines: the fleet's SSH source). The service asks the source what the caller may do and
//! for a PTY; everything else here is the same for every kind.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_store::RecordingId;
use berth_terminal::{
    Caller, Grant, OpenError, Opened, TargetKind, TerminalSource, TerminalTarget, TtySize,
};
use berth_types::{Role, Username};
use futures_util::{Sink, Stream};
use serde_json::json;

use super::Message;
use super::grid::{GridError, GridId, Grids};
use super::mux::{GridPane, GridSession};
use super::presence::{Presence, Revocation, Seat};
use super::protocol::{self, Connected};
use super::session::{Bridge, Ended};
use super::stats::BridgeStats;
use crate::audit::{Audit, AuditAction, AuditEvent};
use crate::recordings::{RecordingStart, Recordings};
use crate::terminal::INITIAL_SIZE;
use crate::{SessionRole, WorkspaceTerminals, Workspaces};

/// Timings of terminal sessions; the defaults suit production, tests shorten them.
#[derive(Debug, Clone)]
pub struct TerminalSettings {
    /// A grid socket with no input for this long is closed (1000, "idle").
    pub grid_idle_timeout: Duration,
    /// How long the sessions [`Terminals::connect_all`] opened wait for the grid's socket
    /// before they are closed.
    pub connect_hold: Duration,
}

impl Default for TerminalSettings {
    fn default() -> Self {
        Self {
            grid_idle_timeout: Duration::from_secs(3600),
            connect_hold: Duration::from_secs(60),
        }
    }
}

/// What [`Terminals::connect_all`] did for one pane.
#[derive(Debug)]
pub struct PaneConnect {
    /// The pane's number.
    pub pane: usize,
    /// What it shows.
    pub target: TerminalTarget,
    /// Its title (`owner@template`, `user@machine`); empty when the target is not found.
    pub title: String,
    /// `Ok` when its session opened (and is held for the grid's socket), or why it did not.
    pub outcome: Result<(), OpenError>,
}

/// Sessions `connect_all` opened for a grid, waiting for its socket.
#[derive(Debug)]
struct Held {
    /// Tells this hold from a later one of the same grid.
    token: u64,
    user: Username,
    panes: Vec<TerminalTarget>,
    sessions: Vec<Option<TerminalSession>>,
}

/// Terminals on every kind of target, their recordings, who is attached, and grids. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct Terminals {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sources: HashMap<TargetKind, Arc<dyn TerminalSource>>,
    recordings: Recordings,
    audit: Audit,
    presence: Presence,
    grids: Grids,
    settings: TerminalSettings,
    held: std::sync::Mutex<HashMap<GridId, Held>>,
    next_hold: std::sync::atomic::AtomicU64,
}

/// Someone asking for a terminal.
#[derive(Debug, Clone)]
pub struct AttachRequest {
    /// What to open it on.
    pub target: TerminalTarget,
    /// Who asks.
    pub user: Username,
    /// Their account role (admins may attach to any target as a peer).
    pub account: Role,
    /// Attach with less than they may (e.g. an admin or the owner watching as a viewer).
    pub want: Option<SessionRole>,
    /// The terminal size to start with (1 to 1000 columns and rows).
    pub size: TtySize,
    /// Where the request came from, for the audit log.
    pub ip: Option<IpAddr>,
}

impl AttachRequest {
    /// A request by `user` for a terminal on `target` at 80x24, with the most they may do.
    #[must_use]
    pub fn new(target: impl Into<TerminalTarget>, user: Username, account: Role) -> Self {
        Self {
            target: target.into(),
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
    /// The service over `sources` (one per kind of target; a later one of a kind replaces an
    /// earlier one), recording into `recordings` and auditing into `audit`.
    #[must_use]
    pub fn new(
        sources: impl IntoIterator<Item = Arc<dyn TerminalSource>>,
        recordings: Recordings,
        audit: Audit,
        settings: TerminalSettings,
    ) -> Self {
        let sources = sources
            .into_iter()
            .map(|source| (source.kind(), source))
            .collect();
        Self {
            inner: Arc::new(Inner {
                sources,
                recordings,
                audit,
                presence: Presence::default(),
                grids: Grids::default(),
                settings,
                held: std::sync::Mutex::default(),
                next_hold: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// The service of an installation whose only targets are workspaces: the workspace source
    /// over `workspaces`, recordings under `recordings_dir` indexed in the manager's store, the
    /// audit log in the same store, default settings. For tests and tools; `berth serve`
    /// lists its sources itself.
    #[must_use]
    pub fn for_workspaces(workspaces: &Workspaces, recordings_dir: impl Into<PathBuf>) -> Self {
        let store = Arc::clone(workspaces.store());
        let source: Arc<dyn TerminalSource> = Arc::new(WorkspaceTerminals::new(workspaces.clone()));
        Self::new(
            [source],
            Recordings::new(recordings_dir, Arc::clone(&store)),
            Audit::new(store),
            TerminalSettings::default(),
        )
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

    /// Who is attached to the target's terminal now: each user once, owner first.
    #[must_use]
    pub fn connected(&self, target: &TerminalTarget) -> Vec<Connected> {
        self.inner.presence.connected(target)
    }

    /// Ends the open terminals (and grid panes) of `username` on `target` (`None`: on every
    /// target): each gets `revocation`'s message and close code. For access that changed
    /// while they were attached: a member removed or given another role, an account deleted
    /// or disabled. The number of sessions told.
    pub fn revoke(
        &self,
        target: Option<&TerminalTarget>,
        username: &Username,
        revocation: &Revocation,
    ) -> usize {
        self.inner.presence.revoke(target, username, revocation)
    }

    /// Asks the sources again whether each user with an open terminal on a target of `kind`
    /// may still see it, and ends (4403) the sessions of those who may not: for access that
    /// follows from the configuration (machine selectors) after a reload. `account` says a
    /// user's account role now; a user it does not know is left to the account cascade. A
    /// source that fails to answer leaves the session open. The number of sessions told.
    pub async fn recheck(
        &self,
        kind: TargetKind,
        account: impl Fn(&Username) -> Result<Role, &'static str>,
    ) -> usize {
        let Some(source) = self.inner.sources.get(&kind) else {
            return 0;
        };
        let mut told = 0;
        for (target, username) in self.inner.presence.occupants() {
            if target.kind() != kind {
                continue;
            }
            let role = match account(&username) {
                Ok(role) => role,
                Err(why) => {
                    // Disabled, or gone from users.yaml (a hand edit and a reload, which the
                    // users API's own cascade never sees): every terminal of theirs ends, with
                    // the same words as that cascade's.
                    let revocation = Revocation {
                        code: super::close::UNAUTHENTICATED,
                        message: why.to_owned(),
                    };
                    let ended = self.revoke(Some(&target), &username, &revocation);
                    tracing::info!(%target, user = %username, sessions = ended, "terminal closed: the account is disabled or gone");
                    told += ended;
                    continue;
                }
            };
            let caller = Caller {
                username: username.clone(),
                role,
            };
            let allowed = match source.authorize(&target, &caller).await {
                Ok(Some(_)) => true,
                Ok(None) | Err(OpenError::NotFound(_)) => false,
                Err(err) => {
                    tracing::warn!(%target, user = %username, error = %err, "cannot recheck a terminal's access; it stays open");
                    true
                }
            };
            if !allowed {
                let revocation = Revocation {
                    code: super::close::FORBIDDEN,
                    message: format!("you may no longer use the terminal on {target}"),
                };
                let ended = self.revoke(Some(&target), &username, &revocation);
                tracing::info!(%target, user = %username, sessions = ended, "terminal access withdrawn");
                told += ended;
            }
        }
        told
    }

    /// What `caller` may do on `target`, as its source says: `None` when they may not see it
    /// (or there is no source for its kind). For pages and grids that show what a terminal
    /// would open before it does.
    pub async fn grant(
        &self,
        target: &TerminalTarget,
        caller: &Caller,
    ) -> Result<Option<Grant>, OpenError> {
        match self.inner.sources.get(&target.kind()) {
            Some(source) => source.authorize(target, caller).await,
            None => Err(OpenError::NotFound(target.kind())),
        }
    }

    /// Opens a terminal on `request.target` for `request.user`, if they may see it:
    /// [`OpenError::NotFound`] when the target does not exist, has no source, or they have no
    /// role in it (a denied attempt is audited), [`OpenError::Unavailable`] when it has no
    /// terminal now (a stopped workspace), [`OpenError::Invalid`] for a size out of range. The
    /// attach is audited (`terminal.attach`, details: role, recording id); the session is
    /// recorded when the target records. A recording that cannot be started is logged and the
    /// terminal opens anyway.
    pub async fn attach(&self, request: AttachRequest) -> Result<TerminalSession, OpenError> {
        let target = &request.target;
        let source = self
            .inner
            .sources
            .get(&target.kind())
            .ok_or(OpenError::NotFound(target.kind()))?;
        let caller = Caller {
            username: request.user.clone(),
            role: request.account,
        };
        let Some(grant) = source.authorize(target, &caller).await? else {
            self.audit_denied(&request).await;
            return Err(OpenError::NotFound(target.kind()));
        };
        let role = request.want.map_or(grant.role, |want| want.min(grant.role));
        protocol::size(u64::from(request.size.cols), u64::from(request.size.rows))
            .map_err(OpenError::Invalid)?;
        let Opened {
            pty,
            activity,
            hold,
        } = source.open(&grant, role, request.size).await?;
        let recorder = if grant.record {
            let start = RecordingStart {
                target: target.clone(),
                owner: grant.owner.clone(),
                username: request.user.clone(),
                size: request.size,
                title: format!("{} in {}", request.user, grant.label),
            };
            match self.inner.recordings.start(start).await {
                Ok(recorder) => Some(recorder),
                Err(err) => {
                    tracing::error!(%target, user = %request.user, error = %err, "cannot record a terminal session");
                    None
                }
            }
        } else {
            None
        };
        let recording = recorder.as_ref().map(crate::recordings::Recorder::id);
        let attach = AuditEvent::new(
            &request.user,
            AuditAction::TerminalAttach,
            target_name(target),
        )
        .from_ip(request.ip)
        .details(json!({
            "kind": target.kind(),
            "role": role,
            "recording": recording,
            "shared": grant.shared,
        }));
        let mut bridge = Bridge::new(pty, target.clone(), request.user.clone(), role);
        if let Some(activity) = activity {
            bridge = bridge.with_activity(activity);
        }
        if let Some(recorder) = recorder {
            bridge = bridge.with_recorder(recorder);
        }
        // No terminal without its audit entry: on failure, dropping the bridge hangs the
        // process up and the recorder closes its file.
        self.inner
            .audit
            .append(&attach)
            .await
            .map_err(|err| OpenError::Failed(Box::new(err)))?;
        let audit = DetachAudit {
            audit: self.inner.audit.clone(),
            pending: Some(AuditInfo {
                actor: request.user.clone(),
                target: target.clone(),
                ip: request.ip,
                role,
                recording,
                started: Instant::now(),
                stats: bridge.stats(),
            }),
        };
        let seat = self.inner.presence.join(
            target,
            Connected {
                username: request.user.clone(),
                role,
            },
        );
        // Opening may take seconds (an SSH connect): a reload's recheck in that time did not
        // see this session, so it is authorized again now that a recheck would.
        if !matches!(source.authorize(target, &caller).await, Ok(Some(_))) {
            tracing::info!(%target, user = %request.user, "access withdrawn while the terminal opened");
            return Err(OpenError::NotFound(target.kind()));
        }
        let bridge = bridge
            .with_members(seat.list.clone())
            .with_revocation(seat.revoked.clone());
        Ok(TerminalSession {
            bridge,
            title: grant.title,
            role,
            seat,
            hold,
            audit,
        })
    }

    /// The grid `id` if `request.user` owns it or is an admin.
    fn grid_for(&self, id: GridId, request: &GridRequest) -> Result<super::Grid, GridError> {
        let grid = self.inner.grids.grid(id)?;
        if grid.owner != request.user && request.account != Role::Admin {
            return Err(GridError::NotFound);
        }
        Ok(grid)
    }

    /// Opens every pane's session of grid `id` at once, as [`Terminals::attach`] would, and
    /// holds those that opened for the grid's socket ([`Terminals::open_grid`] by the same
    /// user) for `connect_hold`; after that they are closed. A second call replaces (and
    /// closes) what an earlier one held. Says per pane whether it opened, and why not.
    pub async fn connect_all(
        &self,
        id: GridId,
        request: GridRequest,
    ) -> Result<Vec<PaneConnect>, GridError> {
        let grid = self.grid_for(id, &request)?;
        let attaches = grid.panes.iter().map(|target| {
            self.attach(AttachRequest {
                ip: request.ip,
                ..AttachRequest::new(target.clone(), request.user.clone(), request.account)
            })
        });
        let results = futures_util::future::join_all(attaches).await;
        let mut report = Vec::with_capacity(results.len());
        let mut sessions = Vec::with_capacity(results.len());
        for (pane, (target, result)) in grid.panes.iter().zip(results).enumerate() {
            let (title, outcome, session) = match result {
                Ok(session) => (session.title().to_owned(), Ok(()), Some(session)),
                Err(err @ OpenError::NotFound(_)) => (String::new(), Err(err), None),
                Err(err) => (target.id_string(), Err(err), None),
            };
            report.push(PaneConnect {
                pane,
                target: target.clone(),
                title,
                outcome,
            });
            sessions.push(session);
        }
        let token = self
            .inner
            .next_hold
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let held = Held {
            token,
            user: request.user.clone(),
            panes: grid.panes.clone(),
            sessions,
        };
        let replaced = crate::workspaces::lock(&self.inner.held).insert(id, held);
        drop(replaced);
        let terminals = self.clone();
        let hold = self.inner.settings.connect_hold;
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            let expired = {
                let mut held = crate::workspaces::lock(&terminals.inner.held);
                match held.get(&id) {
                    Some(h) if h.token == token => held.remove(&id),
                    _ => None,
                }
            };
            if let Some(expired) = expired {
                let open = expired.sessions.iter().flatten().count();
                tracing::info!(grid = %id, sessions = open, "sessions opened by connect-all were not attached in time; closed");
            }
        });
        Ok(report)
    }

    /// How long the sessions `connect_all` opened wait for the grid's socket.
    #[must_use]
    pub fn connect_hold(&self) -> Duration {
        self.inner.settings.connect_hold
    }

    /// How many sessions `connect_all` holds for grid `id` now.
    #[must_use]
    pub fn held(&self, id: GridId) -> usize {
        crate::workspaces::lock(&self.inner.held)
            .get(&id)
            .map_or(0, |h| h.sessions.iter().flatten().count())
    }

    /// The sessions `connect_all` holds for grid `id` and `user`, when its panes are still
    /// `panes`.
    fn take_held(
        &self,
        id: GridId,
        user: &Username,
        panes: &[TerminalTarget],
    ) -> Vec<Option<TerminalSession>> {
        let taken = {
            let mut held = crate::workspaces::lock(&self.inner.held);
            match held.get(&id) {
                Some(h) if h.user == *user && h.panes == panes => held.remove(&id),
                _ => None,
            }
        };
        taken.map(|h| h.sessions).unwrap_or_default()
    }

    /// Opens a grid for `request.user` (its owner, or an admin): the sessions
    /// [`Terminals::connect_all`] holds for them are taken, every other pane's target is
    /// attached as [`Terminals::attach`] would, and a pane that cannot be shows an error.
    pub async fn open_grid(
        &self,
        id: GridId,
        request: GridRequest,
    ) -> Result<GridSession, GridError> {
        let grid = self.grid_for(id, &request)?;
        let mut held = self.take_held(id, &request.user, &grid.panes);
        // Every pane at once: a grid of machines waits for the slowest SSH connect, not for
        // the sum of them.
        let opens = grid.panes.into_iter().enumerate().map(|(i, target)| {
            let already = held.get_mut(i).and_then(Option::take);
            let request = &request;
            async move {
                if let Some(session) = already {
                    return GridPane::session(session);
                }
                let title = target.id_string();
                let attach = AttachRequest {
                    ip: request.ip,
                    ..AttachRequest::new(target, request.user.clone(), request.account)
                };
                match self.attach(attach).await {
                    Ok(session) => GridPane::session(session),
                    Err(OpenError::Failed(err)) => {
                        tracing::warn!(error = %err, %title, "a grid pane could not open");
                        GridPane::failed(
                            title,
                            "the terminal could not open; an administrator can find the cause \
                             in Berth's log",
                        )
                    }
                    Err(err) => GridPane::failed(title, &err.to_string()),
                }
            }
        });
        let panes = futures_util::future::join_all(opens).await;
        Ok(GridSession::new(
            panes,
            self.inner.settings.grid_idle_timeout,
        ))
    }

    async fn audit_denied(&self, request: &AttachRequest) {
        let event = AuditEvent::new(
            &request.user,
            AuditAction::TerminalAttach,
            target_name(&request.target),
        )
        .from_ip(request.ip)
        .details(json!({
            "kind": request.target.kind(),
            "reason": "not the owner, a member or an admin",
        }))
        .outcome(berth_store::AuditOutcome::Denied);
        self.inner.audit.record(event).await;
    }
}

/// A target as the audit log names it: a workspace by its id alone, as before targets had
/// kinds (the details say the kind); a machine as `machine:ID`.
fn target_name(target: &TerminalTarget) -> String {
    match target {
        TerminalTarget::Workspace(id) => id.to_string(),
        TerminalTarget::Machine(_) => target.to_string(),
    }
}

/// An attached terminal, ready to run over a client's socket. The source keeps what it holds
/// for it (a workspace counts it as attached) and presence lists the user until it ends.
#[derive(Debug)]
pub struct TerminalSession {
    bridge: Bridge,
    title: String,
    role: SessionRole,
    seat: Seat,
    hold: Option<Box<dyn std::any::Any + Send + Sync>>,
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

    /// `owner@template` or a machine's name, for a pane's title.
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
            hold,
            mut audit,
            ..
        } = self;
        let ended = bridge.run(sink, stream).await;
        drop(seat);
        drop(hold);
        if let Some(info) = audit.pending.take() {
            let exit_code = match ended.end {
                super::BridgeEnd::Exited(code) => code,
                _ => None,
            };
            audit
                .audit
                .record(info.event(ended.end.as_str(), exit_code))
                .await;
        }
        ended
    }
}

#[derive(Debug)]
struct AuditInfo {
    actor: Username,
    target: TerminalTarget,
    ip: Option<IpAddr>,
    role: SessionRole,
    recording: Option<RecordingId>,
    started: Instant,
    stats: BridgeStats,
}

impl AuditInfo {
    fn event(self, end: &str, exit_code: Option<i64>) -> AuditEvent {
        AuditEvent::new(
            self.actor,
            AuditAction::TerminalDetach,
            target_name(&self.target),
        )
        .from_ip(self.ip)
        .details(json!({
            "kind": self.target.kind(),
            "role": self.role,
            "recording": self.recording,
            "end": end,
            "exit_code": exit_code,
            "seconds": self.started.elapsed().as_secs(),
            "bytes_in": self.stats.input_bytes(),
            "bytes_out": self.stats.output_bytes(),
        }))
    }
}

/// Audits the detach of a session whose `run` future was dropped (server shutdown, a handler
/// cancelled): a terminal.attach entry always gets its terminal.detach.
#[derive(Debug)]
struct DetachAudit {
    audit: Audit,
    pending: Option<AuditInfo>,
}

impl Drop for DetachAudit {
    fn drop(&mut self) {
        let Some(info) = self.pending.take() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::error!(target = %info.target, "terminal detach not audited: no runtime");
            return;
        };
        let audit = self.audit.clone();
        handle.spawn(async move {
            audit.record(info.event("cancelled", None)).await;
        });
    }
}
