//! The SSH gateway of `berth serve` (main.yaml `ssh.listen`) with the real OpenSSH client
//! and workspaces on the real Docker Engine: the host key printed at start and trusted
//! through known_hosts; a command's exit status; `USER+TEMPLATE` starting a workspace; a
//! shared workspace typed into from ssh and seen by `berth attach` (the browser's socket);
//! a wrong key and an unknown user refused alike; a removed key and a disabled user refused
//! at the next connection, and the open session of the disabled user closed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{CliHome, Pty, Server, block_on, both, require_engine, wait_child};

/// A new ed25519 key pair in `dir`: the private key's path and the public line.
fn key_pair(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    (path, public.trim().to_owned())
}

/// The gateway's port, fingerprint and known_hosts line, from the line `berth serve` prints.
fn gateway_banner(server: &Server) -> (u16, String, String) {
    let line = server
        .banner
        .iter()
        .find(|l| l.starts_with("The SSH gateway is listening on "))
        .unwrap_or_else(|| panic!("no gateway line: {:#?}", server.banner));
    let address = line
        .strip_prefix("The SSH gateway is listening on ")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let port = address.rsplit_once(':').unwrap().1.parse().unwrap();
    let fingerprint = line
        .split("host key ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let known_hosts = line.split("known_hosts line: ").nth(1).unwrap().to_owned();
    (port, fingerprint, known_hosts)
}

struct Ssh {
    port: u16,
    known_hosts: PathBuf,
}

impl Ssh {
    /// `ssh` as a script would run it: no questions, the host key only from known_hosts.
    fn command(&self, key: &Path, login: &str) -> Command {
        let mut command = Command::new("ssh");
        command
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
            .args(["-o", "ConnectTimeout=30", "-F", "/dev/null", "-i"])
            .arg(key)
            .args(["-p", &self.port.to_string()])
            .arg(format!("{login}@127.0.0.1"));
        command
    }

    fn run(&self, key: &Path, login: &str, remote: &str) -> Output {
        self.command(key, login)
            .arg(remote)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

#[test]
fn ssh_reaches_workspaces_through_the_gateway() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    // A first start writes the configuration and the admin; then the gateway is turned on.
    let mut first = Server::start(home.path());
    let admin = first.admin();
    let mut pair = berth_client::Template::new("pair", "berth-test/base");
    pair.shared = true;
    "none".clone_into(&mut pair.network);
    admin.create_template(&pair);
    admin.create_user("alice", "correct horse battery", &["pair"]);
    admin.create_user("bob", "battery horse staple", &["pair"]);
    first.signal("TERM");
    assert!(first.wait_exit(Duration::from_secs(30)).success());
    let main_yaml = home.path().join("config/main.yaml");
    let text = std::fs::read_to_string(&main_yaml).unwrap();
    let at = text.find("\nssh:\n").expect("an ssh: section");
    let (head, tail) = text.split_at(at);
    let tail = tail.replacen("  listen: null", "  listen: 127.0.0.1:0", 1);
    std::fs::write(&main_yaml, format!("{head}{tail}")).unwrap();

    let server = Server::start(home.path());
    let (port, fingerprint, known_hosts_line) = gateway_banner(&server);
    // The printed fingerprint is the key's, as ssh-keygen reads it.
    let keygen = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(home.path().join("ssh_host_ed25519_key.pub"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&keygen.stdout).contains(&fingerprint),
        "{}",
        both(&keygen)
    );
    let keys = tempfile::tempdir().unwrap();
    let known_hosts = keys.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("{known_hosts_line}\n")).unwrap();
    let ssh = Ssh { port, known_hosts };

    let (alice_key, alice_public) = key_pair(keys.path(), "alice");
    let (stranger_key, _) = key_pair(keys.path(), "stranger");
    let alice_api = {
        let client = berth_client::Client::new(&server.url()).unwrap();
        let login = block_on(client.login("alice", "correct horse battery")).unwrap();
        client.with_token(login.token.expose())
    };
    block_on(alice_api.add_ssh_key("alice", &alice_public)).unwrap();

    // USER+TEMPLATE starts her workspace when needed and runs the command there; ssh exits
    // with its status.
    let ran = ssh.run(&alice_key, "alice+pair", "echo hello-from-$((6*7)); exit 7");
    assert_eq!(ran.status.code(), Some(7), "{}", both(&ran));
    assert!(
        String::from_utf8_lossy(&ran.stdout).contains("hello-from-42"),
        "{}",
        both(&ran)
    );
    // With one workspace, her plain name reaches it.
    let ran = ssh.run(
        &alice_key,
        "alice",
        "cat /etc/hostname >/dev/null && echo same",
    );
    assert_eq!(ran.status.code(), Some(0), "{}", both(&ran));

    // A wrong key and a user who does not exist look the same.
    let wrong = ssh.run(&stranger_key, "alice", "true");
    let nobody = ssh.run(&stranger_key, "nobody", "true");
    for refused in [&wrong, &nobody] {
        assert_eq!(refused.status.code(), Some(255), "{}", both(refused));
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("Permission denied (publickey)"),
            "{}",
            both(refused)
        );
    }

    // The shared session: alice types over ssh, and her terminal in Berth's web socket (what
    // the browser opens; here through `berth attach`) shows it, in the same tmux session.
    let cli = CliHome::new();
    cli.login(&server, "alice", "correct horse battery");
    let mut attach = cli.berth();
    attach.args(["attach", "pair"]);
    let (mut attached, mut web) = Pty::spawn(attach);
    web.wait_for("Attached to", None, Duration::from_secs(60));
    let mut shell = ssh.command(&alice_key, "alice");
    shell.arg("-tt");
    let (mut over_ssh, mut terminal) = Pty::spawn(shell);
    terminal.wait_for(
        "typed-over-ssh-42",
        Some(b"echo typed-over-ssh-$((6*7))\r"),
        Duration::from_secs(60),
    );
    web.wait_for("typed-over-ssh-42", None, Duration::from_secs(30));

    // Her key removed: refused from the next connection on.
    let fingerprint = block_on(alice_api.ssh_keys("alice")).unwrap()[0]
        .fingerprint
        .clone();
    block_on(alice_api.remove_ssh_key("alice", &fingerprint)).unwrap();
    let removed = ssh.run(&alice_key, "alice", "true");
    assert_eq!(removed.status.code(), Some(255), "{}", both(&removed));
    block_on(alice_api.add_ssh_key("alice", &alice_public)).unwrap();
    let back = ssh.run(&alice_key, "alice", "true");
    assert_eq!(back.status.code(), Some(0), "{}", both(&back));

    // Disabled: her open ssh session closes, and the next one is refused.
    let admin = {
        let client = berth_client::Client::new(&server.url()).unwrap();
        let login = block_on(client.login("admin", &admin.password)).unwrap();
        client.with_token(login.token.expose())
    };
    let mut alice = block_on(admin.user("alice")).unwrap();
    alice.disabled = true;
    let body = berth_client::api::UserBody {
        username: alice.username.clone(),
        role: alice.role,
        password: None,
        templates: alice.templates.clone(),
        access_locked: alice.access_locked,
        disabled: true,
        metadata: alice.metadata.clone(),
        machines: alice.machines.clone(),
    };
    block_on(admin.update_user("alice", &body)).unwrap();
    let closed = wait_child(&mut over_ssh, Duration::from_secs(60));
    assert!(!closed.success(), "{}", terminal.seen());
    let _ = wait_child(&mut attached, Duration::from_secs(60));
    let disabled = ssh.run(&alice_key, "alice", "true");
    assert_eq!(disabled.status.code(), Some(255), "{}", both(&disabled));
}
