//! `berth share` and `berth recordings` against a real server: a member invited, listed,
//! attaching by id, given another role and taken out; a recorded session listed and downloaded
//! as asciicast, by its owner only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{CliHome, Pty, Server, both, require_engine, wait_child};

#[test]
fn members_join_by_id_and_recordings_are_listed_and_downloaded() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let admin = server.admin();
    let mut pair = berth_client::Template::new("pair", "berth-test/base");
    pair.shared = true;
    "none".clone_into(&mut pair.network);
    admin.create_template(&pair);
    admin.create_user("alice", "correct horse battery", &["pair"]);
    admin.create_user("bob", "battery horse staple", &[]);
    let alice = CliHome::new();
    alice.login(&server, "alice", "correct horse battery");
    let bob = CliHome::new();
    bob.login(&server, "bob", "battery horse staple");
    let id = alice.ok(&["start", "pair"]).trim().to_owned();

    alice.ok(&["share", "pair", "bob"]);
    let members = alice.json(&["share", "pair"]);
    assert_eq!(members["owner"], "alice", "{members}");
    assert_eq!(members["members"][0]["username"], "bob", "{members}");
    assert_eq!(members["members"][0]["role"], "peer", "{members}");
    let table = alice.ok(&["share", "pair"]);
    assert!(table.contains("bob") && table.contains("peer"), "{table}");

    let listed = bob.json(&["ls"]);
    assert_eq!(listed["shared"][0]["id"], id.as_str(), "{listed}");
    assert!(bob.ok(&["ls"]).contains("Shared with you"));
    let listed = bob.json(&["share", &id]);
    assert_eq!(listed["owner"], "alice", "a member sees who is in it");
    alice.ok(&["share", "pair", "bob", "--viewer"]);
    let members = alice.json(&["share", "pair"]);
    assert_eq!(members["members"][0]["role"], "viewer", "{members}");
    alice.ok(&["share", "pair", "bob"]);

    // bob reaches alice's workspace by its id and types into the shared session...
    let mut command = bob.berth();
    command.args(["attach", &id]);
    let (mut attached, mut pty) = Pty::spawn(command);
    pty.wait_for(
        "from-bob-42",
        Some(b"echo from-bob-$((6*7))\r"),
        Duration::from_secs(60),
    );
    // ...until alice takes him out: his terminal closes at once, saying why.
    alice.ok(&["share", "pair", "bob", "--remove"]);
    let status = wait_child(&mut attached, Duration::from_secs(30));
    assert!(!status.success(), "{}", pty.seen());
    assert!(pty.seen().contains("alice removed you"), "{}", pty.seen());
    let refused = bob.run(&["share", &id]);
    assert!(!refused.status.success(), "{}", both(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no such workspace"),
        "{}",
        both(&refused)
    );
    let again = alice.run(&["share", "pair", "bob", "--remove"]);
    assert!(!again.status.success(), "{}", both(&again));

    // bob's session was recorded: alice lists and downloads it; bob may not.
    let recordings = alice.json(&["recordings", "pair"]);
    let recording = recordings[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(recordings[0]["username"], "bob", "{recordings}");
    let table = alice.ok(&["recordings", "pair"]);
    assert!(
        table.contains(&recording) && table.contains("bob"),
        "{table}"
    );
    let cast = alice.ok(&["recordings", "--cast", &recording]);
    let header: serde_json::Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
    assert_eq!(header["version"], 2, "{cast}");
    assert!(cast.contains("from-bob-42"), "{cast}");
    let file = alice.dir.path().join("session.cast");
    alice.ok(&[
        "recordings",
        "--cast",
        &recording,
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), cast);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let refused = bob.run(&["recordings", "--cast", &recording]);
    assert!(!refused.status.success(), "{}", both(&refused));
    // Without a workspace: the newest recordings one may watch. bob attached, but the
    // recording is alice's.
    let newest = alice.json(&["recordings"]);
    assert_eq!(newest[0]["id"], recording.as_str(), "{newest}");
    assert_eq!(newest[0]["owner"], "alice");
    let table = alice.ok(&["recordings", "--owner", "alice"]);
    assert!(
        table.contains(&recording) && table.contains("OWNER"),
        "{table}"
    );
    assert!(bob.ok(&["recordings"]).contains("No recordings yet."));

    // Piped input into the shared session ends like `ssh host < script`: the shell in tmux
    // gets its Ctrl-D once it is ready for it.
    let output = alice.run_with_stdin(&["attach", "pair"], "echo piped-$((6*7))\n");
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("piped-42"),
        "{}",
        both(&output)
    );

    // Bad input: a workspace and --owner, --viewer without a user, an id that is not one.
    for args in [
        &["recordings", "pair", "--owner", "alice"][..],
        &["share", "pair", "--viewer"][..],
        &["recordings", "--cast", "../../etc/passwd"][..],
    ] {
        let usage = alice.run(args);
        assert_eq!(usage.status.code(), Some(2), "{args:?}: {}", both(&usage));
    }
}
