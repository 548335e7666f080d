//! `berth attach` on a real terminal (a pseudo-terminal the test drives) against a real server's
//! terminal WebSocket: typing, the shell's exit status, the detach keys, signals, and the
//! terminal's modes restored after each.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod common;

use std::time::Duration;

use common::{CliHome, Pty, Server, require_engine, wait_child};
use rustix::termios::LocalModes;

/// A server with alice (template `base`), logged in, and one running workspace of hers.
fn running_workspace() -> (tempfile::TempDir, Server, CliHome, String) {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    server
        .admin()
        .create_user("alice", "correct horse battery", &["base"]);
    let cli = CliHome::new();
    cli.login(&server, "alice", "correct horse battery");
    let id = cli.ok(&["start", "base"]).trim().to_owned();
    (home, server, cli, id)
}

fn attach(cli: &CliHome, workspace: &str) -> (std::process::Child, Pty) {
    let mut command = cli.berth();
    command.args(["attach", workspace]);
    Pty::spawn(command)
}

#[test]
fn typing_reaches_the_shell_and_berth_exits_with_its_status() {
    let (_home, _server, cli, id) = running_workspace();
    let (mut child, mut pty) = attach(&cli, &id[..8]);
    // `$((6*7))` is expanded by the shell: seeing 42 proves the line ran, not just its echo.
    pty.wait_for(
        "hi-42",
        Some(b"echo hi-$((6*7))\r"),
        Duration::from_secs(60),
    );
    pty.type_text(b"exit 3\r");
    let status = wait_child(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(3), "{}", pty.seen());
    assert!(
        pty.modes()
            .local_modes
            .contains(LocalModes::ECHO | LocalModes::ICANON),
        "the terminal is back in cooked mode"
    );
}

#[test]
fn the_detach_keys_leave_the_workspace_running() {
    let (_home, _server, cli, id) = running_workspace();
    let (mut child, mut pty) = attach(&cli, "base");
    pty.wait_for(
        "hi-42",
        Some(b"echo hi-$((6*7))\r"),
        Duration::from_secs(60),
    );
    pty.type_text(b"\x1dd");
    let status = wait_child(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", pty.seen());
    assert!(pty.seen().contains("Detached"), "{}", pty.seen());
    assert!(pty.modes().local_modes.contains(LocalModes::ECHO));
    let listing = cli.json(&["ls"]);
    assert_eq!(listing["workspaces"][0]["id"], id.as_str());
    assert_eq!(listing["workspaces"][0]["state"], "running");
}

#[test]
fn a_signal_ends_the_session_and_restores_the_terminal() {
    let (_home, _server, cli, id) = running_workspace();
    let (mut child, mut pty) = attach(&cli, &id);
    pty.wait_for(
        "hi-42",
        Some(b"echo hi-$((6*7))\r"),
        Duration::from_secs(60),
    );
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_child(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(128 + 15), "{}", pty.seen());
    assert!(
        pty.modes()
            .local_modes
            .contains(LocalModes::ECHO | LocalModes::ICANON)
    );
}

#[test]
fn attaching_to_a_stopped_workspace_says_so() {
    let (_home, _server, cli, id) = running_workspace();
    cli.ok(&["stop", &id]);
    let output = cli.run(&["attach", &id]);
    assert_eq!(output.status.code(), Some(1), "{}", common::both(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("stopped, not running"), "{stderr}");
}

#[test]
fn piped_input_runs_in_the_shell_without_a_terminal() {
    let (_home, _server, cli, id) = running_workspace();
    // Sent before the server's hello: kept and sent after it, not dropped.
    let output = cli.run_with_stdin(&["attach", &id], "echo piped-$((6*7))\nexit 7\n");
    assert_eq!(output.status.code(), Some(7), "{}", common::both(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("piped-42"),
        "{}",
        common::both(&output)
    );
    // The end of stdin ends the shell, as Ctrl-D does.
    let output = cli.run_with_stdin(&["attach", &id], "echo last-$((6*7))\n");
    assert_eq!(output.status.code(), Some(0), "{}", common::both(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("last-42"));
}
