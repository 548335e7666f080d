//! `berth serve` meeting configuration files that are not what they should be: a FIFO in
//! `users.d/`, a truncated `users.yaml`. The server keeps answering and keeps what it has.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use berth_client::ClientError;
use common::{Server, block_on, eventually, log_lines};

/// A failure detector for a request that would wait forever, not a measure of speed.
const DEADLINE: Duration = Duration::from_secs(10);

fn reload_failures(home: &Path) -> Vec<String> {
    log_lines(home)
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .unwrap_or_default()
                .contains("reload failed")
        })
        .map(|l| {
            l["fields"]["errors"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn user(name: &str) -> berth_client::api::UserBody {
    berth_client::api::UserBody {
        username: berth_types::Username::new(name).unwrap(),
        role: berth_types::Role::User,
        password: None,
        templates: Vec::new(),
        access_locked: false,
        disabled: false,
        metadata: Default::default(),
        machines: Vec::new(),
    }
}

/// Logs `username` in, failing the test if the server has not answered by the deadline.
fn login_promptly(server: &Server, username: &str, password: &str) {
    let client = berth_client::Client::new(&server.url()).unwrap();
    let answer =
        block_on(async { tokio::time::timeout(DEADLINE, client.login(username, password)).await })
            .unwrap_or_else(|_| panic!("/login of {username} did not answer within {DEADLINE:?}"));
    answer.unwrap_or_else(|e| panic!("login of {username}: {e}"));
}

/// Adds a user through the API, failing the test if the server has not answered by the
/// deadline; returns the refusal.
fn refused_change(admin: &common::Admin, name: &str) -> berth_client::ApiFailure {
    let answer = block_on(async {
        tokio::time::timeout(DEADLINE, admin.client.create_user(&user(name))).await
    })
    .unwrap_or_else(|_| panic!("a config write did not answer within {DEADLINE:?}"));
    match answer {
        Err(ClientError::Api(failure)) => *failure,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_fifo_in_users_d_and_sighup_neither_hang_login_nor_a_config_write() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let admin = server.admin();
    admin.create_user("alice", "alice-password-1", &["base"]);

    let fifo = home.path().join("config/users.d/alice.yaml");
    fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    server.signal("HUP");
    eventually(
        Duration::from_secs(10),
        "the failed reload is logged",
        || !reload_failures(home.path()).is_empty(),
    );
    let errors = reload_failures(home.path()).join("\n");
    assert!(
        errors.contains("users.d/alice.yaml: a FIFO"),
        "the file is named: {errors}"
    );

    login_promptly(&server, "alice", "alice-password-1");
    let failure = refused_change(&admin, "carol");
    assert_eq!(
        (failure.status, failure.code.as_str()),
        (409, "config_invalid_on_disk"),
        "{failure:?}"
    );
    let details = failure.details.unwrap();
    assert_eq!(
        details["errors"][0]["file"], "users.d/alice.yaml",
        "{details}"
    );
    // A second SIGHUP is answered too: the first one did not leave the loop stuck.
    server.signal("HUP");
    eventually(Duration::from_secs(10), "the second failed reload", || {
        reload_failures(home.path()).len() == 2
    });
    login_promptly(&server, "alice", "alice-password-1");
}

#[test]
fn a_truncated_users_yaml_keeps_the_users_in_force_and_stops_a_start() {
    let home = tempfile::tempdir().unwrap();
    let mut server = Server::start(home.path());
    let admin = server.admin();
    admin.create_user("alice", "alice-password-1", &["base"]);

    let users_yaml = home.path().join("config/users.yaml");
    fs::write(&users_yaml, "").unwrap();
    server.signal("HUP");
    eventually(
        Duration::from_secs(10),
        "the failed reload is logged",
        || !reload_failures(home.path()).is_empty(),
    );
    let errors = reload_failures(home.path()).join("\n");
    assert!(
        errors.contains("users.yaml: the file is empty"),
        "the file is named: {errors}"
    );
    login_promptly(&server, "alice", "alice-password-1");
    let failure = refused_change(&admin, "carol");
    assert_eq!(
        (failure.status, failure.code.as_str()),
        (409, "config_invalid_on_disk"),
        "{failure:?}"
    );
    assert_eq!(
        fs::read_to_string(&users_yaml).unwrap(),
        "",
        "nothing rewritten"
    );

    server.signal("TERM");
    server.wait_exit(Duration::from_secs(10));
    let output = common::berth()
        .args(["serve", "--listen", "127.0.0.1:0", "--home"])
        .arg(home.path())
        .env("BERTH_INSTANCE", common::instance_for(home.path()))
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "a start with a truncated users.yaml is refused"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("users.yaml: the file is empty"), "{stderr}");
    assert_eq!(
        fs::read_to_string(&users_yaml).unwrap(),
        "",
        "start-up wrote nothing either"
    );
}
