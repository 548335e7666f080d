//! The SSH gateway against the real OpenSSH client (`ssh -o BatchMode=yes` with the
//! gateway's host key in known_hosts), over a test backend whose "workspaces" are local `sh`
//! processes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use berth_ssh::gateway::{
    Authorization, Gateway, GatewayBackend, GatewayOptions, MenuEntry, OfferedKey, OpenRefused,
    Opening, Refusal, Revoker, SessionRequest, SshLogin, revocation,
};
use berth_terminal::{Opened, Pty, PtyControl, TerminalError, TtySize};
use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

/// How long any one step may take before the test gives up (a guard against hangs, not a
/// timing assertion).
const PATIENCE: Duration = Duration::from_secs(30);

// --- the test backend ---------------------------------------------------------------------

#[derive(Debug, Default)]
struct TestUser {
    keys: HashSet<String>,
    workspaces: Vec<String>,
}

#[derive(Debug, Default)]
struct TestBackend {
    users: Mutex<HashMap<String, TestUser>>,
    revokers: Mutex<Vec<(String, String, Revoker)>>,
    refused_logins: Mutex<HashSet<String>>,
    finished: Mutex<Vec<(String, bool)>>,
    requests: Mutex<Vec<(String, SessionRequest)>>,
}

impl TestBackend {
    fn add_user(&self, name: &str, fingerprint: &str, workspaces: &[&str]) {
        self.users.lock().unwrap().insert(
            name.into(),
            TestUser {
                keys: HashSet::from([fingerprint.to_owned()]),
                workspaces: workspaces.iter().map(|w| (*w).to_owned()).collect(),
            },
        );
    }

    /// Removes the key and revokes what it opened, as Berth does when a key is deleted.
    fn remove_key(&self, user: &str, fingerprint: &str) {
        if let Some(u) = self.users.lock().unwrap().get_mut(user) {
            u.keys.remove(fingerprint);
        }
        for (u, f, revoker) in self.revokers.lock().unwrap().iter() {
            if u == user && f == fingerprint {
                revoker.revoke("the key was removed");
            }
        }
    }
}

#[async_trait]
impl GatewayBackend for TestBackend {
    async fn login_started(&self, _peer: SocketAddr, login: &SshLogin) -> Result<(), Refusal> {
        if self
            .refused_logins
            .lock()
            .unwrap()
            .contains(login.user().as_str())
        {
            return Err(Refusal("throttled".into()));
        }
        Ok(())
    }

    fn login_finished(&self, _peer: SocketAddr, login: &SshLogin, succeeded: bool) {
        self.finished
            .lock()
            .unwrap()
            .push((login.user().to_string(), succeeded));
    }

    async fn authorize(&self, login: &SshLogin, key: &OfferedKey) -> Option<Authorization> {
        let users = self.users.lock().unwrap();
        let user = users.get(login.user().as_str())?;
        if !user.keys.contains(&key.fingerprint) {
            return None;
        }
        let (revoker, revocation) = revocation();
        self.revokers.lock().unwrap().push((
            login.user().to_string(),
            key.fingerprint.clone(),
            revoker,
        ));
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
        self.requests
            .lock()
            .unwrap()
            .push((login.to_string(), request.clone()));
        let workspaces = self.users.lock().unwrap()[authorization.user.as_str()]
            .workspaces
            .clone();
        let workspace = match login.template() {
            Some(t) if workspaces.iter().any(|w| w == t) => t.to_owned(),
            Some(t) => return Err(OpenRefused(format!("you may not start {t:?}"))),
            None if workspaces.len() == 1 => workspaces[0].clone(),
            None => {
                return Ok(Opening::Menu(
                    workspaces
                        .iter()
                        .map(|w| MenuEntry {
                            label: format!("{w} (running)"),
                            login: login.with_template(w),
                        })
                        .collect(),
                ));
            }
        };
        Ok(Opening::Session(Opened::bare(spawn_sh(
            &workspace,
            request.command.as_deref(),
        ))))
    }
}

/// A "workspace": `sh` with its stdout and stderr on the output, WORKSPACE set.
fn spawn_sh(workspace: &str, command: Option<&str>) -> Pty {
    let script = match command {
        Some(command) => format!("exec 2>&1\n{command}"),
        None => "exec 2>&1\nexec sh".to_owned(),
    };
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .env("WORKSPACE", workspace)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let output = futures_util::stream::unfold(stdout, |mut stdout| async move {
        let mut buffer = vec![0u8; 8192];
        match stdout.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(Bytes::from(buffer)), stdout))
            }
            Err(e) => Some((Err(TerminalError::Io(e)), stdout)),
        }
    });
    let (exit_tx, exit) = watch::channel(None);
    let (kill_tx, mut kill) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        tokio::select! {
            status = child.wait() => {
                let code = status.ok().and_then(|s| s.code()).unwrap_or(255);
                exit_tx.send_replace(Some(i64::from(code)));
            }
            _ = kill.recv() => {
                let _ = child.kill().await;
                exit_tx.send_replace(Some(129));
            }
        }
    });
    Pty::new(
        Box::pin(output),
        Box::pin(stdin),
        Arc::new(ShControl {
            exit,
            kill: kill_tx,
        }),
    )
}

#[derive(Debug)]
struct ShControl {
    exit: watch::Receiver<Option<i64>>,
    kill: mpsc::Sender<()>,
}

#[async_trait]
impl PtyControl for ShControl {
    async fn resize(&self, _size: TtySize) -> Result<(), TerminalError> {
        Ok(())
    }

    async fn wait(&self) -> Result<i64, TerminalError> {
        let mut exit = self.exit.clone();
        let code = exit
            .wait_for(Option::is_some)
            .await
            .map_err(|_| TerminalError::Control("gone".into()))?;
        Ok(code.unwrap_or(255))
    }

    async fn hang_up(&self) -> Result<(), TerminalError> {
        let _ = self.kill.try_send(());
        Ok(())
    }
}

// --- the gateway and the client -------------------------------------------------------------

struct TestGateway {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    known_hosts: PathBuf,
    fingerprint: String,
    backend: Arc<TestBackend>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An ed25519 key pair made by ssh-keygen, and its fingerprint.
struct Key {
    path: PathBuf,
    fingerprint: String,
}

fn keygen(dir: &Path, name: &str) -> Key {
    let path = dir.join(name);
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen (openssh-client) is installed");
    assert!(status.success());
    let line = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let key = russh::keys::PublicKey::from_openssh(line.trim()).unwrap();
    Key {
        path,
        fingerprint: berth_ssh::fingerprint(&key),
    }
}

async fn start(edit: impl FnOnce(&mut GatewayOptions)) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let mut options = GatewayOptions::new(dir.path().join("ssh_host_ed25519_key"));
    edit(&mut options);
    let backend = Arc::new(TestBackend::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = Gateway::from_listener(
        listener,
        options,
        Arc::clone(&backend) as Arc<dyn GatewayBackend>,
    )
    .unwrap();
    let addr = gateway.local_addr().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {}\n", addr.port(), gateway.public_key()),
    )
    .unwrap();
    let fingerprint = gateway.fingerprint().to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway.serve(async {
        let _ = stopped.await;
    }));
    TestGateway {
        addr,
        dir,
        known_hosts,
        fingerprint,
        backend,
        stop: Some(stop),
    }
}

impl TestGateway {
    fn key(&self, name: &str) -> Key {
        keygen(self.dir.path(), name)
    }

    fn ssh(&self, key: &Key, login: &str, args: &[&str]) -> Command {
        self.ssh_with(&[], key, login, args)
    }

    /// `ssh` with more client `options` (before the destination).
    fn ssh_with(&self, options: &[&str], key: &Key, login: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ssh");
        command
            .args(options)
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
            .args(["-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR"])
            .arg("-i")
            .arg(&key.path)
            .arg("-p")
            .arg(self.addr.port().to_string())
            .arg(format!("{login}@127.0.0.1"))
            .args(args)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn run(&self, key: &Key, login: &str, args: &[&str]) -> Output {
        tokio::time::timeout(PATIENCE, self.ssh(key, login, args).output())
            .await
            .expect("ssh finished")
            .unwrap()
    }

    /// `ssh` with `input` on its stdin (then EOF).
    async fn run_with_input(&self, key: &Key, login: &str, args: &[&str], input: &str) -> Output {
        let mut command = self.ssh(key, login, args);
        command.stdin(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        drop(stdin);
        tokio::time::timeout(PATIENCE, child.wait_with_output())
            .await
            .expect("ssh finished")
            .unwrap()
    }
}

/// An interactive `ssh` held open: write lines, wait for output.
struct Held {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
    seen: String,
}

impl Held {
    async fn open(gateway: &TestGateway, key: &Key, login: &str) -> Self {
        let mut command = gateway.ssh(key, login, &["-tt"]);
        command.stdin(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut held = Self {
            child,
            stdin,
            stdout,
            seen: String::new(),
        };
        held.say("echo ready-$((40+2))").await;
        held.expect("ready-42").await;
        held
    }

    async fn say(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }

    async fn expect(&mut self, text: &str) {
        let wait = async {
            let mut buffer = [0u8; 4096];
            while !self.seen.contains(text) {
                let n = self.stdout.read(&mut buffer).await.unwrap();
                assert!(n > 0, "ssh ended before {text:?}; saw {:?}", self.seen);
                self.seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .unwrap_or_else(|_| panic!("no {text:?} in {:?}", self.seen));
    }

    /// Types `exit` (a forced PTY does not pass EOF on) and returns the client's exit code.
    async fn close(mut self) -> Option<i32> {
        let _ = self.stdin.write_all(b"exit\n").await;
        self.exit_code().await
    }

    async fn exit_code(mut self) -> Option<i32> {
        drop(self.stdin);
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("ssh ended")
            .unwrap()
            .code()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// --- the tests ------------------------------------------------------------------------------

#[tokio::test]
async fn a_shell_attaches_and_echoes_and_returns_its_exit_status() {
    let gateway = start(|_| {}).await;
    let alice = gateway.key("alice");
    gateway
        .backend
        .add_user("alice", &alice.fingerprint, &["python"]);
    let out = gateway
        .run_with_input(
            &alice,
            "alice",
            &["-tt"],
            "echo hello-$((6*7)) in $WORKSPACE\nexit 3\n",
        )
        .await;
    assert!(
        text(&out.stdout).contains("hello-42 in python"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3));
    let requests = gateway.backend.requests.lock().unwrap().clone();
    let (login, request) = &requests[0];
    assert_eq!(login, "alice");
    assert_eq!(request.command, None);
    assert!(request.pty.is_some(), "-tt asks for a PTY");
    assert_eq!(
        *gateway.backend.finished.lock().unwrap(),
        [("alice".to_owned(), true)]
    );
}

#[tokio::test]
async fn a_command_returns_its_output_and_exit_status() {
    let gateway = start(|_| {}).await;
    let alice = gateway.key("alice");
    gateway
        .backend
        .add_user("alice", &alice.fingerprint, &["base", "python"]);
    let out = gateway
        .run(&alice, "alice+python", &["echo out in $WORKSPACE; exit 7"])
        .await;
    assert_eq!(
        text(&out.stdout),
        "out in python\n",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(7));
    let ok = gateway.run(&alice, "alice+base", &["true"]).await;
    assert_eq!(ok.status.code(), Some(0));

    let refused = gateway.run(&alice, "alice+gpu", &["true"]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("berth: you may not start \"gpu\""));

    // Two workspaces and no template: without a PTY there is no menu, but the way to choose.
    let several = gateway.run(&alice, "alice", &["true"]).await;
    assert_eq!(several.status.code(), Some(1));
    assert!(
        text(&several.stderr).contains("log in as one of alice+base, alice+python"),
        "{}",
        text(&several.stderr)
    );
}

#[tokio::test]
async fn several_workspaces_get_a_menu_on_a_pty() {
    let gateway = start(|_| {}).await;
    let alice = gateway.key("alice");
    gateway
        .backend
        .add_user("alice", &alice.fingerprint, &["base", "python"]);
    let out = gateway
        .run_with_input(
            &alice,
            "alice",
            &["-tt"],
            "7\n2\necho chose-$WORKSPACE\nexit\n",
        )
        .await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("1) base (running)"), "{stdout}");
    assert!(stdout.contains("2) python (running)"), "{stdout}");
    assert!(stdout.contains("chose-python"), "{stdout}");
    assert_eq!(out.status.code(), Some(0));
    let logins: Vec<String> = gateway
        .backend
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|(l, _)| l.clone())
        .collect();
    assert_eq!(logins, ["alice", "alice+python"]);
}

#[tokio::test]
async fn a_wrong_key_and_an_unknown_user_look_the_same() {
    let gateway = start(|_| {}).await;
    let alice = gateway.key("alice");
    let stranger = gateway.key("stranger");
    gateway
        .backend
        .add_user("alice", &alice.fingerprint, &["python"]);

    let wrong_key = gateway.run(&stranger, "alice", &["true"]).await;
    let unknown_user = gateway.run(&alice, "mallory", &["true"]).await;
    let bad_name = gateway.run(&alice, "Mallory+x", &["true"]).await;
    for out in [&wrong_key, &unknown_user, &bad_name] {
        assert_eq!(out.status.code(), Some(255));
        assert!(out.stdout.is_empty());
    }
    let stderr = |out: &Output, login: &str| text(&out.stderr).replace(login, "LOGIN");
    assert_eq!(
        stderr(&wrong_key, "alice"),
        "LOGIN@127.0.0.1: Permission denied (publickey).\r\n"
    );
    assert_eq!(
        stderr(&unknown_user, "mallory"),
        stderr(&wrong_key, "alice")
    );
    assert_eq!(stderr(&bad_name, "Mallory+x"), stderr(&wrong_key, "alice"));
    let finished = gateway.backend.finished.lock().unwrap().clone();
    assert!(
        finished.contains(&("alice".to_owned(), false)),
        "{finished:?}"
    );
    assert!(
        finished.contains(&("mallory".to_owned(), false)),
        "{finished:?}"
    );
}

#[tokio::test]
async fn a_throttled_login_is_refused_even_with_the_right_key() {
    let gateway = start(|_| {}).await;
    let alice = gateway.key("alice");
    gateway
        .backend
        .add_user("alice", &alice.fingerprint, &["python"]);
    gateway
        .backend
        .refused_logins
        .lock()
        .unwrap()
        .insert("alice".into());
    let out = gateway.run(&alice, "alice", &["true"]).await;
    assert_eq!(out.status.code(), Some(255));
    assert!(text(&out.stderr).contains("Permission denied (publickey)"));
    assert!(
        gateway.backend.finished.lock().unwrap().is_empty(),
        "a refused login never started"
    );
}

#[tokio::test]
async fn password_keyboard_interactive_agent_and_port_forwarding_are_refused() {
    let gateway = start(|_| {}).await;
    let alice = gateway.key("alice");
    gateway
        .backend
        .add_user("alice", &alice.fingerprint, &["python"]);

    // The real client, asked to use passwords only, finds no method it may use.
    let mut password = gateway.ssh_with(
        &[
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
        ],
        &alice,
        "alice",
        &["true"],
    );
    let out = tokio::time::timeout(PATIENCE, password.output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(text(&out.stderr).contains("Permission denied (publickey)"));

    // Remote forwarding (-R) is refused, and the client gives up as told.
    let mut remote = gateway.ssh_with(
        &[
            "-N",
            "-R",
            "0:127.0.0.1:9",
            "-o",
            "ExitOnForwardFailure=yes",
        ],
        &alice,
        "alice",
        &[],
    );
    let out = tokio::time::timeout(PATIENCE, remote.output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("forwarding failed"),
        "{}",
        text(&out.stderr)
    );

    // A subsystem (sftp) is refused.
    let sftp = gateway
        .ssh_with(&["-s"], &alice, "alice", &["sftp"])
        .output();
    let out = tokio::time::timeout(PATIENCE, sftp).await.unwrap().unwrap();
    assert_ne!(out.status.code(), Some(0));

    // Below the client's own checks: a raw SSH client tries a password, then logs in and asks
    // for the agent and a direct TCP channel.
    let mut client = raw_client(&gateway).await;
    let refused = client
        .authenticate_password("alice", "secret")
        .await
        .unwrap();
    assert!(!refused.success());
    let key = russh::keys::load_secret_key(&alice.path, None).unwrap();
    let hash = client.best_supported_rsa_hash().await.unwrap().flatten();
    let logged_in = client
        .authenticate_publickey(
            "alice",
            russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key), hash),
        )
        .await
        .unwrap();
    assert!(logged_in.success());
    assert!(
        client
            .channel_open_direct_tcpip("127.0.0.1", 22, "127.0.0.1", 5000)
            .await
            .is_err(),
        "-L / -D channels are refused"
    );
    let mut channel = client.channel_open_session().await.unwrap();
    channel.agent_forward(true).await.unwrap();
    let answer = tokio::time::timeout(PATIENCE, channel.wait())
        .await
        .unwrap();
    assert!(
        matches!(answer, Some(russh::ChannelMsg::Failure)),
        "{answer:?}"
    );
}

struct AnyHostKey;

impl russh::client::Handler for AnyHostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

async fn raw_client(gateway: &TestGateway) -> russh::client::Handle<AnyHostKey> {
    let config = Arc::new(russh::client::Config::default());
    tokio::time::timeout(
        PATIENCE,
        russh::client::connect(config, gateway.addr, AnyHostKey),
    )
    .await
    .unwrap()
    .unwrap()
}

#[tokio::test]
async fn a_removed_key_closes_the_open_session() {
    let gateway = start(|_| {}).await;
    let alice = gateway.key("alice");
    let other = gateway.key("other");
    gateway
        .backend
        .add_user("alice", &alice.fingerprint, &["python"]);
    gateway
        .backend
        .users
        .lock()
        .unwrap()
        .get_mut("alice")
        .unwrap()
        .keys
        .insert(other.fingerprint.clone());
    let mut kept = Held::open(&gateway, &other, "alice").await;
    let held = Held::open(&gateway, &alice, "alice").await;

    gateway.backend.remove_key("alice", &alice.fingerprint);
    assert_eq!(
        held.exit_code().await,
        Some(255),
        "the connection was closed"
    );
    let again = gateway.run(&alice, "alice", &["true"]).await;
    assert_eq!(
        again.status.code(),
        Some(255),
        "and the key is refused next time"
    );
    kept.say("echo other-key-$((1+1))").await;
    kept.expect("other-key-2").await;
}

#[tokio::test]
async fn connections_from_one_address_are_limited() {
    let gateway = start(|o| o.max_connections_per_address = 2).await;
    let alice = gateway.key("alice");
    gateway
        .backend
        .add_user("alice", &alice.fingerprint, &["python"]);
    let first = Held::open(&gateway, &alice, "alice").await;
    let _second = Held::open(&gateway, &alice, "alice").await;
    let third = gateway.run(&alice, "alice", &["true"]).await;
    assert_eq!(third.status.code(), Some(255), "{}", text(&third.stderr));
    assert_eq!(first.close().await, Some(0));
    // The slot is free once the first connection is gone (the gateway may take a moment to
    // see it go, so the client is asked again until it gets in).
    let out = tokio::time::timeout(PATIENCE, async {
        loop {
            let out = gateway.run(&alice, "alice", &["echo in"]).await;
            if out.status.success() {
                break out;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(text(&out.stdout), "in\n");
}

#[tokio::test]
async fn a_garbage_packet_ends_only_its_connection() {
    let gateway = start(|_| {}).await;
    let alice = gateway.key("alice");
    gateway
        .backend
        .add_user("alice", &alice.fingerprint, &["python"]);
    let mut held = Held::open(&gateway, &alice, "alice").await;

    for garbage in [
        // A packet that says it is 4 GiB long.
        [
            &b"SSH-2.0-junk\r\n"[..],
            &[0xff, 0xff, 0xff, 0xff],
            &[0u8; 64],
        ]
        .concat(),
        // A short packet full of nonsense.
        [&b"SSH-2.0-junk\r\n"[..], &[0, 0, 0, 12, 4], &[0x55; 11]].concat(),
        // No SSH at all.
        vec![b'x'; 100_000],
    ] {
        let mut stream = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
        let _ = stream.write_all(&garbage).await;
        let mut sink = Vec::new();
        let ended = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut sink)).await;
        assert!(ended.is_ok(), "the gateway closed the connection");
        assert!(sink.starts_with(b"SSH-2.0-Berth"));
    }
    held.say("echo still-$((2*2))").await;
    held.expect("still-4").await;
}

#[tokio::test]
async fn the_host_key_is_made_once_with_mode_0600_and_kept() {
    use std::os::unix::fs::PermissionsExt as _;
    let gateway = start(|_| {}).await;
    let path = gateway.dir.path().join("ssh_host_ed25519_key");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = berth_ssh::gateway::load_or_generate_host_key(&path).unwrap();
    assert_eq!(
        berth_ssh::fingerprint(again.public_key()),
        gateway.fingerprint
    );
    let keygen = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        text(&keygen.stdout).contains(&gateway.fingerprint),
        "ssh-keygen agrees"
    );
    // Its public half beside it, as ssh-keygen writes one.
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let keygen = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(path.with_extension("pub"))
        .output()
        .unwrap();
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    assert!(text(&keygen.stdout).contains(&gateway.fingerprint));

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = berth_ssh::gateway::load_or_generate_host_key(&path).unwrap_err();
    assert!(refused.to_string().contains("mode 0644"), "{refused}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&path, "not a key").unwrap();
    let refused = berth_ssh::gateway::load_or_generate_host_key(&path).unwrap_err();
    assert!(
        refused.to_string().contains("not an OpenSSH private key"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_client_that_does_not_log_in_in_time_is_disconnected() {
    let gateway = start(|o| o.login_timeout = Duration::from_secs(1)).await;
    // A banner and then silence, and no banner at all: both are closed.
    for said in [&b"SSH-2.0-OpenSSH_9.6\r\n"[..], b""] {
        let mut stream = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
        stream.write_all(said).await.unwrap();
        let mut sink = Vec::new();
        let ended = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut sink)).await;
        assert!(ended.is_ok(), "the gateway closed the connection");
        assert!(sink.starts_with(b"SSH-2.0-Berth"));
    }
}

#[tokio::test]
async fn shutting_the_gateway_down_closes_its_sessions() {
    let mut gateway = start(|_| {}).await;
    let alice = gateway.key("alice");
    gateway
        .backend
        .add_user("alice", &alice.fingerprint, &["python"]);
    let held = Held::open(&gateway, &alice, "alice").await;
    gateway.stop.take().unwrap().send(()).unwrap();
    assert_eq!(held.exit_code().await, Some(255));
    assert!(
        tokio::net::TcpStream::connect(gateway.addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn a_client_that_hangs_up_ends_a_command_that_ignores_its_input() {
    let gateway = start(|_| {}).await;
    let alice = gateway.key("alice");
    gateway
        .backend
        .add_user("alice", &alice.fingerprint, &["base"]);
    // A marker no other process has: the test looks for it.
    let marker = "sleep 31337";
    let mut command = gateway.ssh(
        &alice,
        "alice+base",
        &[&format!("echo started; exec {marker}")],
    );
    command.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut client = command.spawn().unwrap();
    let mut stdout = client.stdout.take().unwrap();
    let mut seen = Vec::new();
    while !text(&seen).contains("started") {
        let mut buffer = [0u8; 256];
        let n = tokio::time::timeout(PATIENCE, stdout.read(&mut buffer))
            .await
            .expect("the command started")
            .unwrap();
        assert!(n > 0, "ssh ended early: {}", text(&seen));
        seen.extend_from_slice(&buffer[..n]);
    }
    // More input than the process's pipe holds, which it never reads...
    let mut stdin = client.stdin.take().unwrap();
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        stdin.write_all(&vec![b'x'; 256 * 1024]),
    )
    .await;
    // ...and the client goes away: the gateway still hears it and hangs the process up.
    client.kill().await.unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let running = std::process::Command::new("pgrep")
            .args(["-f", marker])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        if !running {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command outlived its client"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
