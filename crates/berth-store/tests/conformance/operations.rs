//! [`berth_store::OperationStore`]: operations created with their machines, machine runs that
//! only move forward (also under concurrent writers), kept output as bytes, the event log
//! (seqs only grow, pages), interruption at start-up, the `operations` table of table queries
//! (filters, `has` on machines, sort, pages, the user's scope), and the bounded history.

use std::sync::Arc;

use berth_store::{
    INTERRUPTED_MESSAGE, KeptOutput, MachineRunRecord, MachineRunUpdate, NewOperation,
    OPERATION_HISTORY, OperationEventKind, OperationEventRecord, OperationRecord, Store,
    StoreError,
};
use berth_types::api::MAX_OPERATION_MACHINES;
use berth_types::operation::{MachineRunStatus, OperationStatus, OutputStream};
use berth_types::{MachineId, OperationId};
use serde_json::{Value, json};
use time::macros::datetime;
use uuid::Uuid;

use crate::support::TestDb;
use crate::{at, ids, machine_id, query, scope, user};

stories!(
    operations_are_created_queued_and_read_back,
    operations_the_store_cannot_keep_are_refused,
    machine_runs_only_move_forward,
    concurrent_writers_cannot_break_the_state_machine_or_the_seqs,
    output_round_trips_any_bytes,
    summaries_group_output_without_loading_it,
    events_are_numbered_and_paged,
    unfinished_operations_are_interrupted_at_start_up,
    operations_table_filters_and_sorts,
    operations_table_pages_are_stable_while_operations_arrive,
    operations_table_is_scoped_to_the_user,
    history_is_bounded,
);

const C1: &str = "1111111111111111111111111111111111111111";

fn new_operation(owner: &str, script: &str, machines: &[&str], seconds: i64) -> NewOperation {
    NewOperation {
        id: OperationId::random(),
        script: script.to_owned(),
        commit: C1.to_owned(),
        user: user(owner),
        concurrency: 2,
        timeout_seconds: 300,
        rerun_of: None,
        machines: machines.iter().map(|m| machine_id(m)).collect(),
        created_at: at(seconds),
    }
}

async fn create(
    db: &TestDb,
    owner: &str,
    script: &str,
    machines: &[&str],
    seconds: i64,
) -> OperationId {
    let new = new_operation(owner, script, machines, seconds);
    db.store.create_operation(&new).await.unwrap();
    new.id
}

fn update(status: MachineRunStatus) -> MachineRunUpdate {
    MachineRunUpdate {
        status,
        exit_code: None,
        signal: None,
        message: String::new(),
        started_at: None,
        finished_at: None,
        duration_ms: None,
    }
}

async fn run(db: &TestDb, id: OperationId, machine: &str) -> MachineRunRecord {
    let op = db.store.operation(id).await.unwrap().unwrap();
    op.machines
        .into_iter()
        .find(|m| m.machine.as_str() == machine)
        .unwrap()
}

fn output(seq: i64, machine: &str, stream: OutputStream, data: &[u8]) -> OperationEventRecord {
    OperationEventRecord {
        seq,
        at: at(seq),
        kind: OperationEventKind::Output,
        machine: Some(machine_id(machine)),
        stream: Some(stream),
        data: data.to_vec(),
    }
}

fn state(seq: i64, status: OperationStatus) -> OperationEventRecord {
    OperationEventRecord {
        seq,
        at: at(seq),
        kind: OperationEventKind::Operation,
        machine: None,
        stream: None,
        data: json!({"status": status}).to_string().into_bytes(),
    }
}

/// What start-up does with nothing to add: interrupts every unfinished operation.
async fn interrupt_all(db: &TestDb, when: i64) -> Vec<OperationId> {
    let store = &db.store;
    let mut interrupted = Vec::new();
    for id in store.unfinished_operations().await.unwrap() {
        if store
            .interrupt_operation(id, at(when), &[], &[])
            .await
            .unwrap()
        {
            interrupted.push(id);
        }
    }
    interrupted
}

fn seqs(events: &[OperationEventRecord]) -> Vec<i64> {
    events.iter().map(|e| e.seq).collect()
}

fn expect_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, expected: &str) {
    match result {
        Err(StoreError::InvalidInput(message)) => {
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
        other => panic!("expected InvalidInput ({expected}), got {other:?}"),
    }
}

fn expect_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, expected: &str) {
    match result {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
        other => panic!("expected Conflict ({expected}), got {other:?}"),
    }
}

async fn operations_are_created_queued_and_read_back(db: &TestDb) {
    let store = &db.store;
    let earlier = create(db, "alice", "uptime", &["web-1"], 0).await;
    let mut new = new_operation("alice", "uptime", &["web-2", "db-1", "web-1"], 0);
    new.rerun_of = Some(earlier);
    new.concurrency = 1;
    new.timeout_seconds = 90;
    // Another offset and nanoseconds: kept as UTC microseconds.
    new.created_at = datetime!(2024-05-01 14:00:00.123456789 +02:00);
    let created = store.create_operation(&new).await.unwrap();
    let queued = |machine: &str| MachineRunRecord {
        machine: machine_id(machine),
        status: MachineRunStatus::Queued,
        exit_code: None,
        signal: None,
        message: String::new(),
        started_at: None,
        finished_at: None,
        duration_ms: None,
        stdout: Vec::new(),
        stderr: Vec::new(),
        truncated: false,
    };
    let expected = OperationRecord {
        id: new.id,
        script: "uptime".to_owned(),
        commit: C1.to_owned(),
        user: user("alice"),
        status: OperationStatus::Queued,
        concurrency: 1,
        timeout_seconds: 90,
        rerun_of: Some(earlier),
        created_at: datetime!(2024-05-01 12:00:00.123456 UTC),
        finished_at: None,
        machines: vec![queued("web-2"), queued("db-1"), queued("web-1")],
    };
    assert_eq!(created, expected);
    assert_eq!(
        store.operation(new.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(store.operation(OperationId::random()).await.unwrap(), None);
    assert_eq!(store.last_operation_event(new.id).await.unwrap(), 0);
    assert!(
        store
            .operation_events(new.id, 0, 10, u64::MAX)
            .await
            .unwrap()
            .is_empty()
    );

    store
        .set_operation_status(new.id, OperationStatus::Running, None)
        .await
        .unwrap();
    assert_eq!(
        store.operation(new.id).await.unwrap().unwrap().status,
        OperationStatus::Running
    );
    store
        .set_operation_status(new.id, OperationStatus::Failed, Some(at(30)))
        .await
        .unwrap();
    let finished = store.operation(new.id).await.unwrap().unwrap();
    assert_eq!(
        (finished.status, finished.finished_at),
        (OperationStatus::Failed, Some(at(30)))
    );
    assert_eq!(
        finished.machines, expected.machines,
        "machines are their own"
    );
    // The other operation is untouched.
    assert_eq!(
        store.operation(earlier).await.unwrap().unwrap().status,
        OperationStatus::Queued
    );

    assert!(matches!(
        store
            .set_operation_status(OperationId::random(), OperationStatus::Running, None)
            .await,
        Err(StoreError::NotFound)
    ));
    expect_invalid(
        store
            .set_operation_status(new.id, OperationStatus::Succeeded, None)
            .await,
        "needs a finish time",
    );
    expect_invalid(
        store
            .set_operation_status(new.id, OperationStatus::Running, Some(at(40)))
            .await,
        "has no finish time",
    );
    assert_eq!(store.operation(new.id).await.unwrap().unwrap(), finished);

    // Many machines (more than one insert statement holds) keep their order.
    let names: Vec<String> = (0..1203).rev().map(|i| format!("m-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let big = create(db, "bob", "uptime", &refs, 50).await;
    let stored = store.operation(big).await.unwrap().unwrap();
    assert_eq!(
        stored
            .machines
            .iter()
            .map(|m| m.machine.as_str())
            .collect::<Vec<_>>(),
        refs
    );
}

async fn operations_the_store_cannot_keep_are_refused(db: &TestDb) {
    let store = &db.store;
    let original = new_operation("alice", "uptime", &["web-1"], 0);
    store.create_operation(&original).await.unwrap();
    let again = NewOperation {
        script: "deploy".to_owned(),
        machines: vec![machine_id("db-1")],
        ..original.clone()
    };
    expect_conflict(store.create_operation(&again).await, "exists");
    let stored = store.operation(original.id).await.unwrap().unwrap();
    assert_eq!(stored.script, "uptime");
    assert_eq!(stored.machines.len(), 1);
    assert_eq!(stored.machines[0].machine.as_str(), "web-1");

    let many: Vec<MachineId> = (0..=MAX_OPERATION_MACHINES)
        .map(|i| machine_id(&format!("m-{i}")))
        .collect();
    let cases: Vec<(NewOperation, &str)> = vec![
        (
            new_operation("alice", "uptime", &[], 0),
            "at least one machine",
        ),
        (
            new_operation("alice", "uptime", &["a", "b", "a"], 0),
            "machine a is listed twice",
        ),
        (
            NewOperation {
                machines: many,
                ..new_operation("alice", "uptime", &[], 0)
            },
            "at most 10000 machines",
        ),
        (
            NewOperation {
                concurrency: 0,
                ..new_operation("alice", "uptime", &["a"], 0)
            },
            "concurrency",
        ),
        (
            NewOperation {
                timeout_seconds: 0,
                ..new_operation("alice", "uptime", &["a"], 0)
            },
            "timeout of 0 seconds",
        ),
        (
            NewOperation {
                timeout_seconds: u64::MAX,
                ..new_operation("alice", "uptime", &["a"], 0)
            },
            "cannot be kept",
        ),
        (
            NewOperation {
                created_at: datetime!(0000-06-01 0:00 UTC),
                ..new_operation("alice", "uptime", &["a"], 0)
            },
            "outside the years",
        ),
    ];
    for (new, expected) in cases {
        expect_invalid(store.create_operation(&new).await, expected);
        assert_eq!(store.operation(new.id).await.unwrap(), None, "{expected}");
    }
    let all = store
        .query_table(&query(json!({"table": "operations"})), None)
        .await
        .unwrap();
    assert_eq!(all.total, 1, "only the first one is stored");
}

async fn machine_runs_only_move_forward(db: &TestDb) {
    let store = &db.store;
    let id = create(db, "alice", "uptime", &["web-1", "web-2", "db-1"], 0).await;
    let web1 = machine_id("web-1");

    store
        .update_machine_run(id, &web1, &update(MachineRunStatus::Connecting))
        .await
        .unwrap();
    let running = MachineRunUpdate {
        started_at: Some(at(1)),
        ..update(MachineRunStatus::Running)
    };
    store.update_machine_run(id, &web1, &running).await.unwrap();
    let done = MachineRunUpdate {
        status: MachineRunStatus::Failed,
        exit_code: Some(3),
        signal: None,
        message: "exited with 3".to_owned(),
        started_at: Some(at(1)),
        finished_at: Some(datetime!(2024-05-01 12:00:04.5 UTC)),
        duration_ms: Some(3500),
    };
    store.update_machine_run(id, &web1, &done).await.unwrap();
    let stored = run(db, id, "web-1").await;
    assert_eq!(
        (
            stored.status,
            stored.exit_code,
            stored.signal.as_deref(),
            stored.message.as_str(),
            stored.started_at,
            stored.finished_at,
            stored.duration_ms
        ),
        (
            MachineRunStatus::Failed,
            Some(3),
            None,
            "exited with 3",
            Some(at(1)),
            Some(datetime!(2024-05-01 12:00:04.5 UTC)),
            Some(3500)
        )
    );
    // Out of a finished state: refused, and nothing changes.
    let succeeded = MachineRunUpdate {
        exit_code: Some(0),
        message: "rewritten".to_owned(),
        ..update(MachineRunStatus::Succeeded)
    };
    expect_conflict(
        store.update_machine_run(id, &web1, &succeeded).await,
        "is failed: it cannot become succeeded",
    );
    assert_eq!(run(db, id, "web-1").await, stored);
    // A started script is never re-run, nor reported unreachable.
    let web2 = machine_id("web-2");
    store.update_machine_run(id, &web2, &running).await.unwrap();
    for next in [
        MachineRunStatus::Queued,
        MachineRunStatus::Connecting,
        MachineRunStatus::Running,
        MachineRunStatus::Unreachable,
    ] {
        expect_conflict(
            store.update_machine_run(id, &web2, &update(next)).await,
            &format!("is running: it cannot become {next}"),
        );
    }
    assert_eq!(run(db, id, "web-2").await.started_at, Some(at(1)));
    // Other machines of the operation are their own.
    assert_eq!(run(db, id, "db-1").await.status, MachineRunStatus::Queued);

    for missing in [
        store
            .update_machine_run(id, &machine_id("web-3"), &running)
            .await,
        store
            .update_machine_run(OperationId::random(), &web1, &running)
            .await,
    ] {
        assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    }

    // Every pair of states: the store allows exactly the moves the state machine allows.
    let all = MachineRunStatus::ALL;
    let names: Vec<String> = (0..all.len() * all.len())
        .map(|i| format!("m-{i}"))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let grid = create(db, "alice", "uptime", &refs, 10).await;
    for (i, from) in all.iter().enumerate() {
        for (j, next) in all.iter().enumerate() {
            let machine = machine_id(&names[i * all.len() + j]);
            if *from != MachineRunStatus::Queued {
                store
                    .update_machine_run(grid, &machine, &update(*from))
                    .await
                    .unwrap();
            }
            let moved = store
                .update_machine_run(grid, &machine, &update(*next))
                .await;
            if from.may_become(*next) {
                assert!(moved.is_ok(), "{from} -> {next}: {moved:?}");
            } else {
                assert!(
                    matches!(moved, Err(StoreError::Conflict(_))),
                    "{from} -> {next}: {moved:?}"
                );
            }
        }
    }
    let op = store.operation(grid).await.unwrap().unwrap();
    for (i, from) in all.iter().enumerate() {
        for (j, next) in all.iter().enumerate() {
            let expected = if from.may_become(*next) { *next } else { *from };
            assert_eq!(
                op.machines[i * all.len() + j].status,
                expected,
                "{from} -> {next}"
            );
        }
    }
}

async fn concurrent_writers_cannot_break_the_state_machine_or_the_seqs(db: &TestDb) {
    let store: Arc<dyn Store> = Arc::clone(&db.store);
    let id = create(db, "alice", "uptime", &["web-1"], 0).await;
    let web1 = machine_id("web-1");
    store
        .update_machine_run(id, &web1, &update(MachineRunStatus::Running))
        .await
        .unwrap();
    // Every way a running script may end, all at once: exactly one wins.
    let endings = [
        MachineRunStatus::Succeeded,
        MachineRunStatus::Failed,
        MachineRunStatus::TimedOut,
        MachineRunStatus::Cancelled,
        MachineRunStatus::Interrupted,
    ];
    let tasks: Vec<_> = endings
        .iter()
        .map(|ending| {
            let (store, web1, ending) = (Arc::clone(&store), web1.clone(), *ending);
            tokio::spawn(async move {
                let moved = store.update_machine_run(id, &web1, &update(ending)).await;
                (ending, moved)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (ending, Ok(())) => winners.push(ending),
            (_, Err(StoreError::Conflict(_))) => {}
            (ending, other) => panic!("{ending}: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(run(db, id, "web-1").await.status, winners[0]);

    // Writers appending the same seqs at once: one batch is stored, whole.
    let tasks: Vec<_> = (0..6u8)
        .map(|writer| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let batch: Vec<_> = (1..=3)
                    .map(|seq| output(seq, "web-1", OutputStream::Stdout, &[writer; 4]))
                    .collect();
                (writer, store.append_operation_events(id, &batch).await)
            })
        })
        .collect();
    let mut stored = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (writer, Ok(())) => stored.push(writer),
            (_, Err(StoreError::Conflict(_))) => {}
            (writer, other) => panic!("writer {writer}: {other:?}"),
        }
    }
    assert_eq!(stored.len(), 1, "{stored:?}");
    let events = store.operation_events(id, 0, 10, u64::MAX).await.unwrap();
    assert_eq!(seqs(&events), [1, 2, 3]);
    assert!(
        events.iter().all(|e| e.data == [stored[0]; 4]),
        "one writer's batch"
    );
    assert_eq!(store.last_operation_event(id).await.unwrap(), 3);
}

async fn summaries_group_output_without_loading_it(db: &TestDb) {
    let store = &db.store;
    let machines = ["a", "b", "c", "d", "e", "f"];
    let id = create(db, "alice", "uptime", &machines, 0).await;
    let ended = |status, exit_code: Option<i64>, signal: Option<&str>| MachineRunUpdate {
        exit_code,
        signal: signal.map(str::to_owned),
        ..update(status)
    };
    // a and c print and end alike; b differs from them only in stderr, d only in its exit
    // code, e only in its signal; f printed nothing and is still queued.
    let big = vec![0xffu8; 40_000];
    for (machine, stdout, stderr, end) in [
        (
            "a",
            &big[..],
            &b""[..],
            ended(MachineRunStatus::Succeeded, Some(0), None),
        ),
        (
            "b",
            &big[..],
            &b"warn\n"[..],
            ended(MachineRunStatus::Succeeded, Some(0), None),
        ),
        (
            "c",
            &big[..],
            &b""[..],
            ended(MachineRunStatus::Succeeded, Some(0), None),
        ),
        (
            "d",
            &big[..],
            &b""[..],
            ended(MachineRunStatus::Failed, Some(1), None),
        ),
        (
            "e",
            &big[..],
            &b""[..],
            ended(MachineRunStatus::Failed, None, Some("KILL")),
        ),
    ] {
        let machine = machine_id(machine);
        store
            .update_machine_run(id, &machine, &update(MachineRunStatus::Running))
            .await
            .unwrap();
        store
            .store_machine_output(id, &machine, stdout, stderr, false)
            .await
            .unwrap();
        store.update_machine_run(id, &machine, &end).await.unwrap();
    }
    let whole = store.operation(id).await.unwrap().unwrap();
    let summary = store.operation_summary(id).await.unwrap().unwrap();
    assert_eq!(summary.same_as, [0, 1, 0, 3, 4, 5]);
    assert_eq!(
        summary.output_bytes,
        [40_000, 40_005, 40_000, 40_000, 40_000, 0]
    );
    // Everything but the output is the operation as stored.
    let mut without_output = whole.clone();
    for run in &mut without_output.machines {
        run.stdout.clear();
        run.stderr.clear();
    }
    assert_eq!(summary.operation, without_output);

    // Each distinct output once, from the first machine that printed it.
    let firsts = store.group_outputs(id).await.unwrap();
    let expected: Vec<&MachineRunRecord> = [0, 1, 3, 4, 5]
        .iter()
        .map(|i| &whole.machines[*i])
        .collect();
    assert_eq!(firsts.iter().collect::<Vec<_>>(), expected);
    assert!(
        store
            .group_outputs(OperationId::random())
            .await
            .unwrap()
            .is_empty()
    );

    // One machine's part comes with its output.
    let (owner, b) = store
        .machine_run(id, &machine_id("b"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((owner, &b), (user("alice"), &whole.machines[1]));
    assert_eq!(b.stderr, b"warn\n");
    for missing in [
        store.machine_run(id, &machine_id("z")).await.unwrap(),
        store
            .machine_run(OperationId::random(), &machine_id("a"))
            .await
            .unwrap(),
    ] {
        assert_eq!(missing, None);
    }
    assert_eq!(
        store
            .operation_summary(OperationId::random())
            .await
            .unwrap(),
        None
    );

    // A page of them at once, in the order asked; groups never span two operations: y
    // printed what a did in the first, and is a group of its own here.
    let other = create(db, "bob", "uptime", &["x", "y"], 1).await;
    for (machine, stdout) in [("x", &b"x"[..]), ("y", &big[..])] {
        let machine = machine_id(machine);
        store
            .update_machine_run(other, &machine, &update(MachineRunStatus::Running))
            .await
            .unwrap();
        store
            .store_machine_output(other, &machine, stdout, b"", false)
            .await
            .unwrap();
        store
            .update_machine_run(
                other,
                &machine,
                &ended(MachineRunStatus::Succeeded, Some(0), None),
            )
            .await
            .unwrap();
    }
    let other_summary = store.operation_summary(other).await.unwrap().unwrap();
    assert_eq!(other_summary.same_as, [0, 1]);
    assert_eq!(other_summary.output_bytes, [1, 40_000]);
    assert_eq!(
        store
            .operation_summaries(&[other, OperationId::random(), id])
            .await
            .unwrap(),
        [other_summary, summary]
    );
    assert_eq!(store.operation_summaries(&[]).await.unwrap(), []);
}

async fn output_round_trips_any_bytes(db: &TestDb) {
    let store = &db.store;
    let id = create(db, "alice", "uptime", &["web-1", "web-2"], 0).await;
    let web1 = machine_id("web-1");
    // Invalid UTF-8, NUL, a lone continuation byte, CR LF, and every byte value.
    let mut stdout = b"ok\r\n\xff\xfe\x00\x80 half \xe2\x82".to_vec();
    stdout.extend((0..=255u8).cycle().take(70_000));
    let stderr = b"\x1b[31mred\x1b[0m\n".to_vec();
    store
        .store_machine_output(id, &web1, &stdout, &stderr, true)
        .await
        .unwrap();
    let kept = run(db, id, "web-1").await;
    assert_eq!(
        (kept.stdout.as_slice(), kept.stderr.as_slice()),
        (stdout.as_slice(), stderr.as_slice())
    );
    assert!(kept.truncated);
    let other = run(db, id, "web-2").await;
    assert!(other.stdout.is_empty() && other.stderr.is_empty() && !other.truncated);

    // A state change leaves the output; storing it again replaces it.
    store
        .update_machine_run(id, &web1, &update(MachineRunStatus::Running))
        .await
        .unwrap();
    assert_eq!(run(db, id, "web-1").await.stdout, stdout);
    store
        .store_machine_output(id, &web1, b"", b"\xc3\x28", false)
        .await
        .unwrap();
    let kept = run(db, id, "web-1").await;
    assert_eq!(
        (
            kept.stdout.as_slice(),
            kept.stderr.as_slice(),
            kept.truncated
        ),
        (&b""[..], &b"\xc3\x28"[..], false)
    );
    for missing in [
        store
            .store_machine_output(id, &machine_id("db-1"), b"x", b"", false)
            .await,
        store
            .store_machine_output(OperationId::random(), &web1, b"x", b"", false)
            .await,
    ] {
        assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    }

    // Events carry bytes as they are too.
    let chunk = output(1, "web-1", OutputStream::Stderr, b"\xff\x00\xfe");
    store
        .append_operation_events(id, std::slice::from_ref(&chunk))
        .await
        .unwrap();
    assert_eq!(
        store.operation_events(id, 0, 1, u64::MAX).await.unwrap(),
        [chunk]
    );
}

async fn events_are_numbered_and_paged(db: &TestDb) {
    let store = &db.store;
    let id = create(db, "alice", "uptime", &["web-1", "web-2"], 0).await;
    let machine_event = OperationEventRecord {
        seq: 2,
        at: at(2),
        kind: OperationEventKind::Machine,
        machine: Some(machine_id("web-1")),
        stream: None,
        data: br#"{"machine":"web-1","status":"running"}"#.to_vec(),
    };
    let first = vec![
        state(1, OperationStatus::Running),
        machine_event,
        output(3, "web-1", OutputStream::Stdout, b"hello\n"),
        output(4, "web-2", OutputStream::Stderr, b"oops\n"),
        output(5, "web-1", OutputStream::Stdout, b""),
    ];
    store.append_operation_events(id, &first).await.unwrap();
    assert_eq!(
        store.operation_events(id, 0, 100, u64::MAX).await.unwrap(),
        first
    );
    assert_eq!(
        store.operation_events(id, 2, 2, u64::MAX).await.unwrap(),
        first[2..4]
    );
    assert_eq!(
        store.operation_events(id, -7, 1, u64::MAX).await.unwrap(),
        first[..1]
    );
    assert!(
        store
            .operation_events(id, 5, 10, u64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .operation_events(id, 0, 0, u64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    // Pages by bytes too: up to the event that reaches the budget, and always one.
    for (max_bytes, expected) in [(0, 3..4), (1, 3..4), (6, 3..4), (7, 3..5), (12, 3..6)] {
        let page = store.operation_events(id, 2, 100, max_bytes).await.unwrap();
        assert_eq!(
            seqs(&page),
            expected.collect::<Vec<_>>(),
            "{max_bytes} bytes"
        );
    }
    assert_eq!(
        seqs(&store.operation_events(id, 2, 1, 12).await.unwrap()),
        [3]
    );
    assert_eq!(store.last_operation_event(id).await.unwrap(), 5);
    // No events at all is fine.
    store.append_operation_events(id, &[]).await.unwrap();

    // Seqs only grow: a batch starting at or below the last one is refused whole.
    for batch in [
        vec![state(5, OperationStatus::Running)],
        vec![state(3, OperationStatus::Running)],
        vec![
            state(4, OperationStatus::Running),
            state(6, OperationStatus::Running),
        ],
    ] {
        expect_conflict(
            store.append_operation_events(id, &batch).await,
            "is not above 5, the last stored",
        );
    }
    // Gaps are allowed.
    store
        .append_operation_events(
            id,
            &[
                state(7, OperationStatus::Running),
                state(10, OperationStatus::Running),
            ],
        )
        .await
        .unwrap();
    assert_eq!(store.last_operation_event(id).await.unwrap(), 10);

    // A bad event anywhere in a batch: nothing of the batch is stored, the last seq stays.
    let wrong_kind = OperationEventRecord {
        stream: None,
        ..output(12, "web-1", OutputStream::Stdout, b"x")
    };
    let operation_with_machine = OperationEventRecord {
        machine: Some(machine_id("web-1")),
        ..state(12, OperationStatus::Running)
    };
    for (batch, expected) in [
        (
            vec![
                state(11, OperationStatus::Running),
                state(11, OperationStatus::Running),
            ],
            "does not follow seq 11",
        ),
        (vec![state(0, OperationStatus::Running)], "not above 0"),
        (vec![state(-3, OperationStatus::Running)], "not above 0"),
        (
            vec![state(11, OperationStatus::Running), wrong_kind],
            "an output event both",
        ),
        (
            vec![operation_with_machine],
            "an operation event has neither",
        ),
        (
            vec![
                output(11, "web-1", OutputStream::Stdout, b"x"),
                output(12, "db-1", OutputStream::Stdout, b"x"),
            ],
            "machine db-1, which is not in operation",
        ),
    ] {
        expect_invalid(store.append_operation_events(id, &batch).await, expected);
    }
    assert_eq!(store.last_operation_event(id).await.unwrap(), 10);
    assert_eq!(
        seqs(&store.operation_events(id, 0, 100, u64::MAX).await.unwrap()),
        [1, 2, 3, 4, 5, 7, 10]
    );

    // Unknown operations.
    let unknown = OperationId::random();
    for result in [
        store
            .append_operation_events(unknown, &[state(1, OperationStatus::Running)])
            .await,
        store.append_operation_events(unknown, &[]).await,
        store.last_operation_event(unknown).await.map(|_| ()),
    ] {
        assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    }
    assert!(
        store
            .operation_events(unknown, 0, 10, u64::MAX)
            .await
            .unwrap()
            .is_empty()
    );

    // Another operation numbers its own events; a long batch (more than one statement holds)
    // pages back whole and in order.
    let other = create(db, "bob", "uptime", &["web-1"], 5).await;
    let long: Vec<_> = (1..=1207)
        .map(|seq| {
            output(
                seq,
                "web-1",
                OutputStream::Stdout,
                format!("line {seq}\n").as_bytes(),
            )
        })
        .collect();
    store.append_operation_events(other, &long).await.unwrap();
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .operation_events(other, after, 500, u64::MAX)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        paged.extend(page);
    }
    assert_eq!(paged, long);
    assert_eq!(store.last_operation_event(other).await.unwrap(), 1207);

    // Events published but not kept still use up their seqs: the next kept one is above.
    let skipping = create(db, "alice", "uptime", &["web-1"], 6).await;
    store
        .append_operation_events(skipping, &[state(1, OperationStatus::Running)])
        .await
        .unwrap();
    store.skip_operation_events(skipping, 9).await.unwrap();
    store.skip_operation_events(skipping, 4).await.unwrap();
    assert_eq!(store.last_operation_event(skipping).await.unwrap(), 9);
    expect_conflict(
        store
            .append_operation_events(skipping, &[state(5, OperationStatus::Running)])
            .await,
        "is not above 9",
    );
    store
        .append_operation_events(skipping, &[state(10, OperationStatus::Succeeded)])
        .await
        .unwrap();
    assert_eq!(
        seqs(
            &store
                .operation_events(skipping, 0, 10, u64::MAX)
                .await
                .unwrap()
        ),
        [1, 10]
    );
    assert!(matches!(
        store.skip_operation_events(OperationId::random(), 3).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.last_operation_event(id).await.unwrap(), 10);
}

async fn unfinished_operations_are_interrupted_at_start_up(db: &TestDb) {
    let store = &db.store;
    assert!(store.unfinished_operations().await.unwrap().is_empty());
    let running = create(db, "alice", "uptime", &["a", "b", "c", "d", "e"], 0).await;
    let queued = create(db, "bob", "uptime", &["a", "b"], 1).await;
    let finished = create(db, "carol", "uptime", &["a"], -10).await;
    // `running`: a succeeded, b runs (with output), c connects, d waits, e was cancelled.
    let succeeded = MachineRunUpdate {
        exit_code: Some(0),
        started_at: Some(at(2)),
        finished_at: Some(at(3)),
        duration_ms: Some(1000),
        message: "exited with 0".to_owned(),
        ..update(MachineRunStatus::Succeeded)
    };
    store
        .update_machine_run(running, &machine_id("a"), &succeeded)
        .await
        .unwrap();
    store
        .store_machine_output(running, &machine_id("a"), b"done\n", b"", false)
        .await
        .unwrap();
    let started = MachineRunUpdate {
        started_at: Some(at(4)),
        ..update(MachineRunStatus::Running)
    };
    store
        .update_machine_run(running, &machine_id("b"), &started)
        .await
        .unwrap();
    store
        .store_machine_output(running, &machine_id("b"), b"half\xff", b"warn", true)
        .await
        .unwrap();
    store
        .update_machine_run(
            running,
            &machine_id("c"),
            &update(MachineRunStatus::Connecting),
        )
        .await
        .unwrap();
    let cancelled = MachineRunUpdate {
        message: "cancelled by alice".to_owned(),
        finished_at: Some(at(5)),
        ..update(MachineRunStatus::Cancelled)
    };
    store
        .update_machine_run(running, &machine_id("e"), &cancelled)
        .await
        .unwrap();
    store
        .set_operation_status(running, OperationStatus::Running, None)
        .await
        .unwrap();
    store
        .update_machine_run(
            finished,
            &machine_id("a"),
            &MachineRunUpdate {
                exit_code: Some(1),
                ..update(MachineRunStatus::Failed)
            },
        )
        .await
        .unwrap();
    store
        .set_operation_status(finished, OperationStatus::Failed, Some(at(-5)))
        .await
        .unwrap();
    let before_running = store.operation(running).await.unwrap().unwrap();
    let before_finished = store.operation(finished).await.unwrap().unwrap();

    assert_eq!(
        store.unfinished_operations().await.unwrap(),
        [running, queued],
        "oldest first, finished ones left"
    );
    store
        .append_operation_events(running, &[output(1, "b", OutputStream::Stdout, b"half")])
        .await
        .unwrap();
    let b_output = KeptOutput {
        machine: machine_id("b"),
        stdout: b"half\xff and more".to_vec(),
        stderr: b"warn".to_vec(),
        truncated: true,
    };
    let end = state(2, OperationStatus::Interrupted);

    // All or nothing: an event the log refuses, or an output for a machine not in the
    // operation, leaves it as it was, unfinished.
    let stranger = KeptOutput {
        machine: machine_id("z"),
        ..b_output.clone()
    };
    for (outputs, events) in [
        (
            vec![b_output.clone()],
            vec![state(1, OperationStatus::Interrupted)],
        ),
        (vec![b_output.clone(), stranger], vec![end.clone()]),
        (
            vec![b_output.clone()],
            vec![output(2, "z", OutputStream::Stdout, b"x")],
        ),
    ] {
        assert!(
            store
                .interrupt_operation(running, at(100), &outputs, &events)
                .await
                .is_err(),
            "{outputs:?} {events:?}"
        );
        assert_eq!(
            store.operation(running).await.unwrap().unwrap(),
            before_running
        );
        assert_eq!(store.last_operation_event(running).await.unwrap(), 1);
    }
    assert!(matches!(
        store
            .interrupt_operation(OperationId::random(), at(100), &[], &[])
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .interrupt_operation(
                running,
                at(100),
                std::slice::from_ref(&b_output),
                std::slice::from_ref(&end),
            )
            .await
            .unwrap()
    );
    assert_eq!(interrupt_all(db, 100).await, [queued]);
    assert_eq!(store.unfinished_operations().await.unwrap(), []);
    assert_eq!(
        store
            .operation_events(running, 1, 10, u64::MAX)
            .await
            .unwrap(),
        std::slice::from_ref(&end)
    );

    let after = store.operation(running).await.unwrap().unwrap();
    assert_eq!(
        (after.status, after.finished_at),
        (OperationStatus::Interrupted, Some(at(100)))
    );
    assert_eq!(
        after.machines[0], before_running.machines[0],
        "a had finished"
    );
    assert_eq!(
        after.machines[4], before_running.machines[4],
        "e had finished"
    );
    for (i, name) in [(1, "b"), (2, "c"), (3, "d")] {
        let machine = &after.machines[i];
        let was = &before_running.machines[i];
        assert_eq!(machine.machine.as_str(), name);
        assert_eq!(machine.status, MachineRunStatus::Interrupted, "{name}");
        assert_eq!(machine.message, INTERRUPTED_MESSAGE);
        assert_eq!(machine.finished_at, Some(at(100)));
        // What it had stays: the start, the exit code, the output.
        assert_eq!(
            (
                &machine.started_at,
                &machine.exit_code,
                &machine.duration_ms
            ),
            (&was.started_at, &was.exit_code, &was.duration_ms)
        );
        if name != "b" {
            assert_eq!(
                (&machine.stdout, &machine.stderr, machine.truncated),
                (&was.stdout, &was.stderr, was.truncated)
            );
        }
    }
    // b's output is the one given.
    assert_eq!(
        (
            &after.machines[1].stdout,
            &after.machines[1].stderr,
            after.machines[1].truncated
        ),
        (&b_output.stdout, &b_output.stderr, true)
    );
    let queued_after = store.operation(queued).await.unwrap().unwrap();
    assert_eq!(queued_after.status, OperationStatus::Interrupted);
    assert!(
        queued_after
            .machines
            .iter()
            .all(|m| m.status == MachineRunStatus::Interrupted && m.finished_at == Some(at(100)))
    );
    assert_eq!(
        store.operation(finished).await.unwrap().unwrap(),
        before_finished
    );

    // Once interrupted, a machine is finished like any other, and a second start-up finds
    // nothing to do.
    expect_conflict(
        store
            .update_machine_run(running, &machine_id("b"), &succeeded)
            .await,
        "is interrupted",
    );
    assert!(
        !store
            .interrupt_operation(
                running,
                at(200),
                &[],
                &[state(3, OperationStatus::Interrupted)]
            )
            .await
            .unwrap(),
        "interrupted once"
    );
    assert!(
        !store
            .interrupt_operation(finished, at(200), &[], &[])
            .await
            .unwrap()
    );
    assert_eq!(store.last_operation_event(running).await.unwrap(), 2);
    assert_eq!(store.operation(running).await.unwrap().unwrap(), after);
}

/// Five operations of three users on overlapping machines, in every state (one queued).
async fn history(db: &TestDb) -> Vec<OperationId> {
    let store = &db.store;
    let rows = [
        (
            "alice",
            "uptime",
            &["web-1", "db-1"][..],
            0,
            Some(OperationStatus::Succeeded),
        ),
        (
            "bob",
            "uptime",
            &["web-2"][..],
            10,
            Some(OperationStatus::Failed),
        ),
        (
            "alice",
            "deploy",
            &["web-1"][..],
            20,
            Some(OperationStatus::Running),
        ),
        ("carol", "deploy", &["db-1", "web-2", "web-1"][..], 30, None),
        (
            "bob",
            "disk",
            &["web-10"][..],
            40,
            Some(OperationStatus::Interrupted),
        ),
    ];
    let mut ids = Vec::new();
    for (owner, script, machines, seconds, status) in rows {
        let id = create(db, owner, script, machines, seconds).await;
        if let Some(status) = status {
            let finished = status.is_finished().then(|| at(seconds + 5));
            store
                .set_operation_status(id, status, finished)
                .await
                .unwrap();
        }
        ids.push(id);
    }
    ids
}

async fn operations_table_filters_and_sorts(db: &TestDb) {
    let store = &db.store;
    let ops = history(db).await;
    let id = |i: usize| ops[i].to_string();
    let rows = |filters: Value| {
        let request = query(json!({"table": "operations", "filters": filters}));
        async move {
            let page = store.query_table(&request, None).await.unwrap();
            assert_eq!(page.total, page.rows.len() as u64);
            ids(&page.rows)
        }
    };
    // Newest first by default.
    assert_eq!(rows(json!([])).await, [id(4), id(3), id(2), id(1), id(0)]);
    assert_eq!(
        rows(json!([{"column": "status", "op": "eq", "value": "running"}])).await,
        [id(2)]
    );
    assert_eq!(
        rows(json!([{"column": "status", "op": "in", "value": ["queued", "failed"]}])).await,
        [id(3), id(1)]
    );
    assert_eq!(
        rows(json!([{"column": "script", "op": "eq", "value": "deploy"}])).await,
        [id(3), id(2)]
    );
    // `has` matches whole machine ids: web-1 is not web-10.
    assert_eq!(
        rows(json!([{"column": "machines", "op": "has", "value": "web-1"}])).await,
        [id(3), id(2), id(0)]
    );
    assert_eq!(
        rows(json!([
            {"column": "machines", "op": "has", "value": "web-2"},
            {"column": "machines", "op": "has", "value": "db-1"}
        ]))
        .await,
        [id(3)]
    );
    assert_eq!(
        rows(json!([{"column": "user", "op": "eq", "value": "alice"}])).await,
        [id(2), id(0)]
    );
    assert_eq!(
        rows(json!([
            {"column": "created_at", "op": "gte", "value": "2024-05-01T12:00:10Z"},
            {"column": "created_at", "op": "lt", "value": "2024-05-01T14:00:40+02:00"}
        ]))
        .await,
        [id(3), id(2), id(1)]
    );
    assert_eq!(
        rows(json!([{"column": "finished_at", "op": "eq", "value": null}])).await,
        [id(3), id(2)]
    );
    assert_eq!(
        rows(json!([
            {"column": "user", "op": "eq", "value": "bob"},
            {"column": "machines", "op": "has", "value": "web-2"},
            {"column": "status", "op": "eq", "value": "failed"}
        ]))
        .await,
        [id(1)]
    );

    // Every column, typed; the machines in the order given.
    let page = store
        .query_table(
            &query(json!({"table": "operations", "filters": [{"column": "id", "op": "eq", "value": id(3)}]})),
            None,
        )
        .await
        .unwrap();
    let row = Value::Object(page.rows[0].clone());
    assert_eq!(
        row,
        json!({
            "id": id(3),
            "script": "deploy",
            "user": "carol",
            "status": "queued",
            "commit": C1,
            "concurrency": 2,
            "timeout_seconds": 300,
            "rerun_of": null,
            "created_at": "2024-05-01T12:00:30.000000Z",
            "finished_at": null,
            "machines": ["db-1", "web-2", "web-1"],
        })
    );

    // Sorted on asked columns, then the key.
    let page = store
        .query_table(
            &query(json!({"table": "operations", "columns": ["id"],
                "sort": [{"column": "script"}, {"column": "created_at", "desc": true}]})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(ids(&page.rows), [id(3), id(2), id(4), id(1), id(0)]);

    for (bad, expected) in [
        (
            json!({"column": "machines", "op": "has", "value": "Web-1"}),
            "needs one tag",
        ),
        (
            json!({"column": "machines", "op": "eq", "value": "web-1"}),
            "filter it with \"has\"",
        ),
        (
            json!({"column": "script", "op": "has", "value": "uptime"}),
            "operations.machines",
        ),
        (
            json!({"column": "status", "op": "eq", "value": "done"}),
            "one of queued",
        ),
        (
            json!({"column": "status", "op": "gt", "value": "queued"}),
            "\"eq\" and \"in\"",
        ),
        (
            json!({"column": "rerun_of", "op": "eq", "value": "not-a-uuid"}),
            "a UUID",
        ),
        (
            json!({"column": "username", "op": "eq", "value": "alice"}),
            "unknown column",
        ),
    ] {
        match store
            .query_table(
                &query(json!({"table": "operations", "filters": [bad]})),
                None,
            )
            .await
        {
            Err(StoreError::InvalidQuery(message)) => {
                assert!(message.contains(expected), "{message:?} lacks {expected:?}");
            }
            other => panic!("{expected}: {other:?}"),
        }
    }
}

async fn operations_table_pages_are_stable_while_operations_arrive(db: &TestDb) {
    let store = &db.store;
    let mut existing = Vec::new();
    for i in 0..9 {
        // Three operations share each creation time: ties are broken by id.
        existing.push(
            create(db, "alice", "uptime", &["web-1"], i / 3)
                .await
                .to_string(),
        );
    }
    let mut request = query(json!({"table": "operations", "columns": ["id"], "limit": 2}));
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.query_table(&request, None).await.unwrap();
        pages += 1;
        seen.extend(ids(&page.rows));
        // Operations arrive between pages, newer (before the cursor) and older (after it).
        create(db, "alice", "uptime", &["web-1"], 100 + pages).await;
        create(db, "alice", "uptime", &["web-1"], -100 - pages).await;
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no operation twice: {seen:?}");
    for id in &existing {
        assert!(seen.contains(id), "{id} was there throughout");
    }
    assert!(pages >= 5);
}

async fn operations_table_is_scoped_to_the_user(db: &TestDb) {
    let store = &db.store;
    let ops = history(db).await;
    let visible = |name: &str, filters: Value| {
        let request = query(json!({"table": "operations", "filters": filters}));
        let scope = scope(name);
        async move {
            let page = store.query_table(&request, Some(&scope)).await.unwrap();
            assert_eq!(page.total, page.rows.len() as u64);
            ids(&page.rows)
        }
    };
    assert_eq!(
        visible("alice", json!([])).await,
        [ops[2].to_string(), ops[0].to_string()]
    );
    assert_eq!(
        visible("bob", json!([])).await,
        [ops[4].to_string(), ops[1].to_string()]
    );
    assert!(visible("dave", json!([])).await.is_empty());
    // Filters narrow a scope, never widen it.
    assert!(
        visible(
            "alice",
            json!([{"column": "user", "op": "eq", "value": "bob"}])
        )
        .await
        .is_empty()
    );
    assert_eq!(
        visible(
            "alice",
            json!([{"column": "machines", "op": "has", "value": "db-1"}])
        )
        .await,
        [ops[0].to_string()]
    );
    // Machine selectors do not widen an owner table either.
    let with_machines = berth_store::TableScope {
        user: user("dave"),
        machines: vec!["web-1".parse().unwrap(), "tag:web".parse().unwrap()],
    };
    let page = store
        .query_table(&query(json!({"table": "operations"})), Some(&with_machines))
        .await
        .unwrap();
    assert_eq!(page.total, 0);
    // An admin sees them all.
    let page = store
        .query_table(&query(json!({"table": "operations"})), None)
        .await
        .unwrap();
    assert_eq!(page.total, 5);
}

/// Inserts `count` finished operations of `alice`'s directly, the i-th (from 1) created and
/// finished `count + 10 - i` seconds before `T0`, with ids ending in i: older than anything
/// the story creates through the store after `T0` - 10 s.
async fn insert_old_operations(db: &TestDb, count: u32) {
    let sql = if db.store.backend() == "sqlite" {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) \
             INSERT INTO operations (id, script, commit_id, username, status, concurrency, \
             timeout_seconds, created_at, finished_at, machines) \
             SELECT printf('00000000-0000-4000-8000-%012d', i), 'old', '{C1}', 'alice', \
             'succeeded', 1, 60, t, t, '' FROM (SELECT i, strftime('%Y-%m-%dT%H:%M:%S', \
             '2024-05-01 12:00:00', printf('-%d seconds', {count} + 10 - i)) || '.000000Z' AS t \
             FROM n)"
        )
    } else {
        format!(
            "INSERT INTO operations (id, script, commit_id, username, status, concurrency, \
             timeout_seconds, created_at, finished_at, machines) \
             SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'old', \
             '{C1}', 'alice', 'succeeded', 1, 60, t, t, '' FROM (SELECT i, \
             timestamptz '2024-05-01 12:00:00+00' - make_interval(secs => {count} + 10 - i) \
             AS t FROM generate_series(1, {count}) AS i) AS old"
        )
    };
    assert_eq!(db.execute_raw(&sql).await.unwrap(), u64::from(count));
}

fn old_operation(i: u32) -> OperationId {
    OperationId::from(Uuid::parse_str(&format!("00000000-0000-4000-8000-{i:012}")).unwrap())
}

async fn finished_total(db: &TestDb) -> u64 {
    let page = db
        .store
        .query_table(
            &query(
                json!({"table": "operations", "limit": 1, "filters": [{"column": "status",
                "op": "in", "value": ["succeeded", "failed", "cancelled", "interrupted"]}]}),
            ),
            None,
        )
        .await
        .unwrap();
    page.total
}

/// Rows left of operation `id` in `table`, found by deleting them behind the store's back.
async fn rows_left(db: &TestDb, table: &str, id: OperationId) -> u64 {
    db.execute_raw(&format!("DELETE FROM {table} WHERE operation_id = '{id}'"))
        .await
        .unwrap()
}

async fn history_is_bounded(db: &TestDb) {
    let store = &db.store;
    let bound = OPERATION_HISTORY;
    // The oldest operation never finishes (until start-up interrupts it); the next oldest
    // finished with machines, output and events; then the history fills up to the bound.
    let stuck = create(db, "bob", "uptime", &["web-1"], -3 * i64::from(bound)).await;
    let oldest = create(
        db,
        "bob",
        "uptime",
        &["web-1", "web-2"],
        -2 * i64::from(bound),
    )
    .await;
    store
        .store_machine_output(oldest, &machine_id("web-1"), b"out", b"err", false)
        .await
        .unwrap();
    store
        .append_operation_events(
            oldest,
            &[
                state(1, OperationStatus::Running),
                output(2, "web-1", OutputStream::Stdout, b"out"),
            ],
        )
        .await
        .unwrap();
    store
        .set_operation_status(
            oldest,
            OperationStatus::Succeeded,
            Some(at(-2 * i64::from(bound) + 1)),
        )
        .await
        .unwrap();
    insert_old_operations(db, bound - 1).await;
    assert_eq!(finished_total(db).await, u64::from(bound));

    // At the bound, creating one more forgets nothing.
    let b = create(db, "alice", "uptime", &["web-1"], -5).await;
    assert_eq!(finished_total(db).await, u64::from(bound));
    assert!(store.operation(oldest).await.unwrap().is_some());
    // Past it, the oldest finished one goes, with its machines and events; the unfinished
    // one stays, however old.
    store
        .set_operation_status(b, OperationStatus::Failed, Some(at(-4)))
        .await
        .unwrap();
    assert_eq!(finished_total(db).await, u64::from(bound) + 1);
    let c = create(db, "alice", "uptime", &["web-1"], 0).await;
    assert_eq!(finished_total(db).await, u64::from(bound));
    assert_eq!(store.operation(oldest).await.unwrap(), None);
    assert!(
        store
            .operation_events(oldest, 0, 10, u64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(rows_left(db, "operation_machines", oldest).await, 0);
    assert_eq!(rows_left(db, "operation_events", oldest).await, 0);
    assert!(store.operation(stuck).await.unwrap().is_some());
    assert!(store.operation(old_operation(1)).await.unwrap().is_some());
    assert!(store.operation(c).await.unwrap().is_some());

    // Once interrupted, the stuck one is history like any other and goes first, with the
    // oldest of the rest.
    assert_eq!(interrupt_all(db, 10).await, [stuck, c]);
    create(db, "alice", "uptime", &["web-1"], 20).await;
    assert_eq!(finished_total(db).await, u64::from(bound));
    assert_eq!(store.operation(stuck).await.unwrap(), None);
    assert_eq!(rows_left(db, "operation_machines", stuck).await, 0);
    assert_eq!(store.operation(old_operation(1)).await.unwrap(), None);
    assert!(store.operation(old_operation(2)).await.unwrap().is_some());
    assert!(store.operation(b).await.unwrap().is_some());
    let all = store
        .query_table(&query(json!({"table": "operations", "limit": 1})), None)
        .await
        .unwrap();
    assert_eq!(
        all.total,
        u64::from(bound) + 1,
        "the bound and the new one, queued"
    );
}
