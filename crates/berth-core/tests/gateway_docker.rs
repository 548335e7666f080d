//! The whole gateway below HTTP: the real OpenSSH client, the SSH gateway, [`SshGateway`] over
//! the live configuration, and workspaces on the real Docker Engine through the terminal seam.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use berth_core::gateway::SshGateway;
use berth_core::{LiveConfig, WorkspaceTerminals};
use berth_ssh::gateway::{Gateway, GatewayBackend, GatewayOptions};
use berth_terminal::{Caller, TerminalSource, TerminalTarget, TtySize};
use berth_types::Role;
use common::{Harness, TestPolicy, plan, read_until, user};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PATIENCE: Duration = Duration::from_secs(60);
const ALICE_ID: &str = "6f1c2a9e-8d4b-4c47-9a53-0b1d2e3f4a5b";

struct Client {
    _dir: tempfile::TempDir,
    key: PathBuf,
    port: u16,
    known_hosts: PathBuf,
}

impl Client {
    fn ssh(&self, login: &str, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("ssh");
        command
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
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "IdentityAgent=none",
                "-o",
                "LogLevel=ERROR",
            ])
            .arg("-i")
            .arg(&self.key)
            .arg("-p")
            .arg(self.port.to_string())
            .arg(format!("{login}@127.0.0.1"))
            .args(args)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

fn write_config(dir: &Path, key_line: &str) {
    std::fs::write(dir.join("main.yaml"), "admin:\n  username: admin\n").unwrap();
    std::fs::write(
        dir.join("containers.yaml"),
        "templates:\n  - name: base\n    image: x\n  - name: pair\n    image: x\n    shared: true\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("users.yaml"),
        format!(
            "users:\n  - username: alice\n    id: {ALICE_ID}\n    templates: [base, pair]\n    ssh_keys:\n      - {key_line}\n"
        ),
    )
    .unwrap();
}

/// The gateway over `h`'s workspaces, and a client with alice's key.
async fn gateway(h: &Harness) -> Client {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("alice");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let line = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let config_dir = dir.path().join("config");
    std::fs::create_dir(&config_dir).unwrap();
    write_config(&config_dir, line.trim());
    let backend = SshGateway::new(
        LiveConfig::load(&config_dir).unwrap(),
        Arc::new(h.manager.clone()),
        Arc::new(WorkspaceTerminals::new(h.manager.clone())),
        Arc::clone(h.manager.store()),
        None,
        h.manager.clock(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Gateway::from_listener(
        listener,
        GatewayOptions::new(dir.path().join("host_key")),
        Arc::new(backend) as Arc<dyn GatewayBackend>,
    )
    .unwrap();
    let port = server.local_addr().unwrap().port();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{port} {}\n", server.public_key()),
    )
    .unwrap();
    tokio::spawn(server.serve(std::future::pending()));
    Client {
        _dir: dir,
        key,
        port,
        known_hosts,
    }
}

#[tokio::test]
async fn a_login_with_a_template_starts_the_workspace_and_runs_the_command() {
    let h = Harness::new(TestPolicy::with([(plan("base"), 0)])).await;
    let client = gateway(&h).await;
    let out = tokio::time::timeout(
        PATIENCE,
        client
            .ssh("alice+base", &["echo user=$BERTH_USER; exit 5"])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout == "user=alice\n",
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(5));
    let running = h
        .manager
        .list(&berth_core::WorkspaceFilter::default())
        .await
        .unwrap();
    assert_eq!(running.len(), 1, "started once");
    assert_eq!(running[0].template, "base");

    // `alice` alone now finds that workspace.
    let again = tokio::time::timeout(
        PATIENCE,
        client.ssh("alice", &["echo $BERTH_WORKSPACE"]).output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        running[0].id.to_string()
    );
}

#[tokio::test]
async fn a_shared_workspace_is_the_same_tmux_session_from_ssh_and_from_the_seam() {
    let mut shared = plan("pair");
    shared.shared = true;
    let h = Harness::new(TestPolicy::with([(shared, 0)])).await;
    let ws = h
        .manager
        .start(&user("alice"), "pair", &Default::default())
        .await
        .unwrap();
    let client = gateway(&h).await;

    // The browser's way in: the terminal source the web terminal uses.
    let source = WorkspaceTerminals::new(h.manager.clone());
    let caller = Caller {
        username: user("alice"),
        role: Role::User,
    };
    let target = TerminalTarget::Workspace(ws.id);
    let grant = source.authorize(&target, &caller).await.unwrap().unwrap();
    assert!(grant.shared);
    let web = source
        .open(&grant, grant.role, TtySize::DEFAULT)
        .await
        .unwrap();
    let (mut web_output, _web_input, _web_control) = web.pty.into_parts();

    let mut ssh = client.ssh("alice", &["-tt"]);
    ssh.stdin(Stdio::piped());
    let mut child = ssh.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin.write_all(b"echo from-ssh-$((3*3))\n").await.unwrap();
    read_until(&mut web_output, "from-ssh-9").await;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(PATIENCE, async {
        while !String::from_utf8_lossy(&seen).contains("from-ssh-9") {
            let n = stdout.read(&mut buffer).await.unwrap();
            assert!(n > 0, "ssh ended: {:?}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buffer[..n]);
        }
    })
    .await
    .unwrap();
    drop(stdin);
    let _ = child.kill().await;
}
