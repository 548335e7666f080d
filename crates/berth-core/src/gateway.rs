//! Berth behind the SSH gateway ([`berth_ssh::gateway`]): [`SshGateway`] implements its
//! [`GatewayBackend`] over the configuration in force, the login throttle, the workspaces and
//! the terminal seam.
//!
//! - Users and keys are those of users.yaml as [`LiveConfig`] has them now: a disabled user,
//!   a user without the offered key among their `ssh_keys` and an unknown one are refused
//!   alike. [`SshGateway::recheck`] (after every reload) revokes the open sessions of users
//!   who were disabled or removed and of keys that were removed.
//! - Logins are throttled by the rules of web logins (`security.lockout_*`): `lockout_attempts`
//!   failures from one address lock that address out of the account for `lockout_minutes`;
//!   as many spread over several addresses slow the account down (one attempt per delay, from
//!   1s doubling up to 30s), except for addresses that logged in to it within 30 days. Every
//!   login is recorded and audited (`auth.login`, `via: ssh`). New connections from one
//!   address are limited to `security.login_rate_per_minute` a minute.
//! - `alice` attaches to alice's running workspace (a menu when she has several), `alice+T`
//!   to her newest running workspace of template `T`, started when she has none. A shell goes
//!   through the same [`TerminalSource`] as the web terminal (shared templates join the same
//!   tmux session); `ssh host CMD` runs CMD in the workspace without a terminal, or on one
//!   with `ssh -t`. Both are recorded when the template records, and audited
//!   (`terminal.attach` / `terminal.detach`, `via: ssh`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use berth_runtime::{ContainerId, ExecSpec};
use berth_ssh::gateway::{
    Authorization, GatewayBackend, GatewayOptions, MenuEntry, OfferedKey, OpenRefused, Opening,
    Refusal, Revoker, SessionRequest, SshLogin, revocation,
};
use berth_store::{LoginPressure, Store, Workspace, WorkspaceFilter, WorkspaceState};
use berth_terminal::{
    Caller, Opened, Pty, PtyControl, PtyOutput, TerminalError, TerminalSource, TerminalTarget,
    TtySize,
};
use berth_types::{Role, Username};
use bytes::Bytes;
use futures_util::Stream;
use serde_json::json;
use time::OffsetDateTime;

use crate::audit::{Audit, AuditAction, AuditEvent};
use crate::recordings::{Recorder, RecordingStart, Recordings};
use crate::records::Logins;
use crate::{Clock, LiveConfig, StartOptions, WorkspaceError, Workspaces};

/// The delay of an account whose spread failures just reached the limit.
const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest delay between two attempts of a throttled account.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// How long an address that logged in to an account stays exempt from its throttling.
const KNOWN_ADDRESS_DAYS: i64 = 30;

/// What the gateway needs of workspaces; [`Workspaces`] is the real one.
#[async_trait]
pub trait GatewayWorkspaces: Send + Sync + std::fmt::Debug + 'static {
    /// `user`'s running workspaces, newest first.
    async fn running(&self, user: &Username) -> Result<Vec<Workspace>, WorkspaceError>;
    /// Starts a workspace of `template` for `user` (the policy decides whether they may).
    async fn start(&self, user: &Username, template: &str) -> Result<Workspace, WorkspaceError>;
    /// Runs `command` with `sh -c` in a running workspace, on a PTY of `size` or without one
    /// (stdout and stderr merged).
    async fn exec(
        &self,
        workspace: &Workspace,
        command: &str,
        size: Option<TtySize>,
    ) -> Result<Opened, WorkspaceError>;
}

#[async_trait]
impl GatewayWorkspaces for Workspaces {
    async fn running(&self, user: &Username) -> Result<Vec<Workspace>, WorkspaceError> {
        let mut found = self
            .list(&WorkspaceFilter {
                owner: Some(user.clone()),
                states: vec![WorkspaceState::Running],
                member: None,
            })
            .await?;
        found.sort_by_key(|w| std::cmp::Reverse(w.started_at.unwrap_or(w.created_at)));
        Ok(found)
    }

    async fn start(&self, user: &Username, template: &str) -> Result<Workspace, WorkspaceError> {
        Workspaces::start(self, user, template, &StartOptions::default()).await
    }

    async fn exec(
        &self,
        workspace: &Workspace,
        command: &str,
        size: Option<TtySize>,
    ) -> Result<Opened, WorkspaceError> {
        let container = workspace
            .container_id
            .clone()
            .map(ContainerId::new)
            .ok_or_else(|| WorkspaceError::Conflict("the workspace has no container".into()))?;
        let argv = ["/bin/sh", "-c", command];
        let mut spec = match size {
            Some(size) => ExecSpec::terminal(argv, size),
            None => ExecSpec::command(argv),
        };
        spec.stdin = true;
        spec.env.insert("BERTH_USER", workspace.owner.as_str());
        spec.env.insert("BERTH_WORKSPACE", workspace.id.to_string());
        let pty = self.runtime().exec(&container, spec).await?;
        // Attached and active while it runs, like a terminal: the idle sweep leaves the
        // workspace alone under `ssh host long-command`.
        let terminal = self.attach(workspace.id, pty);
        Ok(Opened {
            pty: terminal.session,
            activity: Some(Arc::new(terminal.activity)),
            hold: Some(Box::new(terminal.attachment)),
        })
    }
}

/// The gateway's options from main.yaml's `ssh:` section; the host key defaults to
/// `ssh_host_ed25519_key` in `home` (Berth's home directory).
#[must_use]
pub fn gateway_options(ssh: &berth_config::Ssh, home: &std::path::Path) -> GatewayOptions {
    let host_key = ssh
        .host_key
        .clone()
        .unwrap_or_else(|| home.join(DEFAULT_HOST_KEY));
    GatewayOptions {
        login_timeout: ssh.login_timeout.get(),
        max_auth_attempts: ssh.max_auth_attempts,
        max_connections: ssh.max_connections,
        max_connections_per_address: ssh.max_connections_per_address,
        keepalive: ssh.keepalive.get(),
        ..GatewayOptions::new(host_key)
    }
}

/// The host key's file name in Berth's home when `ssh.host_key` names none.
pub const DEFAULT_HOST_KEY: &str = "ssh_host_ed25519_key";

/// One open session's authorization, to revoke it when its key or user goes.
#[derive(Debug)]
struct Live {
    user: Username,
    fingerprint: String,
    revoker: Revoker,
}

/// New connections per address in the current minute.
#[derive(Debug, Default)]
struct Window {
    started: Option<OffsetDateTime>,
    counts: HashMap<IpAddr, u32>,
}

/// The [`GatewayBackend`] of a Berth server.
#[derive(Debug, Clone)]
pub struct SshGateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: LiveConfig,
    workspaces: Arc<dyn GatewayWorkspaces>,
    terminals: Arc<dyn TerminalSource>,
    logins: Logins,
    audit: Audit,
    recordings: Option<Recordings>,
    clock: Arc<dyn Clock>,
    live: Mutex<Vec<Live>>,
    window: Mutex<Window>,
}

/// The address failures are counted for: an IPv6 address counts as its /64.
fn block(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        IpAddr::V4(_) => ip,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether an attempt is refused now, and why: the lockout of the address, or the throttle of
/// an account guessed at from several addresses.
fn throttled(
    pressure: &LoginPressure,
    attempts: u32,
    lockout_minutes: u32,
    now: OffsetDateTime,
) -> Option<String> {
    if pressure.address_failures >= attempts {
        return Some(format!(
            "{} failed logins from this address; locked out for {lockout_minutes} minute(s)",
            pressure.address_failures
        ));
    }
    if pressure.known_address
        || pressure.failing_addresses < 2
        || pressure.account_failures < attempts
    {
        return None;
    }
    let last = pressure.last_failure?;
    let further = pressure.account_failures - attempts;
    let delay = FIRST_DELAY
        .checked_mul(1 << further.min(16))
        .map_or(MAX_DELAY, |d| d.min(MAX_DELAY));
    let since = Duration::try_from(now - last).unwrap_or(Duration::ZERO);
    (since < delay).then(|| {
        format!(
            "the account is being guessed at from {} addresses; one attempt per {}s",
            pressure.failing_addresses,
            delay.as_secs()
        )
    })
}

impl SshGateway {
    /// The backend over the configuration in force, the workspaces, the terminal source of
    /// workspaces ([`crate::WorkspaceTerminals`]), the store (login attempts and audit) and,
    /// when sessions are recorded, the recordings.
    pub fn new(
        config: LiveConfig,
        workspaces: Arc<dyn GatewayWorkspaces>,
        terminals: Arc<dyn TerminalSource>,
        store: Arc<dyn Store>,
        recordings: Option<Recordings>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                workspaces,
                terminals,
                logins: Logins::new(Arc::clone(&store)),
                audit: Audit::new(store),
                recordings,
                clock,
                live: Mutex::default(),
                window: Mutex::default(),
            }),
        }
    }

    /// Looks at every open session again with the configuration in force (call it after each
    /// reload): those of users who are gone or disabled, and of keys no longer theirs, are
    /// closed. How many were.
    pub fn recheck(&self) -> usize {
        let config = self.inner.config.current();
        let mut live = lock(&self.inner.live);
        live.retain(|l| !l.revoker.is_unused());
        let mut revoked = 0;
        live.retain(|l| {
            let reason = match config.user(l.user.as_str()) {
                None => Some("the account was removed"),
                Some(user) if user.disabled => Some("the account was disabled"),
                Some(user)
                    if !user
                        .ssh_keys
                        .iter()
                        .any(|k| k.fingerprint() == l.fingerprint) =>
                {
                    Some("the key was removed")
                }
                Some(_) => None,
            };
            match reason {
                Some(reason) => {
                    l.revoker.revoke(reason);
                    revoked += 1;
                    false
                }
                None => true,
            }
        });
        revoked
    }

    /// Whether `user` may still use the key with `fingerprint` in the configuration in force.
    fn key_valid(&self, user: &str, fingerprint: &str) -> bool {
        let config = self.inner.config.current();
        config.user(user).is_some_and(|u| {
            !u.disabled && u.ssh_keys.iter().any(|k| k.fingerprint() == fingerprint)
        })
    }

    fn role(&self, user: &str) -> Role {
        self.inner
            .config
            .current()
            .user(user)
            .map_or(Role::User, |u| u.role)
    }

    /// The running workspace `login` names, started when the login names a template the
    /// user has none of; a menu when it names none and the user has several.
    async fn choose(
        &self,
        login: &SshLogin,
    ) -> Result<Result<Workspace, Vec<MenuEntry>>, OpenRefused> {
        let failed = |e: WorkspaceError| OpenRefused(e.to_string());
        let running = self
            .inner
            .workspaces
            .running(login.user())
            .await
            .map_err(failed)?;
        if let Some(template) = login.template() {
            if let Some(found) = running.into_iter().find(|w| w.template == template) {
                return Ok(Ok(found));
            }
            let config = self.inner.config.current();
            let allowed = config
                .allowed_templates(login.user())
                .iter()
                .any(|t| t.name == template);
            if !allowed {
                return Err(OpenRefused(format!(
                    "you may not start a {template:?} workspace"
                )));
            }
            return self
                .inner
                .workspaces
                .start(login.user(), template)
                .await
                .map(Ok)
                .map_err(failed);
        }
        let templates: std::collections::HashSet<&str> =
            running.iter().map(|w| w.template.as_str()).collect();
        match (running.len(), templates.len()) {
            (0, _) => {
                let config = self.inner.config.current();
                let may: Vec<String> = config
                    .allowed_templates(login.user())
                    .iter()
                    .map(|t| format!("{}+{}", login.user(), t.name))
                    .collect();
                Err(OpenRefused(if may.is_empty() {
                    "you have no running workspace and may start none".to_owned()
                } else {
                    format!(
                        "you have no running workspace; log in as {} to start one",
                        may.join(" or ")
                    )
                }))
            }
            (_, 1) => Ok(Ok(running
                .into_iter()
                .next()
                .ok_or_else(|| OpenRefused("the workspace is gone".into()))?)),
            _ => {
                let mut seen = std::collections::HashSet::new();
                Ok(Err(running
                    .iter()
                    .filter(|w| seen.insert(w.template.clone()))
                    .map(|w| MenuEntry {
                        label: format!("{} (workspace {})", w.template, w.id),
                        login: login.with_template(&w.template),
                    })
                    .collect()))
            }
        }
    }
}

#[async_trait]
impl GatewayBackend for SshGateway {
    async fn admit(&self, peer: SocketAddr) -> Result<(), Refusal> {
        let per_minute = self
            .inner
            .config
            .current()
            .main
            .security
            .login_rate_per_minute;
        let now = self.inner.clock.now();
        let mut window = lock(&self.inner.window);
        if window
            .started
            .is_none_or(|s| now - s >= time::Duration::minutes(1))
        {
            window.started = Some(now);
            window.counts.clear();
        }
        let count = window.counts.entry(block(peer.ip())).or_default();
        if *count >= per_minute {
            return Err(Refusal(format!(
                "more than {per_minute} connections a minute from this address"
            )));
        }
        *count += 1;
        Ok(())
    }

    async fn login_started(&self, peer: SocketAddr, login: &SshLogin) -> Result<(), Refusal> {
        let security = self.inner.config.current().main.security.clone();
        let now = self.inner.clock.now();
        let window = time::Duration::minutes(i64::from(security.lockout_minutes));
        let known_since = now - time::Duration::days(KNOWN_ADDRESS_DAYS);
        let pressure = self
            .inner
            .logins
            .pressure(
                login.user().as_str(),
                block(peer.ip()),
                now - window,
                known_since,
            )
            .await
            .map_err(|e| Refusal(format!("the login throttle cannot be read: {e}")))?;
        match throttled(
            &pressure,
            security.lockout_attempts,
            security.lockout_minutes,
            now,
        ) {
            Some(reason) => {
                AuditEvent::new(login.user(), AuditAction::Login, login.user().as_str())
                    .from_ip(peer.ip())
                    .outcome(berth_store::AuditOutcome::Denied)
                    .details(json!({"via": "ssh", "reason": reason}))
                    .record_to(&self.inner.audit)
                    .await;
                Err(Refusal(reason))
            }
            None => Ok(()),
        }
    }

    fn login_finished(&self, peer: SocketAddr, login: &SshLogin, succeeded: bool) {
        let inner = Arc::clone(&self.inner);
        let user = login.user().clone();
        let now = inner.clock.now();
        // Called from a handler's drop too, so the records are written in a task.
        tokio::spawn(async move {
            if let Err(e) = inner
                .logins
                .record(user.as_str(), block(peer.ip()), succeeded, now)
                .await
            {
                tracing::error!(error = %e, "cannot record an SSH login attempt");
            }
            let outcome = if succeeded {
                berth_store::AuditOutcome::Success
            } else {
                berth_store::AuditOutcome::Denied
            };
            AuditEvent::new(&user, AuditAction::Login, user.as_str())
                .from_ip(peer.ip())
                .outcome(outcome)
                .details(json!({"via": "ssh"}))
                .record_to(&inner.audit)
                .await;
        });
    }

    async fn authorize(&self, login: &SshLogin, key: &OfferedKey) -> Option<Authorization> {
        if !self.key_valid(login.user().as_str(), &key.fingerprint) {
            return None;
        }
        let (revoker, revocation) = revocation();
        let mut live = lock(&self.inner.live);
        live.retain(|l| !l.revoker.is_unused());
        live.push(Live {
            user: login.user().clone(),
            fingerprint: key.fingerprint.clone(),
            revoker,
        });
        Some(Authorization {
            user: login.user().clone(),
            key_fingerprint: key.fingerprint.clone(),
            revocation,
        })
    }

    async fn open(
        &self,
        authorization: &Authorization,
        login: &SshLogin,
        request: &SessionRequest,
    ) -> Result<Opening, OpenRefused> {
        let user = &authorization.user;
        if login.user() != user || !self.key_valid(user.as_str(), &authorization.key_fingerprint) {
            return Err(OpenRefused("your access has been revoked".into()));
        }
        let workspace = match self.choose(login).await? {
            Ok(workspace) => workspace,
            Err(menu) => return Ok(Opening::Menu(menu)),
        };
        let target = TerminalTarget::Workspace(workspace.id);
        let caller = Caller {
            username: user.clone(),
            role: self.role(user.as_str()),
        };
        let grant = self
            .inner
            .terminals
            .authorize(&target, &caller)
            .await
            .map_err(|e| OpenRefused(e.to_string()))?
            .ok_or_else(|| OpenRefused("the workspace is gone".into()))?;
        if let Some((_, why)) = &grant.unavailable {
            return Err(OpenRefused(why.clone()));
        }
        let size = request.pty.as_ref().map(|p| p.size);
        let opened = match &request.command {
            Some(command) => self
                .inner
                .workspaces
                .exec(&workspace, command, size)
                .await
                .map_err(|e| OpenRefused(e.to_string()))?,
            None => self
                .inner
                .terminals
                .open(&grant, grant.role, size.unwrap_or(TtySize::DEFAULT))
                .await
                .map_err(|e| OpenRefused(e.to_string()))?,
        };
        let recorder = match (&self.inner.recordings, grant.record) {
            (Some(recordings), true) => {
                let start = RecordingStart {
                    target: target.clone(),
                    owner: grant.owner.clone(),
                    username: user.clone(),
                    size: size.unwrap_or(TtySize::DEFAULT),
                    title: format!("{user} in {} (ssh)", grant.label),
                };
                match recordings.start(start).await {
                    Ok(recorder) => Some(recorder),
                    Err(e) => {
                        tracing::error!(%target, %user, error = %e, "cannot record an SSH session");
                        None
                    }
                }
            }
            _ => None,
        };
        let recording = recorder.as_ref().map(Recorder::id);
        AuditEvent::new(user, AuditAction::TerminalAttach, target.to_string())
            .from_ip(request.peer.ip())
            .details(json!({
                "via": "ssh",
                "kind": target.kind(),
                "role": grant.role,
                "recording": recording,
                "shared": grant.shared,
                "command": request.command,
            }))
            .record_to(&self.inner.audit)
            .await;
        let detach = Detach {
            audit: self.inner.audit.clone(),
            user: user.clone(),
            target: target.to_string(),
            ip: request.peer.ip(),
            recording: recording.map(|r| r.to_string()),
        };
        Ok(Opening::Session(recorded(opened, recorder, detach)))
    }
}

/// Audits the detach when the session's hold is dropped.
#[derive(Debug)]
struct Detach {
    audit: Audit,
    user: Username,
    target: String,
    ip: IpAddr,
    recording: Option<String>,
}

impl Drop for Detach {
    fn drop(&mut self) {
        let event = AuditEvent::new(&self.user, AuditAction::TerminalDetach, self.target.clone())
            .from_ip(self.ip)
            .details(json!({"via": "ssh", "recording": self.recording}));
        let audit = self.audit.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { event.record_to(&audit).await });
        }
    }
}

type SharedRecorder = Arc<Mutex<Option<Recorder>>>;

/// The session with its output and resizes going to `recorder` as well, and `detach` held.
fn recorded(opened: Opened, recorder: Option<Recorder>, detach: Detach) -> Opened {
    let Opened {
        pty,
        activity,
        hold,
    } = opened;
    let hold: Box<dyn std::any::Any + Send + Sync> = Box::new((hold, detach));
    let Some(recorder) = recorder else {
        return Opened {
            pty,
            activity,
            hold: Some(hold),
        };
    };
    let recorder: SharedRecorder = Arc::new(Mutex::new(Some(recorder)));
    let (output, input, control) = pty.into_parts();
    let output = RecordedOutput {
        inner: output,
        recorder: Arc::clone(&recorder),
    };
    let control = Arc::new(RecordedControl {
        inner: control,
        recorder,
    });
    Opened {
        pty: Pty::new(Box::pin(output), input, control),
        activity,
        hold: Some(hold),
    }
}

fn finish(recorder: &SharedRecorder) {
    if let Some(recorder) = lock(recorder).take()
        && let Ok(runtime) = tokio::runtime::Handle::try_current()
    {
        runtime.spawn(async move {
            if let Err(e) = recorder.finish().await {
                tracing::error!(error = %e, "cannot finish an SSH session's recording");
            }
        });
    }
}

struct RecordedOutput {
    inner: PtyOutput,
    recorder: SharedRecorder,
}

impl Stream for RecordedOutput {
    type Item = Result<Bytes, TerminalError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.inner.as_mut().poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(bytes))) => {
                if let Some(recorder) = lock(&self.recorder).as_ref() {
                    recorder.output(bytes);
                }
            }
            Poll::Ready(None | Some(Err(_))) => finish(&self.recorder),
            Poll::Pending => {}
        }
        next
    }
}

impl Drop for RecordedOutput {
    fn drop(&mut self) {
        finish(&self.recorder);
    }
}

#[derive(Debug)]
struct RecordedControl {
    inner: Arc<dyn PtyControl>,
    recorder: SharedRecorder,
}

#[async_trait]
impl PtyControl for RecordedControl {
    async fn resize(&self, size: TtySize) -> Result<(), TerminalError> {
        self.inner.resize(size).await?;
        if let Some(recorder) = lock(&self.recorder).as_ref() {
            recorder.resize(size);
        }
        Ok(())
    }

    async fn wait(&self) -> Result<i64, TerminalError> {
        self.inner.wait().await
    }

    async fn hang_up(&self) -> Result<(), TerminalError> {
        self.inner.hang_up().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pressure(address: u32, account: u32, addresses: u32, known: bool) -> LoginPressure {
        LoginPressure {
            address_failures: address,
            account_failures: account,
            failing_addresses: addresses,
            last_failure: Some(OffsetDateTime::UNIX_EPOCH),
            known_address: known,
        }
    }

    #[test]
    fn options_come_from_the_ssh_section() {
        let home = std::path::Path::new("/var/lib/berth");
        let mut ssh = berth_config::Ssh::default();
        let options = gateway_options(&ssh, home);
        assert_eq!(options.host_key, home.join("ssh_host_ed25519_key"));
        assert_eq!(options.login_timeout, Duration::from_secs(30));
        assert_eq!(
            (
                options.max_auth_attempts,
                options.max_connections,
                options.max_connections_per_address
            ),
            (6, 256, 16)
        );
        ssh.host_key = Some("/etc/berth/key".into());
        ssh.max_connections_per_address = 2;
        let options = gateway_options(&ssh, home);
        assert_eq!(options.host_key, std::path::Path::new("/etc/berth/key"));
        assert_eq!(options.max_connections_per_address, 2);
    }

    #[test]
    fn the_throttle_follows_the_web_login_rules() {
        let at = |secs| OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs);
        assert!(throttled(&pressure(4, 4, 1, false), 5, 5, at(0)).is_none());
        assert!(
            throttled(&pressure(5, 5, 1, false), 5, 5, at(0)).is_some(),
            "locked"
        );
        assert!(
            throttled(&pressure(1, 5, 3, false), 5, 5, at(0)).is_some(),
            "throttled"
        );
        assert!(
            throttled(&pressure(1, 5, 3, false), 5, 5, at(1)).is_none(),
            "after 1s"
        );
        assert!(
            throttled(&pressure(1, 7, 3, false), 5, 5, at(3)).is_some(),
            "4s delay"
        );
        assert!(
            throttled(&pressure(1, 7, 3, true), 5, 5, at(0)).is_none(),
            "known address"
        );
        assert!(throttled(&pressure(1, 99, 3, false), 5, 5, at(29)).is_some());
        assert!(
            throttled(&pressure(1, 99, 3, false), 5, 5, at(30)).is_none(),
            "at most 30s"
        );
    }
}
