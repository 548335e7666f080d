//! Clusters through the API on the real Docker Engine, with the stand-in k3s image
//! (`scripts/cluster-image.sh`) and the real `kubectl`: the lifecycle seen live over
//! `/api/v1/events`, the kubeconfig (encrypted at rest, audited), another user's cluster,
//! quotas, names, TTLs and their expiry, and the refusals.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{TestServer, assert_error, send_json};

/// How long a stand-in cluster may take to come up on a busy machine: a hang guard.
const PATIENCE: Duration = Duration::from_secs(120);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn token(server: &TestServer, user: &str, password: &str) -> String {
    server
        .client()
        .login(user, password)
        .await
        .unwrap()
        .token
        .expose()
        .to_owned()
}

async fn events(server: &TestServer, token: &str) -> Ws {
    let mut request = format!("ws://{}/api/v1/events", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

async fn next_event(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("an event")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// Reads events until cluster `id` is in `state`; the states it went through, in order.
async fn until_state(ws: &mut Ws, id: &str, state: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let event = next_event(ws).await;
        if event["type"] == "cluster" && event["cluster"]["id"] == id {
            let now = event["cluster"]["state"].as_str().unwrap().to_owned();
            if seen.last() != Some(&now) {
                seen.push(now.clone());
            }
            assert_ne!(now, "failed", "the cluster failed: {event}");
            if now == state {
                return seen;
            }
        }
    }
}

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl is installed (Debian's kubernetes-client; make test installs it)")
}

async fn audit(server: &TestServer, action: &str) -> Vec<Value> {
    let admin = server.admin().await;
    let body = json!({
        "table": "audit",
        "filters": [{"column": "action", "op": "eq", "value": action}],
    });
    let answer = send_json(&admin, "POST", "/api/v1/tables/query", &body.to_string()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.json().unwrap()["rows"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_cluster_comes_up_live_its_kubeconfig_works_with_kubectl_and_is_never_stored_in_clear() {
    let server = TestServer::builder()
        .clusters("max_per_user", "1")
        .cluster_user("alice", "alice-password")
        .cluster_user("bob", "bob-password")
        .start()
        .await;
    let alice_token = token(&server, "alice", "alice-password").await;
    let alice = server.login("alice", "alice-password").await;
    let bob = server.login("bob", "bob-password").await;
    let mut live = events(&server, &alice_token).await;
    let snapshot = next_event(&mut live).await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    assert_eq!(snapshot["clusters"], json!([]));

    let created = send_json(
        &alice,
        "POST",
        "/api/v1/clusters",
        r#"{"name":"dev","ttl":"1h"}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let cluster = created.json().unwrap();
    assert_eq!(cluster["state"], "provisioning");
    assert_eq!(cluster["owner"], "alice");
    assert_eq!(cluster["provider"], "docker");
    let id = cluster["id"].as_str().unwrap().to_owned();
    let states = until_state(&mut live, &id, "running").await;
    assert_eq!(
        states.last().map(String::as_str),
        Some("running"),
        "{states:?}"
    );

    let view = send_json(&alice, "GET", &format!("/api/v1/clusters/{id}"), "").await;
    let view = view.json().unwrap();
    assert_eq!(view["state"], "running");
    let api_url = view["api_url"].as_str().unwrap().to_owned();
    assert!(api_url.starts_with("https://127.0.0.1:"), "{api_url}");

    // The kubeconfig: YAML, not cached, pointing at the published API, accepted by kubectl.
    let answer = send_json(
        &alice,
        "GET",
        &format!("/api/v1/clusters/{id}/kubeconfig"),
        "",
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.headers["content-type"], "application/yaml");
    assert_eq!(answer.headers["cache-control"], "no-store");
    let text = String::from_utf8(answer.body.to_vec()).unwrap();
    assert!(text.contains(&api_url), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kubeconfig");
    std::fs::write(&file, &text).unwrap();
    let readyz = kubectl(&file, &["get", "--raw", "/readyz"]);
    assert!(readyz.status.success(), "{readyz:?}");
    assert_eq!(String::from_utf8_lossy(&readyz.stdout).trim(), "ok");

    // Its secrets are nowhere in the database's files, and the audit names the download only.
    let key_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("client-key-data:"))
        .expect("the kubeconfig has a client key");
    let secret = key_line.split_once(':').unwrap().1.trim();
    assert!(secret.len() > 40);
    for entry in std::fs::read_dir(&server.home).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(&secret[..40]) && !text.contains("client-key-data"),
                "{} holds the kubeconfig in clear",
                path.display()
            );
        }
    }
    let downloads = audit(&server, "cluster.kubeconfig").await;
    assert_eq!(downloads.len(), 1, "{downloads:?}");
    assert!(!downloads[0].to_string().contains(&secret[..40]));
    assert_eq!(audit(&server, "cluster.create").await.len(), 1);
    assert_eq!(audit(&server, "cluster.running").await.len(), 1);

    // Bob: as if it did not exist, kubeconfig included.
    for (method, path, body) in [
        ("GET", format!("/api/v1/clusters/{id}"), ""),
        ("GET", format!("/api/v1/clusters/{id}/kubeconfig"), ""),
        ("DELETE", format!("/api/v1/clusters/{id}"), ""),
        (
            "POST",
            format!("/api/v1/clusters/{id}/extend"),
            r#"{"ttl":"1h"}"#,
        ),
    ] {
        let answer = send_json(&bob, method, &path, body).await;
        let error = assert_error(&answer, 404, "not_found");
        assert!(!error.to_string().contains(&id), "{error}");
    }
    let bobs = send_json(&bob, "GET", "/api/v1/clusters", "").await;
    assert_eq!(bobs.json().unwrap()["clusters"], json!([]));
    // The admin sees it.
    let admin = server.admin().await;
    let all = send_json(&admin, "GET", "/api/v1/clusters", "").await;
    assert_eq!(all.json().unwrap()["clusters"][0]["id"], id.as_str());

    // Extend, then delete: deleting, then deleted, and the API goes away.
    let extended = send_json(
        &alice,
        "POST",
        &format!("/api/v1/clusters/{id}/extend"),
        r#"{"ttl":"30m"}"#,
    )
    .await;
    assert_eq!(extended.status, 200, "{:?}", extended.body);
    let deleted = send_json(&alice, "DELETE", &format!("/api/v1/clusters/{id}"), "").await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    until_state(&mut live, &id, "deleted").await;
    let gone = kubectl(&file, &["get", "--raw", "/readyz", "--request-timeout=5s"]);
    assert!(!gone.status.success(), "the cluster's API is gone");
    let listed = send_json(&alice, "GET", "/api/v1/clusters", "").await;
    assert_eq!(listed.json().unwrap()["clusters"], json!([]));
    let answer = send_json(
        &alice,
        "GET",
        &format!("/api/v1/clusters/{id}/kubeconfig"),
        "",
    )
    .await;
    assert_error(&answer, 409, "wrong_state");
    assert_eq!(audit(&server, "cluster.delete").await.len(), 1);
}

#[tokio::test]
async fn quotas_names_ttls_and_permissions_are_enforced() {
    let server = TestServer::builder()
        .clusters("max_per_user", "1")
        .clusters("max_ttl", "4h")
        // Slow to come up, so its provisioning state can be seen.
        .clusters("env", "[STANDIN_READY_DELAY=3]")
        .cluster_user("alice", "alice-password")
        .user("carol", "carol-password", &[])
        .start()
        .await;
    let alice = server.login("alice", "alice-password").await;
    let carol = server.login("carol", "carol-password").await;

    let answer = send_json(&carol, "POST", "/api/v1/clusters", r#"{"name":"mine"}"#).await;
    assert_error(&answer, 403, "forbidden");
    for body in [
        r#"{"name":"Bad_Name"}"#,
        r#"{"name":""}"#,
        r#"{"name":"-x"}"#,
        r#"{"name":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
        r#"{"name":"ok","ttl":"soon"}"#,
        r#"{"name":"ok","ttl":0}"#,
        r#"{"name":"ok","extra":1}"#,
        r#"{"ttl":"1h"}"#,
        "not json",
    ] {
        let answer = send_json(&alice, "POST", "/api/v1/clusters", body).await;
        assert!(
            matches!(answer.status, 400 | 422),
            "{body}: {} {:?}",
            answer.status,
            answer.body
        );
    }
    let answer = send_json(
        &alice,
        "POST",
        "/api/v1/clusters",
        r#"{"name":"big","ttl":"5h"}"#,
    )
    .await;
    let error = assert_error(&answer, 422, "ttl_too_long");
    assert!(error.to_string().contains("4h"), "{error}");

    let first = send_json(&alice, "POST", "/api/v1/clusters", r#"{"name":"one"}"#).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let first = first.json().unwrap();
    let id = first["id"].as_str().unwrap();
    // The default TTL is 2h, the max 4h.
    let answer = send_json(
        &alice,
        "GET",
        &format!("/api/v1/clusters/{id}/kubeconfig"),
        "",
    )
    .await;
    assert_error(&answer, 409, "wrong_state");
    let answer = send_json(&alice, "POST", "/api/v1/clusters", r#"{"name":"one"}"#).await;
    assert!(
        matches!(answer.status, 409),
        "a second live cluster named one, or over the quota: {:?}",
        answer.body
    );
    let answer = send_json(&alice, "POST", "/api/v1/clusters", r#"{"name":"two"}"#).await;
    assert_error(&answer, 409, "quota_exceeded");
    let answer = send_json(
        &alice,
        "POST",
        &format!("/api/v1/clusters/{id}/extend"),
        r#"{"ttl":"3h"}"#,
    )
    .await;
    let error = assert_error(&answer, 422, "ttl_too_long");
    assert!(
        error.to_string().contains("2h"),
        "says what is left: {error}"
    );
    let answer = send_json(
        &alice,
        "POST",
        &format!("/api/v1/clusters/{id}/extend"),
        r#"{"ttl":"2h"}"#,
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        answer.json().unwrap()["expires_at"],
        first["max_expires_at"]
    );
    let answer = send_json(&alice, "GET", "/api/v1/clusters/not-a-uuid", "").await;
    assert_eq!(answer.status, 400, "{:?}", answer.body);
}

#[tokio::test]
async fn a_short_ttl_runs_out_and_the_reaper_deletes_the_cluster() {
    let server = TestServer::builder()
        .clusters("default_ttl", "1m")
        .cluster_user("alice", "alice-password")
        .start()
        .await;
    let token = token(&server, "alice", "alice-password").await;
    let alice = server.login("alice", "alice-password").await;
    let mut live = events(&server, &token).await;
    let created = send_json(&alice, "POST", "/api/v1/clusters", r#"{"name":"brief"}"#).await;
    let id = created.json().unwrap()["id"].as_str().unwrap().to_owned();
    until_state(&mut live, &id, "running").await;
    let clusters = server.state.clusters.as_ref().unwrap();
    assert_eq!(clusters.reap().await.unwrap(), 0, "not expired yet");
    server.clock.advance(Duration::from_secs(61));
    assert_eq!(clusters.reap().await.unwrap(), 1);
    until_state(&mut live, &id, "deleted").await;
    let view = send_json(&alice, "GET", &format!("/api/v1/clusters/{id}"), "").await;
    assert_eq!(view.json().unwrap()["state_reason"], "ttl reached");
    let expiries = audit(&server, "cluster.expire").await;
    assert_eq!(expiries.len(), 1, "{expiries:?}");
    assert_eq!(expiries[0]["actor"], "(berth)");
}

#[tokio::test]
async fn a_missing_image_turns_the_cluster_failed_with_what_to_do() {
    let server = TestServer::builder()
        .clusters("image", "berth-test/no-such-k3s")
        .cluster_user("alice", "alice-password")
        .start()
        .await;
    let token = token(&server, "alice", "alice-password").await;
    let alice = server.login("alice", "alice-password").await;
    let mut live = events(&server, &token).await;
    let created = send_json(&alice, "POST", "/api/v1/clusters", r#"{"name":"nope"}"#).await;
    assert_eq!(created.status, 201, "answered at once: {:?}", created.body);
    let id = created.json().unwrap()["id"].as_str().unwrap().to_owned();
    let failed = loop {
        let event = next_event(&mut live).await;
        if event["type"] == "cluster"
            && event["cluster"]["id"] == id.as_str()
            && event["cluster"]["state"] == "failed"
        {
            break event;
        }
    };
    let reason = failed["cluster"]["state_reason"].as_str().unwrap();
    assert!(
        reason.contains("berth-test/no-such-k3s") && reason.contains("docker load"),
        "{reason}"
    );
    assert_eq!(audit(&server, "cluster.fail").await.len(), 1);
}

#[tokio::test]
async fn without_clusters_enabled_the_routes_answer_clusters_disabled() {
    let server = TestServer::builder()
        .user("alice", "alice-password", &[])
        .start()
        .await;
    let alice = server.login("alice", "alice-password").await;
    let answer = send_json(&alice, "POST", "/api/v1/clusters", r#"{"name":"dev"}"#).await;
    assert_error(&answer, 403, "clusters_disabled");
    let answer = send_json(&alice, "GET", "/api/v1/clusters", "").await;
    assert_error(&answer, 403, "clusters_disabled");
}

#[tokio::test]
async fn the_events_socket_checks_the_origin_and_the_caller() {
    let server = TestServer::builder()
        .cluster_user("alice", "alice-password")
        .clusters("max_per_user", "1")
        .start()
        .await;
    // Another site's page: refused before the upgrade.
    let mut request = format!("ws://{}/api/v1/events", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let refused = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert!(refused.to_string().contains("403"), "{refused}");
    // A page of Berth's own without a session: closed with 4401 after the upgrade.
    let mut request = format!("ws://{}/api/v1/events", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", server.url.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let close = tokio::time::timeout(PATIENCE, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match close {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 4401),
        other => panic!("expected a close, got {other:?}"),
    }
    // A plain GET is told to upgrade.
    let alice = server.login("alice", "alice-password").await;
    let answer = send_json(&alice, "GET", "/api/v1/events", "").await;
    assert_error(&answer, 400, "websocket_required");
}

#[tokio::test]
async fn disabling_an_account_deletes_its_clusters_and_closes_its_event_socket() {
    let server = TestServer::builder()
        .clusters("max_per_user", "1")
        .cluster_user("alice", "alice-password")
        .start()
        .await;
    let alice_token = token(&server, "alice", "alice-password").await;
    let alice = server.login("alice", "alice-password").await;
    let admin = server.admin().await;
    let mut live = events(&server, &alice_token).await;
    let mut watching = events(
        &server,
        &token(&server, "admin", &server.admin_password).await,
    )
    .await;
    assert_eq!(next_event(&mut live).await["type"], "snapshot");
    assert_eq!(next_event(&mut watching).await["type"], "snapshot");
    let created = send_json(&alice, "POST", "/api/v1/clusters", r#"{"name":"mine"}"#).await;
    let id = created.json().unwrap()["id"].as_str().unwrap().to_owned();
    until_state(&mut watching, &id, "running").await;

    let disabled = send_json(
        &admin,
        "PUT",
        "/api/v1/users/alice",
        r#"{"username": "alice", "role": "user", "disabled": true}"#,
    )
    .await;
    assert_eq!(disabled.status, 200, "{:?}", disabled.body);
    until_state(&mut watching, &id, "deleted").await;
    let view = send_json(&admin, "GET", &format!("/api/v1/clusters/{id}"), "").await;
    assert_eq!(
        view.json().unwrap()["state_reason"],
        "its owner's account was disabled"
    );
    // Alice's socket closes with 4401 rather than go on showing her clusters.
    let close = loop {
        let message = tokio::time::timeout(PATIENCE, live.next())
            .await
            .expect("the socket closes")
            .expect("a close frame")
            .unwrap();
        if let Message::Close(frame) = message {
            break frame;
        }
    };
    assert_eq!(close.map(|f| u16::from(f.code)), Some(4401));
}
