//! `berth agent` as a process: it backs off while the server is down, pings once it is up (the
//! admin's monitor sees the client), fetches the configuration on SIGHUP and stops on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{CliHome, Server, eventually, require_engine, wait_child};

fn log_lines(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn messages(file: &Path, message: &str) -> Vec<serde_json::Value> {
    log_lines(file)
        .into_iter()
        .filter(|l| l["message"] == message)
        .collect()
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_agent_backs_off_while_the_server_is_down_and_pings_once_it_is_up() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let cli = CliHome::new();
    let (addr, admin_password) = {
        let mut server = Server::start(home.path());
        server
            .admin()
            .create_user("alice", "correct horse battery", &["base"]);
        cli.login(&server, "alice", "correct horse battery");
        let password = server.printed_password().unwrap();
        server.signal("TERM");
        assert!(server.wait_exit(Duration::from_secs(15)).success());
        (server.addr, password)
    };

    let log = cli.dir.path().join("agent.log");
    let id_file = cli.dir.path().join("etc/client_id");
    let child = cli
        .berth()
        .args([
            "agent",
            "--interval",
            "1s",
            "--config-interval",
            "1h",
            "--first-retry",
            "300ms",
            "--max-retry",
            "3s",
            "--log-file",
        ])
        .arg(&log)
        .arg("--client-id-file")
        .arg(&id_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut agent = Agent(child);

    eventually(Duration::from_secs(30), "three failed pings", || {
        messages(&log, "ping failed").len() >= 3
    });
    let failures = messages(&log, "ping failed");
    let attempts: Vec<i64> = failures
        .iter()
        .map(|l| l["fields"]["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(attempts[..3], [1, 2, 3], "{failures:?}");
    let delays: Vec<i64> = failures
        .iter()
        .map(|l| l["fields"]["retry_in_ms"].as_i64().unwrap())
        .collect();
    assert!(
        (270..=330).contains(&delays[0]) && delays[1] > delays[0] && delays[2] > delays[1],
        "the delays start near 300 ms and grow: {delays:?}"
    );
    assert!(delays.iter().all(|d| *d <= 3000), "capped: {delays:?}");
    let error = failures[0]["fields"]["error"].as_str().unwrap();
    assert!(error.contains("connection refused"), "{error}");
    assert_eq!(failures[0]["level"], "WARN");
    assert_eq!(
        failures[2]["level"], "ERROR",
        "a persistent failure stands out"
    );

    let server = Server::start_at(home.path(), &addr.to_string());
    eventually(Duration::from_secs(30), "the ping arrives", || {
        messages(&log, "ping succeeded again").len() == 1
    });
    let token_client = cli.settings()["token_client_id"].clone();
    let client = berth_client::Client::new(&server.url()).unwrap();
    let login = common::block_on(client.login("admin", &admin_password)).unwrap();
    let client = client.with_token(login.token.expose());
    eventually(
        Duration::from_secs(30),
        "the monitor shows the client",
        || {
            common::block_on(client.monitor())
                .unwrap()
                .clients
                .iter()
                .any(|c| c.client_id.to_string() == token_client && c.username.as_str() == "alice")
        },
    );
    if rustix::process::geteuid().is_root() {
        let written = std::fs::read_to_string(&id_file).unwrap();
        assert_eq!(written.trim(), token_client, "root writes the client id");
    }

    let fetched = messages(&log, "configuration fetched").len();
    let killed = std::process::Command::new("kill")
        .args(["-HUP", &agent.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    eventually(
        Duration::from_secs(30),
        "SIGHUP fetches the configuration",
        || messages(&log, "configuration fetched").len() > fetched,
    );
    assert!(cli.dir.path().join("cache/berth/config.json").exists());

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &agent.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(wait_child(&mut agent.0, Duration::from_secs(15)).success());
}

#[test]
fn the_agent_without_a_login_stops_with_the_reason() {
    let cli = CliHome::new();
    let log = cli.dir.path().join("agent.log");
    let output = cli
        .berth()
        .args(["agent", "--log-file"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("berth login"));
    let logged = log_lines(&log);
    assert!(
        logged
            .iter()
            .any(|l| l["level"] == "ERROR" && l["message"] == "the agent stopped"),
        "{logged:?}"
    );
}

#[test]
fn agent_enroll_writes_the_client_id_prints_it_and_exits() {
    use std::os::unix::fs::PermissionsExt;
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let cli = CliHome::new();

    // Not logged in: nothing to enroll with, and the error says what to do.
    let id_file = cli.dir.path().join("etc/berth/client_id");
    let output = cli
        .berth()
        .args(["agent", "--enroll", "--client-id-file"])
        .arg(&id_file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("berth login"));
    assert!(!id_file.exists());

    let mut server = Server::start(home.path());
    server
        .admin()
        .create_user("alice", "correct horse battery", &["base"]);
    cli.login(&server, "alice", "correct horse battery");
    let token_client = cli.settings()["token_client_id"].clone();

    let output = cli
        .berth()
        .args(["agent", "--enroll", "--client-id-file"])
        .arg(&id_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), token_client);
    assert!(stderr.contains("links.yaml"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&id_file).unwrap(),
        format!("{token_client}\n")
    );
    let mode = std::fs::metadata(&id_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "enrollment reads it as the machine's SSH user");

    // A file that cannot be written: exit 1, with a hint, nothing half-written.
    let output = cli
        .berth()
        .args([
            "agent",
            "--enroll",
            "--client-id-file",
            "/dev/null/client_id",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/dev/null/client_id") && stderr.contains("--client-id-file"),
        "{stderr}"
    );
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(15)).success());
}
