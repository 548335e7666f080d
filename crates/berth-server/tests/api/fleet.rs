//! The fleet over HTTP: a test server whose fleet syncs a real file:// inventory of the SSH
//! test machines, admins and users with machine selectors, the webhook, trust.

use berth_types::api::{FleetSyncStatus, MachineList, MachineView, SyncView};
use berth_types::fleet::{EnrollmentStatus, SyncResult};
use http::Method;

use crate::common::machines::inventory::{Repo, install_key, known_hosts, links};
use crate::common::machines::{self, Lab};
use crate::common::{TestServer, assert_error, send_json};

pub(crate) struct Fleet {
    pub(crate) server: TestServer,
    pub(crate) repo: Repo,
    _root: tempfile::TempDir,
}

/// A server whose fleet syncs a repository of m1, m2 and m3; alice may see m1 and the `far`
/// machines (none of those three), bob none.
async fn fleet(lab: &Lab) -> Fleet {
    fleet_with(lab, &[]).await
}

/// [`fleet`] with more files in the repository's first commit (scripts).
pub(crate) async fn fleet_with(lab: &Lab, files: &[(&str, &str)]) -> Fleet {
    fleet_with_settings(lab, files, &[]).await
}

/// [`fleet_with`], with more `fleet:` settings of main.yaml.
pub(crate) async fn fleet_with_settings(
    lab: &Lab,
    files: &[(&str, &str)],
    settings: &[(&'static str, &str)],
) -> Fleet {
    let root = tempfile::tempdir().unwrap();
    let repo = Repo::new(root.path(), "inventory");
    let links = links(lab, &[("m1", None), ("m2", None), ("m3", None)]);
    let mut all = vec![("links.yaml", links.as_str())];
    all.extend_from_slice(files);
    repo.commit(&all, "three machines");
    let keys = root.path().join("keys");
    install_key(lab, &keys);
    std::fs::write(keys.join("webhook.secret"), "hook-secret\n").unwrap();
    std::fs::set_permissions(
        keys.join("webhook.secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut builder = TestServer::builder()
        .fleet("repository", repo.file_url())
        .fleet("keys_dir", keys.display().to_string())
        .fleet("connect_timeout", "20s");
    for (key, value) in settings {
        builder = builder.fleet(key, *value);
    }
    let server = builder
        .user("alice", "alice-password", &[])
        .machines("alice", &["m1", "tag:far"])
        .user("bob", "bob-password", &[])
        .start()
        .await;
    std::fs::write(
        server.home.join("fleet/known_hosts"),
        known_hosts(lab, &["m1", "m2"]),
    )
    .unwrap();
    Fleet {
        server,
        repo,
        _root: root,
    }
}

pub(crate) async fn get<T: serde::de::DeserializeOwned>(
    client: &berth_client::Client,
    path: &str,
) -> T {
    let answer = client.send(Method::GET, path, &[], "").await.unwrap();
    assert_eq!(
        answer.status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&answer.body)
    );
    serde_json::from_slice(&answer.body).unwrap()
}

#[tokio::test]
async fn an_admin_syncs_and_users_see_only_the_machines_their_selectors_match() {
    let Some(lab) = machines::lab() else { return };
    let f = fleet(&lab).await;
    let admin = f.server.admin().await;
    let answer = send_json(&admin, "POST", "/api/v1/fleet/sync", "").await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let sync: SyncView = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(sync.result, SyncResult::Succeeded, "{:?}", sync.errors);
    assert_eq!(sync.changes.machines.added, ["m1", "m2", "m3"]);
    let status: FleetSyncStatus = get(&admin, "/api/v1/fleet/sync").await;
    assert_eq!(status.commit, sync.commit);

    let all: MachineList = get(&admin, "/api/v1/machines").await;
    let ids: Vec<_> = all.machines.iter().map(|m| m.id.to_string()).collect();
    assert_eq!(ids, ["m1", "m2", "m3"]);

    let alice = f.server.login("alice", "alice-password").await;
    let mine: MachineList = get(&alice, "/api/v1/machines").await;
    let ids: Vec<_> = mine.machines.iter().map(|m| m.id.to_string()).collect();
    assert_eq!(ids, ["m1"]);
    let m1: MachineView = get(&alice, "/api/v1/machines/m1").await;
    assert_eq!(m1.host, lab.machine("m1").host);
    let hidden = alice
        .send(Method::GET, "/api/v1/machines/m2", &[], "")
        .await
        .unwrap();
    assert_error(&hidden, 404, "not_found");
    let bob = f.server.login("bob", "bob-password").await;
    let none: MachineList = get(&bob, "/api/v1/machines").await;
    assert!(none.machines.is_empty());
    assert_eq!(none.total, 0);
    // Users may look but not act.
    let refused = send_json(&alice, "POST", "/api/v1/machines/m1/verify", "").await;
    assert_eq!(
        refused.status,
        403,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    let refused = send_json(&alice, "POST", "/api/v1/fleet/sync", "").await;
    assert_eq!(
        refused.status,
        403,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );

    // Verify: m1 and m2 are known and enrolled; m3's key is unknown until trusted.
    let answer = send_json(&admin, "POST", "/api/v1/machines/m3/verify", "").await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let m3: MachineView = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(m3.enrollment.status, EnrollmentStatus::HostKeyUnknown);
    let fingerprint = m3.enrollment.fingerprint.clone().unwrap();
    let wrong = send_json(
        &admin,
        "POST",
        "/api/v1/machines/m3/trust",
        r#"{"fingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
    )
    .await;
    assert_eq!(
        wrong.status,
        409,
        "{}",
        String::from_utf8_lossy(&wrong.body)
    );
    let trusted = send_json(
        &admin,
        "POST",
        "/api/v1/machines/m3/trust",
        &format!(r#"{{"fingerprint":"{fingerprint}"}}"#),
    )
    .await;
    assert_eq!(
        trusted.status,
        200,
        "{}",
        String::from_utf8_lossy(&trusted.body)
    );
    let m3: MachineView = serde_json::from_slice(&trusted.body).unwrap();
    assert_eq!(m3.enrollment.status, EnrollmentStatus::Enrolled);
}

fn github_signature(body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"hook-secret").unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

async fn deliver(client: &berth_client::Client, body: &[u8], signature: Option<&str>) -> u16 {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(signature) = signature {
        headers.push(("x-hub-signature-256", signature));
    }
    client
        .send(
            Method::POST,
            "/api/v1/fleet/webhook",
            &headers,
            body.to_vec(),
        )
        .await
        .unwrap()
        .status
}

#[tokio::test]
async fn a_signed_push_syncs_and_a_burst_of_pushes_joins_one_pending_sync() {
    let Some(lab) = machines::lab() else { return };
    let f = fleet(&lab).await;
    let anyone = f.server.client();
    let body = br#"{"ref":"refs/heads/main"}"#;
    assert_eq!(deliver(&anyone, body, None).await, 401);
    let forged = github_signature(b"another body");
    assert_eq!(deliver(&anyone, body, Some(&forged)).await, 401);
    // Nothing ran for the refused deliveries.
    let admin = f.server.admin().await;
    let status: FleetSyncStatus = get(&admin, "/api/v1/fleet/sync").await;
    assert!(status.history.is_empty(), "{:?}", status.history);

    // A push of many commits is larger than an API request may be.
    let large = format!(
        r#"{{"ref":"refs/heads/main","commits":"{}"}}"#,
        "x".repeat(200 * 1024)
    );
    let signature = github_signature(large.as_bytes());
    assert_eq!(
        deliver(&anyone, large.as_bytes(), Some(&signature)).await,
        202
    );
    // Over 4 MiB is refused as announced, before the body is read.
    let announced = f
        .server
        .raw(
            b"POST /api/v1/fleet/webhook HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/json\r\nX-Hub-Signature-256: sha256=00\r\n\
              Content-Length: 5242880\r\nConnection: close\r\n\r\n{}",
        )
        .await;
    assert_eq!(announced.status, 413, "{}", announced.head);
    assert!(
        announced.body.contains("payload_too_large"),
        "{}",
        announced.body
    );

    // Twenty pushes of a new commit at once: one sync may be running, the others join one
    // pending sync, which fetches the new commit.
    let pushed = f.repo.commit(
        &[("links.yaml", &links(&lab, &[("m1", None), ("m2", None)]))],
        "two machines",
    );
    let signature = github_signature(body);
    let answers =
        futures_util::future::join_all((0..20).map(|_| deliver(&anyone, body, Some(&signature))))
            .await;
    assert!(answers.iter().all(|s| *s == 202), "{answers:?}");
    // An admin's sync waits for the syncs queued before it.
    let answer = send_json(&admin, "POST", "/api/v1/fleet/sync", "").await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let status: FleetSyncStatus = get(&admin, "/api/v1/fleet/sync").await;
    let webhook_syncs = status
        .history
        .iter()
        .filter(|s| s.trigger == berth_types::fleet::SyncTrigger::Webhook)
        .count();
    // The large push's sync, then at most one running and one pending for the burst; the
    // newest of them has the pushed commit: no push is lost.
    let newest = status
        .history
        .iter()
        .find(|s| s.trigger == berth_types::fleet::SyncTrigger::Webhook)
        .unwrap();
    assert_eq!(newest.commit.as_deref(), Some(pushed.as_str()));
    assert!(
        (1..=3).contains(&webhook_syncs),
        "{webhook_syncs} webhook syncs for 21 pushes: {:#?}",
        status.history
    );
    assert!(
        status
            .history
            .iter()
            .all(|s| s.result != SyncResult::Failed),
        "{:#?}",
        status.history
    );
}

#[tokio::test]
async fn trusting_a_machine_that_cannot_be_reached_is_a_bad_gateway() {
    let Some(lab) = machines::lab() else { return };
    let f = fleet(&lab).await;
    let mut text = links(&lab, &[("m1", None)]);
    // An address nothing listens on.
    text.push_str("  - id: dead\n    name: dead\n    host: 127.0.20.250\n    port: 22\n    user: berth\n    key: id_ed25519\n");
    f.repo.commit(&[("links.yaml", &text)], "a dead machine");
    let admin = f.server.admin().await;
    let answer = send_json(&admin, "POST", "/api/v1/fleet/sync", "").await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let body = r#"{"fingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
    let answer = send_json(&admin, "POST", "/api/v1/machines/dead/trust", body).await;
    assert_error(&answer, 502, "machine_unreachable");
    let answer = send_json(&admin, "POST", "/api/v1/machines/nowhere/trust", body).await;
    assert_error(&answer, 404, "not_found");
    // `verify` names the action on every machine, never a machine.
    let answer = admin
        .send(Method::GET, "/api/v1/machines/verify", &[], "")
        .await
        .unwrap();
    assert_eq!(answer.status, 405);
}
