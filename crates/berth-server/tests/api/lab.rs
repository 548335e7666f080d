//! What the lab client uses: its configuration, pings, the monitor, table queries, metrics.

use berth_types::api::{LocalWorkspace, PingRequest, TableQuery};
use http::Method;

use crate::common::{TestServer, assert_api_error, assert_error, send_json};

fn ping(client_id: berth_types::ClientId) -> PingRequest {
    PingRequest {
        client_id,
        hostname: "alice-laptop".into(),
        version: "0.1.0".into(),
        local_workspaces: vec![LocalWorkspace {
            id: "berth-local-1".into(),
            template: "base".into(),
            state: "running".into(),
        }],
    }
}

#[tokio::test]
async fn config_gives_the_callers_templates_in_full_and_their_limits() {
    let server = TestServer::builder()
        .template(
            "base",
            "env:\n  LANG: C.UTF-8\npersist: never\nnetworks: [host]",
        )
        .template("secret", "")
        .runtime("max_workspaces_per_user", "2")
        .user("alice", "alice-password", &["base"])
        .start()
        .await;
    std::fs::create_dir_all(server.config_dir().join("users.d")).unwrap();
    std::fs::write(
        server.config_dir().join("users.d/alice.yaml"),
        "max_workspaces: 5\nmemory: 256m\ntemplates: [secret]\n",
    )
    .unwrap();
    server.state.config.reload().unwrap();
    let alice = server.login("alice", "alice-password").await;
    let config = alice.config().await.unwrap();
    assert_eq!(config.user.templates, ["base", "secret"]);
    let base = &config.templates[0];
    assert_eq!(base.image, "berth-test/base");
    assert_eq!(base.env.get("LANG").map(String::as_str), Some("C.UTF-8"));
    assert_eq!(base.persist, berth_config::Persist::Never);
    assert_eq!(base.networks, ["host"]);
    assert_eq!(config.limits.max_workspaces, 5);
    assert_eq!(config.limits.memory_bytes, Some(256 * 1024 * 1024));
    assert_eq!(config.limits.extra_templates, ["secret"]);
    assert_eq!(config.defaults.pids_limit, 512);
    assert!(config.ping_interval_seconds > 0);

    let answer = alice
        .send(Method::GET, "/api/v1/config?verbose=1", &[], "")
        .await
        .unwrap();
    assert_error(&answer, 400, "bad_query");
    let bad = server
        .client()
        .with_token("8c8f3a0e-0000-4000-8000-000000000000");
    assert_api_error(bad.config().await, 401, "unauthenticated");
}

#[tokio::test]
async fn pings_are_buffered_shown_on_the_monitor_and_flushed() {
    let server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .user("bob", "bob-password", &["base"])
        .security("ping_rate_per_minute", 3)
        .start()
        .await;
    let alice = server.login("alice", "alice-password").await;
    let token = alice.create_token(Some("laptop")).await.unwrap();
    let cli = server.client().with_token(token.token.expose());
    let answer = cli.ping(&ping(token.client_id)).await.unwrap();
    assert!(answer.interval_seconds > 0);
    // With the login token, one of one's own clients may be named.
    alice.ping(&ping(token.client_id)).await.unwrap();

    // Another client's id is refused, whoever asks.
    let bob = server.login("bob", "bob-password").await;
    let bob_token = bob.create_token(None).await.unwrap();
    assert_api_error(cli.ping(&ping(bob_token.client_id)).await, 403, "forbidden");
    assert_api_error(
        alice.ping(&ping(bob_token.client_id)).await,
        403,
        "forbidden",
    );
    let mut hostile = ping(token.client_id);
    hostile.hostname = "evil\nhost".into();
    assert_api_error(cli.ping(&hostile).await, 422, "invalid");

    // Before any flush, the monitor shows the ping.
    let admin = server.admin().await;
    let monitor = admin.monitor().await.unwrap();
    let seen = monitor
        .clients
        .iter()
        .find(|c| c.client_id == token.client_id)
        .expect("the client is on the monitor");
    assert_eq!(
        (seen.username.as_str(), seen.hostname.as_str()),
        ("alice", "alice-laptop")
    );
    assert_eq!(seen.local_workspaces[0].id, "berth-local-1");
    assert_eq!(seen.last_ip, "127.0.0.1");
    assert!(monitor.host.cpus >= 1 && monitor.host.memory.total_bytes > 0);
    assert!(monitor.host.disk.total_bytes > 0);

    // The ping budget is per client: the fourth (counting the refused one) is too many.
    let limited = assert_api_error(cli.ping(&ping(token.client_id)).await, 429, "rate_limited");
    assert!(limited.retry_after.is_some());

    // Flushed to the database (every few seconds; here at once), where table queries find it,
    // each user their own only.
    server.state.flush().await;
    let clients = server.state.store.list_clients(None).await.unwrap();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].hostname, "alice-laptop");
    let query = TableQuery {
        table: "clients".into(),
        ..TableQuery::default()
    };
    assert_eq!(alice.query_table(&query).await.unwrap().total, 1);
    assert_eq!(bob.query_table(&query).await.unwrap().total, 0);
    assert_eq!(admin.query_table(&query).await.unwrap().total, 1);
}

#[tokio::test]
async fn pings_reach_the_database_at_shutdown() {
    let mut server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .start()
        .await;
    let alice = server.login("alice", "alice-password").await;
    let token = alice.create_token(None).await.unwrap();
    alice.ping(&ping(token.client_id)).await.unwrap();
    let store = server.state.store.clone();
    server.shutdown().await;
    let clients = store.list_clients(None).await.unwrap();
    assert_eq!(clients.len(), 1, "the last batch is written at shutdown");
}

#[tokio::test]
async fn table_queries_are_scoped_and_checked() {
    let server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .start()
        .await;
    let alice = server.login("alice", "alice-password").await;
    let admin = server.admin().await;
    let audit = TableQuery {
        table: "audit".into(),
        ..TableQuery::default()
    };
    // Both logins are audited; alice sees only the rows she is the actor of.
    let mine = alice.query_table(&audit).await.unwrap();
    assert!(mine.rows.iter().all(|r| r["actor"] == "alice"), "{mine:?}");
    assert_eq!(mine.total, 1);
    assert_eq!(admin.query_table(&audit).await.unwrap().total, 2);

    for (body, code) in [
        (r#"{"table": "login_attempts"}"#, "invalid_query"),
        (
            r#"{"table": "audit", "columns": ["password"]}"#,
            "invalid_query",
        ),
        (r#"{"table": "audit", "limit": 100000}"#, "invalid_query"),
        (
            r#"{"table": "audit", "cursor": "garbage"}"#,
            "invalid_query",
        ),
        (
            r#"{"table": "audit", "filters": [{"column": "id", "op": "eq", "value": "x"}]}"#,
            "invalid_query",
        ),
    ] {
        let answer = send_json(&alice, "POST", "/api/v1/tables/query", body).await;
        assert_error(&answer, 400, code);
    }
    let answer = send_json(
        &alice,
        "POST",
        "/api/v1/tables/query",
        r#"{"table": "audit", "limit": 1e300}"#,
    )
    .await;
    assert_error(&answer, 422, "invalid_body");
    let answer = send_json(
        &alice,
        "POST",
        "/api/v1/tables/query",
        r#"{"table": "audit", "order": []}"#,
    )
    .await;
    assert_error(&answer, 422, "invalid_body");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_show_workspaces_and_logins() {
    let server = TestServer::builder()
        .template("base", "pool: 0")
        .user("alice", "alice-password", &["base"])
        .start()
        .await;
    let alice = server.login("alice", "alice-password").await;
    let id = berth_types::WorkspaceId::random();
    assert_api_error(alice.workspace(id).await, 404, "not_found");
    let _ = server.client().login("alice", "wrong").await;
    let _ = server
        .client()
        .send(Method::GET, "/nowhere", &[], "")
        .await
        .unwrap();
    let metrics = server.client().metrics().await.unwrap();
    for needle in [
        "berth_http_requests_total{route=\"/api/v1/workspaces/{id}\",method=\"GET\",status=\"404\"} 1",
        "berth_http_requests_total{route=\"/api/v1/auth/login\",method=\"POST\",status=\"200\"} 1",
        "berth_http_requests_total{route=\"/api/v1/auth/login\",method=\"POST\",status=\"401\"} 1",
        "berth_http_requests_total{route=\"(unmatched)\",method=\"GET\",status=\"404\"} 1",
        "berth_http_request_duration_seconds_bucket{route=\"/api/v1/auth/login\",method=\"POST\",le=\"+Inf\"} 2",
        "berth_workspaces{state=\"running\"} 0",
        "berth_login_failures_total 1",
        "# TYPE berth_http_request_duration_seconds histogram",
    ] {
        assert!(metrics.contains(needle), "{needle} not in:\n{metrics}");
    }
    assert!(
        !metrics.contains(&id.to_string()),
        "concrete paths never become labels"
    );
}

#[tokio::test]
async fn metrics_ask_for_the_metrics_token_once_one_is_set() {
    let server = TestServer::builder()
        .user("alice", "alice-password", &[])
        .start()
        .await;
    let get = |headers: Vec<(&'static str, String)>| {
        let client = server.client();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            client
                .send(Method::GET, "/metrics", &headers, "")
                .await
                .unwrap()
        }
    };
    // No token in main.yaml: anyone may scrape.
    assert_eq!(get(vec![]).await.status, 200);

    let token = server.state.config_store.issue_metrics_token().unwrap();
    server.state.config.reload().unwrap();
    let bearer = |t: &str| vec![("authorization", format!("Bearer {t}"))];
    let ok = get(bearer(token.expose())).await;
    assert_eq!(ok.status, 200);
    assert!(String::from_utf8_lossy(&ok.body).contains("berth_http_requests_total"));
    // Missing, wrong, malformed, another scheme, two headers, a user's own credentials.
    let login = server
        .client()
        .login("alice", "alice-password")
        .await
        .unwrap();
    let jwt = login.token.expose().to_owned();
    for headers in [
        vec![],
        bearer(&berth_types::ClientId::random().to_string()),
        bearer(&token.expose().to_uppercase().replace('-', "")[..8]),
        bearer(&format!("{} x", token.expose())),
        vec![("authorization", format!("Basic {}", token.expose()))],
        vec![
            ("authorization", format!("Bearer {}", token.expose())),
            ("authorization", "Bearer other".to_owned()),
        ],
        bearer(&jwt),
        bearer(&"a".repeat(5000)),
    ] {
        let answer = get(headers.clone()).await;
        assert_error(&answer, 401, "unauthenticated");
        assert!(
            answer.headers.contains_key("www-authenticate"),
            "{headers:?}"
        );
        assert!(!String::from_utf8_lossy(&answer.body).contains("berth_"));
    }

    // Removed again: open again, as documented.
    assert!(server.state.config_store.remove_metrics_token().unwrap());
    server.state.config.reload().unwrap();
    assert_eq!(get(vec![]).await.status, 200);
}

#[tokio::test]
async fn users_query_the_recordings_of_their_own_workspaces_only() {
    let server = TestServer::builder()
        .user("alice", "alice-password", &[])
        .user("bob", "bob-password", &[])
        .start()
        .await;
    for (owner, who) in [("alice", "bob"), ("bob", "bob")] {
        crate::common::insert_recording(&server, owner, who, time::OffsetDateTime::now_utc()).await;
    }
    let query = TableQuery {
        table: "recordings".into(),
        ..TableQuery::default()
    };
    let alice = server.login("alice", "alice-password").await;
    let rows = alice.query_table(&query).await.unwrap().rows;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0]["owner"].as_str(), rows[0]["username"].as_str()),
        (Some("alice"), Some("bob"))
    );
    let bob = server.login("bob", "bob-password").await;
    let rows = bob.query_table(&query).await.unwrap().rows;
    assert_eq!(
        rows.len(),
        1,
        "bob attached to alice's, but only his own is his: {rows:?}"
    );
    assert_eq!(rows[0]["owner"], "bob");
    let admin = server.admin().await;
    assert_eq!(admin.query_table(&query).await.unwrap().total, 2);
}
