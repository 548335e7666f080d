//! No id probing: every route with a parameter in its path answers another user's resource
//! exactly as it answers a name or id that names nothing, so a user cannot learn which ids
//! exist. The test walks the server's own route table (API, terminal pages and sockets, and
//! the admin UI's rows): a route added later is probed too, and one whose parameter the test
//! does not know fails it until `names` learns what the parameter names.

use std::collections::HashMap;

use berth_server::Endpoint;
use berth_types::MemberRole;
use berth_types::api::StartWorkspace;
use berth_types::{Layout, WorkspaceId};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{self, RawAnswer, TestServer};

/// What a path parameter names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Names {
    Workspace,
    Recording,
    Grid,
    ClientToken,
    User,
    Template,
    Member,
    Machine,
    Operation,
    Stream,
    SshKey,
    Cluster,
    Invite,
}

/// What `{param}` of `path` names, by the segment before it; `None` for the static files,
/// which belong to nobody. An unknown parameter fails the test: teach it here.
fn names(path: &str, param: &str) -> Option<Names> {
    let segments: Vec<&str> = path.split('/').collect();
    let at = segments
        .iter()
        .position(|s| *s == format!("{{{param}}}"))
        .unwrap();
    let before = segments[at - 1];
    Some(match (before, param) {
        ("workspaces" | "w", "id") => Names::Workspace,
        ("recordings", "id") => Names::Recording,
        ("grids" | "g", "id") => Names::Grid,
        ("tokens", "client_id") => Names::ClientToken,
        ("users", "name") => Names::User,
        ("templates", "name") => Names::Template,
        ("members", "name") => Names::Member,
        ("machines" | "m", "id") => Names::Machine,
        ("operations", "id") => Names::Operation,
        // An operation's machine, and which of its output streams.
        ("machines", "machine") => Names::Machine,
        ("{machine}", "stream") => Names::Stream,
        ("keys", "fingerprint") => Names::SshKey,
        ("clusters", "id") => Names::Cluster,
        ("invites", "id") => Names::Invite,
        ("static", "file") => return None,
        _ => panic!(
            "{path}: the probing test does not know what {{{param}}} names; add it to `names` \
             with a real value of user A and a made-up one of the same shape"
        ),
    })
}

/// The parameters of a path pattern, in order.
fn params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// `path` with each parameter replaced by its value in `values`.
fn fill(path: &str, values: &HashMap<Names, String>) -> String {
    let mut filled = path.to_owned();
    for param in params(path) {
        let kind = names(path, param).unwrap();
        filled = filled.replace(&format!("{{{param}}}"), &values[&kind]);
    }
    filled
}

/// A valid body for the routes that take one, so that a refusal comes from who is asking,
/// not from a malformed request (which the test would take for a missing body).
fn json_body(method: &str, path: &str) -> Option<&'static str> {
    match (method, path) {
        ("POST", "/api/v1/workspaces/{id}/members") => {
            Some(r#"{"username": "carol", "role": "viewer"}"#)
        }
        ("PUT", "/api/v1/grids/{id}/panes") => Some(r#"{"panes": []}"#),
        ("PUT", "/api/v1/users/{name}") => Some(r#"{"username": "alice", "role": "user"}"#),
        ("POST", "/api/v1/users/{name}/token") => Some("{}"),
        ("POST", "/api/v1/users/{name}/keys") => Some(concat!(
            r#"{"key": "ssh-ed25519 "#,
            r#"AAAAC3NzaC1lZDI1NTE5AAAAIA6MecZ69BRl8Sj0lII+tK+jkY7N5RcCcHLl4NCIwTMD"}"#
        )),
        ("POST", "/api/v1/clusters/{id}/extend") => Some(r#"{"ttl": "1h"}"#),
        ("PUT", "/api/v1/templates/{name}") => {
            Some(r#"{"name": "pair", "image": "berth-test/base"}"#)
        }
        _ => None,
    }
}

/// A logged-in browser: its session cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

fn set_cookie(answer: &RawAnswer, name: &str) -> String {
    answer
        .head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| {
            let pair = v.trim().split(';').next()?;
            pair.strip_prefix(&format!("{name}="))
                .map(|value| format!("{name}={value}"))
        })
        .unwrap_or_else(|| panic!("no {name} cookie: {}", answer.head))
}

fn form_token(body: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let at = body.find(marker).expect("a page with a CSRF field") + marker.len();
    body[at..at + body[at..].find('"').unwrap()].to_owned()
}

async fn request(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> RawAnswer {
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        server.addr
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or_default();
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    server.raw(text.as_bytes()).await
}

async fn browser(server: &TestServer, username: &str, password: &str) -> Browser {
    let page = request(server, "GET", "/login", &[], None).await;
    let pre = set_cookie(&page, "berth_login");
    let form = format!(
        "_csrf={}&username={username}&password={password}",
        form_token(&page.body)
    );
    let form_type = ("Content-Type", "application/x-www-form-urlencoded");
    let answer = request(
        server,
        "POST",
        "/login",
        &[("Cookie", &pre), form_type],
        Some(&form),
    )
    .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let cookie = set_cookie(&answer, "berth_session");
    let home = request(server, "GET", "/", &[("Cookie", &cookie)], None).await;
    assert_eq!(home.status, 200, "{}", home.body);
    Browser {
        csrf: form_token(&home.body),
        cookie,
    }
}

/// What a caller learns from one answer: its status, content type and body (the parameter
/// values it echoes, if any, replaced by their names), or a socket's messages and close.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    kind: String,
    body: String,
}

fn content_type(answer: &RawAnswer) -> String {
    answer
        .head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

/// `text` with the values of `path`'s parameters replaced by what they name, `{Workspace}`.
fn unecho(text: &str, path: &str, values: &HashMap<Names, String>) -> String {
    let mut text = text.to_owned();
    for param in params(path) {
        let kind = names(path, param).unwrap();
        text = text.replace(values[&kind].as_str(), &format!("{{{kind:?}}}"));
    }
    text
}

/// A WebSocket route as user B: the upgrade's status, then every text message and the close.
async fn socket(server: &TestServer, path: &str, token: &str) -> Seen {
    let mut upgrade = format!("ws://{}{path}", server.addr)
        .into_client_request()
        .unwrap();
    upgrade
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(upgrade)
        .await
        .unwrap_or_else(|e| panic!("{path}: the upgrade failed: {e}"));
    let mut body = String::new();
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(30), ws.next())
            .await
            .unwrap_or_else(|_| panic!("{path}: the socket neither refused nor closed"));
        match next {
            Some(Ok(Message::Text(text))) => body.push_str(&format!("{text}\n")),
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame.map_or((0, String::new()), |f| {
                    (u16::from(f.code), f.reason.as_str().to_owned())
                });
                body.push_str(&format!("close {code} {reason}"));
                break;
            }
            Some(Ok(other)) => panic!("{path}: user B was sent {other:?}"),
            Some(Err(err)) => panic!("{path}: {err}"),
            None => break,
        }
    }
    Seen {
        status: response.status().as_u16(),
        kind: String::new(),
        body,
    }
}

/// One route as user B, with its parameters filled from `values`.
async fn probe(
    server: &TestServer,
    endpoint: &Endpoint,
    page: bool,
    values: &HashMap<Names, String>,
    token: &str,
    browser: &Browser,
) -> Seen {
    let path = fill(endpoint.path, values);
    if endpoint.websocket {
        let seen = socket(server, &path, token).await;
        return Seen {
            body: unecho(&seen.body, endpoint.path, values),
            ..seen
        };
    }
    let bearer = format!("Bearer {token}");
    let answer = if page {
        // The admin UI: the session cookie, and form posts carry its CSRF token.
        let form = format!("_csrf={}", browser.csrf);
        let posted = endpoint.method != "GET";
        let mut headers = vec![("Cookie", browser.cookie.as_str())];
        if posted {
            headers.push(("Content-Type", "application/x-www-form-urlencoded"));
        }
        request(
            server,
            endpoint.method,
            &path,
            &headers,
            posted.then_some(form.as_str()),
        )
        .await
    } else {
        let mut headers = vec![("Authorization", bearer.as_str())];
        let body = json_body(endpoint.method, endpoint.path);
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        request(server, endpoint.method, &path, &headers, body).await
    };
    Seen {
        status: answer.status,
        kind: content_type(&answer),
        body: unecho(&answer.body, endpoint.path, values),
    }
}

#[tokio::test]
async fn another_users_ids_answer_like_ids_that_do_not_exist() {
    let server = TestServer::builder()
        .template("pair", "shared: true")
        .user("alice", "alice-password", &["pair"])
        .user("bob", "bob-password", &["pair"])
        .user("carol", "carol-password", &[])
        .clusters("max_per_user", "1")
        .allow_clusters("alice")
        .allow_clusters("bob")
        .start()
        .await;
    // User A has one of everything a path can name.
    let alice = server.login("alice", "alice-password").await;
    let workspace = alice
        .start_workspace(&StartWorkspace {
            template: "pair".into(),
            persist: None,
            network: None,
        })
        .await
        .unwrap();
    alice
        .add_member(workspace.id, "carol", MemberRole::Viewer)
        .await
        .unwrap();
    let grid = alice
        .create_grid(Layout::Single, &[workspace.id])
        .await
        .unwrap();
    let recording =
        common::insert_recording(&server, "alice", "alice", time::OffsetDateTime::now_utc()).await;
    let token = alice.create_token(Some("laptop")).await.unwrap();
    let cluster =
        common::send_json(&alice, "POST", "/api/v1/clusters", r#"{"name": "mine"}"#).await;
    assert_eq!(cluster.status, 201, "{:?}", cluster.body);
    let cluster = cluster.json().unwrap()["id"].as_str().unwrap().to_owned();
    let admin = server.admin().await;
    let invite = common::send_json(&admin, "POST", "/api/v1/invites", "{}").await;
    let invite = invite.json().unwrap()["id"].as_str().unwrap().to_owned();
    let key = alice
        .add_ssh_key(
            "alice",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFBl1pK0jDORglRkhgVI4ZhPMp5ohgLOim1FXjZWkTYN alice@laptop",
        )
        .await
        .unwrap();
    // In a path, percent-encoded: a fingerprint may hold `/` and `+`.
    let encoded = |fingerprint: &str| {
        fingerprint
            .replace(':', "%3A")
            .replace('/', "%2F")
            .replace('+', "%2B")
    };
    let uuid = || WorkspaceId::random().to_string();
    let theirs: HashMap<Names, String> = [
        (Names::Workspace, workspace.id.to_string()),
        (Names::Recording, recording.id.to_string()),
        (Names::Grid, grid.id.to_string()),
        (Names::ClientToken, token.client_id.to_string()),
        (Names::User, "alice".to_owned()),
        (Names::Template, "pair".to_owned()),
        (Names::Member, "carol".to_owned()),
        // This server has no fleet: a machine id answers as one that does not exist (the
        // fleet tests cover selectors on a server with machines).
        (Names::Machine, "web-1".to_owned()),
        // Nor operations (tests/api/operations.rs shows another user's answering 404).
        (Names::Operation, uuid()),
        (Names::Stream, "stdout".to_owned()),
        (Names::SshKey, encoded(&key.fingerprint)),
        (Names::Cluster, cluster.clone()),
        (Names::Invite, invite.clone()),
    ]
    .into();
    // Made-up values of the same shape.
    let nobodys: HashMap<Names, String> = [
        (Names::Workspace, uuid()),
        (Names::Recording, uuid()),
        (Names::Grid, uuid()),
        (Names::ClientToken, uuid()),
        (Names::User, "nobody".to_owned()),
        (Names::Template, "nothing".to_owned()),
        (Names::Member, "noone".to_owned()),
        (Names::Machine, "no-such-machine".to_owned()),
        (Names::Operation, uuid()),
        (Names::Stream, "stdout".to_owned()),
        (
            Names::SshKey,
            encoded("SHA256:bkX/jR0R2HMOhQl/hDMgs2ZRwM2rquM9eJEE0lCYwIE"),
        ),
        (Names::Cluster, uuid()),
        (Names::Invite, uuid()),
    ]
    .into();

    // User B probes with both.
    let bob_token = server
        .client()
        .login("bob", "bob-password")
        .await
        .unwrap()
        .token
        .expose()
        .to_owned();
    let bob_browser = browser(&server, "bob", "bob-password").await;
    let table = berth_server::endpoints()
        .into_iter()
        .map(|e| (e, false))
        .chain(berth_server::page_routes().into_iter().map(|e| (e, true)));
    let mut probed = Vec::new();
    for (endpoint, page) in table {
        let params = params(endpoint.path);
        if params.is_empty()
            || params
                .iter()
                .any(|param| names(endpoint.path, param).is_none())
        {
            continue;
        }
        let route = format!("{} {}", endpoint.method, endpoint.path);
        let a = probe(&server, &endpoint, page, &theirs, &bob_token, &bob_browser).await;
        let none = probe(&server, &endpoint, page, &nobodys, &bob_token, &bob_browser).await;
        assert_eq!(
            a, none,
            "{route}: user A's resource and none answer differently"
        );
        assert!(
            !params.iter().any(|param| {
                let kind = names(endpoint.path, param).unwrap();
                none.body.contains(&format!("{{{kind:?}}}"))
            }),
            "{route}: the answer echoes what was asked for: {}",
            none.body
        );
        // The API refuses as "not found" (or "admins only"); anything else means the test's
        // request never reached the check (a body the route needs: see `json_body`).
        let refused = if endpoint.websocket {
            none.status == 101
                && (none.body.contains("close 4404") || none.body.contains("close 4403"))
        } else if page {
            // A form post of the UI answers its page with the API's message on it.
            none.status < 500
        } else {
            matches!(none.status, 403 | 404)
        };
        assert!(refused, "{route}: user B got {none:?}");
        probed.push(route);
    }
    // The walk saw the routes it must: a table that lost them would pass vacuously.
    for must in [
        "GET /api/v1/workspaces/{id}",
        "GET /api/v1/workspaces/{id}/terminal",
        "DELETE /api/v1/workspaces/{id}/members/{name}",
        "GET /api/v1/recordings/{id}/cast",
        "GET /api/v1/grids/{id}/ws",
        "GET /api/v1/machines/{id}/terminal",
        "GET /api/v1/machines/{id}/recordings",
        "GET /m/{id}",
        "DELETE /api/v1/auth/tokens/{client_id}",
        "GET /api/v1/users/{name}",
        "PUT /api/v1/templates/{name}",
        "GET /w/{id}",
        "GET /g/{id}",
        "GET /recordings/{id}",
        "POST /workspaces/{id}/stop",
        "GET /admin/users/{name}",
        "DELETE /api/v1/users/{name}/keys/{fingerprint}",
        "GET /api/v1/clusters/{id}/kubeconfig",
        "POST /api/v1/clusters/{id}/extend",
        "DELETE /api/v1/clusters/{id}",
        "POST /clusters/{id}/delete",
        "DELETE /api/v1/invites/{id}",
    ] {
        assert!(
            probed.iter().any(|r| r == must),
            "{must} was not probed: {probed:?}"
        );
    }
    // A's things are all still there.
    alice.workspace(workspace.id).await.unwrap();
    alice.recording(recording.id).await.unwrap();
    assert_eq!(alice.ssh_keys("alice").await.unwrap(), [key]);
    let mine = common::send_json(&alice, "GET", &format!("/api/v1/clusters/{cluster}"), "").await;
    assert_eq!(mine.status, 200);
    assert_ne!(mine.json().unwrap()["state"], "deleting");
}
