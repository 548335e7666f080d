//! The fleet over HTTP: a test server whose fleet syncs a real file:// inventory of the SSH
//! test machines, admins and users with machine selectors, the webhook, trust.

use berth_types::api::{FleetSyncStatus, MachineList, MachineView, SyncView};
use berth_types::fleet::{EnrollmentStatus, SyncResult};
use http::Method;

use crate::common::machines::inventory::{Repo, install_key, known_hosts, links};
use crate::common::machines::{self, Lab};
use crate::common::{TestServer, assert_error, send_json};

struct Fleet {
    server: TestServer,
    _repo: Repo,
    _root: tempfile::TempDir,
}

/// A server whose fleet syncs a repository of m1, m2 and m3; alice may see m1 and the `far`
/// machines (none of those three), bob none.
async fn fleet(lab: &Lab) -> Fleet {
    let root = tempfile::tempdir().unwrap();
    let repo = Repo::new(root.path(), "inventory");
    repo.commit(
        &[(
            "links.yaml",
            &links(lab, &[("m1", None), ("m2", None), ("m3", None)]),
        )],
        "three machines",
    );
    let keys = root.path().join("keys");
    install_key(lab, &keys);
    std::fs::write(keys.join("webhook.secret"), "hook-secret\n").unwrap();
    std::fs::set_permissions(
        keys.join("webhook.secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let server = TestServer::builder()
        .fleet("repository", repo.file_url())
        .fleet("keys_dir", keys.display().to_string())
        .fleet("connect_timeout", "20s")
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
        _repo: repo,
        _root: root,
    }
}

async fn get<T: serde::de::DeserializeOwned>(client: &berth_client::Client, path: &str) -> T {
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
