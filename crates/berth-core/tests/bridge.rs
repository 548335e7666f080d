//! The terminal protocol loop over fake exec sessions and an in-memory socket: the protocol,
//! roles, back-pressure, and hostile output and input (a property test). The same loop runs
//! against real containers in `terminals.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_core::bridge::{
    Bridge, BridgeEnd, MAX_IN_FLIGHT, MAX_OUTPUT_FRAME, Message, OUTPUT_QUEUE_FRAMES, close,
};
use berth_core::{Activity, RecordingStart, Recordings, SessionRole};
use berth_terminal::{TerminalError, TtySize};
use berth_types::WorkspaceId;
use bytes::Bytes;
use common::fake::{echo, scripted};
use common::wire::{StallingSink, socket};
use common::{asciicast, user};
use futures_util::StreamExt;
use serde_json::json;

fn bridge(exec: berth_terminal::Pty, role: SessionRole) -> Bridge {
    Bridge::new(exec, WorkspaceId::random(), user("alice"), role)
}

#[tokio::test]
async fn echo_round_trip_hello_first_and_exit_last() {
    let (exec, _control) = echo(7);
    let workspace = WorkspaceId::random();
    let activity = Activity::detached();
    let session = Bridge::new(exec, workspace, user("alice"), SessionRole::Owner)
        .with_activity(std::sync::Arc::new(activity.clone()));
    let stats = session.stats();
    let (mut client, sink, stream) = socket();
    let run = tokio::spawn(session.run(sink, stream));

    let hello = client.next_json().await;
    assert_eq!(
        hello,
        json!({"type": "hello", "workspace": workspace.to_string(),
               "target": {"kind": "workspace", "id": workspace.to_string()},
               "you": "alice", "role": "owner",
               "members": [{"username": "alice", "role": "owner"}]})
    );
    client.type_text("héllo\n").await;
    client.read_until("héllo\n").await;
    assert!(activity.last() > 0, "input and output count as activity");
    assert_eq!(stats.input_bytes(), "héllo\n".len() as u64);

    client.control(json!({"type": "ping"})).await;
    assert_eq!(client.next_of("pong").await, json!({"type": "pong"}));

    // The client goes away: the session ends without waiting for the shell.
    client.tx.close_channel();
    assert_eq!(run.await.unwrap().end, BridgeEnd::ClientGone);
}

#[tokio::test]
async fn the_exit_code_follows_all_output_then_close_1000() {
    let chunks: Vec<Result<Bytes, TerminalError>> = (0..20)
        .map(|i| Ok(Bytes::from(format!("line {i}\n"))))
        .collect();
    let (exec, _control, _) = scripted(futures_util::stream::iter(chunks), 3);
    let (mut client, sink, stream) = socket();
    let run = tokio::spawn(bridge(exec, SessionRole::Owner).run(sink, stream));
    let (output, texts, closed) = client.drain().await;
    let expected: String = (0..20).map(|i| format!("line {i}\n")).collect();
    assert_eq!(String::from_utf8(output).unwrap(), expected);
    assert_eq!(texts[0]["type"], "hello");
    assert_eq!(texts.last(), Some(&json!({"type": "exit", "code": 3})));
    assert_eq!(closed, Some((1000, "exited".into())));
    assert_eq!(run.await.unwrap().end, BridgeEnd::Exited(Some(3)));
}

#[tokio::test]
async fn malformed_control_messages_get_an_error_and_the_session_goes_on() {
    let (exec, control) = echo(0);
    let (mut client, sink, stream) = socket();
    let _run = tokio::spawn(bridge(exec, SessionRole::Peer).run(sink, stream));
    client.next_of("hello").await;
    for (bad, why) in [
        ("{not json", "not JSON"),
        (r#"{"type":"launch"}"#, "unknown control message type"),
        (r#"{"type":"resize","cols":0,"rows":10}"#, "1 to 1000"),
        (r#"{"type":"resize","cols":80,"rows":1001}"#, "1 to 1000"),
        (
            r#"{"type":"resize","cols":"80","rows":24}"#,
            "malformed resize",
        ),
    ] {
        client.send(Message::Text(bad.into())).await;
        let error = client.next_of("error").await;
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(why), "{bad}: {message}");
    }
    assert!(control.resizes.lock().unwrap().is_empty());
    client
        .control(json!({"type": "resize", "cols": 1000, "rows": 1}))
        .await;
    client.type_text("still here").await;
    client.read_until("still here").await;
    assert_eq!(
        *control.resizes.lock().unwrap(),
        [TtySize {
            cols: 1000,
            rows: 1
        }]
    );
}

#[tokio::test]
async fn oversized_frames_are_refused_with_1009() {
    let (exec, _control) = echo(0);
    let (mut client, sink, stream) = socket();
    let run = tokio::spawn(bridge(exec, SessionRole::Owner).run(sink, stream));
    client.next_of("hello").await;
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(4096));
    client.send(Message::Text(big)).await;
    let (_, texts, closed) = client.drain().await;
    let error = texts.iter().find(|t| t["type"] == "error").unwrap();
    assert!(error["message"].as_str().unwrap().contains("at most 4096"));
    assert_eq!(closed.unwrap().0, close::TOO_BIG);
    assert!(matches!(
        run.await.unwrap().end,
        BridgeEnd::Refused { code: 1009, .. }
    ));

    let (exec, _control) = echo(0);
    let (mut client, sink, stream) = socket();
    let run = tokio::spawn(bridge(exec, SessionRole::Owner).run(sink, stream));
    client
        .send(Message::Binary(vec![b'a'; 1024 * 1024 + 1].into()))
        .await;
    let (_, _, closed) = client.drain().await;
    assert_eq!(closed.unwrap().0, close::TOO_BIG);
    assert!(matches!(
        run.await.unwrap().end,
        BridgeEnd::Refused { code: 1009, .. }
    ));
}

#[tokio::test]
async fn a_viewer_sees_output_but_its_input_and_resizes_never_arrive() {
    let (output_tx, output_rx) = futures_channel::mpsc::channel::<Result<Bytes, TerminalError>>(4);
    let (exec, control, input) = scripted(output_rx, 0);
    let session = bridge(exec, SessionRole::Viewer);
    let stats = session.stats();
    let (mut client, sink, stream) = socket();
    let _run = tokio::spawn(session.run(sink, stream));
    assert_eq!(client.next_of("hello").await["role"], "viewer");
    client.type_text("rm -rf /\n").await;
    client
        .control(json!({"type": "resize", "cols": 10, "rows": 5}))
        .await;
    client.control(json!({"type": "ping"})).await;
    client.next_of("pong").await; // the frames before the ping were handled
    let mut output_tx = output_tx;
    futures_util::SinkExt::send(&mut output_tx, Ok(Bytes::from_static(b"shared screen")))
        .await
        .unwrap();
    client.read_until("shared screen").await;
    assert!(input.bytes().is_empty(), "a viewer's input is dropped");
    assert!(
        control.resizes.lock().unwrap().is_empty(),
        "a viewer's resize is ignored"
    );
    assert_eq!(stats.dropped_input_bytes(), 9);
}

#[tokio::test]
async fn a_stalled_client_holds_a_bounded_number_of_bytes_and_stops_the_exec() {
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&pulled);
    // `yes`, as fast as it is read, in 32 KiB chunks like the Docker runtime's.
    const CHUNK: usize = 32 * 1024;
    let output = futures_util::stream::repeat_with(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(Bytes::from(vec![b'y'; CHUNK]))
    });
    let (exec, _control, _) = scripted(output, 0);
    let session = bridge(exec, SessionRole::Owner);
    let stats = session.stats();
    let sink = StallingSink::new(256 * 1024);
    let (_client_tx, stream) =
        futures_channel::mpsc::channel::<Result<Message, std::convert::Infallible>>(1);
    let run = tokio::spawn(session.run(sink.clone(), stream));
    // Give an unbounded bridge every chance to show itself: wait until the client stalled and
    // the exec has not been read for a while, or fail if it keeps being read.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (mut last, mut stable) = (u64::MAX, 0);
    while stable < 5 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = pulled.load(Ordering::Relaxed);
        stable = if sink.stalled() && now == last {
            stable + 1
        } else {
            0
        };
        last = now;
        assert!(
            std::time::Instant::now() < deadline,
            "the exec kept being read while the client stalled: {} bytes",
            now * CHUNK as u64
        );
    }
    let budget = 256 * 1024;
    assert!(
        last as usize * CHUNK <= budget + CHUNK + MAX_IN_FLIGHT,
        "{} bytes read for a client that took {budget}",
        last * CHUNK as u64
    );
    let held = stats.output_bytes() - sink.accepted.load(Ordering::Relaxed) as u64;
    assert!(held as usize <= MAX_IN_FLIGHT, "{held} bytes held");
    assert!(stats.peak_in_flight() <= MAX_IN_FLIGHT);
    assert_eq!(
        MAX_IN_FLIGHT,
        (OUTPUT_QUEUE_FRAMES + 2) * MAX_OUTPUT_FRAME,
        "the documented bound"
    );
    run.abort();
}

#[tokio::test]
async fn chunks_larger_than_a_frame_are_split() {
    let big = Bytes::from(vec![b'z'; 3 * MAX_OUTPUT_FRAME + 5]);
    let (exec, _control, _) = scripted(futures_util::stream::iter([Ok(big.clone())]), 0);
    let (mut client, sink, stream) = socket();
    let _run = tokio::spawn(bridge(exec, SessionRole::Owner).run(sink, stream));
    let mut sizes = Vec::new();
    while let Some(message) = client.next().await {
        match message {
            Message::Binary(bytes) => sizes.push(bytes.len()),
            Message::Close(..) => break,
            Message::Text(_) => {}
        }
    }
    assert_eq!(
        sizes,
        [MAX_OUTPUT_FRAME, MAX_OUTPUT_FRAME, MAX_OUTPUT_FRAME, 5]
    );
}

mod hostile {
    //! Terminal output is hostile input: random bytes and escape sequences through the bridge
    //! and the recorder, with random client frames in between.

    use super::*;
    use proptest::prelude::*;

    fn sequence() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            // OSC (title, hyperlink, clipboard), DCS and DECRQSS, unterminated or not.
            "[ -~]{0,64}".prop_map(|s| format!("\x1b]0;{s}\x07").into_bytes()),
            "[ -~]{0,64}".prop_map(|s| format!("\x1b]8;;{s}\x1b\\link\x1b]8;;\x1b\\").into_bytes()),
            "[A-Za-z0-9+/=]{0,64}".prop_map(|s| format!("\x1b]52;c;{s}\x07").into_bytes()),
            "[ -~]{0,64}".prop_map(|s| format!("\x1bP{s}\x1b\\").into_bytes()),
            Just(b"\x1bP$q\"p\x1b\\\x1bP$qm\x1b\\".to_vec()),
            Just(b"\x1b[6n\x1b[c\x1b[>c\x1b]10;?\x07".to_vec()),
            // A 1 MiB escape sequence that never ends.
            Just([b"\x1b]2;".as_slice(), &vec![b'A'; 1 << 20]].concat()),
            // Invalid and truncated UTF-8.
            Just(vec![0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82, 0xf0, 0x9f, 0x92]),
            "\\PC{0,32}".prop_map(String::into_bytes),
        ]
    }

    fn client_frame() -> impl Strategy<Value = Message> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| Message::Binary(b.into())),
            "\\PC{0,64}".prop_map(Message::Text),
            (0u32..2000, 0u32..2000).prop_map(|(c, r)| Message::Text(format!(
                r#"{{"type":"resize","cols":{c},"rows":{r}}}"#
            ))),
            Just(Message::Text(r#"{"type":"ping"}"#.into())),
            Just(Message::Text("x".repeat(5000))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn any_output_and_any_client_frames_end_cleanly_and_record_valid_asciicast(
            chunks in prop::collection::vec(sequence(), 1..12),
            frames in prop::collection::vec(client_frame(), 0..8),
        ) {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(60), check(chunks, frames))
                    .await
                    .expect("the bridge hung");
            });
        }
    }

    async fn check(chunks: Vec<Vec<u8>>, frames: Vec<Message>) {
        let dir = tempfile::tempdir().unwrap();
        let store = berth_store::open(dir.path().join("berth.db").to_str().unwrap())
            .await
            .unwrap();
        let recordings = Recordings::new(dir.path().join("recordings"), store);
        let workspace = WorkspaceId::random();
        let recorder = recordings
            .start(RecordingStart {
                target: workspace.into(),
                owner: user("alice"),
                username: user("alice"),
                size: TtySize { cols: 80, rows: 24 },
                title: "fuzz \u{1b}]0;x\u{7}".into(),
            })
            .await
            .unwrap();
        let expected: Vec<u8> = chunks.concat();
        let output = futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))));
        let (exec, _control, _) = scripted(output, 0);
        let session =
            Bridge::new(exec, workspace, user("alice"), SessionRole::Owner).with_recorder(recorder);
        let (mut client, sink, stream) = socket();
        let run = tokio::spawn(session.run(sink, stream));
        for frame in frames {
            if client.send_now(frame).is_err() {
                break;
            }
        }
        let (output, _texts, closed) = client.drain().await;
        let ended = run.await.unwrap();
        let refused = matches!(ended.end, BridgeEnd::Refused { .. });
        assert!(
            matches!(ended.end, BridgeEnd::Exited(Some(0))) || refused,
            "{ended:?}"
        );
        assert!(closed.is_some(), "the session closes the socket");
        if !refused {
            assert_eq!(output, expected, "output arrives unchanged");
        }
        let recording = ended.recording.expect("recorded");
        let file = recordings.recording(recording.id).await.unwrap();
        let bytes = std::fs::read(&file.path).unwrap();
        assert_eq!(recording.bytes, bytes.len() as u64);
        let cast = asciicast::parse(&bytes).unwrap_or_else(|e| panic!("invalid asciicast: {e}"));
        assert!(cast.markers().is_empty(), "{:?}", cast.markers());
        if !refused {
            assert_eq!(cast.output(), String::from_utf8_lossy(&expected));
        }
    }
}

impl common::wire::Client {
    /// Queues a frame without waiting (the bridge may have closed already).
    fn send_now(&mut self, message: Message) -> Result<(), ()> {
        self.tx.try_send(Ok(message)).map_err(drop)
    }
}

#[tokio::test]
async fn output_stream_errors_close_1011_so_the_client_reconnects() {
    let output = futures_util::stream::iter([
        Ok(Bytes::from_static(b"before")),
        Err(TerminalError::Lost("engine went away".into())),
    ]);
    let (exec, _control, _) = scripted(output.chain(futures_util::stream::pending()), 0);
    let (mut client, sink, stream) = socket();
    let run = tokio::spawn(bridge(exec, SessionRole::Owner).run(sink, stream));
    let (output, texts, closed) = client.drain().await;
    assert_eq!(output, b"before");
    let error = texts.iter().find(|t| t["type"] == "error").unwrap();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("engine went away")
    );
    assert_eq!(closed.unwrap().0, close::INTERNAL);
    assert!(matches!(run.await.unwrap().end, BridgeEnd::Lost(_)));
}
