//! Commands on the real SSH test machines: output, exit codes, stdin, signals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use berth_ssh::{ExecRequest, ExitStatus, OutputStream, Signal};
use futures_util::StreamExt;

#[tokio::test]
async fn client_ids_of_several_machines_at_once() {
    let Some(lab) = common::lab() else { return };
    let machines = lab.plain();
    assert!(machines.len() >= 2, "need at least two machines");
    let reads = machines.iter().map(|m| {
        let lab = &lab;
        async move {
            let session = lab.connect(m).await;
            let (out, err, status) = common::run(&session, "cat /etc/berth/client_id").await;
            assert_eq!(status, ExitStatus::Code(0), "{err}");
            (m.client_id.clone(), out.trim().to_owned())
        }
    });
    let results = futures_util::future::join_all(reads).await;
    for (expected, got) in &results {
        assert_eq!(expected, got);
    }
    let distinct: std::collections::BTreeSet<_> = results.iter().map(|(_, got)| got).collect();
    assert_eq!(
        distinct.len(),
        results.len(),
        "every machine has its own id"
    );
}

#[tokio::test]
async fn stdout_and_stderr_are_separate_and_the_exit_code_comes_back() {
    let Some(lab) = common::lab() else { return };
    let session = lab.connect(lab.plain()[0]).await;
    let (out, err, status) = common::run(&session, "echo out; echo err >&2; exit 7").await;
    assert_eq!(out, "out\n");
    assert_eq!(err, "err\n");
    assert_eq!(status, ExitStatus::Code(7));

    // Chunks arrive tagged as they come, before the command ends.
    let mut execution = session
        .exec(ExecRequest::new("echo first; sleep 0.3; echo second >&2"))
        .await
        .unwrap();
    let first = execution.next().await.unwrap();
    assert_eq!(first.stream, OutputStream::Stdout);
    assert_eq!(&first.data[..], b"first\n");
    let second = execution.next().await.unwrap();
    assert_eq!(second.stream, OutputStream::Stderr);
    assert_eq!(&second.data[..], b"second\n");
    assert!(execution.next().await.is_none());
    assert_eq!(execution.wait().await, ExitStatus::Code(0));
}

#[tokio::test]
async fn a_script_on_stdin_to_bash() {
    let Some(lab) = common::lab() else { return };
    let session = lab.connect(lab.plain()[0]).await;
    let script =
        "set -e\nx=$(( 6 * 7 ))\necho \"answer $x\"\necho \"from $(hostname)\" >&2\nexit 3\n";
    let collected = session
        .exec(ExecRequest::new("bash -s").with_stdin(script))
        .await
        .unwrap()
        .collect(1 << 16)
        .await;
    assert_eq!(String::from_utf8_lossy(&collected.stdout), "answer 42\n");
    assert_eq!(String::from_utf8_lossy(&collected.stderr), "from m1\n");
    assert_eq!(collected.status, ExitStatus::Code(3));

    // Without stdin, stdin is closed: `cat` ends at once.
    let (out, _, status) = common::run(&session, "cat; echo done").await;
    assert_eq!((out.as_str(), status), ("done\n", ExitStatus::Code(0)));
}

#[tokio::test]
async fn a_killed_process_reports_its_signal() {
    let Some(lab) = common::lab() else { return };
    let session = lab.connect(lab.plain()[1]).await;
    let (_, _, status) = common::run(&session, "kill -KILL $$").await;
    assert_eq!(
        status,
        ExitStatus::Signal {
            name: "KILL".into(),
            core_dumped: false
        }
    );
}

#[tokio::test]
async fn a_timed_out_command_is_terminated_and_leaves_no_process() {
    let Some(lab) = common::lab() else { return };
    let session = lab.connect(lab.plain()[0]).await;
    let marker = format!("berth-timeout-{}", std::process::id());
    // `exec -a` names the sleep so pgrep finds exactly this one.
    let execution = session
        .exec(ExecRequest::new(format!(
            "echo started; exec -a {marker} sleep 600"
        )))
        .await
        .unwrap();
    let control = execution.control();
    let mut execution = execution;
    let started = execution.next().await.unwrap();
    assert_eq!(&started.data[..], b"started\n");
    let (_, _, status) = common::run(&session, &format!("pgrep -f {marker}")).await;
    assert_eq!(status, ExitStatus::Code(0), "the sleep runs");

    // The "timeout": nothing more within 200ms, so terminate it.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), execution.next())
            .await
            .is_err()
    );
    let status = tokio::time::timeout(common::PATIENCE, control.terminate(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status,
        ExitStatus::Signal {
            name: "TERM".into(),
            core_dumped: false
        }
    );
    let (out, _, status) = common::run(&session, &format!("pgrep -f {marker}")).await;
    assert_eq!(
        status,
        ExitStatus::Code(1),
        "no process left, pgrep printed {out:?}"
    );
}

#[tokio::test]
async fn sigkill_ends_a_process_that_ignores_sigterm() {
    let Some(lab) = common::lab() else { return };
    let session = lab.connect(lab.plain()[1]).await;
    let mut execution = session
        .exec(ExecRequest::new(
            "trap '' TERM; echo ready; while :; do sleep 0.1; done",
        ))
        .await
        .unwrap();
    let control = execution.control();
    assert_eq!(&execution.next().await.unwrap().data[..], b"ready\n");
    control.signal(Signal::Term).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), control.wait())
            .await
            .is_err(),
        "TERM is ignored"
    );
    control.signal(Signal::Kill).await.unwrap();
    let status = tokio::time::timeout(common::PATIENCE, control.wait())
        .await
        .unwrap();
    assert_eq!(
        status,
        ExitStatus::Signal {
            name: "KILL".into(),
            core_dumped: false
        }
    );
}

#[tokio::test]
async fn many_commands_on_one_connection_in_parallel() {
    let Some(lab) = common::lab() else { return };
    let session = lab.connect(lab.plain()[0]).await;
    let runs = (0..8).map(|i| {
        let session = session.clone();
        async move { common::run(&session, &format!("echo {i}")).await }
    });
    let results = futures_util::future::join_all(runs).await;
    for (i, (out, _, status)) in results.into_iter().enumerate() {
        assert_eq!((out, status), (format!("{i}\n"), ExitStatus::Code(0)));
    }
}

#[tokio::test]
async fn a_slow_reader_holds_the_output_back() {
    let Some(lab) = common::lab() else { return };
    let session = lab.connect(lab.plain()[2.min(lab.plain().len() - 1)]).await;
    // 64 MiB, far beyond every buffer on the way, unless the reader pulls it.
    let mut execution = session
        .exec(ExecRequest::new("head -c 67108864 /dev/zero; echo end >&2"))
        .await
        .unwrap();
    let first = execution.next().await.unwrap();
    assert!(!first.data.is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The command is still writing: it has been held back, not buffered here.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), execution.control().wait())
            .await
            .is_err()
    );
    let mut total = first.data.len();
    let mut stderr = Vec::new();
    while let Some(chunk) = execution.next().await {
        match chunk.stream {
            OutputStream::Stdout => total += chunk.data.len(),
            OutputStream::Stderr => stderr.extend_from_slice(&chunk.data),
        }
    }
    assert_eq!(total, 64 << 20);
    assert_eq!(stderr, b"end\n");
    assert_eq!(execution.wait().await, ExitStatus::Code(0));
}

#[tokio::test]
async fn close_ends_the_execution_at_once() {
    let Some(lab) = common::lab() else { return };
    let session = lab.connect(lab.plain()[0]).await;
    let mut execution = session
        .exec(ExecRequest::new("echo up; exec sleep 30"))
        .await
        .unwrap();
    assert_eq!(&execution.next().await.unwrap().data[..], b"up\n");
    let control = execution.control();
    control.close().await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), execution.wait())
        .await
        .expect("the execution ends after close");
    assert_eq!(status, ExitStatus::Unknown);
    // The connection is still usable.
    let (out, _, _) = common::run(&session, "echo still").await;
    assert_eq!(out, "still\n");
}

/// Polls `pgrep -f '^marker'` (processes whose command line starts with it) until its exit code is `code`; returns the last (stdout, status).
async fn pgrep_until(
    session: &berth_ssh::Session,
    marker: &str,
    code: u32,
) -> (String, ExitStatus) {
    let mut last = (String::new(), ExitStatus::Unknown);
    for _ in 0..60 {
        let (out, _, status) = common::run(session, &format!("pgrep -f '^{marker}'")).await;
        if status == ExitStatus::Code(code) {
            return (out, status);
        }
        last = (out, status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// `pgrep`'s lines once `count` processes carry `marker` (or after 3 s, whatever runs then): a
/// `setsid -f` child may still be starting when the script says it is ready.
async fn running(session: &berth_ssh::Session, marker: &str, count: usize) -> String {
    let mut out = String::new();
    for _ in 0..60 {
        out = pgrep_until(session, marker, 0).await.0;
        if out.lines().count() == count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out
}

#[tokio::test]
async fn terminate_reaches_the_children_of_a_script_even_the_ones_that_left_its_group() {
    let Some(lab) = common::lab() else { return };
    let session = lab.connect(lab.plain()[1]).await;
    let marker = format!("berth-tree-{}", std::process::id());
    // bash -s runs one sleep as a child in its process group and one in a session of its own
    // (setsid), which sshd's killpg does not reach and which holds the channel open.
    let script = format!(
        "exec -a {marker}-child sleep 600 &\nsetsid -f bash -c 'exec -a {marker}-setsid sleep 600'\necho ready\nwait\necho never\n"
    );
    let mut execution = session
        .exec(ExecRequest::new("bash -s").with_stdin(script))
        .await
        .unwrap();
    let control = execution.control();
    assert_eq!(&execution.next().await.unwrap().data[..], b"ready\n");
    let out = running(&session, &marker, 2).await;
    assert_eq!(out.lines().count(), 2, "two sleeps run: {out:?}");

    let status = tokio::time::timeout(common::PATIENCE, control.terminate(Duration::from_secs(5)))
        .await
        .expect("terminate ends the command")
        .unwrap();
    assert!(
        matches!(&status, ExitStatus::Signal { name, .. } if name == "TERM"),
        "{status:?}"
    );
    let (out, status) = pgrep_until(&session, &marker, 1).await;
    assert_eq!(status, ExitStatus::Code(1), "left behind: {out:?}");
    let mut rest = Vec::new();
    while let Some(chunk) = execution.next().await {
        rest.extend_from_slice(&chunk.data);
    }
    assert!(!String::from_utf8_lossy(&rest).contains("never"));
}

#[tokio::test]
async fn the_ssh_signal_reaches_the_process_group_and_signal_all_the_rest() {
    let Some(lab) = common::lab() else { return };
    let session = lab.connect(lab.plain()[0]).await;
    let marker = format!("berth-group-{}", std::process::id());
    let mut execution = session
        .exec(ExecRequest::new(format!(
            "echo ready; exec -a {marker}-child sleep 600 & setsid -f bash -c 'exec -a {marker}-setsid sleep 600'; wait"
        )))
        .await
        .unwrap();
    let control = execution.control();
    assert_eq!(&execution.next().await.unwrap().data[..], b"ready\n");
    let out = running(&session, &marker, 2).await;
    assert_eq!(out.lines().count(), 2, "{out:?}");
    control.signal(Signal::Term).await.unwrap();
    // The shell and its child die (sshd kills the process group); the setsid one lives on.
    let mut left = String::new();
    for _ in 0..60 {
        left = common::run(&session, &format!("pgrep -af '^{marker}'"))
            .await
            .0;
        if left.lines().count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        left.lines().count() == 1 && left.contains("-setsid"),
        "{left:?}"
    );
    // It holds the channel open: no end yet.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), control.wait())
            .await
            .is_err()
    );
    // signal_all finds it by its environment.
    assert_eq!(control.signal_all(Signal::Kill).await.unwrap(), 1);
    let status = tokio::time::timeout(common::PATIENCE, control.wait())
        .await
        .unwrap();
    assert!(
        matches!(&status, ExitStatus::Signal { name, .. } if name == "TERM"),
        "{status:?}"
    );
    let (_, status) = pgrep_until(&session, &marker, 1).await;
    assert_eq!(status, ExitStatus::Code(1));
}
