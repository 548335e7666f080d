//! `berth serve` SIGKILLed with clusters in every state, then started again on the same home:
//! reconciliation removes a cluster container no row knows, fails a running cluster whose
//! container was removed while Berth was down, and brings a cluster that was still
//! provisioning up to `running`. On the real Docker Engine with the stand-in k3s image
//! (`scripts/cluster-image.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a panic is the failure report

mod common;

use std::process::Command;
use std::time::Duration;

use berth_client::{Client, Method};
use common::{Server, block_on, instance_for, remove_instance, require_engine};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(120);

fn call(client: &Client, method: Method, path: &str, body: &str) -> (u16, Value) {
    let headers: &[(&str, &str)] = if body.is_empty() {
        &[]
    } else {
        &[("content-type", "application/json")]
    };
    let answer = block_on(client.send(method, path, headers, body.to_owned())).unwrap();
    let json = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    (answer.status, json)
}

fn state(client: &Client, id: &str) -> String {
    let (status, cluster) = call(client, Method::GET, &format!("/api/v1/clusters/{id}"), "");
    assert_eq!(status, 200, "{cluster}");
    cluster["state"].as_str().unwrap().to_owned()
}

/// Waits for cluster `id` to reach `want`, asking twice a second (within the API budget).
fn until_state(client: &Client, id: &str, want: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let now = state(client, id);
        if now == want {
            return;
        }
        assert_ne!(now, "failed", "cluster {id} failed");
        assert!(
            std::time::Instant::now() < deadline,
            "cluster {id} is {now}, never {want}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn containers(filter: &str) -> Vec<String> {
    let output = Command::new("docker")
        .args(["ps", "-aq", "--filter", filter])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_killed_berth_settles_its_clusters_when_it_starts_again() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let instance = instance_for(home.path());
    let first = Server::start(home.path());
    let password = first.printed_password().unwrap();
    first.crash();
    let main = home.path().join("config/main.yaml");
    let mut text = std::fs::read_to_string(&main).unwrap();
    text.push_str(
        "clusters:\n  enabled: true\n  network: host\n  image: berth-test/k3s-standin\n  \
         api_address: 127.0.0.1\n  memory: 256m\n  cpus: 1\n  max_per_user: 3\n  \
         privileged: false\n  env: [STANDIN_READY_DELAY=4]\n",
    );
    std::fs::write(&main, text).unwrap();

    let server = Server::start(home.path());
    let client = Client::new(&server.url()).unwrap();
    let login = block_on(client.login("admin", &password)).unwrap();
    let admin = client.with_token(login.token.expose());
    let (status, running) = call(
        &admin,
        Method::POST,
        "/api/v1/clusters",
        r#"{"name":"kept"}"#,
    );
    assert_eq!(status, 201, "{running}");
    let running = running["id"].as_str().unwrap().to_owned();
    until_state(&admin, &running, "running");
    let (status, pending) = call(
        &admin,
        Method::POST,
        "/api/v1/clusters",
        r#"{"name":"late"}"#,
    );
    assert_eq!(status, 201, "{pending}");
    let pending = pending["id"].as_str().unwrap().to_owned();
    assert_eq!(state(&admin, &pending), "provisioning");
    server.crash();

    // While Berth is down: the running cluster's container is removed behind its back, and a
    // container claims to be a cluster of this installation that no row knows.
    let running_filter = format!("label=berth.cluster={running}");
    let removed = containers(&running_filter);
    assert_eq!(removed.len(), 1, "one container per cluster");
    assert!(
        Command::new("docker")
            .args(["rm", "-f", "-v"])
            .args(&removed)
            .status()
            .unwrap()
            .success()
    );
    let orphan = berth_types::ClusterId::random().to_string();
    let made = Command::new("docker")
        .args(["run", "-d", "--network", "none", "--entrypoint", "sleep"])
        .args(["--label", &format!("berth.cluster={orphan}")])
        .args(["--label", &format!("berth.instance={instance}")])
        .args(["--label", "berth.managed=cluster"])
        .args(["--label", "berth.owner=admin"])
        .args(["berth-test/k3s-standin", "600"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let orphan_filter = format!("label=berth.cluster={orphan}");
    assert_eq!(containers(&orphan_filter).len(), 1);

    let server = Server::start(home.path());
    let client = Client::new(&server.url()).unwrap();
    let login = block_on(client.login("admin", &password)).unwrap();
    let admin = client.with_token(login.token.expose());
    // Reconciliation ran before the server listened.
    assert!(
        containers(&orphan_filter).is_empty(),
        "the container without a row is gone"
    );
    let (_, failed) = call(
        &admin,
        Method::GET,
        &format!("/api/v1/clusters/{running}"),
        "",
    );
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["state_reason"].as_str().unwrap().contains("gone"),
        "{failed}"
    );
    until_state(&admin, &pending, "running");
    assert_eq!(
        containers(&format!("label=berth.cluster={pending}")).len(),
        1,
        "brought up once, not twice"
    );
    let (status, _) = call(
        &admin,
        Method::DELETE,
        &format!("/api/v1/clusters/{pending}"),
        "",
    );
    assert_eq!(status, 204);
    until_state(&admin, &pending, "deleted");
    assert!(containers(&format!("label=berth.cluster={pending}")).is_empty());
    drop(server);
    remove_instance(&instance);
}
