//! Self-service sign-up through the API: the three modes of main.yaml `registration`, invite
//! codes (one use, expiry, withdrawal, admins only), the names nobody may take, the password
//! rules, the defaults a new account gets, and the per-address rate limit.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{TestServer, assert_error, send_json};

async fn register(server: &TestServer, body: Value) -> berth_client::RawResponse {
    send_json(
        &server.client(),
        "POST",
        "/api/v1/auth/register",
        &body.to_string(),
    )
    .await
}

async fn invite(server: &TestServer, body: Value) -> Value {
    let admin = server.admin().await;
    let answer = send_json(&admin, "POST", "/api/v1/invites", &body.to_string()).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    answer.json().unwrap()
}

#[tokio::test]
async fn with_registration_off_the_route_answers_registration_disabled() {
    let server = TestServer::builder().start().await;
    let answer = register(&server, json!({"username": "eve", "password": "pw-of-eve"})).await;
    assert_error(&answer, 403, "registration_disabled");
    assert!(
        server.state.config.current().user("eve").is_none(),
        "nothing was written"
    );
    let page = server
        .raw(
            format!(
                "GET /register HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                server.addr
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.head);
    assert!(page.body.contains("Sign-up is off"), "{}", page.body);
}

#[tokio::test]
async fn open_registration_makes_a_user_with_the_defaults_and_nothing_more() {
    let server = TestServer::builder()
        .template("base", "")
        .registration("mode", "open")
        .registration("defaults", "{templates: [base], clusters: true}")
        // Many sign-ups and logins from one address; the limit has its own test below.
        .security("login_rate_per_minute", 100)
        .user("taken", "taken-password", &[])
        .start()
        .await;
    let answer = register(
        &server,
        json!({"username": "carol", "password": "carol-pw"}),
    )
    .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    assert_eq!(
        answer.json().unwrap(),
        json!({"username": "carol", "templates": ["base"], "clusters": true})
    );
    // The account works, as a plain user with the defaults, marked as self-registered.
    let carol = server.login("carol", "carol-pw").await;
    let config = send_json(&carol, "GET", "/api/v1/config", "").await;
    assert_eq!(config.status, 200);
    let current = server.state.config.current();
    let user = current.user("carol").unwrap();
    assert_eq!(user.role, berth_types::Role::User);
    assert_eq!(user.templates, ["base"]);
    assert!(user.clusters);
    assert_eq!(
        user.metadata.get("registered").map(String::as_str),
        Some("self")
    );
    drop(current);
    let users_yaml = std::fs::read_to_string(server.config_dir().join("users.yaml")).unwrap();
    assert!(users_yaml.contains("carol"), "{users_yaml}");

    // Names nobody may take, and the password rules of admin-made users.
    // A former account's name: its actions are in the audit log.
    let admin = server.admin().await;
    let former = send_json(
        &admin,
        "POST",
        "/api/v1/users",
        &json!({"username": "gone", "password": "gone-password", "role": "user"}).to_string(),
    )
    .await;
    assert_eq!(former.status, 201, "{:?}", former.body);
    server
        .login("gone", "gone-password")
        .await
        .config()
        .await
        .unwrap();
    let _ = send_json(
        &server.login("gone", "gone-password").await,
        "POST",
        "/api/v1/auth/tokens",
        "{}",
    )
    .await;
    assert_eq!(
        send_json(&admin, "DELETE", "/api/v1/users/gone", "")
            .await
            .status,
        204
    );
    for name in ["carol", "taken", "admin", "anonymous", "root", "gone"] {
        let answer = register(&server, json!({"username": name, "password": "whatever"})).await;
        assert_error(&answer, 409, "username_taken");
    }
    let answer = register(&server, json!({"username": "dave", "password": ""})).await;
    assert_eq!(answer.status, 422, "{:?}", answer.body);
    let answer = register(
        &server,
        json!({"username": "dave", "password": "x".repeat(129)}),
    )
    .await;
    assert_eq!(answer.status, 422, "{:?}", answer.body);
    for body in [
        json!({"username": "Dave", "password": "pw"}),
        json!({"username": "../etc", "password": "pw"}),
        json!({"username": "dave"}),
        json!({"username": "dave", "password": "pw", "role": "admin"}),
        json!({"username": "x".repeat(40), "password": "pw"}),
    ] {
        let answer = register(&server, body.clone()).await;
        assert!(
            matches!(answer.status, 400 | 422),
            "{body}: {:?}",
            answer.body
        );
    }
    assert!(server.state.config.current().user("dave").is_none());
    let registrations = {
        let admin = server.admin().await;
        let body = json!({"table": "audit", "filters": [{"column": "action", "op": "eq", "value": "user.register"}]});
        let answer = send_json(&admin, "POST", "/api/v1/tables/query", &body.to_string()).await;
        answer.json().unwrap()["rows"].as_array().unwrap().clone()
    };
    assert!(
        registrations
            .iter()
            .any(|r| r["target"] == "carol" && r["outcome"] == "success"),
        "{registrations:?}"
    );
    assert!(
        registrations.iter().any(|r| r["outcome"] == "denied"),
        "refusals are audited too: {registrations:?}"
    );
    assert!(
        !registrations
            .iter()
            .any(|r| r.to_string().contains("carol-pw"))
    );
}

#[tokio::test]
async fn invite_codes_admit_one_account_each_until_they_expire() {
    let server = TestServer::builder()
        .registration("mode", "invite")
        .security("login_rate_per_minute", 100)
        .user("alice", "alice-password", &[])
        .start()
        .await;
    let answer = register(&server, json!({"username": "nina", "password": "nina-pw"})).await;
    assert_error(&answer, 403, "invite_required");
    let answer = register(
        &server,
        json!({"username": "nina", "password": "nina-pw", "invite": "made-up"}),
    )
    .await;
    assert_error(&answer, 403, "invite_invalid");

    // Only admins make invites.
    let alice = server.login("alice", "alice-password").await;
    let answer = send_json(&alice, "POST", "/api/v1/invites", "{}").await;
    assert_eq!(answer.status, 403, "{:?}", answer.body);

    let made = invite(&server, json!({"note": "course A"})).await;
    let code = made["code"].as_str().unwrap().to_owned();
    assert!(
        made["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/register?invite={code}"))
    );
    // A bad password does not spend the code.
    let answer = register(
        &server,
        json!({"username": "nina", "password": "", "invite": code}),
    )
    .await;
    assert_eq!(answer.status, 422, "{:?}", answer.body);
    let answer = register(
        &server,
        json!({"username": "nina", "password": "nina-pw", "invite": code}),
    )
    .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    server.login("nina", "nina-pw").await;
    // Used once.
    let answer = register(
        &server,
        json!({"username": "omar", "password": "omar-pw", "invite": code}),
    )
    .await;
    assert_error(&answer, 403, "invite_used");
    // Without a usable code nobody learns which names are taken.
    let answer = register(
        &server,
        json!({"username": "alice", "password": "pw", "invite": "made-up"}),
    )
    .await;
    assert_error(&answer, 403, "invite_invalid");
    // A taken name does not spend a fresh code either.
    let fresh = invite(&server, json!({})).await;
    let fresh_code = fresh["code"].as_str().unwrap();
    let answer = register(
        &server,
        json!({"username": "nina", "password": "pw", "invite": fresh_code}),
    )
    .await;
    assert_error(&answer, 409, "username_taken");
    let answer = register(
        &server,
        json!({"username": "omar", "password": "omar-pw", "invite": fresh_code}),
    )
    .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);

    // Expiry follows the installation's clock.
    let brief = invite(&server, json!({"expires_in": "1m"})).await;
    server.clock.advance(Duration::from_secs(120));
    let answer = register(
        &server,
        json!({"username": "pia", "password": "pia-pw", "invite": brief["code"]}),
    )
    .await;
    assert_error(&answer, 403, "invite_expired");

    // The list shows who used what, never the codes; a withdrawn code stops working.
    let admin = server.admin().await;
    let listed = send_json(&admin, "GET", "/api/v1/invites", "").await;
    let listed = listed.json().unwrap();
    let invites = listed["invites"].as_array().unwrap();
    assert_eq!(invites.len(), 3);
    assert!(!listed.to_string().contains(&code));
    assert!(
        invites
            .iter()
            .any(|i| i["used_by"] == "nina" && i["note"] == "course A")
    );
    let spare = invite(&server, json!({})).await;
    let path = format!("/api/v1/invites/{}", spare["id"].as_str().unwrap());
    assert_eq!(send_json(&admin, "DELETE", &path, "").await.status, 204);
    assert_eq!(send_json(&admin, "DELETE", &path, "").await.status, 404);
    let answer = register(
        &server,
        json!({"username": "quinn", "password": "pw", "invite": spare["code"]}),
    )
    .await;
    assert_error(&answer, 403, "invite_invalid");
    for body in [
        r#"{"note": "\u0007"}"#,
        r#"{"expires_in": "never"}"#,
        r#"{"x": 1}"#,
    ] {
        let answer = send_json(&admin, "POST", "/api/v1/invites", body).await;
        assert!(
            matches!(answer.status, 400 | 422),
            "{body}: {:?}",
            answer.body
        );
    }
}

#[tokio::test]
async fn sign_ups_are_rate_limited_per_address() {
    let server = TestServer::builder()
        .registration("mode", "open")
        .security("login_rate_per_minute", 3)
        .start()
        .await;
    let mut statuses = Vec::new();
    for n in 0..5 {
        let body = json!({"username": format!("user{n}"), "password": "pw-pw-pw"}).to_string();
        let request = format!(
            "POST /api/v1/auth/register HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            server.addr,
            body.len()
        );
        statuses.push(
            server
                .raw_from(std::net::Ipv4Addr::new(127, 0, 0, 9), request.as_bytes())
                .await
                .status,
        );
    }
    assert_eq!(&statuses[..3], [201, 201, 201], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
}
