//! `berth run` and `berth ops` as processes against a real `berth serve` whose fleet is the
//! SSH test machines: live output prefixed per machine and grouped at the end, a failing
//! machine, refusals, Ctrl-C (once: stop and follow to the end; twice: leave), the history,
//! show, stop, rerun, watch, what a user may see; and the usage errors clap catches.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod common;
mod fleet;
#[path = "../../berth-ssh/tests/common/mod.rs"]
mod machines;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{CliHome, Server, both, eventually, require_engine, wait_child};
use fleet::{ADMIN_PASSWORD, ALICE_PASSWORD, fleet_home, start_up_sync, stderr, stdout};
use machines::Lab;
use machines::inventory::{Repo, links};
use serde_json::Value;

const SCRIPTS: &str = "scripts:
  - name: hello
    file: hello.sh
  - name: differ
    file: differ.sh
  - name: sleepy
    file: sleepy.sh
  - name: stubborn
    file: stubborn.sh
";

/// The inventory: m1, m2, m3 (all tagged `lab`) and the scripts. `hello` prints the same
/// everywhere (a line on stderr, an escape sequence, a last line without newline);
/// `differ` fails on m2; `sleepy` waits until stopped; `stubborn` ignores SIGTERM.
fn inventory(lab: &Lab) -> Vec<(&'static str, String)> {
    let m2 = &lab.machine("m2").client_id;
    vec![
        (
            "links.yaml",
            links(lab, &[("m1", None), ("m2", None), ("m3", None)]),
        ),
        ("scripts.yaml", SCRIPTS.to_owned()),
        (
            "hello.sh",
            "#!/bin/bash\necho hello\necho warning >&2\nprintf '\\033]0;owned\\007title\\n'\n\
             printf 'no newline'\n"
                .to_owned(),
        ),
        (
            "differ.sh",
            format!(
                "#!/bin/bash\nif [ \"$(cat /etc/berth/client_id)\" = \"{m2}\" ]; then echo no; \
                 exit 3; fi\necho yes\n"
            ),
        ),
        (
            "sleepy.sh",
            "#!/bin/bash\necho started\nsleep 3141 &\nwait\n".to_owned(),
        ),
        (
            "stubborn.sh",
            "#!/bin/bash\ntrap 'echo got TERM' TERM\necho started\nwhile :; do sleep 1; done\n"
                .to_owned(),
        ),
    ]
}

/// The operation id `berth run` printed on stderr (`Operation ID started: …`).
fn started_id(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("Operation ")?.split_once(" started: "))
        .map(|(id, _)| id.to_owned())
        .unwrap_or_else(|| panic!("no operation id in:\n{stderr}"))
}

/// `berth ARGS` in `cli`'s home.
fn command(cli: &CliHome, args: &[&str]) -> Command {
    let mut command = cli.berth();
    command.args(args);
    command
}

/// A `berth` process whose stdout and stderr are read as they come.
struct Running {
    child: Child,
    lines: mpsc::Receiver<(bool, String)>,
    out: String,
    err: String,
}

impl Running {
    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let forward = |stream: Box<dyn Read + Send>, is_err: bool, tx: mpsc::Sender<_>| {
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((is_err, line)).is_err() {
                        break;
                    }
                }
            });
        };
        forward(Box::new(child.stdout.take().unwrap()), false, tx.clone());
        forward(Box::new(child.stderr.take().unwrap()), true, tx);
        Self {
            child,
            lines,
            out: String::new(),
            err: String::new(),
        }
    }

    fn read(&mut self) {
        while let Ok((is_err, line)) = self.lines.try_recv() {
            let text = if is_err { &mut self.err } else { &mut self.out };
            text.push_str(&line);
            text.push('\n');
        }
    }

    /// Waits until stdout holds every one of `needles`.
    fn wait_for(&mut self, needles: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            self.read();
            if needles.iter().all(|n| self.out.contains(n)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {needles:?} within 2 minutes:\nstdout:\n{}\nstderr:\n{}",
                self.out,
                self.err
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit; answers its status code with everything printed.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let status = wait_child(&mut self.child, Duration::from_secs(120));
        // The readers end with the pipes.
        for (is_err, line) in self.lines.iter() {
            let text = if is_err { &mut self.err } else { &mut self.out };
            text.push_str(&line);
            text.push('\n');
        }
        (status.code(), self.out, self.err)
    }
}

#[test]
fn scripts_run_live_on_machines_and_operations_are_shown_stopped_and_rerun() {
    let Some(lab) = machines::lab() else { return };
    require_engine();
    let root = tempfile::tempdir().unwrap();
    let repo = Repo::new(root.path(), "inventory");
    let files = inventory(&lab);
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    repo.commit(&files, "machines and scripts");
    let home = fleet_home(&lab, root.path(), &repo);
    let server = Server::start(&home);
    let admin = CliHome::new();
    admin.login(&server, "admin", ADMIN_PASSWORD);
    start_up_sync(&admin);
    for id in ["m1", "m2"] {
        let output = admin.run(&["fleet", "verify", id]);
        assert!(output.status.success(), "{id}: {}", both(&output));
    }

    // Every machine succeeds: output live, prefixed, safe; then one group; status 0.
    let output = admin.run(&["run", "hello", "--on", "m1,m2"]);
    assert!(output.status.success(), "{}", both(&output));
    let (out, err) = (stdout(&output), stderr(&output));
    let hello = started_id(&err);
    for machine in ["m1", "m2"] {
        for line in [
            format!("{machine}: hello\n"),
            format!("{machine}: \\u{{1b}}]0;owned\\u{{7}}title\n"),
            format!("{machine}: no newline\n"),
        ] {
            assert!(out.contains(&line), "no {line:?} in:\n{}", both(&output));
        }
        for line in [
            format!("{machine} (stderr): warning\n"),
            format!("* {machine} running\n"),
            format!("* {machine} succeeded (exit 0)\n"),
        ] {
            assert!(err.contains(&line), "no {line:?} in:\n{}", both(&output));
        }
    }
    assert!(
        !out.contains('\x1b') && !err.contains('\x1b'),
        "escapes are shown, not sent"
    );
    let summary = out.split_once("\n\n").map(|(_, s)| s).unwrap_or_default();
    assert!(
        summary.starts_with(&format!(
            "---- m1,m2 (succeeded, exit 0) ----\nhello\n\\u{{1b}}]0;owned\\u{{7}}title\n\
             no newline\n(stderr) warning\nOperation {hello} succeeded: 2 of 2 machine(s) \
             succeeded in "
        )),
        "{}",
        both(&output)
    );
    assert!(out.find("m1: hello").unwrap() < out.find("---- m1,m2").unwrap());

    // One machine fails: status 1, two groups, the machine named.
    let output = admin.run(&[
        "run",
        "differ",
        "--on",
        "m2",
        "--on",
        "m1",
        "--timeout",
        "1m",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let (out, err) = (stdout(&output), stderr(&output));
    let differ = started_id(&err);
    assert!(
        out.contains("m1: yes\n") && out.contains("m2: no\n"),
        "{}",
        both(&output)
    );
    assert!(err.contains("* m2 failed (exit 3)\n"), "{}", both(&output));
    assert!(
        out.contains("---- m2 (failed, exit 3) ----\nno\n")
            && out.contains("---- m1 (succeeded, exit 0) ----\nyes\n")
            && out.contains(&format!(
                "Operation {differ} failed: 1 of 2 machine(s) succeeded"
            ))
            && out.contains("\n  m2 failed (exit 3)\n"),
        "{}",
        both(&output)
    );
    assert!(
        err.contains(&format!(
            "berth: operation {differ} failed: 1 of 2 machine(s) did not succeed"
        )) && err.contains(&format!("berth ops rerun {}", &differ[..8])),
        "{}",
        both(&output)
    );
    // --json: the finished operation alone on stdout, the live output on stderr.
    let output = admin.run(&["run", "differ", "--on", "m1,m2", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let view: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(view["status"], "failed", "{view:#}");
    assert_eq!(view["timeout_seconds"], 300, "the script's own timeout");
    assert_eq!(view["groups"].as_array().unwrap().len(), 2, "{view:#}");
    assert!(stderr(&output).contains("m2: no\n"), "{}", both(&output));

    // Refusals, each before anything runs: unknown machines, tags and scripts, a machine
    // that is not enrolled.
    let before = admin.json(&["ops"])["total"].as_u64().unwrap();
    for (args, says) in [
        (
            &["run", "hello", "--on", "m1,m9,tag:nope"][..],
            "no machine m9 among those you may see; no machine you may see matches tag:nope",
        ),
        (
            &["run", "nosuch", "--on", "m1"],
            "there is no script \"nosuch\" in scripts.yaml",
        ),
        (
            &["run", "hello", "--on", "tag:lab"],
            "not enrolled, so a script does not run there: m3",
        ),
    ] {
        let output = admin.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", both(&output));
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            both(&output)
        );
        assert!(
            stderr(&output).contains("hint: "),
            "{args:?}: {}",
            both(&output)
        );
    }
    assert_eq!(admin.json(&["ops"])["total"].as_u64().unwrap(), before);

    // Ctrl-C once: the operation is stopped and followed to its end; status 130.
    let mut run = Running::spawn(command(&admin, &["run", "sleepy", "--on", "m1,m2"]));
    run.wait_for(&["m1: started", "m2: started"]);
    run.interrupt();
    let (code, out, err) = run.finish();
    let text = format!("stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(code, Some(130), "{text}");
    let sleepy = started_id(&err);
    assert!(
        err.contains(&format!("* stopping operation {sleepy}"))
            && err.contains("* m1 cancelled")
            && err.contains("* m2 cancelled")
            && err.contains(&format!("berth: operation {sleepy} was cancelled")),
        "{text}"
    );
    assert!(
        out.contains(&format!("Operation {sleepy} cancelled: 0 of 2")),
        "{text}"
    );
    assert_eq!(admin.json(&["ops", "show", &sleepy])["status"], "cancelled");

    // Ctrl-C twice: berth leaves at once, the stop goes on on the server.
    let mut run = Running::spawn(command(&admin, &["run", "stubborn", "--on", "m1"]));
    run.wait_for(&["m1: started"]);
    run.interrupt();
    run.wait_for(&["m1: got TERM"]);
    run.interrupt();
    let (code, out, err) = run.finish();
    let text = format!("stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(code, Some(130), "{text}");
    assert!(err.contains("is being stopped on the server"), "{text}");
    assert!(!out.contains("---- m1"), "no summary after leaving: {text}");
    let stubborn = started_id(&err);
    eventually(Duration::from_secs(60), "the stubborn script ends", || {
        admin.json(&["ops", "show", &stubborn])["status"] == "cancelled"
    });

    // The history, newest first, and its filters.
    let table = admin.ok(&["ops"]);
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 5, "{table}");
    assert!(
        rows[0].starts_with(&stubborn[..8]) && rows[0].contains("stubborn"),
        "{table}"
    );
    assert!(rows[4].starts_with(&hello[..8]), "{table}");
    assert!(
        rows[4].contains("hello") && rows[4].contains("admin") && rows[4].contains("succeeded"),
        "{table}"
    );
    let failed = admin.json(&["ops", "--status", "failed"]);
    assert_eq!(failed["total"], 2, "{failed:#}");
    assert!(
        failed["operations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["script"] == "differ")
    );
    let table = admin.ok(&["ops", "--script", "hello"]);
    assert_eq!(table.lines().count(), 2, "{table}");
    let output = admin.run(&["ops", "--limit", "2"]);
    assert!(output.status.success(), "{}", both(&output));
    assert_eq!(stdout(&output).lines().count(), 3, "{}", both(&output));
    assert!(
        stderr(&output).contains("The newest 2 of 5"),
        "{}",
        both(&output)
    );
    assert!(
        admin
            .ok(&["ops", "--machine", "m3"])
            .contains("No operation you may see matches")
    );

    // One operation, by a prefix of its id.
    let shown = admin.ok(&["ops", "show", &differ[..8]]);
    for part in [
        &format!("Operation {differ}") as &str,
        "differ (commit ",
        "status    failed",
        "1m per machine",
        "  m2       failed",
        "exit 3",
        "---- m2 (failed, exit 3) ----\nno\n",
    ] {
        assert!(shown.contains(part), "no {part:?} in:\n{shown}");
    }
    // One machine's output, bytes as printed: stdout and stderr apart.
    let output = admin.run(&["ops", "show", &differ[..8], "--machine", "m2"]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert_eq!(
        (output.stdout.as_slice(), output.stderr.as_slice()),
        (&b"no\n"[..], &b""[..])
    );
    let part = admin.json(&["ops", "show", &differ[..8], "--machine", "m2"]);
    assert_eq!(
        (part["exit_code"].as_i64(), part["output_bytes"].as_u64()),
        (Some(3), Some(3))
    );
    let output = admin.run(&["ops", "show", &differ[..8], "--machine", "m3"]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains(&format!("operation {differ} did not run on m3")),
        "{}",
        both(&output)
    );
    let output = admin.run(&["ops", "show", "00000000-0000-4000-8000-000000000000"]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains(
            "there is no operation 00000000-0000-4000-8000-000000000000, or you may not see it"
        ),
        "{}",
        both(&output)
    );

    // Watch replays a finished operation as run showed it; stop of a finished one is a no-op.
    let output = admin.run(&["ops", "watch", &hello[..8]]);
    assert!(output.status.success(), "{}", both(&output));
    assert!(
        stdout(&output).contains("m2: no newline\n"),
        "{}",
        both(&output)
    );
    assert!(
        stdout(&output).contains("---- m1,m2 (succeeded, exit 0) ----"),
        "{}",
        both(&output)
    );
    let output = admin.run(&["ops", "stop", &hello]);
    assert!(output.status.success(), "{}", both(&output));
    assert!(
        stderr(&output).contains("has finished (succeeded)"),
        "{}",
        both(&output)
    );

    // Rerun: only the machine that failed; one with nothing to rerun is refused.
    let output = admin.run(&["ops", "rerun", &differ[..8]]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let rerun = started_id(&stderr(&output));
    assert!(stdout(&output).contains("m2: no\n"), "{}", both(&output));
    assert!(!stdout(&output).contains("m1:"), "{}", both(&output));
    let view = admin.json(&["ops", "show", &rerun]);
    assert_eq!(view["rerun_of"], differ.as_str(), "{view:#}");
    assert_eq!(view["machines"].as_array().unwrap().len(), 1, "{view:#}");
    let output = admin.run(&["ops", "rerun", &hello]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("there is nothing to run again"),
        "{}",
        both(&output)
    );

    // A user sees their own operations and runs only where their selectors allow.
    let alice = CliHome::new();
    alice.login(&server, "alice", ALICE_PASSWORD);
    assert!(alice.ok(&["ops"]).contains("No operations yet"));
    let output = alice.run(&["ops", "show", &hello]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("or you may not see it"),
        "{}",
        both(&output)
    );
    let output = alice.run(&["ops", "show", &hello[..8]]);
    assert!(
        stderr(&output).contains("no operation you may see has an id starting with"),
        "{}",
        both(&output)
    );
    let output = alice.run(&["run", "hello", "--on", "m2"]);
    assert!(
        stderr(&output).contains("no machine m2 among those you may see"),
        "{}",
        both(&output)
    );
    let output = alice.run(&["run", "hello", "--on", "m1"]);
    assert!(output.status.success(), "{}", both(&output));
    let mine = started_id(&stderr(&output));
    assert_eq!(alice.json(&["ops"])["total"], 1);
    let by_alice = admin.json(&["ops", "--user", "alice"]);
    assert_eq!(
        by_alice["operations"][0]["id"],
        mine.as_str(),
        "{by_alice:#}"
    );
}

#[test]
fn operation_commands_check_their_arguments_and_need_a_login() {
    let cli = CliHome::new();
    for (args, says) in [
        (&["run", "disk-usage"][..], "--on <TARGETS>"),
        (&["run", "Disk Usage", "--on", "m1"], "1 to 63 characters"),
        (
            &["run", "x", "--on", "Web-1"],
            "give a machine id, tag:NAME or type:NAME",
        ),
        (
            &["run", "x", "--on", "m1,tag:"],
            "a tag has 1 to 63 characters",
        ),
        (&["run", "x", "--on", "host:m1"], "give a machine id"),
        (
            &["run", "x", "--on", "m1", "--concurrency", "0"],
            "1..=1000",
        ),
        (
            &["run", "x", "--on", "m1", "--concurrency", "1001"],
            "1..=1000",
        ),
        (
            &["run", "x", "--on", "m1", "--timeout", "5"],
            "a duration such as",
        ),
        (
            &["run", "x", "--on", "m1", "--timeout", "400d"],
            "from 1s to 365d",
        ),
        (
            &["ops", "--status", "done"],
            "[possible values: queued, running",
        ),
        (&["ops", "--limit", "0"], "1..=500"),
        (&["ops", "--machine", "M1"], "a machine id has"),
        (&["ops", "--script", "a b"], "1 to 63 characters"),
        (&["ops", "show", "xyz"], "give an operation id"),
        (&["ops", "show"], "<ID>"),
        (&["ops", "stop", "6f1c 2a"], "give an operation id"),
        (
            &["ops", "--status", "failed", "show", "6f1c"],
            "cannot be used",
        ),
        (&["ops", "frobnicate"], "unrecognized subcommand"),
    ] {
        let output = cli.run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", both(&output));
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            both(&output)
        );
    }
    for args in [
        &["run", "disk-usage", "--on", "m1"][..],
        &["ops"],
        &["ops", "show", "6f1c"],
        &["ops", "stop", "6f1c"],
        &["ops", "rerun", "6f1c"],
        &["ops", "watch", "6f1c"],
    ] {
        let output = cli.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", both(&output));
        assert!(
            stderr(&output).contains("not logged in")
                && stderr(&output).contains("berth login SERVER"),
            "{args:?}: {}",
            both(&output)
        );
    }
    for command in [
        &["run"][..],
        &["ops"],
        &["ops", "show"],
        &["ops", "stop"],
        &["ops", "rerun"],
        &["ops", "watch"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let help = cli.ok(&args);
        assert!(help.contains("Examples:"), "{args:?}:\n{help}");
    }
    let help = cli.ok(&["run", "--help"]);
    assert!(help.contains("130 cancelled"), "{help}");
    let script = cli.ok(&["completions", "bash"]);
    assert!(
        script.contains("rerun") && script.contains("--concurrency"),
        "completions know the operation commands"
    );
}
