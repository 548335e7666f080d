//! An operation survives `berth serve` being killed in the middle of it: SIGKILL while a
//! script runs on two SSH test machines, start again on the same home, and the operation is
//! `interrupted` (never "running" for ever) with each machine's last state and the output it
//! had printed; its events end; a rerun starts on the machines that did not succeed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod common;
mod fleet;
#[path = "../../berth-ssh/tests/common/mod.rs"]
mod machines;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use berth_client::Client;
use berth_types::api::OperationView;
use berth_types::operation::{MachineRunStatus, OperationStatus};
use common::{Server, block_on, eventually};
use fleet::{ADMIN_PASSWORD, fleet_home};
use machines::Lab;
use machines::inventory::{Repo, links};

/// In the script's command line, so the test can find (and end) its processes; one per test,
/// as they run at once on the same machines.
const MARKER: &str = "sleep 3139";
const SIGTERM_MARKER: &str = "sleep 3141";

fn admin(server: &Server) -> Client {
    let client = Client::new(&server.url()).unwrap();
    let login = block_on(client.login("admin", ADMIN_PASSWORD)).unwrap();
    client.with_token(login.token.expose())
}

fn call(client: &Client, method: berth_client::Method, path: &str) -> (u16, String) {
    let answer =
        block_on(client.send(method, path, &[("content-type", "application/json")], "")).unwrap();
    (
        answer.status,
        String::from_utf8_lossy(&answer.body).into_owned(),
    )
}

fn operation(client: &Client, id: &str) -> OperationView {
    let (status, body) = call(
        client,
        berth_client::Method::GET,
        &format!("/api/v1/operations/{id}"),
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Reads the operation's event stream until `wanted` holds for what arrived (the stream of a
/// running operation does not end), within a minute.
fn events_until(server: &Server, token: &str, id: &str, wanted: impl Fn(&str) -> bool) -> String {
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /api/v1/operations/{id}/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Accept: text/event-stream\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("reading the events: {e}"),
        }
        let text = String::from_utf8_lossy(&seen);
        if wanted(&text) {
            return text.into_owned();
        }
    }
    panic!(
        "the events never showed what the test waits for: {}",
        String::from_utf8_lossy(&seen)
    );
}

/// Ends what the test's script left on the machines (a killed Berth cannot).
fn clean_up(lab: &Lab, marker: &str) {
    for name in ["m1", "m2"] {
        let machine = lab.machine(name).clone();
        block_on(async {
            let session = lab.connect(&machine).await;
            machines::run(&session, &format!("pkill -f '{marker}' || true")).await;
        });
    }
}

#[test]
fn an_operation_killed_with_berth_is_interrupted_keeps_its_output_and_reruns() {
    let Some(lab) = machines::lab() else { return };
    let root = tempfile::tempdir().unwrap();
    let repo = Repo::new(root.path(), "inventory");
    repo.commit(
        &[
            ("links.yaml", &links(&lab, &[("m1", None), ("m2", None)])),
            (
                "scripts.yaml",
                "scripts:\n  - name: slow\n    file: slow.sh\n    timeout: 10m\n",
            ),
            (
                "slow.sh",
                &format!("#!/bin/bash\necho \"started on $BERTH_EXEC_ID\"\n{MARKER} &\nwait\n"),
            ),
        ],
        "a slow script",
    );
    let home = fleet_home(&lab, root.path(), &repo);
    let server = Server::start(&home);
    let client = admin(&server);
    let (status, body) = call(&client, berth_client::Method::POST, "/api/v1/fleet/sync");
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &client,
        berth_client::Method::POST,
        "/api/v1/machines/verify",
    );
    assert_eq!(status, 200, "{body}");
    let answer = block_on(client.send(
        berth_client::Method::POST,
        "/api/v1/operations",
        &[("content-type", "application/json")],
        r#"{"script": "slow", "machines": ["m1", "m2"]}"#,
    ))
    .unwrap();
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    assert_eq!(answer.status, 201, "{body}");
    let started: OperationView = serde_json::from_str(&body).unwrap();
    let id = started.id.to_string();
    // Both machines run the script and printed their line: then Berth dies.
    let token = block_on(
        Client::new(&server.url())
            .unwrap()
            .login("admin", ADMIN_PASSWORD),
    )
    .unwrap()
    .token
    .expose()
    .to_owned();
    events_until(&server, &token, &id, |text| {
        text.matches("started on ").count() >= 2
    });
    server.crash();

    let server = Server::start(&home);
    let client = admin(&server);
    let view = operation(&client, &id);
    assert_eq!(view.status, OperationStatus::Interrupted, "{view:#?}");
    assert!(view.finished.is_some());
    for run in &view.machines {
        assert_eq!(run.status, MachineRunStatus::Interrupted, "{run:#?}");
        assert_eq!(run.message, "Berth stopped during the run");
        assert!(
            run.started.is_some(),
            "its last known state: it had started"
        );
        let stdout = run.stdout.as_deref().unwrap_or_default();
        assert!(stdout.starts_with("started on "), "its output: {stdout:?}");
    }
    // The event stream now ends, with the interruption.
    let text = events_until(&server, &token_of(&server), &id, |text| {
        text.contains("\"status\":\"interrupted\",\"exit_code\"")
            && text.contains("event: operation")
            && text.contains("\"status\":\"interrupted\"}")
    });
    assert!(text.matches("started on ").count() >= 2, "{text}");
    // The history tells it too, and a rerun starts on both machines again.
    let (status, body) = call(
        &client,
        berth_client::Method::GET,
        "/api/v1/operations?status=interrupted",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&id), "{body}");
    let (status, body) = call(
        &client,
        berth_client::Method::POST,
        &format!("/api/v1/operations/{id}/rerun"),
    );
    assert_eq!(status, 201, "{body}");
    let rerun: OperationView = serde_json::from_str(&body).unwrap();
    assert_eq!(rerun.rerun_of, Some(started.id));
    assert_eq!(rerun.machines.len(), 2);
    let rerun_id = rerun.id.to_string();
    eventually(Duration::from_secs(60), "the rerun runs", || {
        operation(&client, &rerun_id)
            .machines
            .iter()
            .all(|m| m.status == MachineRunStatus::Running)
    });
    let (status, body) = call(
        &client,
        berth_client::Method::POST,
        &format!("/api/v1/operations/{rerun_id}/stop"),
    );
    assert_eq!(status, 200, "{body}");
    eventually(Duration::from_secs(60), "the rerun stops", || {
        operation(&client, &rerun_id).status == OperationStatus::Cancelled
    });
    drop(server);
    clean_up(&lab, MARKER);
}

fn token_of(server: &Server) -> String {
    block_on(
        Client::new(&server.url())
            .unwrap()
            .login("admin", ADMIN_PASSWORD),
    )
    .unwrap()
    .token
    .expose()
    .to_owned()
}

/// Processes on `name` whose command line holds the marker.
fn remote_processes(lab: &Lab, name: &str, marker: &str) -> String {
    let machine = lab.machine(name).clone();
    block_on(async {
        let session = lab.connect(&machine).await;
        let (out, _, _) = machines::run(
            &session,
            &format!("pgrep -af '{marker}' | grep -v pgrep || true"),
        )
        .await;
        out.trim().to_owned()
    })
}

#[test]
fn a_berth_stopped_with_sigterm_ends_the_scripts_and_records_them_interrupted() {
    let Some(lab) = machines::lab() else { return };
    let root = tempfile::tempdir().unwrap();
    let repo = Repo::new(root.path(), "inventory");
    repo.commit(
        &[
            ("links.yaml", &links(&lab, &[("m1", None)])),
            (
                "scripts.yaml",
                "scripts:\n  - name: slow\n    file: slow.sh\n    timeout: 10m\n",
            ),
            (
                "slow.sh",
                &format!("#!/bin/bash\n{SIGTERM_MARKER} &\nwait\n"),
            ),
        ],
        "a slow script",
    );
    let home = fleet_home(&lab, root.path(), &repo);
    let mut server = Server::start(&home);
    let client = admin(&server);
    assert_eq!(
        call(&client, berth_client::Method::POST, "/api/v1/fleet/sync").0,
        200
    );
    assert_eq!(
        call(
            &client,
            berth_client::Method::POST,
            "/api/v1/machines/verify"
        )
        .0,
        200
    );
    let answer = block_on(client.send(
        berth_client::Method::POST,
        "/api/v1/operations",
        &[("content-type", "application/json")],
        r#"{"script": "slow", "machines": ["m1"]}"#,
    ))
    .unwrap();
    assert_eq!(answer.status, 201);
    let id = serde_json::from_slice::<OperationView>(&answer.body)
        .unwrap()
        .id
        .to_string();
    eventually(Duration::from_secs(60), "the script runs on m1", || {
        !remote_processes(&lab, "m1", SIGTERM_MARKER).is_empty()
    });
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "berth serve exited with {status}");
    // Nothing of the script is left on the machine.
    assert_eq!(remote_processes(&lab, "m1", SIGTERM_MARKER), "");
    let server = Server::start(&home);
    let view = operation(&admin(&server), &id);
    assert_eq!(view.status, OperationStatus::Interrupted, "{view:#?}");
    assert_eq!(view.machines[0].status, MachineRunStatus::Interrupted);
    assert_eq!(view.machines[0].message, "Berth stopped during the run");
    clean_up(&lab, SIGTERM_MARKER);
}
