//! The SSH gateway's backend ([`berth_core::gateway::SshGateway`]) over fakes of the
//! workspaces and the terminal source, a real configuration directory and a SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use berth_core::gateway::{GatewayWorkspaces, SshGateway};
use berth_core::{LiveConfig, ManualClock, WorkspaceError};
use berth_ssh::gateway::{GatewayBackend, OfferedKey, Opening, SessionRequest, SshLogin};
use berth_store::{Workspace, WorkspaceState};
use berth_terminal::{
    Caller, Grant, OpenError, Opened, SessionRole, TerminalSource, TerminalTarget, TtySize,
};
use berth_types::{TargetKind, Username, WorkspaceId};
use time::OffsetDateTime;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL6ntyLn0+ksLPMTcEM1DytJC+gY1CUqLiExrDS3YTSO alice@laptop";
const FINGERPRINT: &str = "SHA256:TavkIFzWzFE5zX++FZcybHRnucQV7dtiaMKyOdQeUHU";
const ALICE_ID: &str = "6f1c2a9e-8d4b-4c47-9a53-0b1d2e3f4a5b";
const BOB_ID: &str = "0b6f3c1e-2f7a-4d8e-9c1b-5a4d3e2f1a0b";

fn user(name: &str) -> Username {
    Username::new(name).unwrap()
}

fn workspace(owner: &str, template: &str, started: i64) -> Workspace {
    let at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(started);
    Workspace {
        id: WorkspaceId::random(),
        owner: user(owner),
        template: template.into(),
        state: WorkspaceState::Running,
        container_id: Some("c".into()),
        persistent: false,
        network: "none".into(),
        created_at: at,
        started_at: Some(at),
        last_activity: at,
        expires_at: None,
        state_reason: String::new(),
    }
}

#[derive(Debug, Default)]
struct FakeWorkspaces {
    running: Mutex<Vec<Workspace>>,
    started: Mutex<Vec<String>>,
    commands: Mutex<Vec<(WorkspaceId, String)>>,
}

#[async_trait]
impl GatewayWorkspaces for FakeWorkspaces {
    async fn running(&self, owner: &Username) -> Result<Vec<Workspace>, WorkspaceError> {
        let mut found: Vec<Workspace> = self
            .running
            .lock()
            .unwrap()
            .iter()
            .filter(|w| &w.owner == owner)
            .cloned()
            .collect();
        found.sort_by_key(|w| std::cmp::Reverse(w.started_at));
        Ok(found)
    }

    async fn start(&self, owner: &Username, template: &str) -> Result<Workspace, WorkspaceError> {
        self.started.lock().unwrap().push(template.into());
        let started = workspace(owner.as_str(), template, 100);
        self.running.lock().unwrap().push(started.clone());
        Ok(started)
    }

    async fn exec(
        &self,
        workspace: &Workspace,
        command: &str,
        _size: Option<TtySize>,
    ) -> Result<Opened, WorkspaceError> {
        self.commands
            .lock()
            .unwrap()
            .push((workspace.id, command.into()));
        Ok(Opened::bare(common::fake::echo(0).0))
    }
}

/// The owner may attach; a shared flag and the recording are the test's to say.
#[derive(Debug, Default)]
struct FakeTerminals {
    opened: Mutex<Vec<WorkspaceId>>,
    record: AtomicBool,
}

#[async_trait]
impl TerminalSource for FakeTerminals {
    fn kind(&self) -> TargetKind {
        TargetKind::Workspace
    }

    async fn authorize(
        &self,
        target: &TerminalTarget,
        caller: &Caller,
    ) -> Result<Option<Grant>, OpenError> {
        Ok(Some(Grant {
            target: target.clone(),
            role: SessionRole::Owner,
            owner: caller.username.clone(),
            title: "t".into(),
            label: "a workspace".into(),
            record: self.record.load(Ordering::Relaxed),
            shared: true,
            unavailable: None,
        }))
    }

    async fn open(
        &self,
        grant: &Grant,
        _role: SessionRole,
        _size: TtySize,
    ) -> Result<Opened, OpenError> {
        self.opened
            .lock()
            .unwrap()
            .push(grant.target.workspace().unwrap());
        Ok(Opened::bare(common::fake::echo(0).0))
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    config: LiveConfig,
    gateway: SshGateway,
    workspaces: Arc<FakeWorkspaces>,
    terminals: Arc<FakeTerminals>,
    store: Arc<dyn berth_store::Store>,
    recordings: berth_core::Recordings,
    clock: ManualClock,
}

fn write_config(dir: &Path) {
    std::fs::write(
        dir.join("main.yaml"),
        "admin:\n  username: admin\nsecurity:\n  lockout_attempts: 3\n  login_rate_per_minute: 2\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("containers.yaml"),
        "templates:\n  - name: base\n    image: x\n  - name: python\n    image: x\n  - name: gpu\n    image: x\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("users.yaml"),
        format!(
            "users:\n  - username: alice\n    id: {ALICE_ID}\n    templates: [base, python]\n    ssh_keys:\n      - {KEY}\n  - username: bob\n    id: {BOB_ID}\n    disabled: true\n    ssh_keys:\n      - {KEY}\n"
        ),
    )
    .unwrap();
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("config");
    std::fs::create_dir(&config_dir).unwrap();
    write_config(&config_dir);
    let config = LiveConfig::load(&config_dir).unwrap();
    let store = berth_store::open(dir.path().join("berth.db").to_str().unwrap())
        .await
        .unwrap();
    let clock = ManualClock::new();
    let workspaces = Arc::new(FakeWorkspaces::default());
    let terminals = Arc::new(FakeTerminals::default());
    let recordings = berth_core::Recordings::new(dir.path().join("recordings"), Arc::clone(&store));
    let gateway = SshGateway::new(
        config.clone(),
        workspaces.clone(),
        terminals.clone(),
        Arc::clone(&store),
        Some(recordings.clone()),
        Arc::new(clock.clone()),
    );
    Setup {
        _dir: dir,
        config,
        gateway,
        workspaces,
        terminals,
        store,
        recordings,
        clock,
    }
}

fn key(fingerprint: &str) -> OfferedKey {
    OfferedKey {
        openssh: "ssh-ed25519 AAAA".into(),
        fingerprint: fingerprint.into(),
    }
}

fn login(text: &str) -> SshLogin {
    SshLogin::parse(text).unwrap()
}

fn peer(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 40000)
}

fn shell() -> SessionRequest {
    SessionRequest {
        command: None,
        pty: None,
        peer: peer("10.0.0.1"),
    }
}

#[tokio::test]
async fn only_a_users_own_key_lets_them_in() {
    let s = setup().await;
    let alice = s
        .gateway
        .authorize(&login("alice"), &key(FINGERPRINT))
        .await;
    assert_eq!(alice.unwrap().user.as_str(), "alice");
    assert!(
        s.gateway
            .authorize(&login("alice+python"), &key("SHA256:other"))
            .await
            .is_none()
    );
    assert!(
        s.gateway
            .authorize(&login("carol"), &key(FINGERPRINT))
            .await
            .is_none()
    );
    assert!(
        s.gateway
            .authorize(&login("bob"), &key(FINGERPRINT))
            .await
            .is_none(),
        "bob is disabled"
    );
}

#[tokio::test]
async fn a_removed_key_or_a_disabled_user_revokes_open_sessions_after_a_reload() {
    let s = setup().await;
    let mut first = s
        .gateway
        .authorize(&login("alice"), &key(FINGERPRINT))
        .await
        .unwrap()
        .revocation;
    assert_eq!(s.gateway.recheck(), 0, "nothing changed");
    let store = berth_config::ConfigStore::open(s.config.dir()).unwrap();
    store.remove_ssh_key("alice", FINGERPRINT).unwrap();
    s.config.reload().unwrap();
    assert_eq!(s.gateway.recheck(), 1);
    assert_eq!(first.revoked().await, "the key was removed");

    store
        .add_ssh_key("alice", berth_config::SshKey::parse(KEY).unwrap())
        .unwrap();
    s.config.reload().unwrap();
    let authorization = s
        .gateway
        .authorize(&login("alice"), &key(FINGERPRINT))
        .await
        .unwrap();
    let mut second = authorization.revocation.clone();
    store.update_user("alice", |u| u.disabled = true).unwrap();
    s.config.reload().unwrap();
    assert_eq!(s.gateway.recheck(), 1);
    assert_eq!(second.revoked().await, "the account was disabled");
    let refused = s
        .gateway
        .open(&authorization, &login("alice"), &shell())
        .await
        .unwrap_err();
    assert!(refused.0.contains("revoked"), "{refused}");
}

#[tokio::test]
async fn logins_open_the_running_workspace_a_menu_or_a_new_one() {
    let s = setup().await;
    let authorization = s
        .gateway
        .authorize(&login("alice"), &key(FINGERPRINT))
        .await
        .unwrap();
    let open = |text: &str, request: SessionRequest| {
        let gateway = s.gateway.clone();
        let authorization = authorization.clone();
        let login = login(text);
        async move { gateway.open(&authorization, &login, &request).await }
    };

    let none = open("alice", shell()).await.unwrap_err();
    assert!(
        none.0.contains("log in as alice+base or alice+python"),
        "{none}"
    );

    let python = workspace("alice", "python", 10);
    s.workspaces.running.lock().unwrap().push(python.clone());
    s.workspaces
        .running
        .lock()
        .unwrap()
        .push(workspace("bob", "base", 20));
    assert!(matches!(
        open("alice", shell()).await.unwrap(),
        Opening::Session(_)
    ));
    assert_eq!(*s.terminals.opened.lock().unwrap(), [python.id]);

    s.workspaces
        .running
        .lock()
        .unwrap()
        .push(workspace("alice", "base", 30));
    let Opening::Menu(entries) = open("alice", shell()).await.unwrap() else {
        panic!("several workspaces make a menu");
    };
    let logins: Vec<String> = entries.iter().map(|e| e.login.to_string()).collect();
    assert_eq!(logins, ["alice+base", "alice+python"], "newest first");

    let command = SessionRequest {
        command: Some("make test".into()),
        ..shell()
    };
    assert!(matches!(
        open("alice+python", command).await.unwrap(),
        Opening::Session(_)
    ));
    assert_eq!(
        *s.workspaces.commands.lock().unwrap(),
        [(python.id, "make test".to_owned())]
    );

    s.workspaces
        .running
        .lock()
        .unwrap()
        .retain(|w| w.template != "base");
    assert!(matches!(
        open("alice+base", shell()).await.unwrap(),
        Opening::Session(_)
    ));
    assert_eq!(
        *s.workspaces.started.lock().unwrap(),
        ["base"],
        "started when needed"
    );

    let gpu = open("alice+gpu", shell()).await.unwrap_err();
    assert!(gpu.0.contains("may not start a \"gpu\" workspace"), "{gpu}");
    assert_eq!(s.workspaces.started.lock().unwrap().len(), 1);

    let attaches = common::audit_entries(s.store.as_ref(), "terminal.attach").await;
    assert_eq!(attaches.len(), 3);
    let details = &attaches[0]["details"];
    assert_eq!(details["via"], "ssh");
    assert_eq!(details["shared"], true);
}

#[tokio::test]
async fn failed_logins_lock_the_address_out_as_web_logins_do() {
    let s = setup().await;
    let logins = berth_core::Logins::new(Arc::clone(&s.store));
    let now = berth_core::Clock::now(&s.clock);
    let ip = "10.0.0.1".parse().unwrap();
    for _ in 0..3 {
        logins.record("alice", ip, false, now).await.unwrap();
    }
    let refused = s
        .gateway
        .login_started(peer("10.0.0.1"), &login("alice"))
        .await
        .unwrap_err();
    assert!(refused.0.contains("locked out"), "{refused}");
    s.gateway
        .login_started(peer("10.0.0.2"), &login("alice"))
        .await
        .unwrap();
    s.gateway
        .login_started(peer("10.0.0.1"), &login("bob"))
        .await
        .unwrap();
    let denied = common::audit_entries(s.store.as_ref(), "auth.login").await;
    assert_eq!(denied.len(), 1);
}

#[tokio::test]
async fn new_connections_are_rate_limited_per_address() {
    let s = setup().await;
    let a = peer("10.0.0.1");
    s.gateway.admit(a).await.unwrap();
    s.gateway.admit(a).await.unwrap();
    assert!(
        s.gateway.admit(a).await.is_err(),
        "login_rate_per_minute: 2"
    );
    s.gateway.admit(peer("10.0.0.2")).await.unwrap();
    s.clock.advance(std::time::Duration::from_secs(61));
    s.gateway.admit(a).await.unwrap();
}

#[tokio::test]
async fn a_recorded_template_records_the_ssh_session_and_audits_the_detach() {
    use futures_util::StreamExt as _;
    use tokio::io::AsyncWriteExt as _;
    let s = setup().await;
    s.terminals.record.store(true, Ordering::Relaxed);
    let python = workspace("alice", "python", 10);
    s.workspaces.running.lock().unwrap().push(python.clone());
    let authorization = s
        .gateway
        .authorize(&login("alice"), &key(FINGERPRINT))
        .await
        .unwrap();
    let Opening::Session(opened) = s
        .gateway
        .open(&authorization, &login("alice"), &shell())
        .await
        .unwrap()
    else {
        panic!("one workspace opens");
    };
    let Opened { pty, hold, .. } = opened;
    let (mut output, mut input, control) = pty.into_parts();
    control
        .resize(TtySize {
            cols: 100,
            rows: 30,
        })
        .await
        .unwrap();
    input.write_all(b"hello from ssh").await.unwrap();
    input.shutdown().await.unwrap();
    let mut seen = Vec::new();
    while let Some(chunk) = output.next().await {
        seen.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(seen, b"hello from ssh");
    drop(output);
    drop(hold);

    let target = TerminalTarget::Workspace(python.id);
    // The recording is finished, and the detach audited, by tasks of their own.
    let recording = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let found = s.recordings.recordings_for(&target).await.unwrap();
            let detached = common::audit_entries(s.store.as_ref(), "terminal.detach").await;
            if let Some(done) = found.into_iter().find(|r| r.ended_at.is_some())
                && !detached.is_empty()
            {
                break done;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(recording.username.as_str(), "alice");
    let file = s.recordings.recording(recording.id).await.unwrap();
    let cast = common::asciicast::parse(&std::fs::read(&file.path).unwrap()).unwrap();
    assert_eq!(cast.output(), "hello from ssh");
    assert!(
        cast.events
            .iter()
            .any(|e| e.code == "r" && e.data == "100x30"),
        "{cast:?}"
    );
    let attach = &common::audit_entries(s.store.as_ref(), "terminal.attach").await[0];
    assert_eq!(attach["details"]["recording"], recording.id.to_string());
}
