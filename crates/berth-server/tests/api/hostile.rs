//! Malformed, oversized and hostile requests get clear errors in Berth's shape, never a crash,
//! a plain-text answer or a 500.

use http::Method;

use crate::common::{TestServer, assert_error, send_json};

async fn server() -> TestServer {
    TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .start()
        .await
}

#[tokio::test]
async fn bodies_that_are_not_json_of_the_right_shape() {
    let server = server().await;
    let alice = server.login("alice", "alice-password").await;
    for body in [
        "{",
        "{\"template\": \"base\"",
        "not json",
        "{\"template\": \"base\"} trailing",
        "\u{0}",
    ] {
        let answer = send_json(&alice, "POST", "/api/v1/workspaces", body).await;
        assert_error(&answer, 400, "malformed_json");
    }
    // Nesting deeper than 128 levels is refused while parsing, before any recursion can hurt.
    let deep = format!(
        r#"{{"table": "audit", "filters": [{{"column": "id", "op": "eq", "value": {}{}}}]}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_error(
        &send_json(&alice, "POST", "/api/v1/tables/query", &deep).await,
        400,
        "malformed_json",
    );
    let answer = alice
        .send(
            Method::POST,
            "/api/v1/workspaces",
            &[("content-type", "application/json")],
            vec![0xff, 0xfe, 0x7b],
        )
        .await
        .unwrap();
    assert_error(&answer, 400, "malformed_json");

    for (body, field) in [
        (r#"{"template": "base", "colour": "red"}"#, "colour"),
        (r#"{"template": 5}"#, "template"),
        (r#"{}"#, ""),
        (r#"{"template": "base", "persist": "yes"}"#, "persist"),
        (r#"[]"#, ""),
    ] {
        let answer = send_json(&alice, "POST", "/api/v1/workspaces", body).await;
        let error = assert_error(&answer, 422, "invalid_body");
        assert_eq!(
            error["error"]["details"]["errors"][0]["field"], field,
            "{body}: {error}"
        );
    }
    for number in [
        "1e400",
        "18446744073709551616",
        "-1",
        "1.5",
        "99999999999999999999999999999",
    ] {
        let body = format!(r#"{{"table": "audit", "limit": {number}}}"#);
        let answer = send_json(&alice, "POST", "/api/v1/tables/query", &body).await;
        let error = assert_error(
            &answer,
            if number == "1e400" { 400 } else { 422 },
            if number == "1e400" {
                "malformed_json"
            } else {
                "invalid_body"
            },
        );
        let _ = error;
    }
}

#[tokio::test]
async fn content_types_and_sizes() {
    let server = server().await;
    let alice = server.login("alice", "alice-password").await;
    let body = r#"{"template": "base"}"#;
    for headers in [
        &[][..],
        &[("content-type", "text/plain")][..],
        &[("content-type", "application/x-www-form-urlencoded")][..],
        &[("content-type", "multipart/form-data; boundary=x")][..],
    ] {
        let answer = alice
            .send(Method::POST, "/api/v1/workspaces", headers, body)
            .await
            .unwrap();
        assert_error(&answer, 415, "unsupported_media_type");
    }
    let answer = alice
        .send(
            Method::POST,
            "/api/v1/workspaces",
            &[("content-type", "application/json; charset=utf-8")],
            r#"{"template": 5}"#,
        )
        .await
        .unwrap();
    assert_error(&answer, 422, "invalid_body");

    // 64 KiB is the most a JSON body may weigh, announced or streamed.
    let big = format!(r#"{{"template": "{}"}}"#, "x".repeat(70 * 1024));
    assert_error(
        &send_json(&alice, "POST", "/api/v1/workspaces", &big).await,
        413,
        "payload_too_large",
    );
    let token = alice.create_token(None).await.unwrap();
    let chunked = format!(
        "POST /api/v1/workspaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{big}\r\n0\r\n\r\n",
        token.token.expose(),
        big.len()
    );
    let answer = server.raw(chunked.as_bytes()).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert!(answer.body.contains("payload_too_large"), "{answer:?}");
    let lying = format!(
        "POST /api/v1/workspaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 999999999\r\nConnection: close\r\n\r\n{{}}",
        token.token.expose()
    );
    let answer = server.raw(lying.as_bytes()).await;
    assert_eq!(answer.status, 413, "{answer:?}");
}

#[tokio::test]
async fn hostile_names_paths_and_strings() {
    let server = server().await;
    let admin = server.admin().await;
    for path in [
        "/api/v1/users/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/users/..",
        "/api/v1/users/Alice",
        "/api/v1/users/a%00b",
        "/api/v1/users/%E2%80%AEalice",
        "/api/v1/templates/..%2Fmain",
        "/api/v1/templates/a%2Fb",
        "/api/v1/templates/%2e%2e",
        "/api/v1/workspaces/..%2F..",
        "/api/v1/workspaces/00000000-0000-0000-0000-00000000000g",
    ] {
        let answer = admin.send(Method::GET, path, &[], "").await.unwrap();
        assert_error(&answer, 400, "bad_path");
    }
    // Paths that are not routes at all stay 404s in Berth's shape.
    for path in [
        "/api/v1/users/a/b/c",
        "/api/v2/users",
        "/api/v1/../../etc/passwd",
        "/%ff",
    ] {
        let answer = admin.send(Method::GET, path, &[], "").await.unwrap();
        assert_error(&answer, 404, "not_found");
    }
    let answer = admin
        .send(Method::PATCH, "/api/v1/users", &[], "")
        .await
        .unwrap();
    assert_error(&answer, 405, "method_not_allowed");
    let answer = admin
        .send(Method::DELETE, "/api/v1/config", &[], "")
        .await
        .unwrap();
    assert_error(&answer, 405, "method_not_allowed");

    // Hostile strings in bodies are refused by validation, not stored.
    for name in ["../../etc", "base; rm -rf /", "<script>", "a\nb", "ä", ""] {
        let body = serde_json::json!({ "name": name, "image": "berth-test/base" }).to_string();
        let answer = send_json(&admin, "POST", "/api/v1/templates", &body).await;
        let error = assert_error(&answer, 422, "invalid");
        assert_eq!(
            error["error"]["details"]["errors"][0]["field"], "name",
            "{name:?}: {error}"
        );
    }
    let body = serde_json::json!({ "name": "ok", "image": "berth-test/base", "bind_mounts": [{"source": "/etc", "target": "/etc"}] }).to_string();
    assert_error(
        &send_json(&admin, "POST", "/api/v1/templates", &body).await,
        422,
        "invalid",
    );
    let body = serde_json::json!({ "username": "x".repeat(5000), "password": "y" }).to_string();
    assert_error(
        &send_json(&server.client(), "POST", "/api/v1/auth/login", &body).await,
        422,
        "invalid",
    );
    let body =
        serde_json::json!({ "username": "alice\u{0}", "password": "y".repeat(10_000) }).to_string();
    let answer = send_json(&server.client(), "POST", "/api/v1/auth/login", &body).await;
    assert_error(&answer, 422, "invalid");
    let body =
        serde_json::json!({ "username": "alice", "password": "y".repeat(10_000) }).to_string();
    let answer = send_json(&server.client(), "POST", "/api/v1/auth/login", &body).await;
    assert_error(&answer, 401, "invalid_credentials");
    assert!(
        std::fs::read_to_string(server.config_dir().join("containers.yaml"))
            .unwrap()
            .contains("base")
    );
}

#[tokio::test]
async fn the_api_rate_limit_answers_429_with_retry_after() {
    let server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .security("api_rate_per_minute", 3)
        .start()
        .await;
    let alice = server.login("alice", "alice-password").await;
    for _ in 0..3 {
        alice.config().await.unwrap();
    }
    let answer = alice
        .send(Method::GET, "/api/v1/config", &[], "")
        .await
        .unwrap();
    assert_error(&answer, 429, "rate_limited");
    let retry: u64 = answer.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    // Another caller has a budget of their own; anonymous callers share their address's.
    let admin = server.admin().await;
    admin.config().await.unwrap();
    for _ in 0..3 {
        let _ = server
            .client()
            .send(Method::GET, "/api/v1/config", &[], "")
            .await
            .unwrap();
    }
    let answer = server
        .client()
        .send(Method::GET, "/api/v1/config", &[], "")
        .await
        .unwrap();
    assert_error(&answer, 429, "rate_limited");
}
