//! Operations over HTTP on the real SSH test machines: start, refusals, live events over SSE
//! with resume, stop and timeout that leave nothing running on the machine, grouped output,
//! rerun.

use std::time::{Duration, Instant};

use berth_types::api::{MachineView, OperationList, OperationView};
use berth_types::fleet::EnrollmentStatus;
use berth_types::operation::{MachineRunStatus, OperationStatus};
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::machines::{self, Lab};
use crate::common::{assert_error, send_json};
use crate::fleet::{Fleet, fleet_with, get};

const SCRIPTS: &str = "scripts:
  - name: hello
    file: hello.sh
  - name: differ
    file: differ.sh
  - name: slow
    file: slow.sh
    timeout: 10m
";

fn scripts(lab: &Lab) -> Vec<(&'static str, String)> {
    let m2 = &lab.machine("m2").client_id;
    vec![
        ("scripts.yaml", SCRIPTS.to_owned()),
        (
            "hello.sh",
            "#!/bin/bash\necho \"hello $GREETING\"\necho warning >&2\nprintf '\\377\\376'\n"
                .to_owned(),
        ),
        (
            "differ.sh",
            format!(
                "#!/bin/bash\nif [ \"$(cat /etc/berth/client_id)\" = \"{m2}\" ]; then echo no; exit 3; fi\necho yes\n"
            ),
        ),
        // A marker no other process has: the test looks for it on the machine.
        ("slow.sh", "#!/bin/bash\nsleep 3137 &\nwait\n".to_owned()),
    ]
}

/// A fleet with the scripts, synced, m1 and m2 enrolled (m3's host key stays unknown).
async fn ready(lab: &Lab) -> Fleet {
    let files = scripts(lab);
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let f = fleet_with(lab, &files).await;
    let admin = f.server.admin().await;
    let answer = send_json(&admin, "POST", "/api/v1/fleet/sync", "").await;
    assert_eq!(answer.status, 200, "{}", text(&answer.body));
    for id in ["m1", "m2", "m3"] {
        let path = format!("/api/v1/machines/{id}/verify");
        let answer = send_json(&admin, "POST", &path, "").await;
        assert_eq!(answer.status, 200, "{}", text(&answer.body));
        let machine: MachineView = serde_json::from_slice(&answer.body).unwrap();
        let expected = if id == "m3" {
            EnrollmentStatus::HostKeyUnknown
        } else {
            EnrollmentStatus::Enrolled
        };
        assert_eq!(machine.enrollment.status, expected, "{id}");
    }
    f
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// One server-sent event.
#[derive(Debug)]
struct Sse {
    id: i64,
    event: String,
    data: serde_json::Value,
}

fn parse_sse(body: &str) -> Vec<Sse> {
    body.split("\n\n")
        .filter_map(|block| {
            let (mut id, mut event, mut data) = (None, None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            Some(Sse {
                id: id?,
                event: event?,
                data: serde_json::from_str(&data).ok()?,
            })
        })
        .collect()
}

/// The whole event stream of an operation (it ends with the operation), after `after`.
async fn events(client: &berth_client::Client, id: &str, after: Option<i64>) -> Vec<Sse> {
    let after = after.map(|n| n.to_string());
    let mut headers = vec![("accept", "text/event-stream")];
    if let Some(after) = &after {
        headers.push(("last-event-id", after.as_str()));
    }
    let answer = tokio::time::timeout(
        Duration::from_secs(120),
        client.send(
            Method::GET,
            &format!("/api/v1/operations/{id}/events"),
            &headers,
            "",
        ),
    )
    .await
    .expect("the event stream did not end with the operation")
    .unwrap();
    assert_eq!(answer.status, 200, "{}", text(&answer.body));
    parse_sse(&text(&answer.body))
}

async fn start(client: &berth_client::Client, body: &str) -> OperationView {
    let answer = send_json(client, "POST", "/api/v1/operations", body).await;
    assert_eq!(answer.status, 201, "{body}: {}", text(&answer.body));
    serde_json::from_slice(&answer.body).unwrap()
}

async fn wait_for(
    client: &berth_client::Client,
    id: &str,
    done: impl Fn(&OperationView) -> bool,
) -> OperationView {
    wait_for_at(client, &format!("/api/v1/operations/{id}"), done).await
}

/// [`wait_for`], reading the operation at `path` (`?output=...`).
async fn wait_for_at(
    client: &berth_client::Client,
    path: &str,
    done: impl Fn(&OperationView) -> bool,
) -> OperationView {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let view: OperationView = get(client, path).await;
        if done(&view) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never got there: {view:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A GET's answer as it came, whatever its status.
async fn raw_get(client: &berth_client::Client, path: &str) -> berth_client::RawResponse {
    client.send(Method::GET, path, &[], "").await.unwrap()
}

/// Processes on `machine` whose command line holds `marker`.
async fn processes(lab: &Lab, machine: &str, marker: &str) -> String {
    let session = lab.connect(lab.machine(machine)).await;
    let (out, _, _) = machines::run(
        &session,
        &format!("pgrep -af '{marker}' | grep -v pgrep || true"),
    )
    .await;
    out.trim().to_owned()
}

#[tokio::test]
async fn a_script_runs_on_machines_with_live_events_and_grouped_output() {
    let Some(lab) = machines::lab() else { return };
    let f = ready(&lab).await;
    let admin = f.server.admin().await;
    let started = start(
        &admin,
        r#"{"script": "hello", "machines": ["m1", "m2"], "timeout": "90s"}"#,
    )
    .await;
    assert_eq!(started.status, OperationStatus::Queued);
    assert_eq!(started.timeout_seconds, 90);
    let ids: Vec<_> = started
        .machines
        .iter()
        .map(|m| m.machine.as_str())
        .collect();
    assert_eq!(ids, ["m1", "m2"]);
    let id = started.id.to_string();

    let all = events(&admin, &id, None).await;
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    let last = all.last().unwrap();
    assert_eq!(last.event, "operation");
    assert_eq!(last.data["status"], "succeeded", "{all:#?}");
    for machine in ["m1", "m2"] {
        let states: Vec<&str> = all
            .iter()
            .filter(|e| e.event == "machine" && e.data["machine"] == machine)
            .map(|e| e.data["status"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["connecting", "running", "succeeded"], "{machine}");
        let stdout: String = all
            .iter()
            .filter(|e| e.event == "output" && e.data["machine"] == machine)
            .filter(|e| e.data["stream"] == "stdout")
            .map(|e| e.data["data"].as_str().unwrap().to_owned())
            .collect();
        assert!(stdout.starts_with("hello \n"), "{machine}: {stdout:?}");
        assert!(
            all.iter().any(|e| e.event == "output"
                && e.data["machine"] == machine
                && e.data["stream"] == "stderr"
                && e.data["data"] == "warning\n"),
            "{machine}: stderr apart"
        );
    }
    // Resume: only what came after the id given.
    let middle = all[all.len() / 2].id;
    let rest = events(&admin, &id, Some(middle)).await;
    assert_eq!(
        rest.iter().map(|e| e.id).collect::<Vec<_>>(),
        all.iter()
            .filter(|e| e.id > middle)
            .map(|e| e.id)
            .collect::<Vec<_>>()
    );
    // Two watchers of a finished operation read the same log.
    let again = events(&admin, &id, None).await;
    assert_eq!(again.len(), all.len());

    let view: OperationView = get(&admin, &format!("/api/v1/operations/{id}")).await;
    assert_eq!(view.status, OperationStatus::Succeeded);
    for run in &view.machines {
        assert_eq!(run.status, MachineRunStatus::Succeeded);
        assert_eq!(run.exit_code, Some(0));
        // Non-UTF-8 output survives as bytes.
        let raw = base64_decode(run.stdout_base64.as_deref().expect("not UTF-8"));
        assert!(raw.ends_with(b"hello \n\xff\xfe"), "{raw:?}");
        assert_eq!(run.stderr.as_deref(), Some("warning\n"));
    }
    // Both printed the same: one group.
    assert_eq!(view.groups.len(), 1, "{:#?}", view.groups);
    assert_eq!(view.groups[0].machines.len(), 2);

    // The test server's clock stands still unless moved: newest first needs it to move.
    f.server.clock.advance(Duration::from_secs(1));
    // Different output: two groups, and the operation failed.
    let differ = start(&admin, r#"{"script": "differ", "machines": ["m1", "m2"]}"#).await;
    let id = differ.id.to_string();
    let view = wait_for(&admin, &id, |v| v.status.is_finished()).await;
    assert_eq!(view.status, OperationStatus::Failed);
    assert_eq!(view.groups.len(), 2, "{:#?}", view.groups);
    let m2 = view
        .machines
        .iter()
        .find(|m| m.machine.as_str() == "m2")
        .unwrap();
    assert_eq!(
        (m2.status, m2.exit_code),
        (MachineRunStatus::Failed, Some(3))
    );
    less_output_is_asked_for(&admin, &id).await;
    // Rerun: only the machine that did not succeed.
    f.server.clock.advance(Duration::from_secs(1));
    let answer = send_json(
        &admin,
        "POST",
        &format!("/api/v1/operations/{id}/rerun"),
        "",
    )
    .await;
    assert_eq!(answer.status, 201, "{}", text(&answer.body));
    let rerun: OperationView = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(rerun.rerun_of, Some(differ.id));
    let ids: Vec<_> = rerun.machines.iter().map(|m| m.machine.as_str()).collect();
    assert_eq!(ids, ["m2"]);

    // The history, newest first, filtered.
    let list: OperationList = get(&admin, "/api/v1/operations").await;
    assert_eq!(list.operations.len(), 3);
    assert_eq!(list.operations[0].id, rerun.id);
    let failed: OperationList = get(&admin, "/api/v1/operations?status=failed").await;
    assert_eq!(failed.operations.len(), 1);
    assert_eq!(failed.operations[0].id, differ.id);
    let hello: OperationList = get(&admin, "/api/v1/operations?script=hello&machine=m2").await;
    assert_eq!(hello.operations.len(), 1);
}

/// `differ` (m1 printed `yes`, m2 `no` and exited 3) read with less output, and each machine's.
async fn less_output_is_asked_for(admin: &berth_client::Client, id: &str) {
    let groups: OperationView = get(admin, &format!("/api/v1/operations/{id}?output=groups")).await;
    assert!(
        groups
            .machines
            .iter()
            .all(|m| m.stdout.is_none() && m.stderr.is_none())
    );
    assert_eq!(
        groups
            .machines
            .iter()
            .map(|m| m.output_bytes)
            .collect::<Vec<_>>(),
        [4, 3]
    );
    let printed: Vec<_> = groups
        .groups
        .iter()
        .map(|g| (g.machines[0].as_str(), g.stdout.as_deref(), g.exit_code))
        .collect();
    assert_eq!(
        printed,
        [
            ("m1", Some("yes\n"), Some(0)),
            ("m2", Some("no\n"), Some(3))
        ]
    );
    let none: OperationView = get(admin, &format!("/api/v1/operations/{id}?output=none")).await;
    assert_eq!(none.groups.len(), 2);
    assert!(
        none.groups
            .iter()
            .all(|g| g.stdout.is_none() && g.output_bytes > 0)
    );
    assert!(none.machines.iter().all(|m| m.stdout.is_none()));

    let m2: berth_types::api::MachineRunView =
        get(admin, &format!("/api/v1/operations/{id}/machines/m2")).await;
    assert_eq!(
        (m2.stdout.as_deref(), m2.exit_code),
        (Some("no\n"), Some(3))
    );
    let raw = raw_get(
        admin,
        &format!("/api/v1/operations/{id}/machines/m2/stdout"),
    )
    .await;
    assert_eq!((raw.status, raw.body.as_ref()), (200, &b"no\n"[..]));
    assert_eq!(
        raw.headers.get("content-type").unwrap(),
        "application/octet-stream"
    );
    for (path, status) in [
        (format!("/api/v1/operations/{id}?output=most"), 400),
        (format!("/api/v1/operations/{id}?output=none&extra=1"), 400),
        (format!("/api/v1/operations/{id}/machines/m3"), 404),
        (format!("/api/v1/operations/{id}/machines/m2/stdin"), 400),
        (
            format!("/api/v1/operations/{id}/machines/..%2F/stdout"),
            400,
        ),
    ] {
        let answer = admin.send(Method::GET, &path, &[], "").await.unwrap();
        assert_eq!(answer.status, status, "{path}: {}", text(&answer.body));
    }
}

#[tokio::test]
async fn an_answer_with_too_much_output_is_refused_and_each_machine_s_is_there() {
    let Some(lab) = machines::lab() else { return };
    let mut files = scripts(&lab);
    files.retain(|(p, _)| *p != "scripts.yaml");
    files.push((
        "scripts.yaml",
        format!("{SCRIPTS}  - name: big\n    file: big.sh\n"),
    ));
    // 5 MiB of the same line on each machine: 10 MiB together, 5 MiB as one group.
    files.push((
        "big.sh",
        "#!/bin/bash\nyes 0123456789abcdef0123456789abcde | head -c 5242880\n".to_owned(),
    ));
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let f = crate::fleet::fleet_with_settings(&lab, &files, &[("max_output", "8m")]).await;
    let admin = f.server.admin().await;
    let answer = send_json(&admin, "POST", "/api/v1/fleet/sync", "").await;
    assert_eq!(answer.status, 200, "{}", text(&answer.body));
    for id in ["m1", "m2"] {
        let path = format!("/api/v1/machines/{id}/verify");
        assert_eq!(send_json(&admin, "POST", &path, "").await.status, 200);
    }
    let started = start(&admin, r#"{"script": "big", "machines": ["m1", "m2"]}"#).await;
    let id = started.id.to_string();
    let path = format!("/api/v1/operations/{id}?output=none");
    let view = wait_for_at(&admin, &path, |v| v.status.is_finished()).await;
    assert_eq!(view.status, OperationStatus::Succeeded, "{view:#?}");

    let answer = admin
        .send(Method::GET, &format!("/api/v1/operations/{id}"), &[], "")
        .await
        .unwrap();
    assert_error(&answer, 422, "output_too_large");
    let groups: OperationView =
        get(&admin, &format!("/api/v1/operations/{id}?output=groups")).await;
    assert_eq!(groups.groups.len(), 1);
    assert_eq!(
        groups.groups[0].stdout.as_ref().map(String::len),
        Some(5_242_880)
    );
    assert_eq!(groups.groups[0].output_bytes, 5_242_880);
    let raw = raw_get(
        &admin,
        &format!("/api/v1/operations/{id}/machines/m2/stdout"),
    )
    .await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body.len(), 5_242_880);
    assert!(raw.body.starts_with(b"0123456789abcdef0123456789abcde\n"));
    // The list carries no output at all.
    let list = admin
        .send(Method::GET, "/api/v1/operations", &[], "")
        .await
        .unwrap();
    assert_eq!(list.status, 200);
    assert!(list.body.len() < 10_000, "{} bytes", list.body.len());
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn stop_and_timeout_leave_no_process_on_the_machine() {
    let Some(lab) = machines::lab() else { return };
    let f = ready(&lab).await;
    let admin = f.server.admin().await;
    let slow = start(&admin, r#"{"script": "slow", "machines": ["m1"]}"#).await;
    let id = slow.id.to_string();
    let running = wait_for(&admin, &id, |v| {
        v.machines[0].status == MachineRunStatus::Running
    })
    .await;
    assert_eq!(running.status, OperationStatus::Running);
    // `running` comes with the exec's answer, a moment before bash starts the sleep.
    let deadline = Instant::now() + Duration::from_secs(60);
    while processes(&lab, "m1", "sleep 3137").await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the script never started its sleep"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let path = format!("/api/v1/operations/{id}/stop");
    let answer = send_json(&admin, "POST", &path, "").await;
    assert_eq!(answer.status, 200, "{}", text(&answer.body));
    let view = wait_for(&admin, &id, |v| v.status.is_finished()).await;
    assert_eq!(view.status, OperationStatus::Cancelled);
    assert_eq!(view.machines[0].status, MachineRunStatus::Cancelled);
    assert_eq!(processes(&lab, "m1", "sleep 3137").await, "");
    // Stop is idempotent.
    let answer = send_json(&admin, "POST", &path, "").await;
    assert_eq!(answer.status, 200);

    // A timeout ends it the same way.
    let timed = start(
        &admin,
        r#"{"script": "slow", "machines": ["m2"], "timeout": 2}"#,
    )
    .await;
    let view = wait_for(&admin, &timed.id.to_string(), |v| v.status.is_finished()).await;
    assert_eq!(view.status, OperationStatus::Failed);
    assert_eq!(view.machines[0].status, MachineRunStatus::TimedOut);
    assert_eq!(processes(&lab, "m2", "sleep 3137").await, "");

    // Queued machines of a stopped operation never start.
    let queued = start(
        &admin,
        r#"{"script": "slow", "machines": ["m1", "m2"], "concurrency": 1}"#,
    )
    .await;
    let id = queued.id.to_string();
    wait_for(&admin, &id, |v| {
        v.machines[0].status == MachineRunStatus::Running
    })
    .await;
    send_json(&admin, "POST", &format!("/api/v1/operations/{id}/stop"), "").await;
    let view = wait_for(&admin, &id, |v| v.status.is_finished()).await;
    assert_eq!(view.machines[1].status, MachineRunStatus::Cancelled);
    assert!(view.machines[1].started.is_none());
    assert_eq!(processes(&lab, "m1", "sleep 3137").await, "");
}

#[tokio::test]
async fn bad_requests_are_refused_with_what_is_wrong() {
    let Some(lab) = machines::lab() else { return };
    let f = ready(&lab).await;
    let admin = f.server.admin().await;
    let cases = [
        (
            r#"{"script": "nope", "machines": ["m1"]}"#,
            404,
            "not_found",
        ),
        (
            r#"{"script": "hello", "machines": ["m9"]}"#,
            404,
            "not_found",
        ),
        (
            r#"{"script": "hello", "machines": ["m3"]}"#,
            409,
            "not_enrolled",
        ),
        (
            r#"{"script": "hello", "machines": ["m1", "m1"]}"#,
            422,
            "invalid",
        ),
        (
            r#"{"script": "hello", "machines": ["m1"], "selector": {"tags": ["lab"]}}"#,
            422,
            "invalid",
        ),
        (r#"{"script": "hello"}"#, 422, "invalid"),
        (r#"{"script": "hello", "selector": {}}"#, 422, "invalid"),
        (
            r#"{"script": "hello", "selector": {"tags": ["nothing-has-this"]}}"#,
            422,
            "invalid",
        ),
        (
            r#"{"script": "hello", "machines": ["m1"], "concurrency": 0}"#,
            422,
            "invalid",
        ),
        (
            r#"{"script": "hello", "machines": ["m1"], "concurrency": 1001}"#,
            422,
            "invalid",
        ),
        (
            r#"{"script": "hello", "machines": ["m1"], "timeout": "soon"}"#,
            422,
            "invalid_body",
        ),
        (
            r#"{"script": "hello", "machines": ["m1"], "timeout": 0}"#,
            422,
            "invalid_body",
        ),
        (
            r#"{"script": "hello", "machines": ["m1"], "command": "rm -rf /"}"#,
            422,
            "invalid_body",
        ),
        (
            r#"{"script": "hello", "machines": "m1"}"#,
            422,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        let answer = send_json(&admin, "POST", "/api/v1/operations", body).await;
        let error = assert_error(&answer, status, code);
        assert!(!error.to_string().is_empty(), "{body}");
    }
    let list: OperationList = get(&admin, "/api/v1/operations").await;
    assert!(list.operations.is_empty(), "nothing started");
    for path in [
        "/api/v1/operations/00000000-0000-4000-8000-000000000000",
        "/api/v1/operations/00000000-0000-4000-8000-000000000000/events",
    ] {
        let answer = admin.send(Method::GET, path, &[], "").await.unwrap();
        assert_error(&answer, 404, "not_found");
    }
    let answer = admin
        .send(Method::GET, "/api/v1/operations?status=exploded", &[], "")
        .await
        .unwrap();
    assert_eq!(answer.status, 400, "{}", text(&answer.body));
}

#[tokio::test]
async fn users_run_only_where_their_selectors_allow_and_see_only_their_operations() {
    let Some(lab) = machines::lab() else { return };
    let f = ready(&lab).await;
    let admin = f.server.admin().await;
    let alice = f.server.login("alice", "alice-password").await;
    let bob = f.server.login("bob", "bob-password").await;
    // alice may see m1 (and tag:far), not m2: m2 answers as unknown.
    let answer = send_json(
        &alice,
        "POST",
        "/api/v1/operations",
        r#"{"script": "hello", "machines": ["m2"]}"#,
    )
    .await;
    assert_error(&answer, 404, "not_found");
    // By selector she gets only what she may run on.
    let mine = start(
        &alice,
        r#"{"script": "hello", "selector": {"tags": ["lab"]}}"#,
    )
    .await;
    let ids: Vec<_> = mine.machines.iter().map(|m| m.machine.as_str()).collect();
    assert_eq!(ids, ["m1"]);
    let id = mine.id.to_string();
    wait_for(&alice, &id, |v| v.status.is_finished()).await;
    // Bob sees none of it; the admin sees all.
    for path in [
        format!("/api/v1/operations/{id}"),
        format!("/api/v1/operations/{id}?output=none"),
        format!("/api/v1/operations/{id}/events"),
        format!("/api/v1/operations/{id}/machines/m1"),
        format!("/api/v1/operations/{id}/machines/m1/stdout"),
    ] {
        let answer = bob.send(Method::GET, &path, &[], "").await.unwrap();
        assert_error(&answer, 404, "not_found");
    }
    let answer = send_json(&bob, "POST", &format!("/api/v1/operations/{id}/stop"), "").await;
    assert_error(&answer, 404, "not_found");
    let bobs: OperationList = get(&bob, "/api/v1/operations").await;
    assert!(bobs.operations.is_empty());
    let all: OperationList = get(&admin, "/api/v1/operations?user=alice").await;
    assert_eq!(all.operations.len(), 1);
    let bob_none = send_json(
        &bob,
        "POST",
        "/api/v1/operations",
        r#"{"script": "hello", "selector": {"tags": ["lab"]}}"#,
    )
    .await;
    assert_error(&bob_none, 422, "invalid");
}

#[tokio::test]
async fn concurrency_holds_on_the_machines_and_an_unreachable_machine_fails_alone() {
    let Some(lab) = machines::lab() else { return };
    let f = ready(&lab).await;
    let admin = f.server.admin().await;
    // A relay to m1's sshd: a machine that is enrolled, then goes away.
    let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_port = relay.local_addr().unwrap().port();
    let m1 = lab.machine("m1").clone();
    let relaying = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = relay.accept().await else {
                return;
            };
            let to = format!("{}:{}", m1.host, m1.port);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let mut linked = crate::common::machines::inventory::links(&lab, &[("m1", None), ("m2", None)]);
    linked.push_str(&format!(
        "  - id: relay\n    name: relay\n    host: 127.0.0.1\n    port: {relay_port}\n    user: {}\n    key: id_ed25519\n    client_id: {}\n",
        lab.machine("m1").user,
        lab.machine("m1").client_id
    ));
    let files = scripts(&lab);
    let mut all: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    all.push(("links.yaml", &linked));
    all.push((
        "scripts.yaml",
        "scripts:\n  - name: hello\n    file: hello.sh\n  - name: clock\n    file: clock.sh\n",
    ));
    all.push((
        "clock.sh",
        "#!/bin/bash\necho \"start $(date +%s%N)\"\nsleep 1\necho \"end $(date +%s%N)\"\n",
    ));
    f.repo.commit(&all, "a relay and a clock");
    let answer = send_json(&admin, "POST", "/api/v1/fleet/sync", "").await;
    assert_eq!(answer.status, 200, "{}", text(&answer.body));
    let known = format!(
        "{}[127.0.0.1]:{relay_port} {}\n",
        crate::common::machines::inventory::known_hosts(&lab, &["m1", "m2"]),
        lab.machine("m1").host_key
    );
    std::fs::write(f.server.home.join("fleet/known_hosts"), known).unwrap();
    let answer = send_json(&admin, "POST", "/api/v1/machines/relay/verify", "").await;
    let relay_view: MachineView = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        relay_view.enrollment.status,
        EnrollmentStatus::Enrolled,
        "{}",
        relay_view.enrollment.message
    );

    // One at a time: on the machines' own clocks, one ended before the other started.
    let clock = start(
        &admin,
        r#"{"script": "clock", "machines": ["m1", "m2"], "concurrency": 1}"#,
    )
    .await;
    let view = wait_for(&admin, &clock.id.to_string(), |v| v.status.is_finished()).await;
    assert_eq!(view.status, OperationStatus::Succeeded, "{view:#?}");
    let span = |run: &berth_types::api::MachineRunView| {
        let out = run.stdout.clone().unwrap();
        let number = |word: &str| -> u128 {
            out.lines()
                .find_map(|l| l.strip_prefix(word))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        (number("start "), number("end "))
    };
    let (a, b) = (span(&view.machines[0]), span(&view.machines[1]));
    assert!(a.1 <= b.0 || b.1 <= a.0, "they overlapped: {a:?} {b:?}");

    // The relay goes away: that machine fails as unreachable, the others run.
    relaying.abort();
    let _ = relaying.await;
    let mixed = start(
        &admin,
        r#"{"script": "hello", "machines": ["m2", "relay"]}"#,
    )
    .await;
    let view = wait_for(&admin, &mixed.id.to_string(), |v| v.status.is_finished()).await;
    assert_eq!(view.status, OperationStatus::Failed);
    let status = |id: &str| {
        view.machines
            .iter()
            .find(|m| m.machine.as_str() == id)
            .unwrap()
            .clone()
    };
    assert_eq!(status("m2").status, MachineRunStatus::Succeeded);
    let relay_run = status("relay");
    assert_eq!(
        relay_run.status,
        MachineRunStatus::Unreachable,
        "{relay_run:#?}"
    );
    assert!(relay_run.started.is_none());
    assert!(!relay_run.message.is_empty());
}

#[tokio::test]
async fn two_live_watchers_see_the_same_events_and_every_change_is_audited() {
    let Some(lab) = machines::lab() else { return };
    let files = scripts(&lab);
    let mut all: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    all.retain(|(p, _)| *p != "scripts.yaml");
    let scripts_yaml = format!("{SCRIPTS}  - name: ticks\n    file: ticks.sh\n");
    all.push(("scripts.yaml", &scripts_yaml));
    all.push((
        "ticks.sh",
        "#!/bin/bash\nfor i in $(seq 1 15); do echo \"tick $i\"; sleep 0.1; done\n",
    ));
    let f = fleet_with(&lab, &all).await;
    let admin = f.server.admin().await;
    let answer = send_json(&admin, "POST", "/api/v1/fleet/sync", "").await;
    assert_eq!(answer.status, 200, "{}", text(&answer.body));
    for id in ["m1", "m2"] {
        let path = format!("/api/v1/machines/{id}/verify");
        assert_eq!(send_json(&admin, "POST", &path, "").await.status, 200);
    }
    let started = start(&admin, r#"{"script": "ticks", "machines": ["m1", "m2"]}"#).await;
    let id = started.id.to_string();
    let other = f.server.admin().await;
    // Both follow it live, from its start, at once.
    let (a, b) = tokio::join!(events(&admin, &id, None), events(&other, &id, None));
    let ids = |events: &[Sse]| events.iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    let ticks = a
        .iter()
        .filter(|e| e.event == "output")
        .map(|e| e.data["data"].as_str().unwrap().matches("tick ").count())
        .sum::<usize>();
    assert_eq!(ticks, 30, "every line of both machines");
    assert_eq!(a.last().unwrap().data["status"], "succeeded");

    // Start, stop and end are in the audit log.
    let slow = start(&admin, r#"{"script": "slow", "machines": ["m1"]}"#).await;
    let slow_id = slow.id.to_string();
    wait_for(&admin, &slow_id, |v| {
        v.machines[0].status == MachineRunStatus::Running
    })
    .await;
    let path = format!("/api/v1/operations/{slow_id}/stop");
    assert_eq!(send_json(&admin, "POST", &path, "").await.status, 200);
    wait_for(&admin, &slow_id, |v| v.status.is_finished()).await;
    let query = serde_json::json!({
        "table": "audit",
        "columns": ["action", "target", "outcome"],
        "limit": 500
    });
    let answer = send_json(&admin, "POST", "/api/v1/tables/query", &query.to_string()).await;
    assert_eq!(answer.status, 200, "{}", text(&answer.body));
    let rows: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let has = |action: &str, target: &str| {
        rows["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == action && r["target"] == target)
    };
    for (action, target) in [
        ("operation.start", &id),
        ("operation.end", &id),
        ("operation.start", &slow_id),
        ("operation.stop", &slow_id),
        ("operation.end", &slow_id),
    ] {
        assert!(has(action, target), "no {action} for {target}: {rows}");
    }
}

/// A fleet with `script` (`name`, body) besides the usual ones, synced, m1 and m2 enrolled.
async fn fleet_with_script(lab: &Lab, name: &str, body: &str) -> Fleet {
    let files = scripts(lab);
    let mut all: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    all.retain(|(p, _)| *p != "scripts.yaml");
    let scripts_yaml = format!("{SCRIPTS}  - name: {name}\n    file: {name}.sh\n");
    all.push(("scripts.yaml", &scripts_yaml));
    let file = format!("{name}.sh");
    all.push((&file, body));
    let f = fleet_with(lab, &all).await;
    let admin = f.server.admin().await;
    let answer = send_json(&admin, "POST", "/api/v1/fleet/sync", "").await;
    assert_eq!(answer.status, 200, "{}", text(&answer.body));
    for id in ["m1", "m2"] {
        let path = format!("/api/v1/machines/{id}/verify");
        assert_eq!(send_json(&admin, "POST", &path, "").await.status, 200);
    }
    f
}

/// The next event of `events` and the id it came with; fails after a minute without one.
async fn next_event(
    events: &mut berth_client::OperationEvents,
) -> Option<(u64, berth_client::OperationEvent)> {
    let event = tokio::time::timeout(Duration::from_secs(60), events.next())
        .await
        .expect("no event for a minute")
        .unwrap()?;
    Some((events.last_event_id().unwrap(), event))
}

fn is_output(event: &berth_client::OperationEvent, text: &str) -> bool {
    matches!(event, berth_client::OperationEvent::Output(o) if o.data.contains(text))
}

#[tokio::test]
async fn a_watcher_resumes_mid_run_and_one_with_an_id_from_elsewhere_follows_from_now() {
    let Some(lab) = machines::lab() else { return };
    // The run waits on the machine until the test opens its gate, saying so meanwhile.
    let gate = "/tmp/berth-test-gate-open";
    let f = fleet_with_script(
        &lab,
        "gate",
        &format!(
            "#!/bin/bash\nrm -f {gate}\necho before\nuntil [ -e {gate} ]; do echo waiting; sleep 0.2; done\necho after\n"
        ),
    )
    .await;
    let admin = f.server.admin().await;
    let started = start(&admin, r#"{"script": "gate", "machines": ["m1"]}"#).await;

    // A first watcher reads up to `before`, then goes away.
    let mut first = Vec::new();
    {
        let mut events = admin.operation_events(started.id);
        loop {
            let (id, event) = next_event(&mut events).await.expect("ended early");
            first.push(id);
            if is_output(&event, "before") {
                break;
            }
        }
    }
    // Another (a browser's EventSource: it keeps no ids of its own) comes with an id this
    // operation never had: it follows the run from now on, not waiting for an event that
    // high, which would never come.
    let login = f
        .server
        .client()
        .login("admin", "admin-password-for-tests")
        .await
        .unwrap();
    let mut stranger = tokio::net::TcpStream::connect(f.server.addr).await.unwrap();
    let request = format!(
        "GET /api/v1/operations/{}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {}\r\nAccept: text/event-stream\r\n\
         Last-Event-ID: 1000000\r\nConnection: close\r\n\r\n",
        started.id,
        login.token.expose()
    );
    stranger.write_all(request.as_bytes()).await.unwrap();
    let mut heard = Vec::new();
    while !String::from_utf8_lossy(&heard).contains("waiting") {
        let mut buf = [0; 4096];
        let n = tokio::time::timeout(Duration::from_secs(60), stranger.read(&mut buf))
            .await
            .expect("nothing for a minute")
            .unwrap();
        assert!(n > 0, "ended early: {}", String::from_utf8_lossy(&heard));
        heard.extend_from_slice(&buf[..n]);
    }

    // The first comes back while the run still waits, and reads on from where it was.
    let mut resumed = admin
        .operation_events(started.id)
        .after(*first.last().unwrap());
    let (id, event) = next_event(&mut resumed).await.expect("ended early");
    assert!(is_output(&event, "waiting"), "{event:?}");
    let mut rest = vec![id];
    let session = lab.connect(lab.machine("m1")).await;
    machines::run(&session, &format!("touch {gate}")).await;
    let mut saw_after = false;
    let mut last = None;
    while let Some((id, event)) = next_event(&mut resumed).await {
        saw_after |= is_output(&event, "after");
        rest.push(id);
        last = Some(event);
    }
    assert!(saw_after, "the output after the gate");
    assert!(
        matches!(&last, Some(berth_client::OperationEvent::Operation(e)) if e.status == OperationStatus::Succeeded),
        "{last:?}"
    );
    tokio::time::timeout(Duration::from_secs(60), stranger.read_to_end(&mut heard))
        .await
        .expect("the stream did not end with the operation")
        .unwrap();
    let heard = String::from_utf8_lossy(&heard);
    assert!(heard.starts_with("HTTP/1.1 200"), "{heard}");
    assert!(heard.contains("after"), "{heard}");
    assert!(heard.contains(r#""status":"succeeded""#), "{heard}");

    // Together, the two halves are the whole log: nothing missed, nothing twice.
    let whole: Vec<u64> = events(&admin, &started.id.to_string(), None)
        .await
        .iter()
        .map(|e| u64::try_from(e.id).unwrap())
        .collect();
    first.extend(rest);
    assert_eq!(first, whole);
}

#[tokio::test]
async fn a_watcher_that_does_not_read_does_not_hold_up_the_run() {
    let Some(lab) = machines::lab() else { return };
    // Far more than the live events a watcher may fall behind by, and than the sockets hold.
    let f = fleet_with_script(
        &lab,
        "flood",
        "#!/bin/bash\nhead -c 60000000 /dev/zero | tr '\\0' x\necho\necho done >&2\n",
    )
    .await;
    let admin = f.server.admin().await;
    let started = start(&admin, r#"{"script": "flood", "machines": ["m1", "m2"]}"#).await;
    let id = started.id.to_string();
    let mut slow = admin.operation_events(started.id);
    next_event(&mut slow).await.expect("ended early");
    // It reads nothing more while the run goes on; the run ends all the same.
    let view = wait_for(&admin, &id, |v| v.status.is_finished()).await;
    assert_eq!(view.status, OperationStatus::Succeeded, "{view:#?}");
    assert!(view.machines.iter().all(|m| m.truncated));
    // Then it catches up (from the store, past what it missed live) to the end.
    let mut seen = Vec::new();
    let mut last = None;
    while let Some((seq, event)) = next_event(&mut slow).await {
        seen.push(seq);
        last = Some(event);
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "ids increase");
    assert!(
        matches!(&last, Some(berth_client::OperationEvent::Operation(e)) if e.status == OperationStatus::Succeeded),
        "{last:?}"
    );
}
