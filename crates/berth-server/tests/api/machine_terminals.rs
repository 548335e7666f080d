//! Terminals on machines: `GET /api/v1/machines/{id}/terminal` against a real sshd test
//! machine, reached through a TCP relay of the test's own so that every connection Berth makes
//! to it is counted. Echo, resize, a viewer, other users, a machine that is not enrolled, the
//! Origin check before any connection, recordings, and a selector taken away by a reload.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_types::api::RecordingList;
use futures_util::{SinkExt, StreamExt};
use http::Method;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::TestServer;
use crate::common::machines::inventory::{Repo, install_key, links};
use crate::common::machines::{self, Lab};
use crate::common::send_json;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const PATIENCE: Duration = Duration::from_secs(30);

/// A TCP relay on 127.0.0.1 to `to`, counting the connections it accepts.
pub(crate) struct Relay {
    pub(crate) port: u16,
    pub(crate) accepted: Arc<AtomicUsize>,
    /// Connections relayed now.
    pub(crate) open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub(crate) async fn start(to: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&accepted);
        let live = Arc::clone(&open);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                live.fetch_add(1, Ordering::SeqCst);
                let to = to.clone();
                let live = Arc::clone(&live);
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                    live.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            port,
            accepted,
            open,
            task,
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// links.yaml entry of `name` reached through the relay on `port`, its host key pinned.
pub(crate) fn relayed(lab: &Lab, name: &str, port: u16) -> String {
    let m = lab.machine(name);
    format!(
        "  - id: {name}\n    name: {name}\n    host: 127.0.0.1\n    port: {port}\n    user: {}\n    \
         key: id_ed25519\n    tags: [lab, near]\n    client_id: {}\n    host_key: {}\n",
        m.user, m.client_id, m.host_key
    )
}

pub(crate) struct Setup {
    pub(crate) server: TestServer,
    pub(crate) relay: Relay,
    _root: tempfile::TempDir,
}

/// A server whose fleet has m1 (through the relay, enrolled) and m3 (never verified: not
/// enrolled); alice may reach both, bob neither.
pub(crate) async fn setup(
    lab: &Lab,
    extra: impl FnOnce(TestServerBuilder) -> TestServerBuilder,
) -> Setup {
    let m1 = lab.machine("m1");
    let relay = Relay::start(format!("{}:{}", m1.host, m1.port)).await;
    let root = tempfile::tempdir().unwrap();
    let repo = Repo::new(root.path(), "inventory");
    let mut text = relayed(lab, "m1", relay.port);
    text.push_str(links(lab, &[("m3", None)]).trim_start_matches("machines:\n"));
    let text = format!("machines:\n{text}");
    repo.commit(&[("links.yaml", text.as_str())], "m1 and m3");
    let keys = root.path().join("keys");
    install_key(lab, &keys);
    let builder = TestServer::builder()
        .fleet("repository", repo.file_url())
        .fleet("keys_dir", keys.display().to_string())
        .fleet("connect_timeout", "20s")
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .machines("alice", &["m1", "m3"])
        .user("bob", "bob-password", &[]);
    let server = extra(builder).start().await;
    let admin = server.admin().await;
    let synced = send_json(&admin, "POST", "/api/v1/fleet/sync", "").await;
    assert_eq!(
        synced.status,
        200,
        "{}",
        String::from_utf8_lossy(&synced.body)
    );
    let verified = send_json(&admin, "POST", "/api/v1/machines/m1/verify", "").await;
    assert_eq!(
        verified.status,
        200,
        "{}",
        String::from_utf8_lossy(&verified.body)
    );
    let view: Value = serde_json::from_slice(&verified.body).unwrap();
    assert_eq!(view["enrollment"]["status"], "enrolled", "{view}");
    Setup {
        server,
        relay,
        _root: root,
    }
}

pub(crate) type TestServerBuilder = crate::common::Builder;

pub(crate) async fn token(server: &TestServer, user: &str, password: &str) -> String {
    let login = server.client().login(user, password).await.unwrap();
    login.token.expose().to_owned()
}

pub(crate) async fn connect(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    origin: Option<&str>,
) -> Result<Ws, WsError> {
    let mut request = format!("ws://{}{path}", server.addr)
        .into_client_request()
        .unwrap();
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

/// A machine terminal with its output so far.
struct Term {
    ws: Ws,
    output: String,
    hello: Value,
}

impl Term {
    async fn open(server: &TestServer, path: &str, token: &str) -> Self {
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

    /// Reads until the output contains `needle`; control messages are kept in `texts`.
    async fn expect(&mut self, needle: &str) -> Vec<Value> {
        let mut texts = Vec::new();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.output.contains(needle) {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} in the output: {:?}", self.output));
            match next {
                Some(Ok(Message::Binary(bytes))) => {
                    self.output.push_str(&String::from_utf8_lossy(&bytes));
                }
                Some(Ok(Message::Text(text))) => texts.push(serde_json::from_str(&text).unwrap()),
                Some(Ok(_)) => {}
                other => panic!(
                    "the socket ended ({other:?}) before {needle:?}: {:?}",
                    self.output
                ),
            }
        }
        texts
    }

    /// Reads until a control message of `kind`.
    async fn expect_control(&mut self, kind: &str) -> Value {
        loop {
            match tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .unwrap()
            {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    if v["type"] == kind {
                        return v;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("the socket ended before a {kind}: {other:?}"),
            }
        }
    }
}

/// Reads a refused or ended socket to its close: the last error message and the close code.
pub(crate) async fn refusal(mut ws: Ws) -> (String, u16) {
    let mut message = String::new();
    loop {
        match tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(text))) => {
                let v: Value = serde_json::from_str(&text).unwrap();
                if let Some(m) = v["message"].as_str() {
                    message = m.to_owned();
                }
            }
            Some(Ok(Message::Close(Some(frame)))) => return (message, frame.code.into()),
            Some(Ok(_)) => {}
            other => panic!("expected an error and a close, got {other:?}"),
        }
    }
}

const M1: &str = "/api/v1/machines/m1/terminal?cols=80&rows=24";

#[tokio::test]
async fn a_machine_terminal_echoes_resizes_records_and_refuses_who_it_must() {
    let Some(lab) = machines::lab() else { return };
    let s = setup(&lab, |b| b).await;
    let alice = token(&s.server, "alice", "alice-password").await;

    // Echo, as the machine's inventory user.
    let mut term = Term::open(&s.server, M1, &alice).await;
    assert_eq!(term.hello["target"], json!({"kind": "machine", "id": "m1"}));
    assert_eq!(term.hello["role"], "owner");
    term.type_("echo \"$(id -un) $((6*7))\"\r").await;
    term.expect(&format!("{} 42", lab.machine("m1").user)).await;
    // Resize, as the machine's own tty sees it.
    term.control(json!({"type": "resize", "cols": 101, "rows": 33}))
        .await;
    term.type_("stty size\r").await;
    term.expect("33 101").await;
    term.type_("exit\r").await;
    let texts = term.expect_control("exit").await;
    assert_eq!(texts["code"], 0, "{texts}");

    // A viewer's input never reaches the shell.
    let mut viewer = Term::open(&s.server, &format!("{M1}&role=viewer"), &alice).await;
    assert_eq!(viewer.hello["role"], "viewer");
    let typed = "echo viewer-typed\r";
    viewer.type_(typed).await;
    // The pong comes after the server read the input before it.
    viewer.control(json!({"type": "ping"})).await;
    viewer.expect_control("pong").await;
    // (The first session may still be winding down: the viewer's is the one with dropped input.)
    let stats = s.server.state.terminal_stats();
    let viewer_stats: Vec<_> = stats
        .iter()
        .filter(|st| st.dropped_input_bytes() > 0)
        .collect();
    assert_eq!(viewer_stats.len(), 1, "{stats:?}");
    assert_eq!(viewer_stats[0].input_bytes(), 0);
    assert_eq!(viewer_stats[0].dropped_input_bytes(), typed.len() as u64);
    drop(viewer);

    // Another user and a stranger to the fleet: not found, as a machine that does not exist;
    // nobody may see m2 or a machine that is not there.
    let bob = token(&s.server, "bob", "bob-password").await;
    let before = s.relay.count();
    for (who, path) in [
        (&bob, M1),
        (&alice, "/api/v1/machines/m2/terminal"),
        (&alice, "/api/v1/machines/nothere/terminal"),
    ] {
        let ws = connect(&s.server, path, Some(who), None).await.unwrap();
        let (message, code) = refusal(ws).await;
        assert_eq!(code, 4404, "{path}: {message}");
        assert_eq!(message, "no such machine", "{path}");
    }
    assert_eq!(
        s.relay.count(),
        before,
        "no connection for a refused caller"
    );
    // A machine that is not enrolled: 4409, and why.
    let ws = connect(
        &s.server,
        "/api/v1/machines/m3/terminal",
        Some(&alice),
        None,
    )
    .await
    .unwrap();
    let (message, code) = refusal(ws).await;
    assert_eq!(code, 4409, "{message}");
    assert!(message.contains("not enrolled"), "{message}");

    // The Origin is checked before any connection to the machine is made.
    let before = s.relay.count();
    match connect(&s.server, M1, Some(&alice), Some("http://evil.example")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("a foreign Origin was not refused: {other:?}"),
    }
    assert_eq!(s.relay.count(), before, "the relay saw a connection");
    // The server's own Origin passes, and then one connection is made.
    let own = format!("http://{}", s.server.addr);
    let mut ws = connect(&s.server, M1, Some(&alice), Some(&own))
        .await
        .unwrap();
    let hello = tokio::time::timeout(PATIENCE, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(hello.to_text().unwrap().contains("\"hello\""));
    assert_eq!(s.relay.count(), before + 1);
    drop(ws);

    // Recorded: listed under the machine (alice sees hers, bob nothing), replayable.
    let alice_client = s.server.login("alice", "alice-password").await;
    let listed = wait_for_recordings(&alice_client, 3).await;
    let first = listed
        .recordings
        .iter()
        .min_by_key(|r| r.started_at)
        .unwrap();
    assert_eq!(
        serde_json::to_value(&first.target).unwrap(),
        json!({"kind": "machine", "id": "m1"})
    );
    assert!(
        listed
            .recordings
            .iter()
            .all(|r| r.owner.as_str() == "alice")
    );
    let cast = alice_client
        .send(Method::GET, &first.cast_url, &[], "")
        .await
        .unwrap();
    assert_eq!(cast.status, 200);
    let cast = String::from_utf8(cast.body.to_vec()).unwrap();
    let header: Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
    assert_eq!(header["version"], 2, "{cast}");
    assert!(cast.contains("42"), "{cast}");
    let page = alice_client
        .send(Method::GET, &format!("/recordings/{}", first.id), &[], "")
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    let bob_client = s.server.login("bob", "bob-password").await;
    let hidden = bob_client
        .send(Method::GET, "/api/v1/machines/m1/recordings", &[], "")
        .await
        .unwrap();
    assert_eq!(hidden.status, 404);
    let admin = s.server.admin().await;
    let all = admin
        .send(Method::GET, "/api/v1/machines/m1/recordings", &[], "")
        .await
        .unwrap();
    assert_eq!(all.status, 200);

    // The page: alice's, with the machine's socket; bob's: not found.
    let page = alice_client
        .send(Method::GET, "/m/m1", &[], "")
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    let html = String::from_utf8(page.body.to_vec()).unwrap();
    assert!(
        html.contains("data-ws-url=\"/api/v1/machines/m1/terminal\""),
        "{html}"
    );
    let page = bob_client
        .send(Method::GET, "/m/m1", &[], "")
        .await
        .unwrap();
    assert_eq!(page.status, 404);

    // Attach and detach are audited for each session, with the machine as the target.
    for action in ["terminal.attach", "terminal.detach"] {
        let query = json!({
            "table": "audit",
            "filters": [
                {"column": "action", "op": "eq", "value": action},
                {"column": "target", "op": "eq", "value": "machine:m1"},
                {"column": "actor", "op": "eq", "value": "alice"},
            ],
        });
        let answer = send_json(&admin, "POST", "/api/v1/tables/query", &query.to_string()).await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let rows: Value = serde_json::from_slice(&answer.body).unwrap();
        let rows = rows["rows"].as_array().unwrap();
        // The echo, the viewer, the Origin-checked one; the refused ones are audited as denied
        // only when the caller had no role.
        assert!(rows.len() >= 3, "{action}: {rows:?}");
    }
}

/// The machine's recordings once at least `n` have ended.
async fn wait_for_recordings(client: &berth_client::Client, n: usize) -> RecordingList {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let answer = client
            .send(Method::GET, "/api/v1/machines/m1/recordings", &[], "")
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let list: RecordingList = serde_json::from_slice(&answer.body).unwrap();
        if list
            .recordings
            .iter()
            .filter(|r| r.ended_at.is_some())
            .count()
            >= n
        {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {n} finished recordings: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_terminal_closes_when_a_reload_takes_the_machine_from_its_user() {
    let Some(lab) = machines::lab() else { return };
    let s = setup(&lab, |b| b).await;
    let alice = token(&s.server, "alice", "alice-password").await;
    let admin = token(&s.server, "admin", &s.server.admin_password).await;
    let mut term = Term::open(&s.server, M1, &alice).await;
    let mut admins = Term::open(&s.server, M1, &admin).await;
    term.type_("echo still-$((1+1))\r").await;
    term.expect("still-2").await;
    // users.yaml changes behind the server's back, then a reload (as SIGHUP does).
    let state = s.server.state.clone();
    tokio::task::spawn_blocking(move || {
        state
            .config_store
            .update_user("alice", |u| u.machines = vec!["m3".parse().unwrap()])
            .unwrap();
        state.config.reload().unwrap();
    })
    .await
    .unwrap();
    let (message, code) = refusal(term.ws).await;
    assert_eq!(code, 4403, "{message}");
    assert!(message.contains("machine:m1"), "{message}");
    // An admin's terminal on the same machine goes on.
    admins.type_("echo admin-$((2+2))\r").await;
    admins.expect("admin-4").await;
    // And alice may not open another.
    let ws = connect(&s.server, M1, Some(&alice), None).await.unwrap();
    assert_eq!(refusal(ws).await.1, 4404);
}

/// Waits until `done` holds, polling (a failure report after [`PATIENCE`], not a timing).
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A grid socket's messages, output decoded per pane.
struct GridWs {
    ws: Ws,
    output: Vec<String>,
    messages: Vec<Value>,
}

impl GridWs {
    async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    async fn type_(&mut self, pane: usize, text: &str) {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(text);
        self.send(json!({"pane": pane, "type": "input", "data": data}))
            .await;
    }

    /// Reads until `done` holds of what was read.
    async fn until(&mut self, what: &str, done: impl Fn(&[String], &[Value]) -> bool) {
        use base64::Engine as _;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !done(&self.output, &self.messages) {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("never {what}: {:?} {:?}", self.output, self.messages));
            let Some(Ok(Message::Text(text))) = next else {
                panic!("the grid socket ended before {what}: {next:?}");
            };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] == "output" {
                let pane = value["pane"].as_u64().unwrap() as usize;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(value["data"].as_str().unwrap())
                    .unwrap();
                self.output[pane].push_str(&String::from_utf8_lossy(&bytes));
            } else {
                self.messages.push(value);
            }
        }
    }
}

#[tokio::test]
async fn a_grid_mixes_machines_and_workspaces_connects_all_at_once_and_broadcasts() {
    let Some(lab) = machines::lab() else { return };
    let s = setup(&lab, |b| b).await;
    let alice = s.server.login("alice", "alice-password").await;
    let token = token(&s.server, "alice", "alice-password").await;
    let ws = alice
        .start_workspace(&berth_types::api::StartWorkspace {
            template: "base".into(),
            persist: None,
            network: None,
        })
        .await
        .unwrap();
    let body = json!({
        "layout": "grid2x2",
        "panes": [{"machine": "m1"}, ws.id, {"machine": "m3"}, {"workspace": ws.id}],
    });
    let made = send_json(&alice, "POST", "/api/v1/grids", &body.to_string()).await;
    assert_eq!(made.status, 201, "{}", String::from_utf8_lossy(&made.body));
    let grid: Value = serde_json::from_slice(&made.body).unwrap();
    assert_eq!(
        grid["panes"],
        json!([{"machine": "m1"}, ws.id, {"machine": "m3"}, ws.id])
    );
    let id = grid["id"].as_str().unwrap().to_owned();
    // A machine the caller may not see is refused as one that does not exist.
    let bob = s.server.login("bob", "bob-password").await;
    let refused = send_json(
        &bob,
        "POST",
        "/api/v1/grids",
        &json!({"layout": "single", "panes": [{"machine": "m1"}]}).to_string(),
    )
    .await;
    assert_eq!(refused.status, 404);
    let refused = send_json(
        &alice,
        "PUT",
        &format!("/api/v1/grids/{id}/panes"),
        &json!({"panes": [{"machine": "m2"}]}).to_string(),
    )
    .await;
    assert_eq!(refused.status, 404);
    let bad = send_json(
        &alice,
        "PUT",
        &format!("/api/v1/grids/{id}/panes"),
        &json!({"panes": [{"machine": "Not An Id"}]}).to_string(),
    )
    .await;
    assert_eq!(bad.status, 422, "{}", String::from_utf8_lossy(&bad.body));
    let why = String::from_utf8_lossy(&bad.body);
    assert!(why.contains("machine: a machine id has"), "{why}");

    // connect-all opens every pane's session at once and says which did not open, and why.
    let before = s.relay.count();
    let answer = send_json(
        &alice,
        "POST",
        &format!("/api/v1/grids/{id}/connect-all"),
        "",
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let all: Value = serde_json::from_slice(&answer.body).unwrap();
    let states: Vec<&str> = all["panes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["connected", "connected", "not-enrolled", "connected"],
        "{all}"
    );
    assert!(
        all["panes"][2]["message"]
            .as_str()
            .unwrap()
            .contains("not enrolled"),
        "{all}"
    );
    assert_eq!(
        all["panes"][0]["title"],
        format!("{}@m1", lab.machine("m1").user)
    );
    assert_eq!(all["held_seconds"], 60);
    assert_eq!(s.relay.count(), before + 1, "one SSH connection for m1");

    // The grid's socket takes the held sessions: no second connection.
    let socket = connect(
        &s.server,
        &format!("/api/v1/grids/{id}/ws"),
        Some(&token),
        None,
    )
    .await
    .unwrap();
    let mut grid = GridWs {
        ws: socket,
        output: vec![String::new(); 4],
        messages: Vec::new(),
    };
    grid.until("three panes connected", |_, m| {
        m.iter()
            .filter(|v| v["type"] == "status" && v["data"]["state"] == "connected")
            .count()
            == 3
    })
    .await;
    assert!(
        grid.messages
            .iter()
            .any(|v| v["type"] == "error" && v["pane"] == 2),
        "{:?}",
        grid.messages
    );
    assert_eq!(s.relay.count(), before + 1);
    // Each pane answers in its own pane.
    for (pane, n) in [(0, 11), (1, 12), (3, 13)] {
        grid.type_(pane, &format!("echo pane-$(({n}*2))\r")).await;
        let want = format!("pane-{}", n * 2);
        grid.until(&want, |out, _| out[pane].contains(&want)).await;
    }
    for (pane, other) in [(0, "pane-24"), (0, "pane-26"), (1, "pane-22")] {
        assert!(
            !grid.output[pane].contains(other),
            "pane {pane}: {:?}",
            grid.output
        );
    }
    // Broadcast typing: off by default, then every open pane gets the input.
    grid.send(json!({"type": "broadcast", "data": true})).await;
    grid.until("broadcast on", |_, m| {
        m.iter()
            .any(|v| v["type"] == "broadcast" && v["data"] == true)
    })
    .await;
    grid.type_(1, "echo all-$((3*3))\r").await;
    grid.until("all-9 everywhere", |out, _| {
        [0, 1, 3].iter().all(|&p| out[p].contains("all-9"))
    })
    .await;
    assert_eq!(s.relay.open.load(Ordering::SeqCst), 1);
    // Closing the page closes every SSH session.
    drop(grid);
    eventually("the SSH connection closed", || {
        s.relay.open.load(Ordering::SeqCst) == 0
    })
    .await;
}
