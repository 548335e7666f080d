//! Recordings as asciicast v2: what the real `asciinema` reads back, the size cap, output
//! dropped for a slow disk, and the index in the store. Sessions of real containers are
//! recorded in `terminals.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::os::unix::fs::PermissionsExt;

use berth_core::bridge::{Bridge, BridgeEnd};
use berth_core::{RecordingError, RecordingStart, Recordings, SessionRole};
use berth_store::RecordingId;
use berth_terminal::TtySize;
use berth_types::WorkspaceId;
use bytes::Bytes;
use common::asciicast::{asciinema_cat, parse};
use common::fake::scripted;
use common::user;
use common::wire::socket;

struct Setup {
    _dir: tempfile::TempDir,
    recordings: Recordings,
    store: std::sync::Arc<dyn berth_store::Store>,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = berth_store::open(dir.path().join("berth.db").to_str().unwrap())
        .await
        .unwrap();
    let recordings = Recordings::new(dir.path().join("recordings"), store.clone());
    Setup {
        _dir: dir,
        recordings,
        store,
    }
}

fn start(workspace: WorkspaceId) -> RecordingStart {
    RecordingStart {
        target: workspace.into(),
        owner: user("alice"),
        username: user("bob"),
        size: TtySize {
            cols: 100,
            rows: 30,
        },
        title: "bob in alice's workspace".into(),
    }
}

/// Output that splits characters across chunks, with escapes and invalid bytes.
fn tricky_chunks() -> Vec<Vec<u8>> {
    let euro = "€".as_bytes();
    vec![
        b"\x1b[1mbold\x1b[0m caf".to_vec(),
        vec![0xc3],
        vec![0xa9, b' ', euro[0], euro[1]],
        vec![euro[2], b'\r', b'\n', 0xff, b'x'],
        b"\x1b]0;title\x07\x1bP$q\"p\x1b\\ tab\t\"quote\" back\\slash\r\n".to_vec(),
        vec![0xf0, 0x9f],
    ]
}

#[tokio::test]
async fn asciinema_plays_back_exactly_what_the_terminal_printed() {
    let s = setup().await;
    let workspace = WorkspaceId::random();
    let recorder = s.recordings.start(start(workspace)).await.unwrap();
    let chunks = tricky_chunks();
    let all = chunks.concat();
    let output = futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))));
    let (exec, _, _) = scripted(output, 0);
    let session =
        Bridge::new(exec, workspace, user("bob"), SessionRole::Peer).with_recorder(recorder);
    let (mut client, sink, stream) = socket();
    let run = tokio::spawn(session.run(sink, stream));
    client.drain().await;
    let ended = run.await.unwrap();
    assert_eq!(ended.end, BridgeEnd::Exited(Some(0)));
    let recording = ended.recording.unwrap();

    let file = s.recordings.recording(recording.id).await.unwrap();
    assert!(file.path.starts_with(s.recordings.dir()));
    assert_eq!(file.recording, recording);
    let bytes = std::fs::read(&file.path).unwrap();
    let cast = parse(&bytes).unwrap();
    assert_eq!(cast.header["width"], 100);
    assert_eq!(cast.header["height"], 30);
    assert_eq!(cast.header["env"]["TERM"], "xterm-256color");
    assert_eq!(cast.header["title"], "bob in alice's workspace");
    assert!(cast.header["timestamp"].as_i64().unwrap() > 1_700_000_000);
    let expected = String::from_utf8_lossy(&all).into_owned();
    assert!(expected.contains("café €") && expected.ends_with('\u{FFFD}'));
    assert_eq!(cast.output(), expected);
    assert_eq!(
        String::from_utf8(asciinema_cat(&file.path)).unwrap(),
        expected,
        "asciinema prints the recorded output"
    );
    let mode = std::fs::metadata(&file.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "recordings are private to the server");
    let dir = file.path.parent().unwrap();
    let mode = std::fs::metadata(dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "and so is their directory");
}

#[tokio::test]
async fn a_recording_stops_at_its_size_cap_with_a_final_marker() {
    let s = setup().await;
    // A queue long enough that nothing is dropped for a slow disk.
    let recordings = s.recordings.clone().with_max_bytes(4096).with_queue(1024);
    let recorder = recordings
        .start(start(WorkspaceId::random()))
        .await
        .unwrap();
    for i in 0..200 {
        recorder.output(&Bytes::from(format!("line {i} of a chatty program\r\n")));
        recorder.resize(TtySize { cols: 80, rows: 24 });
    }
    let recording = recorder.finish().await.unwrap();
    let path = recordings.dir().join(&recording.path);
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() <= 4096, "{} bytes", bytes.len());
    assert_eq!(recording.bytes, bytes.len() as u64);
    let cast = parse(&bytes).unwrap();
    let last = cast.events.last().unwrap();
    assert_eq!(cast.markers().len(), 1, "{:?}", cast.markers());
    assert_eq!(last.code, "m");
    assert!(last.data.contains("size limit of 4096 bytes"), "{last:?}");
    assert!(cast.output().starts_with("line 0 of a chatty program\r\n"));
    assert!(
        cast.events
            .iter()
            .any(|e| e.code == "r" && e.data == "80x24")
    );
}

#[tokio::test]
async fn output_the_disk_cannot_keep_up_with_is_dropped_and_counted() {
    let s = setup().await;
    let recordings = s.recordings.clone().with_queue(1);
    let recorder = recordings
        .start(start(WorkspaceId::random()))
        .await
        .unwrap();
    // On this single-threaded runtime the writer cannot run between these calls: the first
    // chunk is queued, the other 99 find the queue full.
    for _ in 0..100 {
        recorder.output(&Bytes::from_static(b"0123456789"));
    }
    let recording = recorder.finish().await.unwrap();
    let cast = parse(&std::fs::read(recordings.dir().join(&recording.path)).unwrap()).unwrap();
    assert_eq!(cast.output(), "0123456789");
    assert_eq!(
        cast.markers(),
        ["berth: 990 bytes of output were not recorded (the disk was too slow)"]
    );
}

#[tokio::test]
async fn recordings_are_listed_per_workspace_and_found_by_id() {
    let s = setup().await;
    let workspace = WorkspaceId::random();
    let first = s.recordings.start(start(workspace)).await.unwrap();
    let second = s.recordings.start(start(workspace)).await.unwrap();
    let other = s
        .recordings
        .start(start(WorkspaceId::random()))
        .await
        .unwrap();
    let (a, b) = (first.id(), second.id());
    first.output(&Bytes::from_static(b"hi"));
    let first = first.finish().await.unwrap();
    assert!(first.ended_at.is_some());
    let listed = s
        .recordings
        .recordings_for(&workspace.into())
        .await
        .unwrap();
    let mut ids: Vec<RecordingId> = listed.iter().map(|r| r.id).collect();
    ids.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(ids, expected);
    let running = listed.iter().find(|r| r.id == b).unwrap();
    assert_eq!(running.ended_at, None, "a running session has no end yet");
    assert_eq!(running.owner, user("alice"));
    assert_eq!(running.username, user("bob"));
    assert_eq!((running.width, running.height), (100, 30));
    assert_eq!(
        running.path,
        format!("{workspace}/{b}.cast"),
        "relative to the recordings directory"
    );
    assert!(matches!(
        s.recordings.recording(RecordingId::random()).await,
        Err(RecordingError::NotFound)
    ));
    // A recorder dropped without `finish` (a cancelled session) still ends its row.
    drop(second);
    drop(other);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.store.get_recording(b).await.unwrap().ended_at.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the dropped recorder never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_recordings_directory_that_cannot_be_created_is_an_error() {
    let s = setup().await;
    let blocker = s.recordings.dir().parent().unwrap().join("file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let recordings = Recordings::new(&blocker, s.store.clone());
    let err = recordings
        .start(start(WorkspaceId::random()))
        .await
        .unwrap_err();
    assert!(matches!(err, RecordingError::Create { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot create recording"), "{err}");
}

/// Sets the modification time of `path`, as a write at `when` would.
fn last_written(path: &std::path::Path, when: time::OffsetDateTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when.into())
        .unwrap();
}

/// A finished (or, with `ended: None`, unfinished) recording of `bytes` bytes, indexed with
/// these times; the file's modification time is `written`.
async fn put(
    s: &Setup,
    workspace: WorkspaceId,
    started: time::OffsetDateTime,
    ended: Option<time::OffsetDateTime>,
    written: time::OffsetDateTime,
    bytes: usize,
) -> RecordingId {
    let id = RecordingId::random();
    let relative = format!("{workspace}/{id}.cast");
    let path = s.recordings.dir().join(&relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, vec![b'x'; bytes]).unwrap();
    last_written(&path, written);
    let recording = berth_store::Recording {
        id,
        target: workspace.into(),
        owner: user("alice"),
        username: user("alice"),
        started_at: started,
        ended_at: None,
        path: relative,
        bytes: 0,
        width: 80,
        height: 24,
    };
    s.store.insert_recording(&recording).await.unwrap();
    if let Some(ended) = ended {
        s.store
            .finish_recording(id, ended, bytes as u64)
            .await
            .unwrap();
    }
    id
}

#[tokio::test]
async fn retention_deletes_by_age_then_oldest_first_by_size_but_never_a_live_recording() {
    use berth_core::Retention;
    use time::Duration;

    let s = setup().await;
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let days = |n: i64| now - Duration::days(n);
    let (ws, other) = (WorkspaceId::random(), WorkspaceId::random());
    let ancient = put(&s, other, days(200), Some(days(199)), days(199), 1000).await;
    // Never finished (the server died), not written for 120 days: as old as its last write.
    let abandoned = put(&s, ws, days(121), None, days(120), 1000).await;
    let old = put(&s, ws, days(30), Some(days(30)), days(30), 1000).await;
    // Never finished either, but recently written: kept for age, fair game for size.
    let crashed = put(&s, ws, days(20), None, now, 1000).await;
    let newer = put(&s, ws, days(10), Some(days(10)), days(10), 1000).await;
    let newest = put(&s, ws, days(1), Some(days(1)), days(1), 1000).await;
    // Its file was removed by hand: the row goes too, freeing nothing.
    let missing = put(&s, ws, days(100), Some(days(100)), days(100), 10).await;
    std::fs::remove_file(s.recordings.recording(missing).await.unwrap().path).unwrap();
    // Being recorded now, its file not written to for 200 days (a quiet session): kept.
    let recorder = s.recordings.start(start(ws)).await.unwrap();
    let live = recorder.id();
    let live_file = s.recordings.recording(live).await.unwrap().path;
    last_written(&live_file, days(200));

    let nothing = s
        .recordings
        .expire(Retention::default(), now)
        .await
        .unwrap();
    assert!(nothing.recordings.is_empty(), "no retention, no deletion");

    let retention = Retention {
        max_age: Some(std::time::Duration::from_secs(90 * 86_400)),
        max_total_bytes: Some(2500),
    };
    let expired = s.recordings.expire(retention, now).await.unwrap();
    // Age: ancient, abandoned, missing. Then about 4000 bytes are left, over 2500: old, then
    // crashed, oldest first.
    assert_eq!(
        expired.recordings,
        [ancient, abandoned, missing, old, crashed],
        "oldest first"
    );
    assert_eq!(expired.bytes, 4000);
    let left: Vec<RecordingId> = s
        .store
        .list_all_recordings()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, [newer, newest, live]);
    assert!(live_file.exists());
    assert!(
        !s.recordings.dir().join(other.to_string()).exists(),
        "an emptied workspace directory goes"
    );
    assert!(s.recordings.dir().join(ws.to_string()).is_dir());

    // Finished, the live one is an old recording like any other.
    recorder.finish().await.unwrap();
    last_written(&live_file, days(200));
    let later = s.recordings.expire(retention, now).await.unwrap();
    assert!(later.recordings.is_empty(), "it ended just now: {later:?}");
    let much_later = now + Duration::days(91);
    let later = s.recordings.expire(retention, much_later).await.unwrap();
    assert!(later.recordings.contains(&live), "{later:?}");
}
