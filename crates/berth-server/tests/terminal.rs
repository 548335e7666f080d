//! The terminal WebSocket, its page, members and recordings, against real containers
//! (template on `berth-test/base`, network none) and a real WebSocket client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use berth_client::Client;
use berth_types::MemberRole::{Peer, Viewer};
use berth_types::api::{PaneState, StartWorkspace};
use berth_types::{Layout, SessionRole, WorkspaceId};
use common::{TestServer, assert_api_error};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for output before failing (a failure report, not a measurement).
const PATIENCE: Duration = Duration::from_secs(30);

fn start(template: &str) -> StartWorkspace {
    StartWorkspace {
        template: template.into(),
        persist: None,
        network: None,
    }
}

async fn token(server: &TestServer, user: &str, password: &str) -> (Client, String) {
    let login = server.client().login(user, password).await.unwrap();
    let token = login.token.expose().to_owned();
    (server.client().with_token(&token), token)
}

/// Opens `path` as a WebSocket with an optional Bearer token and Origin.
async fn connect(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    origin: Option<&str>,
) -> Result<Ws, WsError> {
    let url = format!("ws://{}{path}", server.addr);
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

fn terminal_path(id: WorkspaceId) -> String {
    format!("/api/v1/workspaces/{id}/terminal?cols=80&rows=24")
}

/// A terminal socket with the output read so far.
struct Term {
    ws: Ws,
    output: String,
    hello: Value,
}

impl Term {
    async fn open(server: &TestServer, id: WorkspaceId, token: &str) -> Self {
        Self::open_path(server, &terminal_path(id), token).await
    }

    async fn open_path(server: &TestServer, path: &str, token: &str) -> Self {
        let mut ws = connect(server, path, Some(token), None).await.unwrap();
        let first = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a hello")
            .unwrap()
            .unwrap();
        let hello: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
        assert_eq!(hello["type"], "hello", "{hello}");
        Self {
            ws,
            output: String::new(),
            hello,
        }
    }

    async fn type_(&mut self, text: &str) {
        self.ws
            .send(Message::Binary(text.as_bytes().to_vec().into()))
            .await
            .unwrap();
    }

    async fn control(&mut self, json: Value) {
        self.ws
            .send(Message::Text(json.to_string().into()))
            .await
            .unwrap();
    }

    /// Reads until the output contains `needle`; fails after [`PATIENCE`].
    async fn expect(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.output.contains(needle) {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} in the output: {:?}", self.output));
            match next {
                Some(Ok(Message::Binary(bytes))) => {
                    self.output.push_str(&String::from_utf8_lossy(&bytes));
                }
                Some(Ok(_)) => {}
                other => panic!(
                    "the socket ended ({other:?}) before {needle:?}: {:?}",
                    self.output
                ),
            }
        }
    }
}

/// Reads a refused or ended socket to its close: the last error message and the close code
/// (output and other control messages on the way are skipped).
async fn refusal(mut ws: Ws) -> (String, CloseCode) {
    let mut message = String::new();
    loop {
        match tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
            Some(Ok(Message::Binary(_))) => {}
            Some(Ok(Message::Text(text))) => {
                let v: Value = serde_json::from_str(&text).unwrap();
                message = v["message"].as_str().unwrap_or_default().to_owned();
            }
            Some(Ok(Message::Close(Some(frame)))) => return (message, frame.code),
            other => panic!("expected an error and a close, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn echo_resize_and_the_recording_of_a_session() {
    let server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .user("bob", "bob-password", &["base"])
        .start()
        .await;
    let (alice, alice_token) = token(&server, "alice", "alice-password").await;
    let (bob, bob_token) = token(&server, "bob", "bob-password").await;
    let ws = alice.start_workspace(&start("base")).await.unwrap();

    let mut term = Term::open(&server, ws.id, &alice_token).await;
    assert_eq!(term.hello["role"], "owner");
    assert_eq!(term.hello["you"], "alice");
    // The shell computes the answer, so the echo of the typed line does not satisfy the test.
    term.type_("echo hello-$((6*7))\r").await;
    term.expect("hello-42").await;
    term.control(serde_json::json!({"type": "resize", "cols": 100, "rows": 30}))
        .await;
    term.type_("stty size\r").await;
    term.expect("30 100").await;
    term.control(serde_json::json!({"type": "ping"})).await;
    term.type_("exit\r").await;
    let mut exit = None;
    while let Some(Ok(message)) = term.ws.next().await {
        if let Message::Text(text) = &message {
            let v: Value = serde_json::from_str(text).unwrap();
            if v["type"] == "exit" {
                exit = Some(v["code"].clone());
            }
        }
        if let Message::Close(frame) = message {
            assert_eq!(frame.unwrap().code, CloseCode::Normal);
            break;
        }
    }
    assert_eq!(exit, Some(Value::from(0)));

    // Another user's workspace is refused in-band, like one that does not exist.
    let refused = connect(&server, &terminal_path(ws.id), Some(&bob_token), None)
        .await
        .unwrap();
    let (message, code) = refusal(refused).await;
    assert_eq!(code, CloseCode::from(4404), "{message}");
    assert!(!message.is_empty());
    let nowhere = connect(
        &server,
        &terminal_path(WorkspaceId::random()),
        Some(&bob_token),
        None,
    )
    .await
    .unwrap();
    assert_eq!(refusal(nowhere).await.1, CloseCode::from(4404));
    // An invalid token gets through the upgrade and is refused with 4401.
    let stale = connect(&server, &terminal_path(ws.id), Some("not-a-token"), None)
        .await
        .unwrap();
    assert_eq!(refusal(stale).await.1, CloseCode::from(4401));
    // A size out of range: 4400.
    let huge = format!("/api/v1/workspaces/{}/terminal?cols=5000&rows=24", ws.id);
    let huge = connect(&server, &huge, Some(&alice_token), None)
        .await
        .unwrap();
    assert_eq!(refusal(huge).await.1, CloseCode::from(4400));

    // The session was recorded; its owner lists and downloads it, bob gets 404.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let recording = loop {
        let list = alice.recordings(ws.id).await.unwrap();
        if let Some(r) = list.iter().find(|r| r.ended_at.is_some()) {
            break r.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no finished recording: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let id = recording.id;
    assert_eq!(recording.owner.as_str(), "alice");
    assert_eq!(recording.username.as_str(), "alice");
    assert_eq!(recording.cast_url, format!("/api/v1/recordings/{id}/cast"));
    let cast = alice.recording_cast(id).await.unwrap();
    let header: Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert!(cast.contains("hello-42"), "{cast}");
    assert!(cast.contains("\"r\""), "the resize is recorded: {cast}");
    let raw = alice
        .send(
            "GET".parse().unwrap(),
            &format!("/api/v1/recordings/{id}/cast"),
            &[],
            "",
        )
        .await
        .unwrap();
    assert_eq!(
        raw.headers.get("content-type").unwrap(),
        "application/x-asciicast"
    );
    assert_eq!(alice.recording(id).await.unwrap(), recording);
    assert_api_error(bob.recording(id).await, 404, "not_found");
    assert_api_error(bob.recording_cast(id).await, 404, "not_found");
    assert_api_error(bob.recordings(ws.id).await, 404, "not_found");
    // An id that names nothing answers exactly as another user's workspace does.
    let nobody = berth_types::WorkspaceId::random();
    let theirs = common::send_json(
        &bob,
        "GET",
        &format!("/api/v1/workspaces/{}/recordings", ws.id),
        "",
    )
    .await;
    let none = common::send_json(
        &bob,
        "GET",
        &format!("/api/v1/workspaces/{nobody}/recordings"),
        "",
    )
    .await;
    assert_eq!(
        (theirs.status, &theirs.body),
        (404, &none.body),
        "no id probing"
    );
    assert_api_error(alice.recordings(nobody).await, 404, "not_found");
    let admin = server.admin().await;
    assert_eq!(admin.recording_cast(id).await.unwrap(), cast);
    let malformed = common::send_json(&alice, "GET", "/api/v1/recordings/not-a-uuid", "").await;
    common::assert_error(&malformed, 400, "bad_path");

    // Only an admin deletes a recording, and only once the session has ended.
    let mut live = Term::open(&server, ws.id, &alice_token).await;
    live.type_("echo still-recording\r").await;
    live.expect("still-recording").await;
    let recording_now = alice
        .recordings(ws.id)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.ended_at.is_none())
        .expect("the open session's recording");
    assert_api_error(
        admin.delete_recording(recording_now.id).await,
        409,
        "in_use",
    );
    assert_api_error(alice.delete_recording(id).await, 403, "forbidden");
    let file = server
        .state
        .terminals
        .recordings()
        .dir()
        .join(format!("{}/{id}.cast", ws.id));
    assert!(file.exists());
    admin.delete_recording(id).await.unwrap();
    assert!(!file.exists(), "the file goes with the row");
    assert_api_error(alice.recording(id).await, 404, "not_found");
    assert_api_error(admin.delete_recording(id).await, 404, "not_found");
    let malformed = common::send_json(&admin, "DELETE", "/api/v1/recordings/../../etc", "").await;
    assert!(
        malformed.status == 400 || malformed.status == 404,
        "{malformed:?}"
    );
    assert!(
        alice.recording(recording_now.id).await.is_ok(),
        "the live one is untouched"
    );
    drop(live);
}

#[tokio::test]
async fn a_shared_session_has_peers_and_viewers() {
    let server = TestServer::builder()
        .template("pair", "shared: true")
        .template("solo", "")
        .user("alice", "alice-password", &["pair", "solo"])
        .user("bob", "bob-password", &[])
        .user("carol", "carol-password", &[])
        .start()
        .await;
    let (alice, alice_token) = token(&server, "alice", "alice-password").await;
    let (bob, bob_token) = token(&server, "bob", "bob-password").await;
    let (_, carol_token) = token(&server, "carol", "carol-password").await;
    let ws = alice.start_workspace(&start("pair")).await.unwrap();

    // Only the owner (or an admin) manages members; bob cannot add himself.
    assert_api_error(bob.add_member(ws.id, "bob", Peer).await, 404, "not_found");
    let added = alice.add_member(ws.id, "bob", Peer).await.unwrap();
    assert_eq!((added.username.as_str(), added.role), ("bob", Peer));
    assert_eq!(added.added_by.as_str(), "alice");
    alice.add_member(ws.id, "carol", Viewer).await.unwrap();
    assert_api_error(
        alice.add_member(ws.id, "nobody", Peer).await,
        422,
        "invalid",
    );
    let members = format!("/api/v1/workspaces/{}/members", ws.id);
    for body in [
        r#"{"username": "bob", "role": "owner"}"#,
        r#"{"username": "bob", "role": "Peer"}"#,
        r#"{"username": "bob"}"#,
        r#"{"username": "bob", "role": "peer", "admin": true}"#,
    ] {
        let refused = common::send_json(&alice, "POST", &members, body).await;
        common::assert_error(&refused, 422, "invalid_body");
    }
    let solo = alice.start_workspace(&start("solo")).await.unwrap();
    assert_api_error(alice.add_member(solo.id, "bob", Peer).await, 422, "invalid");

    let mut owner = Term::open(&server, ws.id, &alice_token).await;
    let mut peer = Term::open(&server, ws.id, &bob_token).await;
    assert_eq!(peer.hello["role"], "peer");
    peer.type_("echo from-bob-$((1+1))\r").await;
    owner.expect("from-bob-2").await;

    let mut viewer = Term::open(&server, ws.id, &carol_token).await;
    assert_eq!(viewer.hello["role"], "viewer");
    viewer.type_("echo viewer-typed-$((3+4))\r").await;
    // Wait for the viewer's frame to have been read by the server before the marker.
    viewer.control(serde_json::json!({"type": "ping"})).await;
    owner.type_("echo marker-$((2+3))\r").await;
    owner.expect("marker-5").await;
    viewer.expect("marker-5").await;
    assert!(!owner.output.contains("viewer-typed-7"), "{}", owner.output);

    let members = bob.members(ws.id).await.unwrap();
    let connected: Vec<(&str, SessionRole)> = members
        .connected
        .iter()
        .map(|c| (c.username.as_str(), c.role))
        .collect();
    assert_eq!(
        connected,
        [
            ("alice", SessionRole::Owner),
            ("bob", SessionRole::Peer),
            ("carol", SessionRole::Viewer)
        ]
    );
    assert_eq!(members.owner.as_str(), "alice");
    assert_eq!(members.members.len(), 2);

    // The owner may watch as a viewer, too.
    let mut watching = Term::open_path(
        &server,
        &format!("/api/v1/workspaces/{}/terminal?role=viewer", ws.id),
        &alice_token,
    )
    .await;
    assert_eq!(watching.hello["role"], "viewer");
    watching.type_("x").await;

    // Access changes reach open terminals at once. Removed: bob's terminal ends (4403).
    alice.remove_member(ws.id, "bob").await.unwrap();
    assert_api_error(alice.remove_member(ws.id, "bob").await, 404, "not_found");
    let (message, code) = refusal(peer.ws).await;
    assert_eq!(code, CloseCode::from(4403), "{message}");
    assert!(message.contains("alice removed you"), "{message}");
    let again = connect(&server, &terminal_path(ws.id), Some(&bob_token), None)
        .await
        .unwrap();
    assert_eq!(refusal(again).await.1, CloseCode::from(4404));
    // Recordings are the owner's, not the members'.
    assert_api_error(bob.recordings(ws.id).await, 404, "not_found");

    // Another role: carol's viewer terminal closes with 1012 (reconnect) and she comes back
    // as a peer whose typing counts.
    alice.add_member(ws.id, "carol", Peer).await.unwrap();
    let (message, code) = refusal(viewer.ws).await;
    assert_eq!(code, CloseCode::from(1012), "{message}");
    let mut carol = Term::open(&server, ws.id, &carol_token).await;
    assert_eq!(carol.hello["role"], "peer");
    carol.type_("echo carol-typed-$((4+4))\r").await;
    owner.expect("carol-typed-8").await;
    // Re-adding with the same role leaves her terminal alone.
    alice.add_member(ws.id, "carol", Peer).await.unwrap();

    // An account deleted by an admin: its terminals end as logged out (4401), at once.
    let admin = server.admin().await;
    admin.delete_user("carol").await.unwrap();
    let (message, code) = refusal(carol.ws).await;
    assert_eq!(code, CloseCode::from(4401), "{message}");
    assert!(message.contains("deleted"), "{message}");
    owner.type_("echo still-here-$((5+5))\r").await;
    owner.expect("still-here-10").await;
}

#[tokio::test]
async fn origins_are_checked_before_upgrading() {
    let server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .start()
        .await;
    let (alice, token) = token(&server, "alice", "alice-password").await;
    let ws = alice.start_workspace(&start("base")).await.unwrap();
    let path = terminal_path(ws.id);
    for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        match connect(&server, &path, Some(&token), Some(origin)).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 403, "{origin}"),
            other => panic!("Origin {origin} was not refused: {other:?}"),
        }
    }
    // No Origin and no token: not the CLI, so a browser request that hid its Origin.
    match connect(&server, &path, None, None).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("not refused: {other:?}"),
    }
    // The server's own origin passes; without a session the socket is refused in-band.
    let own = format!("http://{}", server.addr);
    let anonymous = connect(&server, &path, None, Some(&own)).await.unwrap();
    assert_eq!(refusal(anonymous).await.1, CloseCode::from(4401));
    let mut term = connect(&server, &path, Some(&token), Some(&own))
        .await
        .unwrap();
    let hello = term.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("\"hello\""));
    // Grids: the same rule.
    let grid = alice.create_grid(Layout::Single, &[ws.id]).await.unwrap();
    let grid_path = format!("/api/v1/grids/{}/ws", grid.id);
    match connect(
        &server,
        &grid_path,
        Some(&token),
        Some("http://evil.example"),
    )
    .await
    {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_client_that_does_not_read_holds_a_bounded_amount_of_output() {
    let server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .start()
        .await;
    let (alice, token) = token(&server, "alice", "alice-password").await;
    let ws = alice.start_workspace(&start("base")).await.unwrap();
    let mut term = Term::open(&server, ws.id, &token).await;
    term.type_("yes\r").await;
    // Never read again. Output stops flowing once the socket's buffers are full.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let (mut last, mut still) = (u64::MAX, 0);
    let stats = loop {
        let stats = server.state.terminal_stats();
        assert_eq!(stats.len(), 1);
        let out = stats[0].output_bytes();
        still = if out == last { still + 1 } else { 0 };
        last = out;
        if still >= 10 {
            break stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "output never stalled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stats = &stats[0];
    assert!(
        stats.peak_in_flight() <= berth_core::bridge::MAX_IN_FLIGHT,
        "peak {} over {}",
        stats.peak_in_flight(),
        berth_core::bridge::MAX_IN_FLIGHT
    );
    // What left the bridge sits in socket buffers, not in an unbounded queue.
    assert!(
        stats.output_bytes() < 64 * 1024 * 1024,
        "{}",
        stats.output_bytes()
    );
    drop(term);
}

#[tokio::test]
async fn pages_and_assets() {
    let server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .user("bob", "bob-password", &["base"])
        .start()
        .await;
    let (alice, _) = token(&server, "alice", "alice-password").await;
    let (bob, _) = token(&server, "bob", "bob-password").await;
    let ws = alice.start_workspace(&start("base")).await.unwrap();
    let page = alice
        .send("GET".parse().unwrap(), &format!("/w/{}", ws.id), &[], "")
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("<title>alice@base — Berth</title>"), "{html}");
    assert!(html.contains(&format!(
        "data-ws-url=\"/api/v1/workspaces/{}/terminal\"",
        ws.id
    )));
    assert!(html.contains("<script src=\"/assets/terminal.js\"></script>"));
    assert!(html.contains("id=\"berth-status\""));
    let other = bob
        .send("GET".parse().unwrap(), &format!("/w/{}", ws.id), &[], "")
        .await
        .unwrap();
    assert_eq!(other.status, 404);
    let anonymous = server
        .client()
        .send("GET".parse().unwrap(), &format!("/w/{}", ws.id), &[], "")
        .await
        .unwrap();
    assert_eq!(anonymous.status, 303);
    assert_eq!(
        anonymous.headers.get("location").unwrap(),
        &format!("/login?next=%2Fw%2F{}", ws.id)
    );
    for (asset, kind) in [
        ("terminal.js", "text/javascript; charset=utf-8"),
        ("grid.js", "text/javascript; charset=utf-8"),
        ("replay.js", "text/javascript; charset=utf-8"),
        ("terminal.css", "text/css; charset=utf-8"),
    ] {
        let answer = server
            .client()
            .send("GET".parse().unwrap(), &format!("/assets/{asset}"), &[], "")
            .await
            .unwrap();
        assert_eq!(answer.status, 200, "{asset}");
        assert_eq!(answer.headers.get("content-type").unwrap(), kind);
        assert_eq!(answer.headers.get("cache-control").unwrap(), "no-cache");
        let etag = answer
            .headers
            .get("etag")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let again = server
            .client()
            .send(
                "GET".parse().unwrap(),
                &format!("/assets/{asset}"),
                &[("if-none-match", etag.as_str())],
                "",
            )
            .await
            .unwrap();
        assert_eq!(again.status, 304, "{asset}");
    }
    // Grids: made, filled, listed for connecting; another user's is a 404.
    let grid = alice.create_grid(Layout::Grid2x1, &[ws.id]).await.unwrap();
    let id = grid.id;
    assert_eq!(
        (grid.layout, grid.owner.as_str()),
        (Layout::Grid2x1, "alice")
    );
    assert_eq!(grid.page_url, format!("/g/{id}"));
    let all = alice.connect_all(id).await.unwrap();
    assert_eq!(all.ws_url, format!("/api/v1/grids/{id}/ws"));
    assert_eq!(all.panes[0].state, PaneState::Connected);
    assert_eq!(all.panes[0].title, "alice@base");
    assert_api_error(bob.connect_all(id).await, 404, "not_found");
    assert_api_error(
        bob.create_grid(Layout::Single, &[ws.id]).await,
        404,
        "not_found",
    );
    assert_api_error(
        alice.set_grid_panes(id, None, &[ws.id, ws.id, ws.id]).await,
        422,
        "invalid",
    );
    let wider = alice
        .set_grid_panes(id, Some(Layout::Grid1x3), &[ws.id, ws.id, ws.id])
        .await
        .unwrap();
    assert_eq!((wider.layout, wider.panes.len()), (Layout::Grid1x3, 3));
    alice
        .set_grid_panes(id, Some(Layout::Grid2x1), &[ws.id])
        .await
        .unwrap();
    let grid_page = alice
        .send("GET".parse().unwrap(), &format!("/g/{id}"), &[], "")
        .await
        .unwrap();
    let html = String::from_utf8_lossy(&grid_page.body);
    assert!(html.contains("data-layout=\"grid2x1\""), "{html}");
    assert!(
        html.contains("&quot;title&quot;:&quot;alice@base&quot;"),
        "{html}"
    );
}

/// Writes `bytes` to the socket's TCP stream as they are: frames no client library would send.
async fn write_raw(ws: &mut Ws, bytes: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let MaybeTlsStream::Plain(tcp) = ws.get_mut() else {
        panic!("a plain TCP socket");
    };
    tcp.write_all(bytes).await.unwrap();
    tcp.flush().await.unwrap();
}

/// The header of a masked binary frame announcing `len` bytes (the mask key is zero).
fn frame_header(len: u64) -> Vec<u8> {
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&[0, 0, 0, 0]);
    header
}

#[tokio::test]
async fn oversized_frames_get_1009_and_text_that_is_not_utf8_gets_1007() {
    let server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .start()
        .await;
    let (alice, token) = token(&server, "alice", "alice-password").await;
    let ws = alice.start_workspace(&start("base")).await.unwrap();

    // A header announcing 64 MiB, and nothing after it: refused from the header alone, so the
    // frame is never buffered, with a close frame rather than a bare end of the connection.
    let mut term = Term::open(&server, ws.id, &token).await;
    write_raw(&mut term.ws, &frame_header(64 << 20)).await;
    let (_, code) = refusal(term.ws).await;
    assert_eq!(code, CloseCode::Size);

    // A text frame of two bytes that are not UTF-8 (masked with a zero key).
    let mut term = Term::open(&server, ws.id, &token).await;
    write_raw(&mut term.ws, &[0x81, 0x80 | 2, 0, 0, 0, 0, 0xC3, 0x28]).await;
    let (_, code) = refusal(term.ws).await;
    assert_eq!(code, CloseCode::Invalid);

    // The terminal itself is fine: a new socket works.
    let mut term = Term::open(&server, ws.id, &token).await;
    term.type_("echo still-$((40+2))\r").await;
    term.expect("still-42").await;

    // The grid socket answers the same.
    let grid = alice.create_grid(Layout::Single, &[ws.id]).await.unwrap();
    let grid_path = format!("/api/v1/grids/{}/ws", grid.id);
    let mut socket = connect(&server, &grid_path, Some(&token), None)
        .await
        .unwrap();
    write_raw(&mut socket, &frame_header(64 << 20)).await;
    assert_eq!(refusal(socket).await.1, CloseCode::Size);
    let mut socket = connect(&server, &grid_path, Some(&token), None)
        .await
        .unwrap();
    write_raw(&mut socket, &[0x81, 0x80 | 2, 0, 0, 0, 0, 0xFF, 0xFE]).await;
    assert_eq!(refusal(socket).await.1, CloseCode::Invalid);
}
