//! The admin UI over raw HTTP against a real server: login, sessions, CSRF, permissions,
//! security headers, and the API's acceptance of the session cookie; the fleet pages against
//! the SSH test machines (`fleet`), and the operations pages on them (`operations`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[path = "../common/mod.rs"]
mod common;

mod fleet;
mod operations;

use common::{RawAnswer, TestServer};

/// One request; `cookies` as a `Cookie` header value, `body` as a urlencoded form.
async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    cookies: &str,
    body: Option<&str>,
    extra: &[(&str, &str)],
) -> RawAnswer {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        server.addr
    );
    if !cookies.is_empty() {
        request.push_str(&format!("Cookie: {cookies}\r\n"));
    }
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        if !extra
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    } else {
        request.push_str("\r\n");
    }
    server.raw(request.as_bytes()).await
}

/// The value of header `name` (lowercase) in the answer, the first one.
fn header<'a>(answer: &'a RawAnswer, name: &str) -> Option<&'a str> {
    answer.head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Every `Set-Cookie` of the answer.
fn set_cookies(answer: &RawAnswer) -> Vec<String> {
    answer
        .head
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("set-cookie")
                .then(|| v.trim().to_owned())
        })
        .collect()
}

fn cookie_value(answer: &RawAnswer, name: &str) -> Option<String> {
    set_cookies(answer).iter().find_map(|c| {
        let (pair, _) = c.split_once(';').unwrap_or((c, ""));
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// The value of the hidden `_csrf` input of a page.
fn form_token(body: &str) -> String {
    let at = body
        .find("name=\"_csrf\" value=\"")
        .expect("a page with a CSRF field");
    let rest = &body[at + "name=\"_csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A path pattern of the route table with its parameters filled in.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{id}", "0b0e8d9e-5c57-4a1b-9a4e-1f2d3c4b5a69")
        .replace("{name}", "ann")
        .replace("{file}", "berth.css")
}

/// A logged-in browser: its session cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
    session: String,
}

async fn login(server: &TestServer, username: &str, password: &str, planted: &str) -> Browser {
    let page = send(server, "GET", "/login", "", None, &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let pre = cookie_value(&page, "berth_login").expect("a pre-session cookie");
    let token = form_token(&page.body);
    let cookies = if planted.is_empty() {
        format!("berth_login={pre}")
    } else {
        format!("berth_login={pre}; berth_session={planted}")
    };
    let body = format!(
        "_csrf={}&username={}&password={}",
        encode(&token),
        encode(username),
        encode(password)
    );
    let answer = send(server, "POST", "/login", &cookies, Some(&body), &[]).await;
    assert_eq!(answer.status, 303, "{}\n{}", answer.head, answer.body);
    assert_eq!(header(&answer, "location"), Some("/"));
    let set = set_cookies(&answer);
    let session_cookie = set
        .iter()
        .find(|c| c.starts_with("berth_session="))
        .expect("a session cookie");
    assert!(session_cookie.contains("HttpOnly"), "{session_cookie}");
    assert!(session_cookie.contains("SameSite=Lax"), "{session_cookie}");
    assert!(
        !session_cookie.contains("Secure"),
        "plain HTTP: {session_cookie}"
    );
    let session = cookie_value(&answer, "berth_session").unwrap();
    assert!(session.len() >= 43, "256 bits of id: {session}");
    let cookie = format!("berth_session={session}");
    let home = send(server, "GET", "/", &cookie, None, &[]).await;
    assert_eq!(home.status, 200, "{}", home.body);
    Browser {
        csrf: form_token(&home.body),
        cookie,
        session,
    }
}

async fn server() -> TestServer {
    TestServer::builder()
        .template("base", "")
        .user("ann", "ann-password-1", &["base"])
        .start()
        .await
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_login_and_every_answer_has_security_headers() {
    let server = server().await;
    for path in [
        "/",
        "/admin/dashboard",
        "/admin/users",
        "/admin/templates",
        "/admin/audit",
        "/admin/recordings",
    ] {
        let answer = send(&server, "GET", path, "", None, &[]).await;
        assert_eq!(answer.status, 303, "{path}");
        let back = format!("/login?next={}", encode(path));
        assert_eq!(header(&answer, "location"), Some(back.as_str()), "{path}");
    }
    // The login page brings them back.
    let answer = send(&server, "GET", "/admin/users?q=a%20b", "", None, &[]).await;
    assert_eq!(
        header(&answer, "location"),
        Some("/login?next=%2Fadmin%2Fusers%3Fq%3Da%2520b")
    );
    let page = send(
        &server,
        "GET",
        "/login?next=%2Fadmin%2Fusers%3Fq%3Da%2520b",
        "",
        None,
        &[],
    )
    .await;
    assert!(
        page.body.contains("name=\"next\" value=\"") && page.body.contains("users?q=a%20b\""),
        "{}",
        page.body
    );
    // A form post is not replayed after login.
    let answer = send(&server, "POST", "/logout", "", Some("_csrf=x"), &[]).await;
    assert_eq!(answer.status, 303);
    assert_eq!(header(&answer, "location"), Some("/login"));
    // A session id nobody issued is no session.
    let answer = send(&server, "GET", "/", "berth_session=made-up", None, &[]).await;
    assert_eq!(answer.status, 303);
    for path in ["/login", "/healthz", "/api/v1/users", "/static/berth.css"] {
        let answer = send(&server, "GET", path, "", None, &[]).await;
        let csp = header(&answer, "content-security-policy").unwrap_or_default();
        for part in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "connect-src 'self'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert_eq!(header(&answer, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&answer, "referrer-policy"), Some("same-origin"));
        assert_eq!(
            header(&answer, "strict-transport-security"),
            None,
            "plain HTTP"
        );
    }
    let page = send(&server, "GET", "/login", "", None, &[]).await;
    assert!(!page.body.contains("<script>"), "no inline script");
}

#[tokio::test]
async fn login_needs_the_pre_session_token_and_a_right_password() {
    let server = server().await;
    let page = send(&server, "GET", "/login", "", None, &[]).await;
    let pre = cookie_value(&page, "berth_login").unwrap();
    let token = form_token(&page.body);
    let form = |t: &str, pw: &str| format!("_csrf={t}&username=ann&password={pw}");
    // No cookie, a wrong token, a cookie without a form token: all refused before any check.
    for (cookie, body) in [
        (String::new(), form(&token, "ann-password-1")),
        (
            format!("berth_login={pre}"),
            form("forged", "ann-password-1"),
        ),
        (
            format!("berth_login={pre}"),
            "username=ann&password=ann-password-1".to_owned(),
        ),
    ] {
        let answer = send(&server, "POST", "/login", &cookie, Some(&body), &[]).await;
        assert_eq!(answer.status, 403, "{cookie} {body}");
        assert!(cookie_value(&answer, "berth_session").is_none());
    }
    let answer = send(
        &server,
        "POST",
        "/login",
        &format!("berth_login={pre}"),
        Some(&form(&token, "wrong")),
        &[],
    )
    .await;
    assert_eq!(answer.status, 401);
    assert!(
        answer.body.contains("wrong username or password"),
        "{}",
        answer.body
    );
    assert!(cookie_value(&answer, "berth_session").is_none());
    // A form from another site.
    let answer = send(
        &server,
        "POST",
        "/login",
        &format!("berth_login={pre}"),
        Some(&form(&token, "ann-password-1")),
        &[("Origin", "http://evil.example")],
    )
    .await;
    assert_eq!(answer.status, 403);
    login(&server, "ann", "ann-password-1", "").await;
}

#[tokio::test]
async fn login_replaces_a_planted_session_id() {
    let server = server().await;
    let first = login(&server, "ann", "ann-password-1", "").await;
    // The attacker's own valid session, planted in the victim's browser before login.
    let second = login(&server, "ann", "ann-password-1", &first.session).await;
    assert_ne!(first.session, second.session);
    let old = send(&server, "GET", "/", &first.cookie, None, &[]).await;
    assert_eq!(old.status, 303, "the replaced session is over");
    let new = send(&server, "GET", "/", &second.cookie, None, &[]).await;
    assert_eq!(new.status, 200);
}

#[tokio::test]
async fn users_get_403_on_admin_pages_and_admins_see_them() {
    let server = server().await;
    let ann = login(&server, "ann", "ann-password-1", "").await;
    // Every admin page of the route table, as the same HTML 403 page.
    let admin_pages: Vec<String> = berth_server::page_routes()
        .into_iter()
        .filter(|e| e.method == "GET" && e.path.starts_with("/admin"))
        .map(|e| concrete(e.path))
        .collect();
    assert!(admin_pages.len() >= 10, "{admin_pages:?}");
    for path in &admin_pages {
        let answer = send(&server, "GET", path, &ann.cookie, None, &[]).await;
        assert_eq!(answer.status, 403, "{path}");
        assert!(answer.body.contains("This page is for admins."), "{path}");
        assert!(
            header(&answer, "content-type").is_some_and(|t| t.starts_with("text/html")),
            "{path}: {}",
            answer.head
        );
    }
    let body = format!("_csrf={}&username=eve&password=eve-password-1", ann.csrf);
    let answer = send(
        &server,
        "POST",
        "/admin/users",
        &ann.cookie,
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(answer.status, 403);
    assert!(server.state.config.current().user("eve").is_none());

    let admin = login(&server, "admin", &server.admin_password, "").await;
    for path in [
        "/admin/dashboard",
        "/admin/users",
        "/admin/templates",
        "/admin/audit",
        "/admin/recordings",
    ] {
        let answer = send(&server, "GET", path, &admin.cookie, None, &[]).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    }
    let users = send(
        &server,
        "GET",
        "/admin/users?q=an",
        &admin.cookie,
        None,
        &[],
    )
    .await;
    assert!(users.body.contains(">ann</a>"), "{}", users.body);
}

#[tokio::test]
async fn state_changes_need_the_session_csrf_token_and_this_origin() {
    let server = server().await;
    let admin = login(&server, "admin", &server.admin_password, "").await;
    let other = login(&server, "ann", "ann-password-1", "").await;
    let form = |token: &str| {
        format!("_csrf={token}&username=bob&password=bob-password-1&role=user&templates=base")
    };
    for (body, extra) in [
        (form(""), vec![]),
        ("username=bob&password=bob-password-1".to_owned(), vec![]),
        (form(&other.csrf), vec![]),
        (form(&admin.csrf), vec![("Origin", "http://evil.example")]),
        (
            form(&admin.csrf),
            vec![("Referer", "http://evil.example/page")],
        ),
    ] {
        let answer = send(
            &server,
            "POST",
            "/admin/users",
            &admin.cookie,
            Some(&body),
            &extra,
        )
        .await;
        assert_eq!(answer.status, 403, "{body} {extra:?}");
    }
    assert!(server.state.config.current().user("bob").is_none());
    // A GET changes nothing, whatever it carries.
    let answer = send(
        &server,
        "GET",
        &format!("/admin/users?{}", form(&admin.csrf)),
        &admin.cookie,
        None,
        &[],
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(server.state.config.current().user("bob").is_none());

    let origin = format!("http://{}", server.addr);
    let answer = send(
        &server,
        "POST",
        "/admin/users",
        &admin.cookie,
        Some(&form(&admin.csrf)),
        &[("Origin", &origin)],
    )
    .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let on_disk = std::fs::read_to_string(server.config_dir().join("users.yaml")).unwrap();
    assert!(on_disk.contains("bob"), "{on_disk}");
    assert_eq!(
        server.state.config.current().user("bob").unwrap().templates,
        ["base"]
    );
}

#[tokio::test]
async fn the_api_takes_the_session_cookie_with_its_csrf_header() {
    let server = server().await;
    let ann = login(&server, "ann", "ann-password-1", "").await;
    let config = send(&server, "GET", "/api/v1/config", &ann.cookie, None, &[]).await;
    assert_eq!(config.status, 200, "{}", config.body);
    let json = [("Content-Type", "application/json")];
    let answer = send(
        &server,
        "POST",
        "/api/v1/auth/tokens",
        &ann.cookie,
        Some("{}"),
        &json,
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(answer.body.contains("X-CSRF-Token"), "{}", answer.body);
    let wrong = [
        ("Content-Type", "application/json"),
        ("X-CSRF-Token", "nope"),
    ];
    let answer = send(
        &server,
        "POST",
        "/api/v1/auth/tokens",
        &ann.cookie,
        Some("{}"),
        &wrong,
    )
    .await;
    assert_eq!(answer.status, 403);
    let right = [
        ("Content-Type", "application/json"),
        ("X-CSRF-Token", ann.csrf.as_str()),
    ];
    let answer = send(
        &server,
        "POST",
        "/api/v1/auth/tokens",
        &ann.cookie,
        Some("{}"),
        &right,
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    // Bearer callers need no CSRF token.
    let client = server.login("ann", "ann-password-1").await;
    assert!(client.config().await.is_ok());
}

#[tokio::test]
async fn logout_ends_the_session_and_needs_its_token() {
    let server = server().await;
    let ann = login(&server, "ann", "ann-password-1", "").await;
    let answer = send(
        &server,
        "POST",
        "/logout",
        &ann.cookie,
        Some("_csrf=wrong"),
        &[],
    )
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        send(&server, "GET", "/", &ann.cookie, None, &[])
            .await
            .status,
        200
    );
    let body = format!("_csrf={}", ann.csrf);
    let answer = send(&server, "POST", "/logout", &ann.cookie, Some(&body), &[]).await;
    assert_eq!(answer.status, 303);
    assert_eq!(header(&answer, "location"), Some("/login"));
    assert_eq!(
        send(&server, "GET", "/", &ann.cookie, None, &[])
            .await
            .status,
        303
    );
    let api = send(&server, "GET", "/api/v1/config", &ann.cookie, None, &[]).await;
    assert_eq!(api.status, 401);
}

#[tokio::test]
async fn an_idle_session_expires_on_the_server() {
    let server = TestServer::builder()
        .user("ann", "ann-password-1", &[])
        .start()
        .await;
    // A one-second idle limit (main.yaml ends with its `security:` section).
    let main = server.config_dir().join("main.yaml");
    let mut text = std::fs::read_to_string(&main).unwrap();
    assert!(text.trim_end().ends_with("security:"), "{text}");
    text.push_str("  session_idle: 1s\n");
    std::fs::write(&main, text).unwrap();
    server.state.config.reload().unwrap();
    let ann = login(&server, "ann", "ann-password-1", "").await;
    let fresh = send(&server, "GET", "/", &ann.cookie, None, &[]).await;
    assert_eq!(fresh.status, 200, "in force while used");
    server.clock.advance(std::time::Duration::from_secs(2));
    let answer = send(&server, "GET", "/", &ann.cookie, None, &[]).await;
    assert_eq!(answer.status, 303, "expired after 1 s idle");
    assert_eq!(header(&answer, "location"), Some("/login?next=%2F"));
}

#[tokio::test]
async fn template_errors_show_beside_their_field_and_in_use_templates_stay() {
    let server = server().await;
    let admin = login(&server, "admin", &server.admin_password, "").await;
    let body = format!(
        "_csrf={}&name=bad&image=&network=none&pool=lots",
        admin.csrf
    );
    let answer = send(
        &server,
        "POST",
        "/admin/templates",
        &admin.cookie,
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(
        answer.body.contains("data-field=\"pool\""),
        "{}",
        answer.body
    );
    let body = format!(
        "_csrf={}&name=py&image=berth-test%2Fbase&network=none&persist=optional&record=1&users=ann",
        admin.csrf
    );
    let answer = send(
        &server,
        "POST",
        "/admin/templates",
        &admin.cookie,
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let config = server.state.config.current();
    assert!(config.template("py").is_some());
    assert!(
        config
            .user("ann")
            .unwrap()
            .templates
            .contains(&"py".to_owned())
    );
    let body = format!("_csrf={}", admin.csrf);
    let answer = send(
        &server,
        "POST",
        "/admin/templates/base/delete",
        &admin.cookie,
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert!(
        answer.body.contains("ann"),
        "the refusal names who uses it: {}",
        answer.body
    );
}

#[tokio::test]
async fn a_hostile_image_or_shell_is_shown_beside_its_field() {
    let server = server().await;
    let admin = login(&server, "admin", &server.admin_password, "").await;
    for (field, image, shell) in [
        ("image", "--privileged", "/bin/bash"),
        ("image", "debian|sh", "/bin/bash"),
        ("shell", "debian:12", "sh -c id"),
        ("shell", "debian:12", "--privileged"),
        ("shell", "debian:12", "/bin/sh|nc"),
    ] {
        let body = format!(
            "_csrf={}&name=hostile&image={}&shell={}&network=none&persist=optional",
            admin.csrf,
            encode(image),
            encode(shell)
        );
        let answer = send(
            &server,
            "POST",
            "/admin/templates",
            &admin.cookie,
            Some(&body),
            &[],
        )
        .await;
        assert_eq!(answer.status, 422, "{image} {shell}: {}", answer.body);
        assert!(
            answer
                .body
                .contains(&format!("class=\"field-error\" data-field=\"{field}\"")),
            "{image} {shell}: {}",
            answer.body
        );
    }
    assert!(server.state.config.current().template("hostile").is_none());

    // Arguments after the path make a list, shown again separated by spaces.
    let body = format!(
        "_csrf={}&name=fish&image=debian%3A12&shell={}&network=none&persist=optional",
        admin.csrf,
        encode("/usr/bin/fish  --login")
    );
    let answer = send(
        &server,
        "POST",
        "/admin/templates",
        &admin.cookie,
        Some(&body),
        &[],
    )
    .await;
    assert!(answer.status < 400, "{}", answer.body);
    let saved = server
        .state
        .config
        .current()
        .template("fish")
        .unwrap()
        .shell
        .clone();
    assert_eq!(saved.argv(), ["/usr/bin/fish", "--login"]);
    let page = send(
        &server,
        "GET",
        "/admin/templates/fish",
        &admin.cookie,
        None,
        &[],
    )
    .await;
    assert!(
        page.body.contains("value=\"/usr/bin/fish --login\""),
        "{}",
        page.body
    );

    // An argument with spaces: the field is a JSON array, shown as one and saved back as it
    // was, however often the page is saved.
    let tmux = ["/bin/bash", "-c", "exec tmux new -A"];
    let mut typed = serde_json::to_string(&tmux).unwrap();
    for round in 0..2 {
        let body = format!(
            "_csrf={}&name=tmux&image=debian%3A12&shell={}&network=none&persist=optional",
            admin.csrf,
            encode(&typed)
        );
        // Added, then saved again from its edit page.
        let path = if round == 0 {
            "/admin/templates"
        } else {
            "/admin/templates/tmux"
        };
        let answer = send(&server, "POST", path, &admin.cookie, Some(&body), &[]).await;
        assert!(answer.status < 400, "{typed}: {}", answer.body);
        let saved = server
            .state
            .config
            .current()
            .template("tmux")
            .unwrap()
            .shell
            .clone();
        assert_eq!(saved.argv(), tmux, "round {round}");
        let page = send(
            &server,
            "GET",
            "/admin/templates/tmux",
            &admin.cookie,
            None,
            &[],
        )
        .await;
        typed = shown_value(&page.body, "shell");
        assert_eq!(
            serde_json::from_str::<Vec<String>>(&typed).unwrap(),
            tmux,
            "{typed}"
        );
    }
    // A value that starts with `[` but is no JSON array of strings is an error at the field,
    // shown again as typed.
    for typed in ["[/bin/bash, -c]", "[\"/bin/bash\", 1]"] {
        let body = format!(
            "_csrf={}&name=broken&image=debian%3A12&shell={}&network=none&persist=optional",
            admin.csrf,
            encode(typed)
        );
        let answer = send(
            &server,
            "POST",
            "/admin/templates",
            &admin.cookie,
            Some(&body),
            &[],
        )
        .await;
        assert_eq!(answer.status, 422, "{typed}: {}", answer.body);
        assert!(
            answer
                .body
                .contains("class=\"field-error\" data-field=\"shell\""),
            "{typed}: {}",
            answer.body
        );
        assert!(
            answer.body.contains("JSON array of strings"),
            "{}",
            answer.body
        );
        assert_eq!(shown_value(&answer.body, "shell"), typed);
    }
    assert!(server.state.config.current().template("broken").is_none());
}

/// The value of the input named `name` on a page, its HTML escapes undone.
fn shown_value(page: &str, name: &str) -> String {
    let start = page
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no {name} input: {page}"));
    let input = &page[start..];
    let value = &input[input.find("value=\"").unwrap() + 7..];
    let value = &value[..value.find('"').unwrap()];
    value
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x22;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn the_home_page_lists_workspaces_shared_with_you() {
    let server = TestServer::builder()
        .template("pair", "shared: true")
        .user("ann", "ann-password-1", &["pair"])
        .user("bob", "bob-password-1", &[])
        .start()
        .await;
    let ann = server.login("ann", "ann-password-1").await;
    let workspace = ann
        .start_workspace(&berth_types::api::StartWorkspace {
            template: "pair".into(),
            persist: None,
            network: None,
        })
        .await
        .unwrap();
    let bob = login(&server, "bob", "bob-password-1", "").await;
    let home = send(&server, "GET", "/", &bob.cookie, None, &[]).await;
    assert!(!home.body.contains("Shared with me"), "nothing shared yet");
    ann.add_member(workspace.id, "bob", berth_types::MemberRole::Viewer)
        .await
        .unwrap();
    let home = send(&server, "GET", "/", &bob.cookie, None, &[]).await;
    assert!(home.body.contains("Shared with me"), "{}", home.body);
    assert!(
        home.body.contains(&format!(
            "<a class=\"button\" href=\"/w/{}\">Join</a>",
            workspace.id
        )),
        "{}",
        home.body
    );
    assert!(home.body.contains("<td>ann</td>"), "{}", home.body);
}

#[tokio::test]
async fn admins_page_through_every_recording_and_filter_it() {
    let server = server().await;
    let store = &server.state.store;
    let now = time::OffsetDateTime::now_utc();
    let mut ids = Vec::new();
    for (i, (owner, who)) in [("ann", "ann"), ("ann", "bob"), ("cat", "cat")]
        .into_iter()
        .enumerate()
    {
        let started = now - time::Duration::minutes(10 - i as i64);
        ids.push(
            common::insert_recording(&server, owner, who, started)
                .await
                .id,
        );
    }
    store
        .finish_recording(ids[0], now - time::Duration::minutes(7), 5000)
        .await
        .unwrap();
    let admin = login(&server, "admin", &server.admin_password, "").await;
    let page = |query: &str| {
        let path = format!("/admin/recordings{query}");
        let cookie = admin.cookie.clone();
        let server = &server;
        async move { send(server, "GET", &path, &cookie, None, &[]).await }
    };
    let all = page("").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert!(all.body.contains("3 recordings."), "{}", all.body);
    // Newest first, each with its replay link; the finished one has a length and a size.
    let at = |id: &berth_types::RecordingId| all.body.find(&format!("/recordings/{id}")).unwrap();
    assert!(at(&ids[2]) < at(&ids[1]) && at(&ids[1]) < at(&ids[0]));
    assert!(
        all.body.contains("<td>3m</td><td>5 KiB</td>"),
        "{}",
        all.body
    );
    assert!(all.body.contains("not finished"));

    let anns = page("?owner=ann").await;
    assert!(anns.body.contains("2 recordings."), "{}", anns.body);
    assert!(!anns.body.contains(&ids[2].to_string()));
    let bobs = page("?user=bob&from=2000-01-01").await;
    assert!(bobs.body.contains("1 recording."), "{}", bobs.body);
    assert!(bobs.body.contains(&ids[1].to_string()));
    let none = page("?to=2000-01-01").await;
    assert!(none.body.contains("No recordings."), "{}", none.body);

    // Hostile and malformed filters: escaped back into the form, or a 400 that says why.
    let hostile = page("?owner=%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert_eq!(hostile.status, 200);
    assert!(
        !hostile.body.contains("<script>alert(1)"),
        "{}",
        hostile.body
    );
    assert!(
        hostile.body.contains("value=\"&#60;script&#62;alert(1)"),
        "{}",
        hostile.body
    );
    let bad = page("?from=yesterday").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("YYYY-MM-DD"), "{}", bad.body);
    let cursor = page("?cursor=not-a-cursor").await;
    assert_eq!(cursor.status, 400, "{}", cursor.body);

    // A finished recording has a Delete button; it needs the session's CSRF token.
    let delete = format!("/admin/recordings/{}/delete", ids[0]);
    assert!(
        all.body.contains(&format!("action=\"{delete}\"")),
        "{}",
        all.body
    );
    assert!(
        !all.body
            .contains(&format!("/admin/recordings/{}/delete", ids[1])),
        "not for an unfinished one"
    );
    let origin = format!("http://{}", server.addr);
    let headers = [("Origin", origin.as_str())];
    let refused = send(
        &server,
        "POST",
        &delete,
        &admin.cookie,
        Some("_csrf=wrong"),
        &headers,
    )
    .await;
    assert_eq!(refused.status, 403);
    let body = format!("_csrf={}", admin.csrf);
    let done = send(
        &server,
        "POST",
        &delete,
        &admin.cookie,
        Some(&body),
        &headers,
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(header(&done, "location"), Some("/admin/recordings"));
    assert!(page("").await.body.contains("2 recordings."));
    let entries = page_of(&server, &admin, "/admin/audit?action=recording.delete").await;
    assert!(entries.contains(&ids[0].to_string()), "{entries}");
}

async fn page_of(server: &TestServer, browser: &Browser, path: &str) -> String {
    send(server, "GET", path, &browser.cookie, None, &[])
        .await
        .body
}

#[tokio::test]
async fn the_home_page_lists_my_recordings_also_of_removed_workspaces() {
    let server = server().await;
    let mut ids = Vec::new();
    for owner in ["ann", "cat"] {
        // A workspace that no longer exists: its recordings are kept (docs/recordings.md).
        let started = time::OffsetDateTime::now_utc() - time::Duration::hours(2);
        ids.push(
            common::insert_recording(&server, owner, owner, started)
                .await
                .id,
        );
    }
    server
        .state
        .store
        .finish_recording(ids[0], time::OffsetDateTime::now_utc(), 3000)
        .await
        .unwrap();
    let ann = login(&server, "ann", "ann-password-1", "").await;
    let home = send(&server, "GET", "/", &ann.cookie, None, &[]).await;
    assert_eq!(home.status, 200);
    let row = format!(
        "<tr class=\"recording\"><td><a href=\"/recordings/{}\">replay</a></td><td>(removed)</td><td>ann</td><td>2h 0m</td><td>3 KiB</td></tr>",
        ids[0]
    );
    assert!(home.body.contains(&row), "{}", home.body);
    assert!(!home.body.contains(&ids[1].to_string()), "not cat's");
    // An admin's home lists the admin's own recordings, not everyone's.
    let admin = login(&server, "admin", &server.admin_password, "").await;
    let home = send(&server, "GET", "/", &admin.cookie, None, &[]).await;
    assert!(
        home.body.contains("No recorded terminal sessions yet."),
        "{}",
        home.body
    );
}

#[tokio::test]
async fn every_form_of_the_table_needs_the_session_csrf_token() {
    let server = server().await;
    let admin = login(&server, "admin", &server.admin_password, "").await;
    let forms: Vec<String> = berth_server::page_routes()
        .into_iter()
        .filter(|e| e.method == "POST")
        .map(|e| concrete(e.path))
        .collect();
    assert!(forms.len() >= 12, "{forms:?}");
    let users_before = std::fs::read_to_string(server.config_dir().join("users.yaml")).unwrap();
    let templates_before =
        std::fs::read_to_string(server.config_dir().join("containers.yaml")).unwrap();
    let fields = "username=bob&password=bob-password-1&role=user&name=t2&image=x&template=base";
    for path in &forms {
        for body in [
            fields.to_owned(),
            format!("_csrf=&{fields}"),
            format!("_csrf=wrong&{fields}"),
            format!("_csrf={}x&{fields}", admin.csrf),
        ] {
            let answer = send(&server, "POST", path, &admin.cookie, Some(&body), &[]).await;
            assert_eq!(answer.status, 403, "{path} {body}: {}", answer.body);
            assert!(
                header(&answer, "content-type").is_some_and(|t| t.starts_with("text/html")),
                "{path}: {}",
                answer.head
            );
        }
    }
    assert_eq!(
        std::fs::read_to_string(server.config_dir().join("users.yaml")).unwrap(),
        users_before
    );
    assert_eq!(
        std::fs::read_to_string(server.config_dir().join("containers.yaml")).unwrap(),
        templates_before
    );
    // Still logged in: /logout refused too.
    let home = send(&server, "GET", "/", &admin.cookie, None, &[]).await;
    assert_eq!(home.status, 200);
}

#[tokio::test]
async fn admin_leads_to_the_dashboard_or_the_login_page() {
    let server = server().await;
    let ann = login(&server, "ann", "ann-password-1", "").await;
    let admin = login(&server, "admin", &server.admin_password, "").await;
    for path in ["/admin", "/admin/"] {
        let anonymous = send(&server, "GET", path, "", None, &[]).await;
        assert_eq!(anonymous.status, 303, "{path}");
        let back = format!("/login?next={}", encode(path));
        assert_eq!(header(&anonymous, "location"), Some(back.as_str()));
        let user = send(&server, "GET", path, &ann.cookie, None, &[]).await;
        assert_eq!(user.status, 403, "{path}");
        assert!(
            user.body.contains("This page is for admins."),
            "{}",
            user.body
        );
        let answer = send(&server, "GET", path, &admin.cookie, None, &[]).await;
        assert_eq!(answer.status, 303, "{path}");
        assert_eq!(header(&answer, "location"), Some("/admin/dashboard"));
    }
}

#[tokio::test]
async fn unknown_paths_are_an_html_page_for_browsers_and_json_for_programs() {
    let server = server().await;
    let browser = [(
        "Accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    )];
    let page = send(&server, "GET", "/no/such/page", "", None, &browser).await;
    assert_eq!(page.status, 404);
    assert!(
        header(&page, "content-type").is_some_and(|t| t.starts_with("text/html")),
        "{}",
        page.head
    );
    assert!(page.body.contains("<a href=\"/\">"), "{}", page.body);
    for (path, extra) in [
        ("/no/such/page", &[][..]),
        ("/no/such/page", &[("Accept", "application/json")][..]),
        ("/api/v1/nothing", &browser[..]),
        ("/api/nothing", &browser[..]),
    ] {
        let answer = send(&server, "GET", path, "", None, extra).await;
        assert_eq!(answer.status, 404, "{path}");
        assert!(
            header(&answer, "content-type") == Some("application/json"),
            "{path} {extra:?}: {}",
            answer.head
        );
        assert!(answer.body.contains("\"not_found\""), "{}", answer.body);
    }
}

#[tokio::test]
async fn the_templates_page_says_which_templates_are_shared() {
    let server = TestServer::builder()
        .template("base", "")
        .template("pair", "shared: true")
        .start()
        .await;
    let admin = login(&server, "admin", &server.admin_password, "").await;
    let page = send(&server, "GET", "/admin/templates", &admin.cookie, None, &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<th>Shared</th>"), "{}", page.body);
    let row = |name: &str| {
        let at = page
            .body
            .find(&format!(">{name}</a>"))
            .unwrap_or_else(|| panic!("a row for {name}"));
        let rest = &page.body[at..];
        rest[..rest.find("</tr>").unwrap()].to_owned()
    };
    assert!(row("pair").contains(">shared</span>"), "{}", row("pair"));
    assert!(!row("base").contains(">shared</span>"), "{}", row("base"));
}

#[tokio::test]
async fn pages_spend_the_api_budget_and_the_login_form_the_login_budget() {
    let server = TestServer::builder()
        .template("base", "")
        .user("ann", "ann-password-1", &["base"])
        .security("api_rate_per_minute", 4)
        .start()
        .await;
    // The login helper spends one of ann's requests (GET /).
    let ann = login(&server, "ann", "ann-password-1", "").await;
    for _ in 0..3 {
        let page = send(&server, "GET", "/", &ann.cookie, None, &[]).await;
        assert_eq!(page.status, 200);
    }
    let limited = send(&server, "GET", "/", &ann.cookie, None, &[]).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(
        header(&limited, "content-type").is_some_and(|t| t.starts_with("text/html")),
        "{}",
        limited.head
    );
    assert!(
        limited.body.contains("at most 4 a minute"),
        "{}",
        limited.body
    );
    let retry: u64 = header(&limited, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Ann's budget is hers: the API with her session says the same, another user is served.
    let api = send(&server, "GET", "/api/v1/config", &ann.cookie, None, &[]).await;
    assert_eq!(api.status, 429);
    let admin = login(&server, "admin", &server.admin_password, "").await;
    let page = send(&server, "GET", "/admin/dashboard", &admin.cookie, None, &[]).await;
    assert_eq!(page.status, 200);
    // The metrics count page routes by their pattern.
    let metrics = send(&server, "GET", "/metrics", "", None, &[]).await;
    for line in [
        "route=\"/\",method=\"GET\",status=\"429\"",
        "route=\"/admin/dashboard\",method=\"GET\",status=\"200\"",
        "route=\"/login\",method=\"POST\",status=\"303\"",
    ] {
        assert!(metrics.body.contains(line), "{line}\n{}", metrics.body);
    }

    let server = TestServer::builder()
        .security("login_rate_per_minute", 2)
        .start()
        .await;
    let page = send(&server, "GET", "/login", "", None, &[]).await;
    let pre = cookie_value(&page, "berth_login").unwrap();
    let body = format!(
        "_csrf={}&username=admin&password=wrong",
        encode(&form_token(&page.body))
    );
    let cookie = format!("berth_login={pre}");
    for _ in 0..2 {
        let answer = send(&server, "POST", "/login", &cookie, Some(&body), &[]).await;
        assert_eq!(answer.status, 401, "{}", answer.body);
    }
    let answer = send(&server, "POST", "/login", &cookie, Some(&body), &[]).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert!(header(&answer, "retry-after").is_some());
    assert!(
        header(&answer, "content-type").is_some_and(|t| t.starts_with("text/html")),
        "{}",
        answer.head
    );
}

#[tokio::test]
async fn every_html_page_is_sent_with_no_store() {
    let server = server().await;
    let admin = login(&server, "admin", &server.admin_password, "").await;
    // Every GET of the route table, UI rows and the terminal pages alike, as an admin who may
    // see them all; the dashboard's live part is a stream, not a page.
    let pages: Vec<String> = berth_server::page_routes()
        .into_iter()
        .chain(berth_server::endpoints())
        .filter(|e| e.method == "GET" && !e.websocket && !e.path.ends_with("/events"))
        .map(|e| concrete(e.path))
        .chain(["/no-such-page".to_owned()])
        .collect();
    // The login page as a visitor sees it, with its pre-session's CSRF token.
    let login_page = send(&server, "GET", "/login", "", None, &[]).await;
    assert_eq!(login_page.status, 200);
    assert_eq!(header(&login_page, "cache-control"), Some("no-store"));
    let mut html = Vec::new();
    for path in &pages {
        let answer = send(
            &server,
            "GET",
            path,
            &admin.cookie,
            None,
            &[("Accept", "text/html")],
        )
        .await;
        let kind = header(&answer, "content-type").unwrap_or_default();
        if kind.starts_with("text/html") {
            assert_eq!(
                header(&answer, "cache-control"),
                Some("no-store"),
                "{path}: {}",
                answer.head
            );
            html.push(path.as_str());
        } else if path.starts_with("/static/") || path.starts_with("/assets/") {
            assert_ne!(header(&answer, "cache-control"), Some("no-store"), "{path}");
        }
    }
    for must in [
        "/",
        "/admin/users",
        "/admin/users/ann",
        "/admin/audit",
        "/w/0b0e8d9e-5c57-4a1b-9a4e-1f2d3c4b5a69",
        "/g/0b0e8d9e-5c57-4a1b-9a4e-1f2d3c4b5a69",
        "/recordings/0b0e8d9e-5c57-4a1b-9a4e-1f2d3c4b5a69",
        "/no-such-page",
    ] {
        assert!(
            html.contains(&must),
            "{must} was not an HTML page: {html:?}"
        );
    }
}

#[tokio::test]
async fn a_form_posted_to_a_malformed_id_is_answered_with_an_html_page() {
    let server = server().await;
    let admin = login(&server, "admin", &server.admin_password, "").await;
    let body = format!("_csrf={}", admin.csrf);
    for path in [
        "/workspaces/not-an-id/stop",
        "/workspaces/not-an-id/delete",
        "/admin/workspaces/not-an-id/stop",
        "/admin/recordings/not-an-id/delete",
        "/admin/templates/%FF/delete",
        "/admin/users/%FF/delete",
        "/admin/users/%FF/token",
    ] {
        let answer = send(&server, "POST", path, &admin.cookie, Some(&body), &[]).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        assert!(
            header(&answer, "content-type").is_some_and(|t| t.starts_with("text/html")),
            "{path}: {}",
            answer.head
        );
        assert!(
            answer.body.contains("<h1>Error 400</h1>"),
            "{path}: {}",
            answer.body
        );
    }
}

#[tokio::test]
async fn the_user_form_shows_and_keeps_the_users_fleet_machines() {
    let server = TestServer::builder()
        .template("base", "")
        .user("ann", "ann-password-1", &["base"])
        .machines("ann", &["m1", "tag:lab"])
        .start()
        .await;
    let admin = login(&server, "admin", &server.admin_password, "").await;
    let page = send(&server, "GET", "/admin/users/ann", &admin.cookie, None, &[]).await;
    assert!(
        page.body.contains("name=\"machines\" value=\"m1 tag:lab\""),
        "{}",
        page.body
    );
    let origin = format!("http://{}", server.addr);
    let post = |machines: &str| {
        format!(
            "_csrf={}&username=ann&role=user&templates=base&machines={}",
            admin.csrf,
            encode(machines)
        )
    };
    let machines = || {
        server
            .state
            .config
            .current()
            .user("ann")
            .unwrap()
            .machines
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    // Saving the form with other fields changed keeps what the field holds.
    let answer = send(
        &server,
        "POST",
        "/admin/users/ann",
        &admin.cookie,
        Some(&post("m1 tag:lab, m2")),
        &[("Origin", &origin)],
    )
    .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(machines(), ["m1", "tag:lab", "m2"]);
    let answer = send(
        &server,
        "POST",
        "/admin/users/ann",
        &admin.cookie,
        Some(&post("Web_1")),
        &[("Origin", &origin)],
    )
    .await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(answer.body.contains("tag:TAG"), "{}", answer.body);
    assert_eq!(machines(), ["m1", "tag:lab", "m2"], "nothing saved");
}

#[tokio::test]
async fn the_home_page_adds_and_removes_my_ssh_keys() {
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFBl1pK0jDORglRkhgVI4ZhPMp5ohgLOim1FXjZWkTYN ann@laptop";
    const FINGERPRINT: &str = "SHA256:O8V0FwqbCHaaSx29SKJ9/oYCcjg+t7C+emeUS/dAbg8";
    let server = TestServer::builder()
        .user("ann", "ann-password-1", &[])
        .start()
        .await;
    let ann = login(&server, "ann", "ann-password-1", "").await;
    let home = page_of(&server, &ann, "/").await;
    assert!(
        home.contains("My SSH keys") && home.contains("No SSH keys."),
        "{home}"
    );
    assert!(
        home.contains("does not run"),
        "no gateway on this server: {home}"
    );

    let form = format!("_csrf={}&key={}", ann.csrf, encode(KEY));
    let added = send(&server, "POST", "/keys", &ann.cookie, Some(&form), &[]).await;
    assert_eq!(added.status, 303, "{}", added.body);
    let home = page_of(&server, &ann, "/").await;
    assert!(
        home.contains(FINGERPRINT) && home.contains("ann@laptop"),
        "{home}"
    );
    // Not a key: the page says why, and nothing is added.
    let form = format!("_csrf={}&key={}", ann.csrf, encode("ssh-rsa nonsense"));
    let refused = send(&server, "POST", "/keys", &ann.cookie, Some(&form), &[]).await;
    assert_eq!(refused.status, 200);
    assert!(
        refused.body.contains("not an SSH public key"),
        "{}",
        refused.body
    );
    // Without the session's CSRF token, nothing happens.
    let form = format!("_csrf=forged&key={}", encode(KEY));
    let forged = send(&server, "POST", "/keys", &ann.cookie, Some(&form), &[]).await;
    assert_ne!(forged.status, 303, "{}", forged.body);

    let path = format!("/keys/{}/delete", encode(FINGERPRINT));
    let form = format!("_csrf={}", ann.csrf);
    let removed = send(&server, "POST", &path, &ann.cookie, Some(&form), &[]).await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    let home = page_of(&server, &ann, "/").await;
    assert!(home.contains("No SSH keys."), "{home}");
}
