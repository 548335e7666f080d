//! Scripts run on the real SSH test machines (`scripts/test-machines.sh`): output, exit codes,
//! variables, timeouts and cancels that leave nothing running, machines that cannot be reached.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The machines' list and keys, shared with berth-ssh's tests.
#[path = "../../berth-ssh/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use berth_fleet::operation::{self, RunEnd, RunEvent, RunSpec, run_on_machine};
use berth_ssh::{ExitStatus, Session, Target};
use berth_types::operation::{MachineRunStatus, OutputStream};
use tokio::sync::{mpsc, watch};

/// A bound on every run here: far beyond what a run on loopback takes.
const LIMIT: Duration = Duration::from_secs(120);

fn spec(target: Target, script: impl Into<bytes::Bytes>) -> RunSpec {
    RunSpec {
        target,
        connect: common::options(),
        script: script.into(),
        env: Vec::new(),
        timeout: Duration::from_secs(60),
        grace: Duration::from_secs(5),
        max_output: 1 << 20,
    }
}

/// A unique name for the processes of one test.
fn marker(test: &str) -> String {
    format!("berth-op-{}-{test}", std::process::id())
}

/// A script with a child in its process group and one that left it (`setsid`), both holding
/// its output open; it says `ready` once both exist and never gets to `never`.
fn tree(marker: &str) -> String {
    format!(
        "exec -a {marker}-child sleep 300 &\n\
         setsid -f bash -c 'exec -a {marker}-setsid sleep 300'\n\
         echo ready\nwait\necho never\n"
    )
}

/// A run in a task of its own, with its cancel and its events.
struct Running {
    cancel: watch::Sender<bool>,
    events: mpsc::Receiver<RunEvent>,
    seen: Vec<RunEvent>,
    end: tokio::task::JoinHandle<RunEnd>,
}

impl Running {
    fn start(spec: RunSpec) -> Self {
        let (cancel, cancelled) = watch::channel(false);
        // Small, so the runner's queue for a slow receiver is used too.
        let (sender, events) = mpsc::channel(4);
        let end = tokio::spawn(run_on_machine(spec, cancelled, sender));
        Self {
            cancel,
            events,
            seen: Vec::new(),
            end,
        }
    }

    /// Reads events until `stop` holds for the events so far.
    async fn until(&mut self, stop: impl Fn(&[RunEvent]) -> bool) {
        tokio::time::timeout(LIMIT, async {
            while !stop(&self.seen) {
                let event = self.events.recv().await.expect("the run ended early");
                self.seen.push(event);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("still waiting after {LIMIT:?}; events: {:?}", self.seen));
    }

    async fn until_stdout(&mut self, needle: &str) {
        let needle = needle.as_bytes().to_vec();
        self.until(|events| {
            live(events, OutputStream::Stdout)
                .windows(needle.len())
                .any(|w| w == needle)
        })
        .await;
    }

    /// The rest of the events and the end.
    async fn finish(mut self) -> (RunEnd, Vec<RunEvent>) {
        tokio::time::timeout(LIMIT, async {
            while let Some(event) = self.events.recv().await {
                self.seen.push(event);
            }
            (self.end.await.unwrap(), self.seen)
        })
        .await
        .unwrap_or_else(|_| panic!("the run did not end within {LIMIT:?}"))
    }
}

async fn run(spec: RunSpec) -> (RunEnd, Vec<RunEvent>) {
    Running::start(spec).finish().await
}

/// The bytes of `stream` that came as events.
fn live(events: &[RunEvent], stream: OutputStream) -> Vec<u8> {
    chunks(events, stream, |_| true)
}

/// The bytes of `stream` that came as kept events.
fn kept(events: &[RunEvent], stream: OutputStream) -> Vec<u8> {
    chunks(events, stream, |kept| kept)
}

fn chunks(events: &[RunEvent], wanted: OutputStream, keep: impl Fn(bool) -> bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    for event in events {
        if let RunEvent::Output { stream, data, kept } = event
            && *stream == wanted
            && keep(*kept)
        {
            bytes.extend_from_slice(data);
        }
    }
    bytes
}

/// Polls `pgrep -af '^marker'` until no process carries the marker; returns what it printed
/// last (empty when none is left).
async fn left_behind(session: &Session, marker: &str) -> String {
    let mut out = String::new();
    for _ in 0..100 {
        let (printed, _, status) = common::run(session, &format!("pgrep -af '^{marker}'")).await;
        if status == ExitStatus::Code(1) {
            return String::new();
        }
        out = printed;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out
}

/// `pgrep`'s lines once `count` processes carry `marker` (or what runs after 5 s): a `setsid -f`
/// child may still be starting.
async fn processes(session: &Session, marker: &str, count: usize) -> String {
    let mut out = String::new();
    for _ in 0..100 {
        out = common::run(session, &format!("pgrep -af '^{marker}'"))
            .await
            .0;
        if out.lines().count() == count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out
}

#[tokio::test]
async fn a_script_succeeds_with_stdout_and_stderr_apart() {
    let Some(lab) = common::lab() else { return };
    let target = lab.target(lab.plain()[0]);
    let (end, events) = run(spec(
        target,
        "#!/bin/bash\necho out\necho err >&2\necho more\n",
    ))
    .await;
    assert_eq!(end.status, MachineRunStatus::Succeeded, "{}", end.message);
    assert_eq!(end.exit_code, Some(0));
    assert_eq!(end.signal, None);
    assert_eq!(end.stdout, b"out\nmore\n");
    assert_eq!(end.stderr, b"err\n");
    assert!(!end.truncated);
    assert!(end.duration.is_some());
    assert_eq!(events[..2], [RunEvent::Connecting, RunEvent::Started]);
    assert_eq!(kept(&events, OutputStream::Stdout), end.stdout);
    assert_eq!(kept(&events, OutputStream::Stderr), end.stderr);
}

#[tokio::test]
async fn a_script_through_a_jump_host_runs_too_without_a_timeout() {
    let Some(lab) = common::lab() else { return };
    let mut spec = spec(
        lab.target(lab.machine("hidden")),
        "cat /etc/berth/client_id",
    );
    spec.timeout = Duration::MAX; // no clock counts that far: no timeout
    let (end, _) = run(spec).await;
    assert_eq!(end.status, MachineRunStatus::Succeeded, "{}", end.message);
    assert_eq!(
        String::from_utf8_lossy(&end.stdout).trim(),
        lab.machine("hidden").client_id
    );
}

#[tokio::test]
async fn an_exit_code_or_a_signal_is_a_failure() {
    let Some(lab) = common::lab() else { return };
    let target = lab.target(lab.plain()[1]);
    let (end, _) = run(spec(target.clone(), "echo partial\nexit 7\necho never\n")).await;
    assert_eq!(end.status, MachineRunStatus::Failed, "{}", end.message);
    assert_eq!(end.exit_code, Some(7));
    assert_eq!(end.stdout, b"partial\n");
    assert!(end.message.contains("exit code 7"), "{}", end.message);

    let (end, _) = run(spec(target, "kill -KILL $$\n")).await;
    assert_eq!(end.status, MachineRunStatus::Failed, "{}", end.message);
    assert_eq!((end.exit_code, end.signal.as_deref()), (None, Some("KILL")));
    assert!(end.message.contains("SIGKILL"), "{}", end.message);
}

#[tokio::test]
async fn output_that_is_not_utf8_arrives_byte_for_byte() {
    let Some(lab) = common::lab() else { return };
    // The script itself holds raw bytes that are not UTF-8, too.
    let mut script = b"printf '\\377\\376\\000\\200'\nprintf '\\351' >&2\nprintf '%s' '".to_vec();
    script.extend_from_slice(b"\xc3\x28\xff");
    script.extend_from_slice(b"'\n");
    let (end, events) = run(spec(lab.target(lab.plain()[2]), script)).await;
    assert_eq!(end.status, MachineRunStatus::Succeeded, "{}", end.message);
    assert_eq!(end.stdout, b"\xff\xfe\x00\x80\xc3\x28\xff");
    assert_eq!(end.stderr, b"\xe9");
    assert_eq!(live(&events, OutputStream::Stdout), end.stdout);
}

#[tokio::test]
async fn output_beyond_max_output_keeps_its_head_and_tail() {
    let Some(lab) = common::lab() else { return };
    let mut spec = spec(lab.target(lab.plain()[0]), "seq 1 200000\necho done >&2\n");
    spec.max_output = 1000;
    let (end, events) = run(spec).await;
    assert_eq!(end.status, MachineRunStatus::Succeeded, "{}", end.message);
    let full: Vec<u8> = (1..=200_000)
        .flat_map(|n| format!("{n}\n").into_bytes())
        .collect();
    let middle = operation::marker(full.len() - 1000);
    assert!(end.truncated);
    assert_eq!(end.stdout.len(), 1000 + middle.len());
    assert_eq!(end.stdout[..500], full[..500]);
    assert_eq!(end.stdout[500..500 + middle.len()], *middle.as_bytes());
    assert_eq!(end.stdout[500 + middle.len()..], full[full.len() - 500..]);
    assert_eq!(end.stderr, b"done\n", "the other stream is whole");
    assert_eq!(
        kept(&events, OutputStream::Stdout),
        full[..500],
        "the kept events are the head"
    );
}

#[tokio::test]
async fn a_receiver_that_never_reads_does_not_hold_the_script() {
    let Some(lab) = common::lab() else { return };
    let mut spec = spec(
        lab.target(lab.plain()[2]),
        "seq 1 200000
",
    );
    spec.max_output = 1000;
    let (_cancel, cancelled) = watch::channel(false);
    let (sender, mut events) = mpsc::channel(2);
    let end = tokio::time::timeout(LIMIT, run_on_machine(spec, cancelled, sender))
        .await
        .expect("the run ends while nobody reads its events");
    assert_eq!(end.status, MachineRunStatus::Succeeded, "{}", end.message);
    assert!(end.truncated);
    // What found room came in order; the rest was given up at the end.
    assert_eq!(events.recv().await, Some(RunEvent::Connecting));
    assert_eq!(events.recv().await, Some(RunEvent::Started));
    assert_eq!(events.recv().await, None);
}

#[tokio::test]
async fn a_command_reading_stdin_does_not_eat_the_script() {
    let Some(lab) = common::lab() else { return };
    let (end, _) = run(spec(
        lab.target(lab.plain()[1]),
        "read -r line\necho \"read:[$line]\"\necho after\n",
    ))
    .await;
    assert_eq!(end.status, MachineRunStatus::Succeeded, "{}", end.message);
    assert_eq!(end.stdout, b"read:[]\nafter\n");
}

#[tokio::test]
async fn variables_arrive_literally_and_never_show_in_the_process_list() {
    let Some(lab) = common::lab() else { return };
    let machine = lab.plain()[2];
    let marker = marker("env");
    let token = format!("tok{}", std::process::id());
    let values = [
        format!("{token}-it's \"quoted\" '' \\ back"),
        format!("{token}-line one\nline two\n"),
        format!("{token}-$(echo EXPANDED) `echo EXPANDED` ${{HOME}} $$ !x"),
    ];
    // The shell stays (no exec), so its command line is in the list too.
    let mut spec = spec(
        lab.target(machine),
        format!(
            "printf '%s\\0' \"$V_ONE\" \"$V_TWO\" \"$V_THREE\"\necho ready\n\
             exec -a {marker} sleep 300 &\nwait\n"
        ),
    );
    spec.env = vec![
        ("V_ONE".into(), values[0].clone()),
        ("V_TWO".into(), values[1].clone()),
        ("V_THREE".into(), values[2].clone()),
    ];
    let mut running = Running::start(spec);
    running.until_stdout("ready\n").await;
    let session = lab.connect(machine).await;
    let listed = running_list(&session, &marker).await;
    assert!(!listed.contains(&token), "a value is in argv: {listed}");

    running.cancel.send_replace(true);
    let (end, _) = running.finish().await;
    assert_eq!(end.status, MachineRunStatus::Cancelled, "{}", end.message);
    let expected: Vec<u8> = values
        .iter()
        .flat_map(|v| [v.as_bytes(), b"\0"].concat())
        .chain(b"ready\n".iter().copied())
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&end.stdout),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(left_behind(&session, &marker).await, "");
}

/// Every command line on the machine, once the one named `marker` is among them (so the list
/// is known to show the script's processes).
async fn running_list(session: &Session, marker: &str) -> String {
    let mut listed = String::new();
    for _ in 0..100 {
        listed = common::run(session, "ps -eo args").await.0;
        if listed.lines().any(|l| l.starts_with(marker)) {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{marker} never showed in ps: {listed}");
}

#[tokio::test]
async fn a_script_past_its_timeout_is_ended_with_all_its_processes() {
    let Some(lab) = common::lab() else { return };
    let machine = lab.plain()[0];
    let marker = marker("timeout");
    let mut spec = spec(lab.target(machine), tree(&marker));
    spec.timeout = Duration::from_secs(3);
    spec.grace = Duration::from_secs(2);
    let (end, events) = run(spec).await;
    assert_eq!(end.status, MachineRunStatus::TimedOut, "{}", end.message);
    assert!(end.message.contains("timeout of 3s"), "{}", end.message);
    assert_eq!(end.stdout, b"ready\n", "it never got to the end");
    assert!(end.duration.is_some());
    assert!(events.contains(&RunEvent::Started));
    let session = lab.connect(machine).await;
    assert_eq!(left_behind(&session, &marker).await, "", "left behind");
}

#[tokio::test]
async fn a_cancel_while_running_ends_all_its_processes() {
    let Some(lab) = common::lab() else { return };
    let machine = lab.plain()[1];
    let marker = marker("cancel");
    let mut running = Running::start(spec(lab.target(machine), tree(&marker)));
    running.until_stdout("ready\n").await;
    let session = lab.connect(machine).await;
    let out = processes(&session, &marker, 2).await;
    assert_eq!(out.lines().count(), 2, "both sleeps run: {out:?}");

    running.cancel.send_replace(true);
    let (end, _) = running.finish().await;
    assert_eq!(end.status, MachineRunStatus::Cancelled, "{}", end.message);
    assert!(end.message.contains("while running"), "{}", end.message);
    assert_eq!(end.signal.as_deref(), Some("TERM"), "{}", end.message);
    assert_eq!(left_behind(&session, &marker).await, "", "left behind");
}

#[tokio::test]
async fn a_cancel_while_connecting_ends_the_run_before_the_script() {
    let Some(lab) = common::lab() else { return };
    // A machine that accepts the connection and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut target = lab.target(lab.plain()[0]);
    target.port = silent.local_addr().unwrap().port();
    target.host = "127.0.0.1".into();
    let mut spec = spec(target, "echo never");
    spec.connect.connect_timeout = Duration::from_secs(600);
    let mut running = Running::start(spec);
    running
        .until(|events| events.contains(&RunEvent::Connecting))
        .await;
    let (_socket, _) = tokio::time::timeout(LIMIT, silent.accept())
        .await
        .expect("the runner connects")
        .unwrap();

    running.cancel.send_replace(true);
    let (end, events) = running.finish().await;
    assert_eq!(end.status, MachineRunStatus::Cancelled, "{}", end.message);
    assert!(end.message.contains("before the script"), "{}", end.message);
    assert_eq!(end.duration, None);
    assert_eq!(events, [RunEvent::Connecting]);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let Some(lab) = common::lab() else { return };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut target = lab.target(lab.plain()[0]);
    target.host = "127.0.0.1".into();
    target.port = port;
    let (end, events) = run(spec(target, "echo never")).await;
    assert_eq!(end.status, MachineRunStatus::Unreachable, "{}", end.message);
    assert!(end.message.contains("refused"), "{}", end.message);
    assert_eq!(end.duration, None);
    assert!(!events.contains(&RunEvent::Started));
}

#[tokio::test]
async fn a_refused_key_or_a_changed_host_key_is_unreachable_and_says_so() {
    let Some(lab) = common::lab() else { return };
    let mut target = lab.target(lab.plain()[0]);
    target.key = lab.key("other_ed25519");
    let (end, _) = run(spec(target, "echo never")).await;
    assert_eq!(end.status, MachineRunStatus::Unreachable, "{}", end.message);
    assert!(
        end.message.contains("refused the client key"),
        "{}",
        end.message
    );

    let mut target = lab.target(lab.plain()[0]);
    target.host_key = berth_ssh::HostKeyPolicy::Pinned(lab.plain()[1].host_key.clone());
    let (end, _) = run(spec(target, "echo never")).await;
    assert_eq!(end.status, MachineRunStatus::Unreachable, "{}", end.message);
    assert!(end.message.contains("CHANGED"), "{}", end.message);
}

/// A target nothing listens on: these runs must not get as far as connecting.
fn nowhere() -> Target {
    Target {
        host: "127.0.0.1".into(),
        port: 1,
        user: "nobody".into(),
        key: berth_ssh::ClientKey::new("/nonexistent"),
        host_key: berth_ssh::HostKeyPolicy::Pinned(String::new()),
        jump: Vec::new(),
    }
}

#[tokio::test]
async fn a_bad_variable_fails_the_run_without_connecting() {
    let mut spec = spec(nowhere(), "echo never");
    spec.env = vec![("NOT-A-NAME".into(), "v".into())];
    let (end, events) = run(spec).await;
    assert_eq!(end.status, MachineRunStatus::Failed);
    assert!(end.message.contains("NOT-A-NAME"), "{}", end.message);
    assert!(events.is_empty(), "{events:?}");
}

#[tokio::test]
async fn a_run_cancelled_before_it_began_never_connects() {
    let (cancel, cancelled) = watch::channel(true);
    let (sender, mut events) = mpsc::channel(4);
    let end = run_on_machine(spec(nowhere(), "echo never"), cancelled, sender).await;
    drop(cancel);
    assert_eq!(end.status, MachineRunStatus::Cancelled);
    assert_eq!(events.recv().await, None, "no event, not even connecting");
}
