//! Terminal sessions through the bridge against real containers on the real Docker Engine,
//! with an in-memory channel pair as the socket: echo, resize, recordings (checked with a
//! strict parser and `asciinema`), audit, members and roles in a shared tmux session, a
//! stalled client, and a grid.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use berth_core::bridge::{BridgeEnd, GridRequest, Layout, MAX_IN_FLIGHT, Message, close};
use berth_core::{AttachRequest, SessionRole, StartOptions, Terminals, WorkspaceError};
use berth_store::MemberRole;
use berth_terminal::TtySize;
use berth_terminal::{OpenError, TargetKind};
use berth_types::{Role, WorkspaceId};
use common::asciicast::{asciinema_cat, parse};
use common::wire::{Client, StallingSink, socket};
use common::{Harness, TestPolicy, plan, run, user};
use serde_json::{Value, json};

fn terminals(h: &Harness) -> Terminals {
    Terminals::for_workspaces(&h.manager, h.dir.join("recordings"))
}

fn shared_plan() -> berth_core::Plan {
    let mut shared = plan("pair");
    shared.shared = true;
    shared.record = true;
    shared
}

fn recorded_plan() -> berth_core::Plan {
    let mut base = plan("base");
    base.record = true;
    base
}

async fn start(h: &Harness, owner: &str, template: &str) -> WorkspaceId {
    h.manager
        .start(&user(owner), template, &StartOptions::default())
        .await
        .unwrap()
        .id
}

/// Attaches `who` and runs the session in a task; returns the client end and the task.
async fn attach(
    t: &Terminals,
    request: AttachRequest,
) -> (Client, tokio::task::JoinHandle<berth_core::bridge::Ended>) {
    let session = t.attach(request).await.unwrap();
    let (client, sink, stream) = socket();
    (client, tokio::spawn(session.run(sink, stream)))
}

#[tokio::test]
async fn echo_resize_exit_recording_and_audit_through_the_bridge() {
    let h = Harness::new(TestPolicy::with([(recorded_plan(), 0)])).await;
    let t = terminals(&h);
    let ws = start(&h, "alice", "base").await;
    let mut request = AttachRequest::new(ws, user("alice"), Role::User);
    request.size = TtySize { cols: 90, rows: 20 };
    let (mut client, task) = attach(&t, request).await;

    let hello = client.next_json().await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["role"], "owner");
    assert_eq!(
        hello["members"],
        json!([{"username": "alice", "role": "owner"}])
    );
    client.type_text("echo \"hel\"lo-$((6*7))\n").await;
    client.read_until("hello-42").await;

    client
        .control(json!({"type": "resize", "cols": 101, "rows": 37}))
        .await;
    client.type_text("stty size\n").await;
    client.read_until("37 101").await;

    // Input is not recorded: a password typed with echo off never reaches the file.
    // "ready" is printed once echo is off, so the secret is typed into a silent terminal.
    client
        .type_text("stty -echo; echo ready-$((1+1)); read pw; stty echo; echo \"got-${#pw}\"\n")
        .await;
    client.read_until("ready-2").await;
    client.type_text("sup3r-s3cret\n").await;
    client.read_until("got-12").await;

    client.type_text("exit 3\n").await;
    let (_, texts, closed) = client.drain().await;
    assert_eq!(texts.last(), Some(&json!({"type": "exit", "code": 3})));
    assert_eq!(closed, Some((close::NORMAL, "exited".into())));
    let ended = task.await.unwrap();
    assert_eq!(ended.end, BridgeEnd::Exited(Some(3)));

    let recording = ended.recording.expect("the template records");
    let listed = t.recordings().recordings_for(&ws.into()).await.unwrap();
    assert_eq!(listed, std::slice::from_ref(&recording));
    assert_eq!((recording.width, recording.height), (90, 20));
    let file = t.recordings().recording(recording.id).await.unwrap();
    let bytes = std::fs::read(&file.path).unwrap();
    let cast = parse(&bytes).unwrap_or_else(|e| panic!("invalid asciicast: {e}"));
    let output = cast.output();
    assert!(output.contains("hello-42") && output.contains("37 101"));
    assert!(!output.contains("sup3r-s3cret"), "input is not recorded");
    assert!(
        cast.events
            .iter()
            .any(|e| e.code == "r" && e.data == "101x37")
    );
    assert!(cast.events.iter().all(|e| e.code != "i"));
    assert_eq!(
        String::from_utf8(asciinema_cat(&file.path)).unwrap(),
        output,
        "asciinema plays the recording back"
    );

    let attach = h.audit("terminal.attach").await;
    let detach = h.audit("terminal.detach").await;
    assert_eq!((attach.len(), detach.len()), (1, 1));
    assert_eq!(attach[0]["actor"], "alice");
    assert_eq!(attach[0]["target"], ws.to_string());
    assert_eq!(attach[0]["details"]["role"], "owner");
    assert_eq!(attach[0]["details"]["recording"], recording.id.to_string());
    assert_eq!(detach[0]["details"]["end"], "exited");
    assert_eq!(detach[0]["details"]["exit_code"], 3);
    assert!(detach[0]["details"]["bytes_in"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn two_users_share_a_session_and_a_viewer_cannot_type() {
    let h = Harness::new(TestPolicy::with([(shared_plan(), 0), (plan("base"), 0)])).await;
    let t = terminals(&h);
    let m = &h.manager;
    let ws = start(&h, "alice", "pair").await;
    let alice = user("alice");

    // Members: only for shared templates, never the owner.
    let solo = start(&h, "alice", "base").await;
    assert!(matches!(
        m.add_member(solo, &user("bob"), MemberRole::Peer, &alice)
            .await,
        Err(WorkspaceError::InvalidOption(_))
    ));
    assert!(matches!(
        m.add_member(ws, &alice, MemberRole::Viewer, &alice).await,
        Err(WorkspaceError::InvalidOption(_))
    ));
    m.add_member(ws, &user("bob"), MemberRole::Viewer, &alice)
        .await
        .unwrap();
    m.add_member(ws, &user("bob"), MemberRole::Peer, &alice)
        .await
        .unwrap();
    m.add_member(ws, &user("carol"), MemberRole::Viewer, &alice)
        .await
        .unwrap();
    let members: Vec<_> = m
        .members(ws)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.username.to_string(), m.role))
        .collect();
    assert_eq!(
        members,
        [
            ("bob".into(), MemberRole::Peer),
            ("carol".into(), MemberRole::Viewer)
        ]
    );
    let role =
        |name: &'static str, account| async move { m.role_of(ws, &user(name), account).await };
    assert_eq!(
        role("alice", Role::User).await.unwrap(),
        Some(SessionRole::Owner)
    );
    assert_eq!(
        role("bob", Role::User).await.unwrap(),
        Some(SessionRole::Peer)
    );
    assert_eq!(
        role("carol", Role::User).await.unwrap(),
        Some(SessionRole::Viewer)
    );
    assert_eq!(role("dave", Role::User).await.unwrap(), None);
    assert_eq!(
        role("root", Role::Admin).await.unwrap(),
        Some(SessionRole::Peer)
    );

    let (mut a, _a_run) = attach(&t, AttachRequest::new(ws, alice.clone(), Role::User)).await;
    a.next_of("hello").await;
    a.read_until(":/# ").await;
    let (mut b, _b_run) = attach(&t, AttachRequest::new(ws, user("bob"), Role::User)).await;
    assert_eq!(b.next_of("hello").await["role"], "peer");
    let joined = a.next_of("members").await;
    assert_eq!(
        joined["members"],
        json!([{"username": "alice", "role": "owner"}, {"username": "bob", "role": "peer"}])
    );
    b.type_text("echo from-bob-$((6*7))\n").await;
    a.read_until("from-bob-42").await;

    let session = t
        .attach(AttachRequest::new(ws, user("carol"), Role::User))
        .await
        .unwrap();
    let carol_stats = session.stats();
    let (mut c, sink, stream) = socket();
    let c_run = tokio::spawn(session.run(sink, stream));
    assert_eq!(c.next_of("hello").await["role"], "viewer");
    c.control(json!({"type": "resize", "cols": 20, "rows": 5}))
        .await;
    c.type_text("echo carol-$((6*7))\n").await;
    c.control(json!({"type": "ping"})).await;
    c.next_of("pong").await; // her frames before the ping were handled (and dropped)
    b.type_text("echo marker-$((2+3))\n").await;
    let seen_by_alice = a.read_until("marker-5").await;
    let seen_by_carol = c.read_until("marker-5").await;
    assert!(!seen_by_alice.contains("carol-42") && !seen_by_carol.contains("carol-42"));
    assert!(carol_stats.dropped_input_bytes() > 0);
    assert_eq!(carol_stats.input_bytes(), 0);
    let connected: Vec<_> = t
        .connected(&ws.into())
        .into_iter()
        .map(|c| (c.username.to_string(), c.role))
        .collect();
    assert_eq!(
        connected,
        [
            ("alice".into(), SessionRole::Owner),
            ("bob".into(), SessionRole::Peer),
            ("carol".into(), SessionRole::Viewer)
        ]
    );

    // Carol leaves: the others see it.
    c.tx.close_channel();
    assert_eq!(c_run.await.unwrap().end, BridgeEnd::ClientGone);
    loop {
        let members = a.next_of("members").await;
        if members["members"].as_array().unwrap().len() == 2 {
            break;
        }
    }

    // Nobody else gets in, and the attempt is audited; an admin may watch.
    assert!(matches!(
        t.attach(AttachRequest::new(ws, user("dave"), Role::User))
            .await,
        Err(OpenError::NotFound(TargetKind::Workspace))
    ));
    let denied = h.audit("terminal.attach").await;
    assert!(
        denied
            .iter()
            .any(|e| e["actor"] == "dave" && e["outcome"] == "denied")
    );
    let mut watch = AttachRequest::new(ws, user("root"), Role::Admin);
    watch.want = Some(SessionRole::Viewer);
    assert_eq!(t.attach(watch).await.unwrap().role(), SessionRole::Viewer);
    let mut greedy = AttachRequest::new(ws, user("carol"), Role::User);
    greedy.want = Some(SessionRole::Owner);
    assert_eq!(t.attach(greedy).await.unwrap().role(), SessionRole::Viewer);

    assert!(m.remove_member(ws, &user("carol")).await.unwrap());
    assert!(!m.remove_member(ws, &user("carol")).await.unwrap());
    assert!(matches!(
        t.attach(AttachRequest::new(ws, user("carol"), Role::User))
            .await,
        Err(OpenError::NotFound(TargetKind::Workspace))
    ));
}

#[tokio::test]
async fn a_stalled_client_blocks_the_process_instead_of_growing_memory() {
    let h = Harness::new(TestPolicy::with([(plan("base"), 0)])).await;
    let t = terminals(&h);
    let ws = start(&h, "alice", "base").await;
    let session = t
        .attach(AttachRequest::new(ws, user("alice"), Role::User))
        .await
        .unwrap();
    let stats = session.stats();
    let sink = StallingSink::new(256 * 1024);
    let (mut input, stream) =
        futures_channel::mpsc::channel::<Result<Message, std::convert::Infallible>>(4);
    let task = tokio::spawn(session.run(sink.clone(), stream));
    futures_util::SinkExt::send(&mut input, Ok(Message::Binary("yes\n".into())))
        .await
        .unwrap();

    // Wait until the client stalled and `yes` stopped writing (its write count in
    // /proc/PID/io stays put), or fail if it keeps writing.
    let written = || async {
        let out = run(
            &h,
            ws,
            "p=$(pgrep -x yes) && sed -n 's/^wchar: //p' /proc/$p/io || echo 0",
        )
        .await;
        out.trim().parse::<u64>().unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut stable) = (0, 0);
    while stable < 5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = written().await;
        stable = if sink.stalled() && now > 0 && now == last {
            stable + 1
        } else {
            0
        };
        last = now;
        assert!(
            Instant::now() < deadline,
            "`yes` kept writing while the client stalled: {now} bytes, the client took {}",
            sink.accepted.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    assert!(
        stats.peak_in_flight() <= MAX_IN_FLIGHT,
        "the bridge held {} bytes",
        stats.peak_in_flight()
    );
    // What `yes` wrote is what the client took, what the bridge holds, and what the kernel
    // and the engine buffer between them (PTY, sockets): megabytes at most, not unbounded.
    assert!(
        last < 16 << 20,
        "`yes` wrote {last} bytes for a stalled client"
    );
    assert_eq!(
        run(&h, ws, "ps -o stat= -C yes")
            .await
            .trim()
            .chars()
            .next(),
        Some('S'),
        "`yes` sleeps in write()"
    );
    // Closing the connection to the engine before the container is removed: the engine
    // would otherwise wait for the stalled output stream before it removes the container.
    task.abort();
    let _ = task.await;
}

#[tokio::test]
async fn a_grid_shows_two_workspaces_over_one_socket() {
    let h = Harness::new(TestPolicy::with([(plan("base"), 0)])).await;
    let t = terminals(&h);
    let one = start(&h, "alice", "base").await;
    let two = start(&h, "alice", "base").await;
    let theirs = start(&h, "bob", "base").await;
    let grid = t
        .grids()
        .create_grid(
            &user("alice"),
            Layout::Grid1x3,
            vec![one.into(), two.into(), theirs.into()],
        )
        .unwrap();
    assert!(matches!(
        t.open_grid(
            grid.id,
            GridRequest {
                user: user("bob"),
                account: Role::User,
                ip: None
            }
        )
        .await,
        Err(berth_core::bridge::GridError::NotFound)
    ));
    let session = t
        .open_grid(
            grid.id,
            GridRequest {
                user: user("alice"),
                account: Role::User,
                ip: None,
            },
        )
        .await
        .unwrap();
    let (mut client, sink, stream) = socket();
    let task = tokio::spawn(session.run(sink, stream));
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    for (pane, text) in [(0, "echo pane-$((0+10))\n"), (1, "echo pane-$((1+20))\n")] {
        client
            .send(Message::Text(
                json!({"pane": pane, "type": "input", "data": b64.encode(text)}).to_string(),
            ))
            .await;
    }
    let mut out = [String::new(), String::new(), String::new()];
    let mut failed = None;
    while !(out[0].contains("pane-10") && out[1].contains("pane-21") && failed.is_some()) {
        let Some(Message::Text(text)) = client.next().await else {
            panic!("grid closed early")
        };
        let m: Value = serde_json::from_str(&text).unwrap();
        let pane = m["pane"].as_u64().unwrap_or(9) as usize;
        match m["type"].as_str().unwrap() {
            "output" => out[pane].push_str(&String::from_utf8_lossy(
                &b64.decode(m["data"].as_str().unwrap()).unwrap(),
            )),
            "error" if pane == 2 => failed = Some(m["data"].clone()),
            _ => {}
        }
    }
    assert!(!out[0].contains("pane-21") && !out[1].contains("pane-10"));
    assert_eq!(
        failed,
        Some(json!("no such workspace")),
        "bob's workspace is not alice's to see"
    );
    client.tx.close_channel();
    assert_eq!(task.await.unwrap(), berth_core::bridge::GridEnd::ClientGone);
    // Both panes' sessions were audited as they ended.
    let detached = h.audit("terminal.detach").await;
    assert_eq!(detached.len(), 2, "{detached:?}");
}
