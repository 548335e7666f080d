//! `berth keys add|ls|rm` against a real server: a user's SSH public keys added from
//! ~/.ssh, a file or standard input, listed, and removed by fingerprint; a private key, an
//! empty file and a made-up fingerprint refused with what to do instead.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod common;

use common::{CliHome, Server, both, require_engine};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFBl1pK0jDORglRkhgVI4ZhPMp5ohgLOim1FXjZWkTYN alice@laptop";
const FINGERPRINT: &str = "SHA256:O8V0FwqbCHaaSx29SKJ9/oYCcjg+t7C+emeUS/dAbg8";
const OTHER: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA6MecZ69BRl8Sj0lII+tK+jkY7N5RcCcHLl4NCIwTMD";

fn refused(output: &std::process::Output, says: &str) {
    assert!(!output.status.success(), "{}", both(output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(says),
        "{}",
        both(output)
    );
}

#[test]
fn keys_are_added_listed_and_removed() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let admin = server.admin();
    admin.create_user("alice", "correct horse battery", &[]);
    let alice = CliHome::new();
    alice.login(&server, "alice", "correct horse battery");

    assert!(alice.ok(&["keys", "ls"]).contains("no SSH keys"));
    // Without ~/.ssh, `add` says how to make a key.
    refused(&alice.run(&["keys", "add"]), "ssh-keygen");
    let ssh = alice.dir.path().join(".ssh");
    std::fs::create_dir(&ssh).unwrap();
    std::fs::write(ssh.join("id_ed25519.pub"), format!("{KEY}\n")).unwrap();
    let added = alice.ok(&["keys", "add"]);
    assert!(added.contains(FINGERPRINT), "{added}");
    let table = alice.ok(&["keys", "ls"]);
    assert!(
        table.contains(FINGERPRINT) && table.contains("alice@laptop"),
        "{table}"
    );
    // The same again is refused by the server.
    refused(&alice.run(&["keys", "add"]), "already");

    // A private key is never sent; neither is an empty file.
    let private = ssh.join("id_ed25519");
    std::fs::write(
        &private,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    refused(
        &alice.run(&["keys", "add", private.to_str().unwrap()]),
        "private key",
    );
    let empty = ssh.join("empty.pub");
    std::fs::write(&empty, "\n").unwrap();
    refused(
        &alice.run(&["keys", "add", empty.to_str().unwrap()]),
        "empty",
    );
    refused(
        &alice.run(&["keys", "add", "/nonexistent/key.pub"]),
        "cannot read",
    );
    // Garbage is refused by the server, saying why.
    refused(
        &alice.run_with_stdin(&["keys", "add", "-"], "not a key at all\n"),
        "not an SSH public key",
    );
    // From standard input.
    alice.run_with_stdin(&["keys", "add", "-"], OTHER);
    let listed = alice.json(&["keys", "ls"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed[0]["fingerprint"], FINGERPRINT, "{listed}");

    // Removed by fingerprint; a made-up one is refused.
    alice.ok(&["keys", "rm", FINGERPRINT]);
    refused(
        &alice.run(&["keys", "rm", FINGERPRINT]),
        "no SSH key with that fingerprint",
    );
    refused(&alice.run(&["keys", "rm", "O8V0Fwqb"]), "not a fingerprint");
    let listed = alice.json(&["keys", "ls"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    // Someone else's keys answer as a user that does not exist.
    refused(
        &alice.run(&["keys", "ls", "--user", "admin"]),
        "no such user",
    );
}
