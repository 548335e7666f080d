//! The grid socket over fake panes: routing by pane, base64 both ways, statuses, errors for bad
//! messages and failed panes, idle close, and back-pressure. Real workspaces in a grid are in
//! `terminals.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use berth_core::SessionRole;
use berth_core::bridge::{Bridge, GridEnd, GridPane, GridSession, MAX_IN_FLIGHT, Message, close};
use berth_types::WorkspaceId;
use bytes::Bytes;
use common::fake::{echo, scripted};
use common::user;
use common::wire::{StallingSink, socket};
use serde_json::{Value, json};

fn pane(title: &str, exec: berth_terminal::Pty, role: SessionRole) -> GridPane {
    GridPane::bridge(
        title,
        Bridge::new(exec, WorkspaceId::random(), user("alice"), role),
    )
}

fn input(pane: usize, text: &str) -> Message {
    Message::Text(json!({"pane": pane, "type": "input", "data": BASE64.encode(text)}).to_string())
}

/// Grid messages until one satisfies `until`; output is decoded per pane.
async fn read_grid(
    client: &mut common::wire::Client,
    mut until: impl FnMut(&Value, &[Vec<u8>]) -> bool,
) -> (Vec<Value>, Vec<Vec<u8>>) {
    let mut seen = Vec::new();
    let mut outputs = vec![Vec::new(); 4];
    loop {
        let value = match client.next().await {
            Some(Message::Text(text)) => serde_json::from_str::<Value>(&text).unwrap(),
            other => panic!("expected a grid message, got {other:?} after {seen:?}"),
        };
        if value["type"] == "output" {
            let pane = value["pane"].as_u64().unwrap() as usize;
            outputs[pane].extend(BASE64.decode(value["data"].as_str().unwrap()).unwrap());
        }
        let done = until(&value, &outputs);
        seen.push(value);
        if done {
            return (seen, outputs);
        }
    }
}

#[tokio::test]
async fn panes_are_routed_by_number_and_failed_panes_say_why() {
    let (a, _) = echo(0);
    let (b, b_control) = echo(0);
    let grid = GridSession::new(
        vec![
            pane("alice@python", a, SessionRole::Owner),
            GridPane::failed("w-2", "no such workspace"),
            pane("bob@shell", b, SessionRole::Peer),
        ],
        Duration::from_secs(3600),
    );
    let (mut client, sink, stream) = socket();
    let _run = tokio::spawn(grid.run(sink, stream));

    // Statuses of the live panes, error and status of the failed one, in any order.
    let mut first = Vec::new();
    read_grid(&mut client, |m, _| {
        first.push(json!([m["pane"], m["type"], m["data"]]));
        first.len() == 4
    })
    .await;
    for expected in [
        json!([0, "status", {"state": "connected", "title": "alice@python"}]),
        json!([1, "error", "no such workspace"]),
        json!([1, "status", {"state": "closed", "title": "w-2"}]),
        json!([2, "status", {"state": "connected", "title": "bob@shell"}]),
    ] {
        assert!(first.contains(&expected), "{expected} not in {first:?}");
    }
    client.send(input(2, "to pane two")).await;
    client.send(input(0, "to pane zero")).await;
    let (seen, outputs) = read_grid(&mut client, |_, out| {
        out[0] == b"to pane zero" && out[2] == b"to pane two"
    })
    .await;
    assert!(seen.iter().all(|m| m["pane"] != 1));
    assert!(outputs[1].is_empty());

    client
        .send(Message::Text(
            json!({"pane": 2, "type": "resize", "data": {"cols": 120, "rows": 40}}).to_string(),
        ))
        .await;
    client.send(input(2, "after resize")).await;
    read_grid(&mut client, |_, out| out[2].ends_with(b"after resize")).await;
    assert_eq!(
        *b_control.resizes.lock().unwrap(),
        [berth_terminal::TtySize {
            cols: 120,
            rows: 40
        }]
    );

    // Bad messages get errors, for the pane when it is known; the grid goes on.
    for (bad, pane) in [
        (Message::Text("{".into()), Value::Null),
        (Message::Binary(Bytes::from_static(b"raw")), Value::Null),
        (input(1, "to the failed pane"), json!(1)),
        (
            Message::Text(json!({"pane": 0, "type": "input", "data": "%%"}).to_string()),
            json!(0),
        ),
    ] {
        client.send(bad).await;
        let (seen, _) = read_grid(&mut client, |m, _| m["type"] == "error").await;
        assert_eq!(seen.last().unwrap()["pane"], pane);
    }
    client.send(input(0, " still")).await;
    read_grid(&mut client, |_, out| out[0].ends_with(b" still")).await;
}

#[tokio::test]
async fn statuses_exit_codes_and_the_close_when_every_pane_ended() {
    let (a, _, _) = scripted(
        futures_util::stream::iter([Ok(Bytes::from_static(b"bye"))]),
        4,
    );
    let grid = GridSession::new(
        vec![
            pane("one", a, SessionRole::Owner),
            GridPane::failed(
                "two",
                "the workspace is stopped, not running; start it first",
            ),
        ],
        Duration::from_secs(3600),
    );
    let (mut client, sink, stream) = socket();
    let run = tokio::spawn(grid.run(sink, stream));
    let mut messages = Vec::new();
    let closed = loop {
        match client.next().await {
            Some(Message::Text(text)) => {
                messages.push(serde_json::from_str::<Value>(&text).unwrap())
            }
            Some(Message::Close(code, reason)) => break (code, reason),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(closed, (close::NORMAL, "ended".into()));
    assert_eq!(run.await.unwrap(), GridEnd::PanesEnded);
    let of = |pane: u64| -> Vec<Value> {
        messages
            .iter()
            .filter(|m| m["pane"] == pane)
            .map(|m| json!([m["type"], m["data"]]))
            .collect()
    };
    assert_eq!(
        of(1),
        [
            json!([
                "error",
                "the workspace is stopped, not running; start it first"
            ]),
            json!(["status", {"state": "closed", "title": "two"}]),
        ]
    );
    assert_eq!(
        of(0),
        [
            json!(["status", {"state": "connected", "title": "one"}]),
            json!(["output", BASE64.encode("bye")]),
            json!(["exit", 4]),
            json!(["status", {"state": "closed", "title": "one"}]),
        ]
    );
}

#[tokio::test]
async fn an_idle_grid_closes_and_ends_its_panes() {
    let (a, a_control) = echo(0);
    let grid = GridSession::new(
        vec![pane("one", a, SessionRole::Owner)],
        Duration::from_millis(300),
    );
    let (mut client, sink, stream) = socket();
    let run = tokio::spawn(grid.run(sink, stream));
    client.send(input(0, "typing keeps it open")).await;
    let closed = loop {
        match client.next().await {
            Some(Message::Close(code, reason)) => break (code, reason),
            Some(_) => {}
            None => panic!("closed without a close frame"),
        }
    };
    assert_eq!(closed, (close::NORMAL, "idle".into()));
    assert_eq!(run.await.unwrap(), GridEnd::Idle);
    // The pane's session was dropped: nothing holds its exec any more.
    assert_eq!(Arc::strong_count(&a_control), 1);
}

#[tokio::test]
async fn a_stalled_grid_client_holds_a_bounded_number_of_bytes() {
    let mut panes = Vec::new();
    let mut counters = Vec::new();
    let mut stats = Vec::new();
    for i in 0..4 {
        let pulled = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&pulled);
        let output = futures_util::stream::repeat_with(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok(Bytes::from(vec![b'y'; 8192]))
        });
        let (exec, _, _) = scripted(output, 0);
        let bridge = Bridge::new(
            exec,
            WorkspaceId::random(),
            user("alice"),
            SessionRole::Owner,
        );
        stats.push(bridge.stats());
        panes.push(GridPane::bridge(format!("yes {i}"), bridge));
        counters.push(pulled);
    }
    let grid = GridSession::new(panes, Duration::from_secs(3600));
    let sink = StallingSink::new(1 << 20);
    let (_client_tx, stream) =
        futures_channel::mpsc::channel::<Result<Message, std::convert::Infallible>>(1);
    let run = tokio::spawn(grid.run(sink.clone(), stream));
    let total = || {
        counters
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (mut last, mut stable) = (u64::MAX, 0);
    while stable < 5 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = total();
        stable = if sink.stalled() && now == last {
            stable + 1
        } else {
            0
        };
        last = now;
        assert!(
            std::time::Instant::now() < deadline,
            "the panes kept being read while the client stalled: {} bytes",
            now * 8192
        );
    }
    for s in &stats {
        assert!(
            s.peak_in_flight() <= MAX_IN_FLIGHT,
            "{}",
            s.peak_in_flight()
        );
    }
    run.abort();
}

#[tokio::test]
async fn broadcast_typing_reaches_every_pane_that_may_type_and_no_viewer() {
    let (a, _) = echo(0);
    let (b, _) = echo(0);
    let (c, _) = echo(0);
    let grid = GridSession::new(
        vec![
            pane("alice@one", a, SessionRole::Owner),
            pane("alice@two", b, SessionRole::Peer),
            pane("carol@three", c, SessionRole::Viewer),
            GridPane::failed("w-4", "no such workspace"),
        ],
        Duration::from_secs(3600),
    );
    let stats = grid.stats();
    let (mut client, sink, stream) = socket();
    let run = tokio::spawn(grid.run(sink, stream));
    read_grid(&mut client, |m, _| m["type"] == "status" && m["pane"] == 3).await;

    // Off by default: input goes to its pane only.
    client.send(input(0, "only-zero\n")).await;
    read_grid(&mut client, |_, out| {
        String::from_utf8_lossy(&out[0]).contains("only-zero")
    })
    .await;
    client
        .send(Message::Text(
            json!({"type": "broadcast", "data": true}).to_string(),
        ))
        .await;
    read_grid(&mut client, |m, _| {
        m["type"] == "broadcast" && m["data"] == true
    })
    .await;
    client.send(input(1, "to-all\n")).await;
    let (_, out) = read_grid(&mut client, |_, out| {
        String::from_utf8_lossy(&out[0]).contains("to-all")
            && String::from_utf8_lossy(&out[1]).contains("to-all")
    })
    .await;
    assert!(!String::from_utf8_lossy(&out[1]).contains("only-zero"));
    client
        .send(Message::Text(
            json!({"type": "broadcast", "data": false}).to_string(),
        ))
        .await;
    read_grid(&mut client, |m, _| {
        m["type"] == "broadcast" && m["data"] == false
    })
    .await;
    client.send(input(0, "zero-again\n")).await;
    read_grid(&mut client, |_, out| {
        String::from_utf8_lossy(&out[0]).contains("zero-again")
    })
    .await;
    client.send(Message::Close(1000, String::new())).await;
    run.await.unwrap();
    let bytes = |s: &Option<berth_core::bridge::BridgeStats>| {
        let s = s.as_ref().unwrap();
        (s.input_bytes(), s.dropped_input_bytes())
    };
    let (zero, one, viewer) = ("only-zero\nto-all\nzero-again\n", "to-all\n", "");
    assert_eq!(bytes(&stats[0]), (zero.len() as u64, 0));
    assert_eq!(bytes(&stats[1]), (one.len() as u64, 0));
    assert_eq!(
        bytes(&stats[2]),
        (viewer.len() as u64, 0),
        "the viewer got nothing"
    );
    assert!(stats[3].is_none());
}
