//! Logins, lockout, throttling, client tokens, and tokens that stop working.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_server::Claims;
use berth_types::api::{FilterOp, NewTokenRequest, TableFilter, TableQuery, UserBody};
use http::Method;
use serde_json::json;
use time::OffsetDateTime;

use crate::common::{TestServer, assert_api_error, assert_error};

async fn lab() -> TestServer {
    TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .user("bob", "bob-password", &["base"])
        .start()
        .await
}

#[tokio::test]
async fn a_login_gives_a_24h_token_that_authenticates() {
    let server = lab().await;
    let login = server
        .client()
        .login("alice", "alice-password")
        .await
        .unwrap();
    let left = login.expires_at - OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::hours(23) && left <= time::Duration::hours(24),
        "{left}"
    );
    let alice = server.client().with_token(login.token.expose());
    let config = alice.config().await.unwrap();
    assert_eq!(config.user.username.as_str(), "alice");
    assert_eq!(config.user.templates, ["base"]);

    // The main.yaml admin logs in too.
    let admin = server.admin().await;
    assert_eq!(
        admin.config().await.unwrap().user.role,
        berth_types::Role::Admin
    );

    for (user, password) in [
        ("alice", "wrong"),
        ("nobody", "alice-password"),
        ("alice", ""),
    ] {
        let failure = assert_api_error(
            server.client().login(user, password).await,
            401,
            "invalid_credentials",
        );
        assert_eq!(failure.message, "wrong username or password");
    }

    // Every attempt is audited, with no password in it.
    let audit = admin
        .query_table(&TableQuery {
            table: "audit".into(),
            filters: vec![TableFilter {
                column: "action".into(),
                op: FilterOp::Eq,
                value: json!("auth.login"),
            }],
            ..TableQuery::default()
        })
        .await
        .unwrap();
    let outcomes: Vec<&str> = audit
        .rows
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "success").count(),
        2,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "denied").count(),
        3,
        "{outcomes:?}"
    );
    let text = serde_json::to_string(&audit.rows).unwrap();
    assert!(
        !text.contains("alice-password") && !text.contains("\"wrong\""),
        "{text}"
    );
}

#[tokio::test]
async fn failed_logins_lock_the_account_and_addresses_are_throttled() {
    let server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .security("lockout_attempts", 3)
        .security("lockout_minutes", 5)
        .security("login_rate_per_minute", 5)
        .start()
        .await;
    let client = server.client();
    for _ in 0..3 {
        assert_api_error(
            client.login("alice", "nope").await,
            401,
            "invalid_credentials",
        );
    }
    // Locked: even the right password is refused, and says for how long.
    let locked = assert_api_error(
        client.login("alice", "alice-password").await,
        429,
        "account_locked",
    );
    assert_eq!(locked.retry_after, Some(300));
    // Other accounts are not locked...
    client.login("admin", &server.admin_password).await.unwrap();
    // ...but this address has spent its 5 attempts a minute.
    let throttled = assert_api_error(
        client.login("admin", &server.admin_password).await,
        429,
        "rate_limited",
    );
    assert!(
        throttled.retry_after.is_some_and(|s| (1..=60).contains(&s)),
        "{throttled:?}"
    );
    let body = throttled.details.unwrap();
    assert!(body["retry_after_seconds"].as_u64().is_some(), "{body}");

    let metrics = server.client().metrics().await.unwrap();
    assert!(
        metrics.contains("berth_login_failures_total 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn client_tokens_are_minted_reset_and_revoked_with_immediate_effect() {
    let server = lab().await;
    let alice = server.login("alice", "alice-password").await;
    let minted = alice.create_token(Some("laptop")).await.unwrap();
    let cli = server.client().with_token(minted.token.expose());
    assert_eq!(cli.config().await.unwrap().user.username.as_str(), "alice");
    let second = alice.create_token(None).await.unwrap();
    let cli2 = server.client().with_token(second.token.expose());
    cli2.config().await.unwrap();

    // The token is stored hashed, and listed without it.
    let users_yaml = std::fs::read_to_string(server.config_dir().join("users.yaml")).unwrap();
    assert!(!users_yaml.contains(minted.token.expose()));
    let admin = server.admin().await;
    let view = admin.user("alice").await.unwrap();
    assert_eq!(view.clients.len(), 2);
    assert_eq!(view.clients[0].label.as_deref(), Some("laptop"));
    let raw = admin
        .send(Method::GET, "/api/v1/users/alice", &[], "")
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&raw.body);
    assert!(
        !text.contains("hash") && !text.contains(minted.token.expose()),
        "{text}"
    );

    // Revoking one token stops it at once; the other keeps working.
    alice.revoke_token(second.client_id).await.unwrap();
    assert_api_error(cli2.config().await, 401, "unauthenticated");
    cli.config().await.unwrap();
    assert_api_error(alice.revoke_token(second.client_id).await, 404, "not_found");

    // An admin reset replaces every token with one, shown once.
    let reset = admin
        .reset_user_token("alice", Some("new laptop"))
        .await
        .unwrap();
    assert_api_error(cli.config().await, 401, "unauthenticated");
    let fresh = server.client().with_token(reset.token.expose());
    assert_eq!(
        fresh.config().await.unwrap().user.username.as_str(),
        "alice"
    );
    admin
        .revoke_user_token("alice", reset.client_id)
        .await
        .unwrap();
    assert_api_error(fresh.config().await, 401, "unauthenticated");

    // A client token cannot act for another user, and the main.yaml admin has no tokens.
    assert_api_error(admin.create_token(None).await, 409, "no_client_tokens");
    assert_api_error(alice.reset_user_token("bob", None).await, 403, "forbidden");
    // Labels are checked.
    let long = "x".repeat(101);
    assert_api_error(alice.create_token(Some(&long)).await, 422, "invalid");
    let _ = NewTokenRequest::default();
}

#[tokio::test]
async fn deleting_disabling_or_changing_a_password_invalidates_tokens_at_once() {
    let server = lab().await;
    let admin = server.admin().await;
    let alice = server.login("alice", "alice-password").await;
    let cli = server
        .client()
        .with_token(alice.create_token(None).await.unwrap().token.expose());
    let bob = server.login("bob", "bob-password").await;

    let mut body = UserBody {
        username: berth_types::Username::new("alice").unwrap(),
        role: berth_types::Role::User,
        password: None,
        templates: vec!["base".into()],
        access_locked: false,
        disabled: true,
        metadata: Default::default(),
        machines: Vec::new(),
    };
    admin.update_user("alice", &body).await.unwrap();
    assert_api_error(alice.config().await, 401, "unauthenticated");
    assert_api_error(cli.config().await, 401, "unauthenticated");
    assert_api_error(
        server.client().login("alice", "alice-password").await,
        401,
        "invalid_credentials",
    );

    // Enabled again with a new password: the old login stays dead, the client token lives.
    body.disabled = false;
    body.password = Some(berth_types::api::Secret::new("alice-new-password"));
    admin.update_user("alice", &body).await.unwrap();
    assert_api_error(alice.config().await, 401, "unauthenticated");
    cli.config().await.unwrap();
    server
        .login("alice", "alice-new-password")
        .await
        .config()
        .await
        .unwrap();

    // A deleted user's login dies, and a new user of the same name does not inherit it.
    bob.config().await.unwrap();
    admin.delete_user("bob").await.unwrap();
    assert_api_error(bob.config().await, 401, "unauthenticated");
    let recreated = UserBody {
        username: berth_types::Username::new("bob").unwrap(),
        password: Some(berth_types::api::Secret::new("bob-password")),
        templates: vec!["base".into()],
        ..body
    };
    admin.create_user(&recreated).await.unwrap();
    assert_api_error(bob.config().await, 401, "unauthenticated");
}

fn jwt_with(header: &str, claims: &serde_json::Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[tokio::test]
async fn forged_expired_and_malformed_credentials_are_refused() {
    let server = lab().await;
    let config = server.state.config.current();
    let alice = config.user("alice").unwrap();
    let hash = alice.password_hash.as_ref().unwrap().as_str().to_owned();
    let key = server.jwt_key();
    let now = OffsetDateTime::now_utc();

    // A token the server signs itself works: the test builds tokens the same way.
    let good = key.sign(&Claims::new("alice", Some(alice.id), &hash, now));
    server.client().with_token(&good).config().await.unwrap();

    let mut expired = Claims::new(
        "alice",
        Some(alice.id),
        &hash,
        now - time::Duration::hours(25),
    );
    expired.exp = (now - time::Duration::hours(1)).unix_timestamp();
    let wrong_id = Claims::new("alice", Some(berth_types::UserId::random()), &hash, now);
    let admin_claim = Claims::new("admin", Some(alice.id), &hash, now);
    let claims = json!({"sub": "admin", "iat": now.unix_timestamp(), "exp": now.unix_timestamp() + 60, "pwd": "x"});
    let other_key = berth_server::JwtKey::from_bytes([7; 32]);
    let mut tampered = good.clone();
    tampered.replace_range(good.len() - 3.., "AAA");
    for token in [
        key.sign(&expired),
        key.sign(&wrong_id),
        key.sign(&admin_claim),
        other_key.sign(&Claims::new("alice", Some(alice.id), &hash, now)),
        jwt_with(r#"{"alg":"none","typ":"JWT"}"#, &claims, ""),
        jwt_with(r#"{"alg":"HS512","typ":"JWT"}"#, &claims, "AAAA"),
        tampered,
        "a.b.c".to_owned(),
        berth_types::ClientId::random().to_string(),
        "not-a-token".to_owned(),
    ] {
        let failure = assert_api_error(
            server.client().with_token(&token).config().await,
            401,
            "unauthenticated",
        );
        assert!(failure.message.contains("invalid"), "{failure:?}");
    }

    // No credentials: 401 with a WWW-Authenticate challenge.
    let anonymous = server
        .client()
        .send(Method::GET, "/api/v1/config", &[], "")
        .await
        .unwrap();
    assert_error(&anonymous, 401, "unauthenticated");
    assert!(anonymous.headers.get("www-authenticate").is_some());
    // Unreadable credentials: 400.
    for header in ["Basic YWxpY2U6cHc=", "Bearer", "Bearer a b", "Token abc"] {
        let answer = server
            .client()
            .send(
                Method::GET,
                "/api/v1/config",
                &[("authorization", header)],
                "",
            )
            .await
            .unwrap();
        assert_error(&answer, 400, "malformed_authorization");
    }
    let twice = server
        .raw(
            format!(
                "GET /api/v1/config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {good}\r\n\
             Authorization: Bearer {good}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(twice.status, 400, "{twice:?}");

    // Users are not admins.
    let alice_client = server.client().with_token(&good);
    assert_api_error(alice_client.users().await, 403, "forbidden");
    assert_api_error(alice_client.monitor().await, 403, "forbidden");
    assert_api_error(alice_client.templates().await, 403, "forbidden");
}

#[tokio::test]
async fn an_imported_pbkdf2_hash_is_upgraded_to_argon2id_at_login() {
    use pbkdf2::password_hash::CustomizedPasswordHasher;
    let server = lab().await;
    let pbkdf2 = pbkdf2::Pbkdf2::default()
        .hash_password_with_params(
            b"imported-password",
            b"saltsaltsaltsalt",
            pbkdf2::Params::new(1000).unwrap(),
        )
        .unwrap()
        .to_string();
    let hash = berth_config::PasswordHash::from_phc(pbkdf2).unwrap();
    server
        .state
        .config_store
        .update_user("alice", |u| u.password_hash = Some(hash))
        .unwrap();
    server.state.config.reload().unwrap();

    let alice = server.login("alice", "imported-password").await;
    alice.config().await.unwrap();
    let users_yaml = std::fs::read_to_string(server.config_dir().join("users.yaml")).unwrap();
    assert!(users_yaml.contains("$argon2id$"), "{users_yaml}");
    assert!(!users_yaml.contains("$pbkdf2"), "{users_yaml}");
    // The token issued at that login carries the new hash, and the new hash verifies.
    alice.config().await.unwrap();
    server
        .login("alice", "imported-password")
        .await
        .config()
        .await
        .unwrap();
}

/// Logs in as `user` with a wrong password, as if from `forwarded_for` behind a proxy on this
/// machine; the answer's status and error code.
async fn failed_login_via(server: &TestServer, user: &str, forwarded_for: &str) -> (u16, String) {
    let body = format!(r#"{{"username": "{user}", "password": "wrong"}}"#);
    let answer = server
        .client()
        .send(
            "POST".parse().unwrap(),
            "/api/v1/auth/login",
            &[
                ("content-type", "application/json"),
                ("x-forwarded-for", forwarded_for),
            ],
            body,
        )
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    (
        answer.status,
        json["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_visitor_has_their_own_login_budget() {
    let behind = TestServer::builder()
        .security("login_rate_per_minute", 2)
        .security("trusted_proxies", "[127.0.0.1, 10.0.0.0/8]")
        .start()
        .await;
    for _ in 0..2 {
        assert_eq!(
            failed_login_via(&behind, "admin", "203.0.113.1, 10.1.1.1")
                .await
                .0,
            401
        );
    }
    assert_eq!(
        failed_login_via(&behind, "admin", "203.0.113.1").await,
        (429, "rate_limited".to_owned()),
        "the same visitor through the same proxies"
    );
    // A forged leftmost entry does not buy a fresh budget; another visitor has one.
    assert_eq!(
        failed_login_via(&behind, "admin", "198.51.100.9, 203.0.113.1")
            .await
            .0,
        429
    );
    assert_eq!(
        failed_login_via(&behind, "admin", "203.0.113.2").await.0,
        401
    );
    // The audit log names the visitor, not the proxy.
    let admin = behind.admin().await;
    let audit = admin
        .query_table(&serde_json::from_value(serde_json::json!({"table": "audit"})).unwrap())
        .await
        .unwrap();
    let rows = serde_json::to_string(&audit).unwrap();
    assert!(rows.contains("203.0.113.2"), "{rows}");

    // Without trusted proxies the header is ignored: every visitor is this machine.
    let direct = TestServer::builder()
        .security("login_rate_per_minute", 2)
        .start()
        .await;
    for forwarded in ["203.0.113.1", "203.0.113.2"] {
        assert_eq!(failed_login_via(&direct, "admin", forwarded).await.0, 401);
    }
    assert_eq!(
        failed_login_via(&direct, "admin", "203.0.113.3").await,
        (429, "rate_limited".to_owned())
    );
}

/// 127.0.0.`last`: a client address of its own on this host's loopback network.
fn address(last: u8) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(127, 0, 0, last)
}

/// The status, error code and `Retry-After` of a login answer.
fn outcome(answer: &crate::common::RawAnswer) -> (u16, String, Option<u64>) {
    let code = serde_json::from_str::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let retry = answer.head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().parse().ok())?
    });
    (answer.status, code, retry)
}

#[tokio::test]
async fn failures_lock_the_address_that_made_them_not_the_account() {
    let server = lab().await;
    let (attacker, user) = (address(2), address(3));
    for _ in 0..5 {
        let answer = server.login_from(attacker, "alice", "guess").await;
        assert_eq!(outcome(&answer).1, "invalid_credentials", "{}", answer.body);
    }
    // The attacker's address is locked out of the account, even with the right password.
    let locked = server.login_from(attacker, "alice", "alice-password").await;
    assert_eq!(
        outcome(&locked),
        (429, "account_locked".to_owned(), Some(300)),
        "{}",
        locked.body
    );
    // Alice, from her own address, logs in; the attacker's address stays locked.
    let answer = server.login_from(user, "alice", "alice-password").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let locked = server.login_from(attacker, "alice", "alice-password").await;
    assert_eq!(outcome(&locked).1, "account_locked");
    // The lock ends lockout_minutes after the failures (the installation's clock moves).
    server.clock.advance(std::time::Duration::from_secs(301));
    let answer = server.login_from(attacker, "alice", "alice-password").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn failures_spread_over_addresses_slow_the_account_down_but_not_its_known_addresses() {
    let server = lab().await;
    let home = address(3);
    let answer = server.login_from(home, "alice", "alice-password").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Five addresses, one failure each: no address is locked, the account is throttled.
    for last in 10..15 {
        let answer = server.login_from(address(last), "alice", "guess").await;
        assert_eq!(outcome(&answer).1, "invalid_credentials", "{}", answer.body);
    }
    let throttled = server
        .login_from(address(15), "alice", "alice-password")
        .await;
    assert_eq!(
        outcome(&throttled),
        (429, "login_throttled".to_owned(), Some(1)),
        "{}",
        throttled.body
    );
    // Alice's own address is not slowed down.
    let answer = server.login_from(home, "alice", "alice-password").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Once the delay has passed, one attempt is admitted; its failure doubles the delay.
    server.clock.advance(std::time::Duration::from_secs(1));
    let answer = server.login_from(address(16), "alice", "guess").await;
    assert_eq!(outcome(&answer).1, "invalid_credentials", "{}", answer.body);
    let throttled = server.login_from(address(17), "alice", "guess").await;
    assert_eq!(
        outcome(&throttled),
        (429, "login_throttled".to_owned(), Some(2))
    );
    // Other accounts are untouched.
    let answer = server.login_from(address(17), "bob", "bob-password").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Throttled attempts are audited with the reason.
    let admin = server.admin().await;
    let audit = admin
        .query_table(&TableQuery {
            table: "audit".into(),
            filters: vec![TableFilter {
                column: "action".into(),
                op: FilterOp::Eq,
                value: json!("auth.login"),
            }],
            ..TableQuery::default()
        })
        .await
        .unwrap();
    let throttles: Vec<_> = audit
        .rows
        .iter()
        .filter(|r| r["details"]["reason"] == "login throttled")
        .collect();
    assert_eq!(throttles.len(), 2, "{:?}", audit.rows);
    assert!(
        throttles
            .iter()
            .all(|r| r["outcome"] == "denied" && r["target"] == "alice"),
        "{throttles:?}"
    );
}

#[tokio::test]
async fn a_burst_of_parallel_guesses_is_counted_one_by_one() {
    let server = lab().await;
    // Twenty guesses at once from five addresses (four each: no address reaches its lock). The
    // clock stands still, so after the fifth failure every other guess falls in the delay.
    let guesses = (0..20u8).map(|i| {
        let server = &server;
        async move {
            outcome(
                &server
                    .login_from(address(20 + i % 5), "alice", "guess")
                    .await,
            )
            .1
        }
    });
    let codes = futures_util::future::join_all(guesses).await;
    let checked = codes.iter().filter(|c| *c == "invalid_credentials").count();
    let throttled = codes.iter().filter(|c| *c == "login_throttled").count();
    assert_eq!((checked, throttled), (5, 15), "{codes:?}");
}

#[tokio::test]
async fn the_main_admin_cannot_be_locked_out_of_their_address_by_another() {
    let server = lab().await;
    let admins_address = address(4);
    let answer = server
        .login_from(admins_address, "admin", &server.admin_password)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // One address locks itself out; then many addresses guess at once.
    for _ in 0..6 {
        server.login_from(address(20), "admin", "guess").await;
    }
    for last in 21..30 {
        server.login_from(address(last), "admin", "guess").await;
    }
    let locked = server
        .login_from(address(20), "admin", &server.admin_password)
        .await;
    assert_eq!(outcome(&locked).1, "account_locked");
    let throttled = server
        .login_from(address(30), "admin", &server.admin_password)
        .await;
    assert_eq!(outcome(&throttled).1, "login_throttled");
    // The admin, from where they log in, is neither locked nor slowed down.
    let answer = server
        .login_from(admins_address, "admin", &server.admin_password)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// Logs in as `user` with `password`, as if from `forwarded_for` behind a proxy on this
/// machine; the answer's status and error code.
async fn login_via(
    server: &TestServer,
    user: &str,
    password: &str,
    forwarded_for: &str,
) -> (u16, String) {
    let body = json!({ "username": user, "password": password }).to_string();
    let answer = server
        .client()
        .send(
            "POST".parse().unwrap(),
            "/api/v1/auth/login",
            &[
                ("content-type", "application/json"),
                ("x-forwarded-for", forwarded_for),
            ],
            body,
        )
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    (
        answer.status,
        json["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn the_addresses_of_an_ipv6_64_share_a_lock_and_a_login_budget() {
    let server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .security("trusted_proxies", "[127.0.0.1]")
        .security("login_rate_per_minute", 100)
        .start()
        .await;
    // Five failures from five addresses of one /64 are five from one client...
    for last in 1..=5 {
        let from = format!("2001:db8:1:2::{last}");
        assert_eq!(
            login_via(&server, "alice", "guess", &from).await,
            (401, "invalid_credentials".to_owned()),
            "{from}"
        );
    }
    // ...which locks all of it out of the account, not throttles the account.
    assert_eq!(
        login_via(&server, "alice", "alice-password", "2001:db8:1:2:ffff::9").await,
        (429, "account_locked".to_owned())
    );
    let answer = login_via(&server, "alice", "alice-password", "2001:db8:1:3::1").await;
    assert_eq!(answer.0, 200, "the next /64 is another client: {answer:?}");
    // The audit log keeps each full address.
    let admin = server.admin().await;
    let audit = admin
        .query_table(&serde_json::from_value(json!({"table": "audit"})).unwrap())
        .await
        .unwrap();
    let rows = serde_json::to_string(&audit).unwrap();
    for address in ["2001:db8:1:2::3", "2001:db8:1:2:ffff::9", "2001:db8:1:3::1"] {
        assert!(rows.contains(address), "{address}: {rows}");
    }

    // One login budget per /64.
    let limited = TestServer::builder()
        .security("trusted_proxies", "[127.0.0.1]")
        .security("login_rate_per_minute", 2)
        .start()
        .await;
    for from in ["2001:db8:9:9::1", "2001:db8:9:9::2"] {
        assert_eq!(login_via(&limited, "admin", "guess", from).await.0, 401);
    }
    assert_eq!(
        login_via(&limited, "admin", "guess", "2001:db8:9:9:ffff::1").await,
        (429, "rate_limited".to_owned())
    );
    assert_eq!(
        login_via(&limited, "admin", "guess", "2001:db8:9:a::1")
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn refused_guesses_never_queue_so_the_owner_gets_through_a_flood() {
    let server = lab().await;
    let home = address(3);
    let answer = server.login_from(home, "alice", "alice-password").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    for last in 10..15 {
        let answer = server.login_from(address(last), "alice", "guess").await;
        assert_eq!(outcome(&answer).1, "invalid_credentials", "{}", answer.body);
    }
    // An admitted attempt holds the account's queue (as one does while its password is
    // checked). The flood of throttled guesses is answered all the same, without waiting
    // for it; the owner, in flight meanwhile, is admitted and gets their turn.
    let turn = server.state.hold_login_turn("alice").await.unwrap();
    let flood = (40..80u8).map(|last| {
        let server = &server;
        async move { outcome(&server.login_from(address(last), "alice", "guess").await) }
    });
    let flood_then_release = async {
        let codes = futures_util::future::join_all(flood).await;
        drop(turn);
        codes
    };
    let (owner, codes) = tokio::join!(
        server.login_from(home, "alice", "alice-password"),
        flood_then_release
    );
    assert!(
        codes
            .iter()
            .all(|(status, code, _)| *status == 429 && code == "login_throttled"),
        "{codes:?}"
    );
    assert_eq!(owner.status, 200, "{}", owner.body);

    // Forty refusals in one delay period are one audit entry (and one warning).
    let admin = server.admin().await;
    let audit = admin
        .query_table(&TableQuery {
            table: "audit".into(),
            filters: vec![TableFilter {
                column: "action".into(),
                op: FilterOp::Eq,
                value: json!("auth.login"),
            }],
            ..TableQuery::default()
        })
        .await
        .unwrap();
    let throttles = audit
        .rows
        .iter()
        .filter(|r| r["details"]["reason"] == "login throttled")
        .count();
    assert_eq!(throttles, 1, "{:?}", audit.rows);
    // The refusals are counted all the same.
    let metrics = server.client().metrics().await.unwrap();
    assert!(
        metrics.contains("berth_login_failures_total 45"),
        "{metrics}"
    );
}
