//! `berth machines` and `berth fleet` as processes against a real `berth serve` whose fleet
//! syncs a file:// inventory of the SSH test machines: listing and filters, one machine,
//! syncs (good and broken), verify and trust, the secrets key, what a user may see and do, a
//! server without a fleet (operations too), and the usage errors clap catches.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod common;
mod fleet;
#[path = "../../berth-ssh/tests/common/mod.rs"]
mod machines;

use std::os::unix::fs::PermissionsExt;

use common::{CliHome, Server, both, require_engine};
use fleet::{ADMIN_PASSWORD, ALICE_PASSWORD, fleet_home, start_up_sync, stderr, stdout};
use machines::inventory::{Repo, links};
use serde_json::Value;

/// The ids of a JSON array of machines (or of `{"machines": [...]}`).
fn ids(json: &Value) -> Vec<String> {
    let list = json.get("machines").unwrap_or(json);
    list.as_array()
        .unwrap_or_else(|| panic!("not a list of machines: {json}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The table rows (after the header) of `text`, by their first column.
fn row<'a>(text: &'a str, id: &str) -> Option<&'a str> {
    text.lines()
        .skip(1)
        .find(|l| l.split_whitespace().next() == Some(id))
}

/// Whether `program` is an executable file in a directory of PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// `links` with m2 given the type `db` and the extra tag `db`.
fn with_m2_as_db(links: &str) -> String {
    let (before, m2) = links.split_once("  - id: m2\n").unwrap();
    let m2 = m2.replacen(
        "    tags: [lab, near]\n",
        "    type: db\n    tags: [lab, near, db]\n",
        1,
    );
    format!("{before}  - id: m2\n{m2}")
}

#[test]
fn admins_sync_verify_and_trust_and_users_see_their_machines() {
    let Some(lab) = machines::lab() else { return };
    require_engine();
    let root = tempfile::tempdir().unwrap();
    let repo = Repo::new(root.path(), "inventory");
    let three = links(&lab, &[("m1", None), ("m2", None), ("m3", None)]);
    let first = repo.commit(&[("links.yaml", &three)], "three machines");
    let home = fleet_home(&lab, root.path(), &repo);
    let server = Server::start(&home);
    let admin = CliHome::new();
    admin.login(&server, "admin", ADMIN_PASSWORD);

    // The sync Berth runs at start-up; then one asked for finds nothing new.
    start_up_sync(&admin);
    let status = admin.json(&["fleet", "status"]);
    assert_eq!(status["commit"], first.as_str(), "{status:#}");
    let text = admin.ok(&["fleet", "status"]);
    assert!(
        text.contains(&format!("In force    commit {first}"))
            && text.contains("start")
            && text.contains("+3 ~0 -0 machines"),
        "{text}"
    );
    let output = admin.run(&["fleet", "sync"]);
    assert!(output.status.success(), "{}", both(&output));
    assert!(
        stdout(&output).contains("unchanged") && stdout(&output).contains("nothing changed"),
        "{}",
        both(&output)
    );

    // The list, all of it and filtered.
    let table = admin.ok(&["machines"]);
    for name in ["m1", "m2", "m3"] {
        let m = lab.machine(name);
        let line = row(&table, name).unwrap_or_else(|| panic!("no {name} in:\n{table}"));
        assert!(line.contains(&format!("{}:{}", m.host, m.port)), "{line}");
        assert!(line.contains("lab,near"), "{line}");
    }
    let second = repo.commit(
        &[("links.yaml", &with_m2_as_db(&three))],
        "m2 is the database",
    );
    let output = admin.run(&["fleet", "sync"]);
    assert!(output.status.success(), "{}", both(&output));
    assert!(
        stdout(&output).contains("succeeded")
            && stdout(&output).contains(&second[..12])
            && stdout(&output).contains("machines: changed m2"),
        "{}",
        both(&output)
    );
    let table = admin.ok(&["machines", "--tag", "db"]);
    assert!(row(&table, "m2").unwrap().contains(" db "), "{table}");
    assert!(
        row(&table, "m1").is_none() && row(&table, "m3").is_none(),
        "{table}"
    );
    assert_eq!(ids(&admin.json(&["machines", "--type", "db"])), ["m2"]);
    assert_eq!(
        ids(&admin.json(&["machines", "--tag", "lab"])),
        ["m1", "m2", "m3"]
    );
    let all = admin.json(&["machines"]);
    assert_eq!(ids(&all), ["m1", "m2", "m3"]);
    assert_eq!(
        ids(&admin.json(&["machines", "--page-size", "1"])),
        ["m1", "m2", "m3"],
        "every page is fetched"
    );
    assert_eq!(all[0]["host"], lab.machine("m1").host.as_str());
    assert!(all[0]["enrollment"]["status"].is_string(), "{all:#}");
    assert!(
        admin
            .ok(&["machines", "--tag", "nothing"])
            .contains("No machine you may see matches"),
        "an empty filter says so"
    );

    // Verify: m1 and m2 enroll; m3's unknown host key keeps it out, with status 3.
    let output = admin.run(&["fleet", "verify"]);
    assert_eq!(output.status.code(), Some(3), "{}", both(&output));
    let table = stdout(&output);
    assert!(row(&table, "m1").unwrap().contains("enrolled"), "{table}");
    assert!(row(&table, "m2").unwrap().contains("enrolled"), "{table}");
    assert!(
        row(&table, "m3").unwrap().contains("host_key_unknown"),
        "{table}"
    );
    assert!(
        stderr(&output).contains("1 of 3 machine(s) not enrolled: m3 (host_key_unknown)")
            && stderr(&output).contains("berth fleet trust m3 SHA256:"),
        "{}",
        both(&output)
    );
    let output = admin.run(&["fleet", "verify", "m1"]);
    assert!(output.status.success(), "{}", both(&output));
    assert!(row(&stdout(&output), "m1").unwrap().contains("enrolled"));

    // One machine, for people and as JSON; its fingerprint trusts it.
    let shown = admin.ok(&["machines", "show", "m1"]);
    for part in [
        "SSH",
        &format!("address    {}:22", lab.machine("m1").host),
        "checked against known_hosts",
        "Enrollment",
        "enrolled",
        "Health",
        "Recent checks",
    ] {
        assert!(shown.contains(part), "no {part:?} in:\n{shown}");
    }
    let m3 = admin.json(&["machines", "show", "m3"]);
    assert_eq!(m3["enrollment"]["status"], "host_key_unknown", "{m3:#}");
    let fingerprint = m3["enrollment"]["fingerprint"].as_str().unwrap().to_owned();
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let output = admin.run(&["fleet", "trust", "m3", wrong]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(stderr(&output).starts_with("berth: "), "{}", both(&output));
    let output = admin.run(&["fleet", "trust", "m3", &fingerprint]);
    assert!(output.status.success(), "{}", both(&output));
    assert!(
        stdout(&output).contains("its enrollment now: enrolled"),
        "{}",
        both(&output)
    );
    let verified = admin.json(&["fleet", "verify"]);
    for machine in verified["machines"].as_array().unwrap() {
        assert_eq!(machine["enrollment"]["status"], "enrolled", "{verified:#}");
    }
    assert_eq!(
        ids(&admin.json(&["machines", "--enrollment", "enrolled"])),
        ["m1", "m2", "m3"]
    );

    let output = admin.run(&["machines", "show", "nope"]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("there is no machine nope, or you may not see it")
            && stderr(&output).contains("berth machines"),
        "{}",
        both(&output)
    );
    let output = admin.run(&["fleet", "verify", "nope"]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("no machine nope"),
        "{}",
        both(&output)
    );

    // The server makes and reads its age identity with Debian's `age-keygen`.
    if on_path("age-keygen") {
        let key = admin.ok(&["fleet", "secrets-key"]);
        assert_eq!(key.lines().count(), 1, "the recipient alone: {key:?}");
        assert!(key.starts_with("age1"), "{key:?}");
        assert_eq!(
            admin.ok(&["fleet", "secrets-key"]),
            key,
            "the same key each time"
        );
    } else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "age-keygen is not installed (Debian's age package): `berth fleet secrets-key` \
             cannot be tested"
        );
        eprintln!(
            "\n*** SKIPPED `berth fleet secrets-key`: age-keygen is not installed (apt-get \
             install age) ***\n"
        );
    }

    // A user sees what their selectors match, and may look but not act.
    let alice = CliHome::new();
    alice.login(&server, "alice", ALICE_PASSWORD);
    assert_eq!(ids(&alice.json(&["machines"])), ["m1"]);
    assert_eq!(alice.json(&["machines", "show", "m1"])["id"], "m1");
    let output = alice.run(&["machines", "show", "m2"]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("no machine m2"),
        "{}",
        both(&output)
    );
    for args in [
        &["fleet", "sync"][..],
        &["fleet", "status"],
        &["fleet", "verify", "m1"],
        &["fleet", "secrets-key"],
    ] {
        let output = alice.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", both(&output));
        let command = format!("`berth {}", args[..2].join(" "));
        assert!(
            stderr(&output).contains(&command)
                && stderr(&output).contains("is for admins (you are logged in as alice)"),
            "{args:?}: {}",
            both(&output)
        );
    }

    // A broken links.yaml: every error with its file and line, status 1, nothing changes.
    repo.commit(
        &[(
            "links.yaml",
            "machines:\n  - id: m1\n    hots: h\n    user: ops\n    key: k\n  - id: m2\n    \
             host: h\n    user: ops\n    key: k\n    port: 0\n",
        )],
        "broken",
    );
    let output = admin.run(&["fleet", "sync"]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let report = stdout(&output);
    assert!(
        report.contains("failed")
            && report.contains("  links.yaml:3: machines[0]")
            && report.contains("  links.yaml:10: machines[1].port"),
        "{}",
        both(&output)
    );
    assert!(
        stderr(&output).contains("the sync failed with")
            && stderr(&output).contains("the inventory in force stays as it was"),
        "{}",
        both(&output)
    );
    let status = admin.json(&["fleet", "status"]);
    assert_eq!(status["commit"], second.as_str(), "{status:#}");
    assert_eq!(status["syncing"], false);
    assert_eq!(status["history"][0]["result"], "failed", "{status:#}");
    assert!(
        admin.ok(&["fleet", "status"]).contains("links.yaml:"),
        "the history shows where it failed"
    );
    assert_eq!(ids(&admin.json(&["machines"])), ["m1", "m2", "m3"]);
}

#[test]
fn a_server_without_a_fleet_says_how_to_get_one() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let password = server.printed_password().unwrap();
    let admin = CliHome::new();
    admin.login(&server, "admin", &password);
    for args in [
        &["machines"][..],
        &["machines", "--json"],
        &["machines", "show", "m1"],
        &["fleet", "sync"],
        &["fleet", "status"],
        &["fleet", "verify"],
        &["fleet", "verify", "m1"],
        &[
            "fleet",
            "trust",
            "m1",
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ],
        &["fleet", "secrets-key"],
        &["run", "hello", "--on", "m1"],
        &["ops"],
    ] {
        let output = admin.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", both(&output));
        assert!(
            stderr(&output)
                .contains("berth: this Berth has no fleet: set fleet.repository in main.yaml"),
            "{args:?}: {}",
            both(&output)
        );
    }
}

#[test]
fn fleet_commands_check_their_arguments_and_need_a_login() {
    let cli = CliHome::new();
    for (args, says) in [
        (
            &["machines", "--status", "bogus"][..],
            "[possible values: unknown, online, degraded, offline]",
        ),
        (&["machines", "--enrollment", "fine"], "host_key_unknown"),
        (&["machines", "--tag", "Web!"], "1 to 63 characters"),
        (&["machines", "--type", ""], "1 to 63 characters"),
        (&["machines", "--page-size", "0"], "1..=500"),
        (&["machines", "show", "Not_An_Id"], "a machine id has"),
        (
            &["machines", "--tag", "web", "show", "m1"],
            "cannot be used",
        ),
        (&["fleet", "trust", "m1", "not-a-fingerprint"], "SHA256:"),
        (&["fleet", "trust", "m1"], "FINGERPRINT"),
        (&["fleet", "verify", "a b"], "a machine id has"),
        (&["fleet", "frobnicate"], "unrecognized subcommand"),
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
        &["machines"][..],
        &["machines", "show", "m1"],
        &["fleet", "sync"],
        &["fleet", "status"],
        &["fleet", "verify"],
        &["fleet", "trust", "m1", "SHA256:AAAA"],
        &["fleet", "secrets-key"],
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
        &["machines"][..],
        &["machines", "show"],
        &["fleet"],
        &["fleet", "sync"],
        &["fleet", "status"],
        &["fleet", "verify"],
        &["fleet", "trust"],
        &["fleet", "secrets-key"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let help = cli.ok(&args);
        assert!(
            help.contains("Examples:") || help.contains("Example:"),
            "{args:?}:\n{help}"
        );
    }
    let help = cli.ok(&["fleet", "verify", "--help"]);
    assert!(help.contains("3 when the check ran"), "{help}");
    let script = cli.ok(&["completions", "bash"]);
    assert!(
        script.contains("machines") && script.contains("secrets-key"),
        "completions know the fleet commands"
    );
}
