//! links.yaml and scripts.yaml: what is accepted, and every problem with its file and line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_fleet::inventory::{Changes, Machine, parse_links, parse_scripts};
use proptest::prelude::*;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIFQ7MSstObAYI7E2OGWlwnsSKFtukUjmMO7kI4LYUTr";

fn errors_of(result: Result<impl std::fmt::Debug, Vec<berth_yaml::FileError>>) -> Vec<String> {
    result
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_full_links_file_is_read_with_its_defaults() {
    let text = format!(
        "machines:\n\
         \x20 - id: bastion\n    host: 10.217.1.2\n    user: berth\n    key: ops.key\n    host_key: {KEY}\n\
         \x20 - id: web-1\n    name: Web 1\n    host: web-1.example.invalid\n    port: 2222\n    user: ops\n    type: web\n    tags: [web, eu]\n    key: ops.key\n    proxy_jump: bastion\n    client_id: 5de32bbe-42f1-4adb-8074-d8304ce97577\n    description: front end\n"
    );
    let machines = parse_links(&text).unwrap();
    assert_eq!(machines.len(), 2);
    let bastion = &machines[0];
    assert_eq!(
        (bastion.name.as_str(), bastion.port),
        ("bastion", 22),
        "name defaults to the id, port to 22"
    );
    let web = &machines[1];
    assert_eq!(web.port, 2222);
    assert_eq!(web.kind.as_deref(), Some("web"));
    assert_eq!(
        web.proxy_jump.as_ref().map(ToString::to_string).as_deref(),
        Some("bastion")
    );
    assert_eq!(
        parse_links("machines: []\n").unwrap(),
        Vec::<Machine>::new()
    );
}

#[test]
fn every_problem_is_reported_with_its_line() {
    let text = "machines:\n\
        \x20 - id: Web_1\n    host: a\n    user: ops\n    key: k\n\
        \x20 - id: m2\n    host: -oProxyCommand=x\n    user: Root\n    key: ../../etc/shadow\n    port: 0\n\
        \x20 - id: m3\n    host: h\n    user: ops\n    key: k\n    tags: [Web]\n    host_key: not a key\n    colour: blue\n\
        \x20 - id: m3\n    host: h\n    user: ops\n    key: k\n    proxy_jump: nowhere\n";
    let errors = errors_of(parse_links(text));
    let expect = [
        "links.yaml:2: machines[0].id",
        "links.yaml:7: machines[1].host",
        "links.yaml:8: machines[1].user",
        "links.yaml:9: machines[1].key",
        "links.yaml:10: machines[1].port",
        "links.yaml:17: machines[2].colour",
    ];
    for part in expect {
        assert!(
            errors.iter().any(|e| e.starts_with(part)),
            "no {part:?} in {errors:#?}"
        );
    }
    // Unknown fields suggest the right one; a bad field makes the machine's other checks wait
    // for the next run, but the other machines are checked.
    let text = "machines:\n  - id: m1\n    hots: h\n    user: ops\n    key: k\n";
    let errors = errors_of(parse_links(text));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("links.yaml:3") && e.contains("host")),
        "{errors:?}"
    );
}

#[test]
fn semantic_checks_name_the_line_of_the_field() {
    let text = "machines:\n\
        \x20 - id: m1\n    host: h\n    user: ops\n    key: k\n    tags: [Web]\n\
        \x20 - id: m1\n    host: h\n    user: ops\n    key: k\n    host_key: not a key\n\
        \x20 - id: m3\n    host: h\n    user: ops\n    key: k\n    proxy_jump: nowhere\n";
    let errors = errors_of(parse_links(text));
    for part in [
        "links.yaml:6: machines[0].tags[0]",
        "links.yaml:7: machines[1].id: the id m1 is also machine 0's",
        "links.yaml:11: machines[1].host_key",
        "links.yaml:16: machines[2].proxy_jump: no machine has the id nowhere",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(part)),
            "no {part:?} in {errors:#?}"
        );
    }
}

#[test]
fn an_id_the_api_uses_for_an_action_is_refused_with_its_line() {
    let text = "machines:\n  - id: web\n    host: h\n    user: ops\n    key: k\n  - id: verify\n    host: h\n    user: ops\n    key: k\n";
    let errors = errors_of(parse_links(text));
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("links.yaml:6") && e.contains("reserved")),
        "{errors:#?}"
    );
}

#[test]
fn a_description_with_a_terminal_escape_is_refused() {
    let text = "machines:\n  - id: web\n    host: h\n    user: ops\n    key: k\n    description: \"ok\\e]0;pwn\\a\"\n";
    let errors = errors_of(parse_links(text));
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("links.yaml:6") && e.contains("control characters")),
        "{errors:#?}"
    );
    let fine = "machines:\n  - id: web\n    host: h\n    user: ops\n    key: k\n    description: |\n      two\n      lines\n";
    assert_eq!(parse_links(fine).unwrap()[0].description, "two\nlines\n");
}

#[test]
fn jump_chains_are_allowed_and_cycles_refused() {
    let machine = |id: &str, via: Option<&str>| {
        let via = via
            .map(|v| format!("    proxy_jump: {v}\n"))
            .unwrap_or_default();
        format!("  - id: {id}\n    host: h\n    user: ops\n    key: k\n{via}")
    };
    let chain = format!(
        "machines:\n{}{}{}",
        machine("a", None),
        machine("b", Some("a")),
        machine("c", Some("b"))
    );
    assert_eq!(parse_links(&chain).unwrap().len(), 3);
    let cycle = format!(
        "machines:\n{}{}{}",
        machine("a", Some("c")),
        machine("b", Some("a")),
        machine("c", Some("b"))
    );
    let errors = errors_of(parse_links(&cycle));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("circle") && e.contains("a → c → b → a")),
        "{errors:#?}"
    );
    let own = format!("machines:\n{}", machine("a", Some("a")));
    assert!(
        errors_of(parse_links(&own))
            .iter()
            .any(|e| e.contains("its own jump host"))
    );
}

#[test]
fn hostile_and_empty_files() {
    for text in ["", "   \n# only a comment\n", "---\n", "~\n", "machines:\n"] {
        let errors = errors_of(parse_links(text));
        assert!(errors[0].contains("machines: []"), "{errors:?}");
    }
    for text in [
        "machines: {a: 1}\n",
        "machines:\n  - [1, 2]\n",
        "- a\n",
        "machines: [\n",
        "a: &x [*x]\n",
    ] {
        assert!(parse_links(text).is_err(), "{text:?}");
    }
    // Alias bombs hit the parser's limits instead of the memory.
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..12 {
        bomb.push_str(&format!(
            "b{i}: &b{i} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
            p = if i == 0 {
                "a".to_owned()
            } else {
                format!("b{}", i - 1)
            }
        ));
    }
    assert!(parse_links(&bomb).is_err());
}

#[test]
fn scripts_file() {
    let text = "scripts:\n\
        \x20 - name: uptime\n    description: since boot\n    file: scripts/uptime.sh\n    tags: [web]\n\
        \x20 - name: backup\n    file: backup.sh\n    timeout: 2h\n    concurrency: 4\n";
    let scripts = parse_scripts(text).unwrap();
    assert_eq!(scripts[0].timeout.as_secs(), 300, "default 300s");
    assert_eq!(scripts[1].timeout.as_secs(), 7200);
    assert_eq!(scripts[1].concurrency, Some(4));

    let bad = "scripts:\n\
        \x20 - name: Up Time\n    file: /etc/passwd\n\
        \x20 - name: b\n    file: ../x.sh\n    timeout: 25h\n    concurrency: 0\n\
        \x20 - name: b\n    file: b.sh\n    timeout: soon\n";
    let errors = errors_of(parse_scripts(bad));
    for part in [
        "scripts.yaml:2: scripts[0].name",
        "scripts.yaml:3: scripts[0].file",
        "scripts.yaml:5: scripts[1].file",
        "scripts.yaml:6: scripts[1].timeout",
        "scripts.yaml:7: scripts[1].concurrency",
        "scripts.yaml:10: scripts[2].timeout",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(part)),
            "no {part:?} in {errors:#?}"
        );
    }
}

#[test]
fn changes_between_inventories() {
    let old = parse_links(
        "machines:\n  - {id: a, host: h, user: u, key: k}\n  - {id: b, host: h, user: u, key: k}\n",
    )
    .unwrap();
    let new = parse_links("machines:\n  - {id: b, host: h2, user: u, key: k}\n  - {id: c, host: h, user: u, key: k}\n").unwrap();
    let changes = Changes::between(&old, &new, |m| m.id.to_string());
    assert_eq!(changes.added, ["c"]);
    assert_eq!(changes.changed, ["b"]);
    assert_eq!(changes.removed, ["a"]);
    assert!(Changes::between(&new, &new, |m| m.id.to_string()).is_empty());
}

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9-]{0,20}"
}

proptest! {
    /// Whatever valid machines are written, they read back the same.
    #[test]
    fn valid_machines_read_back(ids in proptest::collection::btree_set(label(), 1..8), port in 1u16.., tags in proptest::collection::vec("[a-z][a-z0-9_.-]{0,10}", 0..4)) {
        let mut text = String::from("machines:\n");
        for id in &ids {
            text.push_str(&format!("  - id: {id}\n    host: {id}.example.invalid\n    port: {port}\n    user: ops\n    key: k\n    tags: [{}]\n", tags.join(", ")));
        }
        let machines = parse_links(&text).unwrap();
        prop_assert_eq!(machines.len(), ids.len());
        for (machine, id) in machines.iter().zip(&ids) {
            prop_assert_eq!(&machine.id.to_string(), id);
            prop_assert_eq!(machine.port, port);
            prop_assert_eq!(&machine.tags, &tags);
        }
    }

    /// Any text gives machines or errors, never a panic; errors name the file.
    #[test]
    fn any_text_is_handled(text in "\\PC{0,200}") {
        if let Err(errors) = parse_links(&text) {
            prop_assert!(!errors.is_empty());
            prop_assert!(errors.iter().all(|e| e.file == "links.yaml"));
        }
        let _ = parse_scripts(&text);
    }
}
