//! `berth run` and `berth ops` as processes: the usage errors clap catches and the login they
//! need.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod common;

use common::{CliHome, both};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
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
