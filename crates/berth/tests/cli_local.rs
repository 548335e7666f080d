//! Local mode against the test Docker Engine: `berth start|ls|attach|stop|rm --local` run the
//! server's templates on this machine's engine with the server's hardening, and pings report
//! them to the server's monitor.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod common;

use std::process::Command;
use std::time::Duration;

use common::{CliHome, Pty, Server, both, eventually, remove_instance, require_engine, wait_child};

/// Removes the local workspaces of one CLI installation when the test ends, however it ends.
struct LocalCleanup(String);

impl Drop for LocalCleanup {
    fn drop(&mut self) {
        remove_instance(&self.0);
    }
}

fn inspect(container: &str) -> serde_json::Value {
    let output = Command::new("docker")
        .args(["inspect", container])
        .output()
        .expect("the docker CLI (Debian package docker.io) is needed to inspect containers");
    assert!(output.status.success(), "{}", both(&output));
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    list[0].clone()
}

#[test]
fn local_workspaces_run_hardened_are_listed_reported_and_stopped() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let admin = server.admin();
    admin.create_user("alice", "correct horse battery", &["base"]);
    let cli = CliHome::new();
    cli.login(&server, "alice", "correct horse battery");
    let client_id = cli.settings()["client_id"].clone();
    let instance = format!("local-{client_id}");
    let _cleanup = LocalCleanup(instance.clone());

    let name = cli.ok(&["start", "--local", "base"]).trim().to_owned();
    assert!(name.starts_with("berth-local-base-"), "{name}");
    let container = inspect(&name);
    let labels = &container["Config"]["Labels"];
    assert_eq!(labels["berth.managed"], "true");
    assert_eq!(labels["berth.local"], "true");
    assert_eq!(labels["berth.instance"], instance.as_str());
    assert_eq!(labels["berth.owner"], "alice");
    assert_eq!(labels["berth.template"], "base");
    let host = &container["HostConfig"];
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]), "{host}");
    assert!(
        host["SecurityOpt"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "no-new-privileges"),
        "{host}"
    );
    assert_eq!(host["Privileged"], false);
    assert_eq!(host["Init"], true);
    assert_eq!(host["NetworkMode"], "none");
    assert!(host["Memory"].as_i64().unwrap() > 0 && host["PidsLimit"].as_i64().unwrap() > 0);

    let listing = cli.json(&["ls", "--local"]);
    assert_eq!(listing["local"][0]["name"], name.as_str(), "{listing}");
    assert_eq!(listing["local"][0]["state"], "running");
    assert!(cli.ok(&["ls", "--local"]).contains(&name));

    // The start told the server at once: the admin's monitor shows the local workspace.
    let token_client = cli.settings()["token_client_id"].clone();
    eventually(
        Duration::from_secs(20),
        "the ping reaches the monitor",
        || {
            admin.monitor().clients.iter().any(|c| {
                c.client_id.to_string() == token_client
                    && c.local_workspaces
                        .iter()
                        .any(|w| w.id == name && w.template == "base")
            })
        },
    );

    // A terminal straight through the local engine.
    let mut command = cli.berth();
    command.args(["attach", "--local", "base"]);
    let (mut child, mut pty) = Pty::spawn(command);
    pty.wait_for(
        "hi-42",
        Some(b"echo hi-$((6*7))\r"),
        Duration::from_secs(60),
    );
    pty.type_text(b"exit 4\r");
    assert_eq!(
        wait_child(&mut child, Duration::from_secs(30)).code(),
        Some(4),
        "{}",
        pty.seen()
    );

    cli.ok(&["stop", "--local", "base"]);
    assert_eq!(cli.json(&["ls", "--local"])["local"], serde_json::json!([]));
    let output = cli.run(&["stop", "--local", "base"]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("berth ls --local"));
}

#[test]
fn a_persistent_local_workspace_is_kept_when_stopped_and_started_again() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let admin = server.admin();
    let mut data = berth_client::Template::new("data", "berth-test/base");
    data.volumes = vec![berth_config::Volume {
        name: "home".into(),
        target: "/data".into(),
        read_only: false,
    }];
    admin.create_template(&data);
    admin.create_user("alice", "correct horse battery", &["data"]);
    let cli = CliHome::new();
    cli.login(&server, "alice", "correct horse battery");
    let _cleanup = LocalCleanup(format!("local-{}", cli.settings()["client_id"]));

    let name = cli
        .ok(&["start", "--local", "data", "--persist"])
        .trim()
        .to_owned();
    cli.ok(&["stop", "--local", &name]);
    let listing = cli.json(&["ls", "--local"]);
    assert_eq!(
        listing["local"][0]["name"],
        name.as_str(),
        "kept: {listing}"
    );
    assert_eq!(listing["local"][0]["running"], false);
    assert_eq!(listing["local"][0]["persistent"], true);

    let again = cli
        .ok(&["start", "--local", "data", "--persist"])
        .trim()
        .to_owned();
    assert_eq!(again, name, "the stopped container starts again");
    assert_eq!(cli.json(&["ls", "--local"])["local"][0]["running"], true);
    let mounts = inspect(&name)["Mounts"].clone();
    assert!(
        mounts.to_string().contains("berth-local-alice-data-home"),
        "{mounts}"
    );

    let output = cli.run(&["start", "--local", "data", "--net", "host"]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not allowed"));
    let output = cli.run(&["start", "--local", "nothing"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("yours: data"));

    cli.ok(&["rm", "--local", &name]);
    assert_eq!(cli.json(&["ls", "--local"])["local"], serde_json::json!([]));
}
