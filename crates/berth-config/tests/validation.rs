//! Validation of configuration directories: what is refused, and how the errors read.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ALICE_ID, BOB_ID, Dir, assert_error, users_yaml};

#[test]
fn a_valid_directory_loads() {
    let dir = Dir::valid();
    dir.write(
        "users.d/alice.yaml",
        "max_workspaces: 7\ncontainers: [python]\nmemory: 4g\ncpus: 2\n",
    );
    let config = berth_config::check(dir.path()).unwrap();
    assert_eq!(config.users.len(), 2);
    assert_eq!(config.templates[1].name, "python");
    let alice = config.user("alice").unwrap();
    assert_eq!(alice.id.to_string(), ALICE_ID);
    let allowed: Vec<_> = config
        .allowed_templates(&alice.username)
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        allowed,
        ["base", "python"],
        "own templates plus the override's extras"
    );
    let bob = config.user("bob").unwrap();
    assert_eq!(
        config.allowed_templates(&bob.username).len(),
        2,
        "admins may use every template"
    );
    assert_eq!(config.max_workspaces("alice"), 7);
    assert_eq!(config.max_workspaces("bob"), 3);
    assert_eq!(
        config.overrides("alice").unwrap().memory.unwrap().bytes(),
        4 << 30
    );
    assert_eq!(config.main.runtime.default_memory.to_string(), "1g");
    assert_eq!(config.main.security.session_ttl.as_secs(), 12 * 3600);
}

#[test]
fn the_example_of_the_issue_reads_exactly() {
    let dir = Dir::valid();
    let users = format!(
        "# users\nusers:\n  - username: alice\n    id: {ALICE_ID}\n    templates: [base]\n  - username: bob\n    id: {BOB_ID}\n  - username: carol\n    id: 7d3f9a2b-1c4e-4f5a-8b6c-9d0e1f2a3b4c\n    password_hash: \"{}\"\n    templates:\n      - pyhton\n",
        common::HASH
    );
    dir.write("users.yaml", &users);
    assert_eq!(
        dir.errors(),
        [
            "users.yaml:12: users[2].templates[0]: unknown template \"pyhton\" (did you mean \"python\"?)"
        ]
    );
}

#[test]
fn every_error_of_every_file_is_reported_in_file_order() {
    let dir = Dir::valid();
    dir.write(
        "main.yaml",
        "listen: nowhere\nlogging:\n  files_kept: 0\n  colour: red\n",
    );
    dir.write(
        "containers.yaml",
        "templates:\n  - name: a\n    image: x\n    memory: 1\n  - name: broken\n    imagee: x\n  - name: c\n    image: y\n    pool: 51\n    cpus: 100\n",
    );
    dir.write(
        "users.yaml",
        "users:\n  - username: alice\n    password_hash: x\n    templates: [pyhton]\n",
    );
    assert_eq!(
        dir.errors(),
        [
            "main.yaml:1: listen: invalid socket address syntax",
            "main.yaml:3: logging.files_kept: must be from 1 to 100, found 0",
            "main.yaml:4: logging.colour: unknown field \"colour\", expected \"max_size_mb\", \"files_kept\" or \"level\"",
            "containers.yaml:4: templates[0].memory: a memory limit is from 16m to 256g, found \"1\"",
            "containers.yaml:5: templates[1]: missing field \"image\"",
            "containers.yaml:6: templates[1].imagee: unknown field \"imagee\" (did you mean \"image\"?)",
            "containers.yaml:9: templates[2].pool: must be from 0 to 50, found 51",
            "containers.yaml:10: templates[2].cpus: a number of CPUs is from 0.01 to 64, found 100",
            "users.yaml:2: users[0]: missing field \"id\": every user needs a stable id, a UUID (generate one with `uuidgen`; users added through Berth get one automatically)",
            "users.yaml:3: users[0].password_hash: not a password hash in PHC format ($argon2id$… or $pbkdf2-sha256$…): password hash string missing field",
            "users.yaml:4: users[0].templates[0]: unknown template \"pyhton\"",
        ]
    );
}

#[test]
fn unknown_fields_are_refused_in_every_file() {
    let dir = Dir::bare();
    dir.write(
        "main.yaml",
        "admin:\n  username: admin\n  pasword_hash: x\nlistn: 1\n",
    );
    dir.write("containers.yaml", "templates:\n  - name: a\n    image: x\n    volumes:\n      - name: v\n        target: /v\n        mode: rw\n");
    dir.write(
        "users.yaml",
        &(users_yaml().replace("    templates: [base]\n", "") + "    favourite: tea\n"),
    );
    dir.write("users.d/alice.yaml", "max_workspace: 2\n");
    let errors = dir.errors();
    assert_error(
        &errors,
        &[
            "main.yaml:3: admin.pasword_hash: unknown field \"pasword_hash\" (did you mean \"password_hash\"?)",
        ],
    );
    assert_error(
        &errors,
        &["main.yaml:4: listn: unknown field \"listn\" (did you mean \"listen\"?)"],
    );
    assert_error(
        &errors,
        &["containers.yaml:7: templates[0].volumes[0].mode: unknown field \"mode\""],
    );
    assert_error(
        &errors,
        &["users.yaml:7: users[1].favourite: unknown field \"favourite\""],
    );
    assert_error(
        &errors,
        &[
            "users.d/alice.yaml:1: max_workspace: unknown field \"max_workspace\" (did you mean \"max_workspaces\"?)",
        ],
    );
    assert_eq!(errors.len(), 5, "{errors:#?}");
}

#[test]
fn wrong_types_are_refused() {
    let dir = Dir::valid();
    dir.write(
        "main.yaml",
        "runtime: 3\nsecurity:\n  lockout_attempts: five\n  session_ttl: [1h]\n",
    );
    dir.write("containers.yaml", "templates:\n  - name: a\n    image: [x]\n    shared: yes\n    env: [A=1]\n    pids_limit: \"100\"\n");
    dir.write(
        "users.yaml",
        &format!("users: {{username: alice, id: {ALICE_ID}}}\n"),
    );
    let errors = dir.errors();
    assert_eq!(
        errors,
        [
            "main.yaml:1: runtime: expected a mapping (`key: value` lines), found \"3\"",
            "main.yaml:3: security.lockout_attempts: expected a whole number, found \"five\"",
            "main.yaml:4: security.session_ttl: expected a string, found a list",
            "containers.yaml:3: templates[0].image: expected a string, found a list",
            "containers.yaml:4: templates[0].shared: expected true or false, found \"yes\"",
            "containers.yaml:5: templates[0].env: expected a mapping (`key: value` lines), found a list",
            "containers.yaml:6: templates[0].pids_limit: expected a whole number, found \"100\"",
            "users.yaml:1: users: expected a list, found a mapping",
        ]
    );
}

#[test]
fn missing_required_fields_are_refused() {
    let dir = Dir::valid();
    dir.write("main.yaml", "tls:\n  cert: /etc/c.pem\n");
    dir.write("containers.yaml", "templates:\n  - image: x\n  - name: b\n    image: y\n    bind_mounts:\n      - target: /data\n");
    dir.write("users.yaml", &format!("users:\n  - id: {ALICE_ID}\n"));
    assert_eq!(
        dir.errors(),
        [
            "main.yaml:2: tls: missing field \"key\"",
            "containers.yaml:2: templates[0]: missing field \"name\"",
            "containers.yaml:6: templates[1].bind_mounts[0]: missing field \"source\"",
            "users.yaml:2: users[0]: missing field \"username\"",
        ]
    );
}

#[test]
fn duplicate_usernames_templates_and_keys_are_refused() {
    let dir = Dir::valid();
    dir.write(
        "containers.yaml",
        "templates:\n  - name: base\n    image: x\n  - name: base\n    image: y\n    image: z\n",
    );
    dir.write(
        "users.yaml",
        &format!(
            "users:\n  - username: alice\n    id: {ALICE_ID}\n  - username: alice\n    id: {BOB_ID}\n  - username: admin\n    id: 7d3f9a2b-1c4e-4f5a-8b6c-9d0e1f2a3b4c\n  - username: dan\n    id: {BOB_ID}\n"
        ),
    );
    assert_eq!(
        dir.errors(),
        [
            "containers.yaml:4: templates[1].name: duplicate template name \"base\" (first defined at line 2)",
            "containers.yaml:6: templates[1].image: duplicate key \"image\"",
            "users.yaml:4: users[1].username: duplicate username \"alice\" (first defined at line 2)",
            "users.yaml:6: users[2].username: \"admin\" is the admin of main.yaml; choose another username",
            "users.yaml:9: users[3].id: duplicate user id 0b6f3c1e-2f7a-4d8e-9c1b-5a4d3e2f1a0b (first defined at line 5)",
        ]
    );
}

#[test]
fn invalid_usernames_and_names_are_refused() {
    let dir = Dir::valid();
    dir.write(
        "users.yaml",
        &format!("users:\n  - username: Alice\n    id: {ALICE_ID}\n  - username: \"a b\"\n    id: {BOB_ID}\n"),
    );
    dir.write("containers.yaml", "templates:\n  - name: Py\n    image: x\n    volumes:\n      - name: -v\n        target: data\n");
    assert_eq!(
        dir.errors(),
        [
            "containers.yaml:2: templates[0].name: a template name starts with a lowercase letter or '_', not 'P'",
            "containers.yaml:5: templates[0].volumes[0].name: \"-v\" is not a volume name (letters, digits, '_', '.', '-', starting with a letter or digit)",
            "containers.yaml:6: templates[0].volumes[0].target: expected an absolute path, found \"data\"",
            "users.yaml:2: users[0].username: a username starts with a lowercase letter or '_'",
            "users.yaml:4: users[1].username: a username may contain only a-z, 0-9, '_', '-' and '.', not ' '",
        ]
    );
}

#[test]
fn out_of_range_limits_are_refused() {
    let dir = Dir::bare();
    dir.write(
        "main.yaml",
        "logging:\n  max_size_mb: 2000\nruntime:\n  max_workspaces_per_user: 0\n  default_pids_limit: 8\n  default_memory: 8m\n  default_idle_timeout: 0s\nsecurity:\n  lockout_minutes: 100000\n  session_idle: 13h\n",
    );
    dir.write("containers.yaml", "templates:\n  - name: a\n    image: x\n    memory: 300g\n    cpus: 0\n    pids_limit: 70000\n    max_per_user: 0\n    ttl: 400d\n");
    dir.write("users.d/alice.yaml", "max_workspaces: 101\n");
    assert_eq!(
        dir.errors(),
        [
            "main.yaml:2: logging.max_size_mb: must be from 1 to 1024, found 2000",
            "main.yaml:4: runtime.max_workspaces_per_user: must be from 1 to 100, found 0",
            "main.yaml:5: runtime.default_pids_limit: must be from 16 to 65536, found 8",
            "main.yaml:6: runtime.default_memory: a memory limit is from 16m to 256g, found \"8m\"",
            "main.yaml:7: runtime.default_idle_timeout: a duration is from 1s to 365d, found \"0s\"",
            "main.yaml:9: security.lockout_minutes: must be from 1 to 1440, found 100000",
            "main.yaml:10: security.session_idle: session_idle (13h) is longer than session_ttl (12h)",
            "containers.yaml:4: templates[0].memory: a memory limit is from 16m to 256g, found \"300g\"",
            "containers.yaml:5: templates[0].cpus: a number of CPUs is from 0.01 to 64, found 0",
            "containers.yaml:6: templates[0].pids_limit: must be from 16 to 65536, found 70000",
            "containers.yaml:7: templates[0].max_per_user: must be from 1 to 100, found 0",
            "containers.yaml:8: templates[0].ttl: a duration is from 1s to 365d, found \"400d\"",
            "users.d/alice.yaml:1: max_workspaces: must be from 1 to 100, found 101",
        ]
    );
}

#[test]
fn recording_retention_reads_its_limits_and_null_and_refuses_the_rest() {
    let dir = Dir::valid();
    let retention = |text: &str| {
        dir.write("main.yaml", text);
        berth_config::check(dir.path()).map(|c| c.main.recordings)
    };
    let defaults = retention("listen: 127.0.0.1:8080\n").unwrap();
    assert_eq!(defaults.max_age.unwrap().to_string(), "90d");
    assert_eq!(defaults.max_total_size.unwrap().to_string(), "20g");
    let off = retention("recordings:\n  max_age: null\n  max_total_size: ~\n").unwrap();
    assert_eq!((off.max_age, off.max_total_size), (None, None));
    let set = retention("recordings: {max_age: 7d, max_total_size: 2t}\n").unwrap();
    assert_eq!(set.max_total_size.unwrap().bytes(), 2 << 40);

    dir.write(
        "main.yaml",
        "recordings:\n  max_age: 12h\n  max_total_size: 512k\n  keep: forever\n",
    );
    let errors = dir.errors();
    common::assert_error(
        &errors,
        &["main.yaml:2", "recordings.max_age", "at least a day"],
    );
    common::assert_error(
        &errors,
        &[
            "main.yaml:3",
            "recordings.max_total_size",
            "from 1m to 1024t",
        ],
    );
    common::assert_error(&errors, &["main.yaml:4", "keep"]);
}

#[test]
fn references_to_undefined_templates_and_users_are_refused() {
    let dir = Dir::valid();
    dir.write(
        "users.yaml",
        &format!(
            "users:\n  - username: alice\n    id: {ALICE_ID}\n    containers: [base, gpu, base]\n"
        ),
    );
    dir.write("users.d/alice.yaml", "templates: [pythn]\n");
    dir.write("users.d/zoe.yaml", "max_workspaces: 2\n");
    dir.write("users.d/Bad Name.yaml", "{}\n");
    dir.write("users.d/notes.txt", "hello\n");
    dir.write("users.d/.alice.yaml.swp", "ignored");
    dir.write("users.d/alice.yaml~", "ignored");
    let errors = dir.errors();
    assert_eq!(
        errors,
        [
            "users.yaml:4: users[0].containers[1]: unknown template \"gpu\"",
            "users.yaml:4: users[0].containers[2]: template \"base\" is listed twice",
            "users.d/Bad Name.yaml: the file name must be <username>.yaml: a username starts with a lowercase letter or '_'",
            "users.d/alice.yaml:1: templates[0]: unknown template \"pythn\" (did you mean \"python\"?)",
            "users.d/notes.txt: not a per-user file: users.d holds only <username>.yaml files",
            "users.d/zoe.yaml: there is no user \"zoe\" in users.yaml; rename or remove this file",
        ]
    );
}

#[test]
fn a_broken_template_is_reported_once_not_by_every_user() {
    let dir = Dir::valid();
    dir.write(
        "containers.yaml",
        "templates:\n  - name: base\n    image: x\n    memroy: 1g\n  - name: python\n",
    );
    let errors = dir.errors();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_error(&errors, &["containers.yaml:4:", "memroy"]);
    assert_error(&errors, &["containers.yaml:5:", "missing field \"image\""]);
}

#[test]
fn templates_are_checked_for_safety() {
    let dir = Dir::bare();
    dir.write(
        "containers.yaml",
        "templates:\n  - name: a\n    image: x\n    cap_add: [NET_RAW, SYS_ADMIN, ALL, CAP_NET_BIND_SERVICE, NET_RAWW]\n    bind_mounts:\n      - {source: /srv/data/sets, target: /data}\n      - {source: /srv/database, target: /db}\n      - {source: /srv/data/../../etc, target: /etc2}\n    volumes:\n      - {name: home, target: /data}\n    network: \"container:abc\"\n    shared: true\n    persist: always\n    pool: 2\n  - name: b\n    image: x\n    cap_add: [SYS_ADMIN]\n    allow_dangerous_caps: true\n    network: host\n    networks: [none, berth-lab]\n",
    );
    assert_eq!(
        dir.errors(),
        [
            "containers.yaml:4: templates[0].cap_add[1]: SYS_ADMIN lets a workspace escape its container; set allow_dangerous_caps: true to grant it anyway",
            "containers.yaml:4: templates[0].cap_add[2]: ALL lets a workspace escape its container; set allow_dangerous_caps: true to grant it anyway",
            "containers.yaml:4: templates[0].cap_add[4]: \"NET_RAWW\" is not a Linux capability (did you mean \"NET_RAW\"?)",
            "containers.yaml:6: templates[0].bind_mounts[0].target: /data is already a mount target of this template",
            "containers.yaml:7: templates[0].bind_mounts[1].source: /srv/database is not inside an allowed directory; allowed: /srv/data (runtime.allowed_bind_mounts of main.yaml)",
            "containers.yaml:8: templates[0].bind_mounts[2].source: a path may not contain \".\" or \"..\", found \"/srv/data/../../etc\"",
            "containers.yaml:11: templates[0].network: expected \"none\", \"host\" or the name of a Docker network, found \"container:abc\"",
            "containers.yaml:14: templates[0].pool: pool containers are ephemeral and a persist: always template never starts one; set pool: 0",
        ]
    );
}

#[test]
fn main_yaml_values_are_checked() {
    let dir = Dir::valid();
    dir.write(
        "main.yaml",
        "public_url: berth.example.com\ntls: {cert: cert.pem, key: /k.pem}\nadmin: {username: Admin, password_hash: \"$md5$x\"}\ndatabase: mysql://x\nlogging: {level: loud}\nruntime:\n  docker_socket: docker.sock\n  allowed_bind_mounts: [/, srv]\n  instance: Prod/1\n",
    );
    assert_eq!(
        dir.errors(),
        [
            "main.yaml:1: public_url: expected an http:// or https:// URL, found \"berth.example.com\"",
            "main.yaml:2: tls.cert: expected an absolute path, found \"cert.pem\"",
            "main.yaml:3: admin.password_hash: not a password hash in PHC format ($argon2id$… or $pbkdf2-sha256$…): salt too short (minimum 8 bytes)",
            "main.yaml:3: admin.username: a username starts with a lowercase letter or '_'",
            "main.yaml:4: database: expected a sqlite: or postgres:// URL, found \"mysql://x\"",
            "main.yaml:5: logging.level: expected a level (error, warn, info, debug, trace) or directives like \"info,berth_server=debug\", found \"loud\"",
            "main.yaml:7: runtime.docker_socket: expected a socket path (/var/run/docker.sock) or a unix:// address, found \"docker.sock\"",
            "main.yaml:8: runtime.allowed_bind_mounts[0]: allowing \"/\" would let templates mount every file of the host; name narrower directories",
            "main.yaml:8: runtime.allowed_bind_mounts[1]: expected an absolute path, found \"srv\"",
            "main.yaml:9: runtime.instance: expected 1 to 63 characters a-z, 0-9, '_', '.', '-' starting with a letter or digit, found \"Prod/1\"",
        ]
    );
}

#[test]
fn explicitly_empty_files_take_the_defaults_and_missing_files_are_named() {
    let dir = Dir::valid();
    dir.write("main.yaml", "{}\n");
    dir.write("containers.yaml", "# nothing yet\ntemplates: []\n");
    dir.write("users.yaml", "users: []\n");
    let config = berth_config::check(dir.path()).unwrap();
    assert_eq!(config.main, berth_config::MainConfig::default());
    assert!(config.templates.is_empty() && config.users.is_empty());

    // A document of nothing but `---`, `~` or `null` is as truncated as an empty file; a key
    // with nothing after it (`users:`) is an empty list, as the conventions say.
    let dir = Dir::valid();
    dir.write("users.yaml", "users:\n");
    assert!(berth_config::check(dir.path()).unwrap().users.is_empty());
    for (file, text) in [
        ("users.yaml", "---\n"),
        ("users.yaml", "~\n"),
        ("main.yaml", "null\n"),
    ] {
        let dir = Dir::valid();
        dir.write(file, text);
        let errors = dir.errors();
        assert_error(&errors, &[file, "truncated"]);
    }

    std::fs::remove_file(dir.file("users.yaml")).unwrap();
    let errors = dir.errors();
    assert_eq!(errors.len(), 1);
    assert_error(&errors, &["users.yaml: missing from", "berth serve"]);
}

#[test]
fn syntax_errors_and_binary_files_name_their_line() {
    let dir = Dir::valid();
    dir.write(
        "containers.yaml",
        "templates:\n  - name: a\n    image: [x\n",
    );
    std::fs::write(dir.file("users.yaml"), b"users:\n  - username: \xff\n").unwrap();
    let errors = dir.error_list();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].file, "containers.yaml");
    assert!(
        errors[0].line.is_some() && errors[0].message.starts_with("invalid YAML"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[1].to_string(), "users.yaml:2: not valid UTF-8 text");
}

#[test]
fn user_token_and_metadata_fields_are_checked() {
    let dir = Dir::valid();
    dir.write(
        "users.yaml",
        &format!(
            "users:\n  - username: alice\n    id: {ALICE_ID}\n    role: root\n    client_tokens:\n      - id: {BOB_ID}\n        hash: abc\n        created: yesterday\n      - id: {BOB_ID}\n        hash: {h}\n        created: 2025-01-31T12:00:00Z\n      - id: {BOB_ID}\n        hash: {h}\n        created: 2025-01-31T12:00:00Z\n    metadata:\n      \"\": x\n",
            h = "a".repeat(64)
        ),
    );
    assert_eq!(
        dir.errors(),
        [
            "users.yaml:4: users[0].role: expected one of \"admin\" or \"user\", found \"root\"",
            "users.yaml:8: users[0].client_tokens[0].created: expected a date and time such as 2025-01-31T12:00:00Z (RFC 3339), found \"yesterday\"",
            "users.yaml:12: users[0].client_tokens[2].id: duplicate client id 0b6f3c1e-2f7a-4d8e-9c1b-5a4d3e2f1a0b",
            "users.yaml:16: users[0].metadata[\"\"]: a metadata key has 1 to 64 characters",
        ]
    );
}

/// "Billion laughs": nine levels of aliases, each ten times the one before.
#[test]
fn alias_bombs_are_refused_without_expanding_them() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let dir = Dir::valid();
    dir.write("main.yaml", &text);
    let errors = dir.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_error(
        &errors,
        &[
            "main.yaml:",
            "more than 200000 values once its aliases are expanded",
        ],
    );
}

#[test]
fn a_few_aliases_are_fine() {
    let dir = Dir::bare();
    dir.write(
        "containers.yaml",
        "templates:\n  - name: a\n    image: x\n    env: &env {LANG: C.UTF-8}\n  - name: b\n    image: y\n    env: *env\n",
    );
    let config = berth_config::check(dir.path()).unwrap();
    assert_eq!(config.templates[1].env["LANG"], "C.UTF-8");
}

#[test]
fn deep_nesting_is_refused() {
    let dir = Dir::valid();
    let flow = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    dir.write("main.yaml", &format!("listen: {flow}\n"));
    let mut block = String::new();
    for depth in 0..200 {
        block.push_str(&format!("{}k:\n", "  ".repeat(depth)));
    }
    dir.write("containers.yaml", &block);
    let errors = dir.errors();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    // The parser's own recursion limit may answer first; either way the file is refused.
    assert!(
        errors[0].starts_with("main.yaml:1: ")
            && (errors[0].contains("nested more than 32") || errors[0].contains("recursion limit")),
        "{errors:#?}"
    );
    assert_error(
        &errors,
        &["containers.yaml:33: values are nested more than 32 levels deep; refusing the document"],
    );
}

#[test]
fn files_over_one_mebibyte_are_refused_unread() {
    let dir = Dir::valid();
    let big = format!("# {}\n", "x".repeat(1024 * 1024));
    dir.write("containers.yaml", &big);
    assert_eq!(
        dir.errors(),
        ["containers.yaml: the file has 1048579 bytes, more than the 1 MiB allowed; refusing it"]
    );
    // A file just under the limit is read.
    dir.write(
        "containers.yaml",
        &format!("# {}\ntemplates: []\n", "x".repeat(1024 * 1024 - 40)),
    );
    assert!(
        dir.errors().iter().all(|e| !e.contains("1 MiB")),
        "{:?}",
        dir.errors()
    );
}

#[test]
fn many_errors_stop_at_a_hundred() {
    let mut text = String::from("templates:\n");
    for i in 0..500 {
        text.push_str(&format!("  - name: t{i}\n    image: x\n    pool: 99\n"));
    }
    let dir = Dir::bare();
    dir.write("containers.yaml", &text);
    let errors = dir.errors();
    assert_eq!(errors.len(), 101, "100 errors and a note");
    assert_error(&errors, &["containers.yaml: stopped after 100 errors"]);
}

#[test]
fn trusted_proxies_are_addresses_or_networks() {
    let dir = Dir::valid();
    dir.write(
        "main.yaml",
        "security:\n  trusted_proxies:\n    - 127.0.0.1\n    - 10.0.0.0/33\n    - proxy.example.com\n    - fd00::/8\n",
    );
    assert_eq!(
        dir.errors(),
        [
            "main.yaml:4: security.trusted_proxies[1]: a prefix length is at most 32 for this address, found \"10.0.0.0/33\"",
            "main.yaml:5: security.trusted_proxies[2]: expected an IP address or a network such as 10.0.0.0/8 or fd00::/8, found \"proxy.example.com\"",
        ]
    );
    dir.write(
        "main.yaml",
        "security:\n  trusted_proxies: [127.0.0.1, \"::1\", 10.0.0.0/8]\n",
    );
    assert!(dir.errors().is_empty(), "{:?}", dir.errors());
}

#[test]
fn images_and_shells_are_checked_before_the_engine_sees_them() {
    let dir = Dir::bare();
    let hex = "ab".repeat(32);
    let good = [
        "debian:12".to_owned(),
        "berth-test/base".to_owned(),
        "localhost:5000/x".to_owned(),
        format!("ghcr.io/org/img:1.2@sha256:{hex}"),
    ];
    let mut text = String::from("templates:\n");
    for (i, image) in good.iter().enumerate() {
        text.push_str(&format!("  - name: ok{i}\n    image: \"{image}\"\n"));
    }
    let bad = [
        "--privileged",
        "debian --privileged",
        "debian|sh",
        "../x",
        "Debian:12",
        "",
        "debian@sha256:abc",
    ];
    for (i, image) in bad.iter().enumerate() {
        text.push_str(&format!("  - name: bad{i}\n    image: \"{image}\"\n"));
    }
    for (i, shell) in ["--privileged", "/bin/sh -c id", "/bin/sh|nc", "bash"]
        .iter()
        .enumerate()
    {
        text.push_str(&format!(
            "  - name: shell{i}\n    image: debian\n    shell: \"{shell}\"\n"
        ));
    }
    dir.write("containers.yaml", &text);
    let errors = dir.error_list();
    let fields: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
    let mut expected: Vec<String> = (0..bad.len())
        .map(|i| format!("templates[{}].image", good.len() + i))
        .collect();
    expected.extend((0..4).map(|i| format!("templates[{}].shell", good.len() + bad.len() + i)));
    assert_eq!(fields, expected, "{errors:#?}");
    assert!(
        errors[0]
            .message
            .contains("expected an image reference such as"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_shell_with_arguments_is_a_list_checked_word_by_word() {
    let dir = Dir::bare();
    dir.write(
        "containers.yaml",
        "templates:\n\
         \x20 - name: ok0\n    image: debian\n    shell: [/bin/bash, --norc]\n\
         \x20 - name: ok1\n    image: debian\n    shell: [/usr/bin/fish, --login, -C, \"echo hi | cat\"]\n\
         \x20 - name: ok2\n    image: debian\n    shell: [/bin/zsh]\n\
         \x20 - name: bad0\n    image: debian\n    shell: []\n\
         \x20 - name: bad1\n    image: debian\n    shell: [bash, -l]\n\
         \x20 - name: bad2\n    image: debian\n    shell: [/bin/bash, \"a\\tb\"]\n\
         \x20 - name: bad3\n    image: debian\n    shell: {program: /bin/bash}\n",
    );
    let errors = dir.error_list();
    let fields: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        fields,
        [
            "templates[3].shell",
            "templates[4].shell[0]",
            "templates[5].shell[1]",
            "templates[6].shell"
        ],
        "{errors:#?}"
    );
    assert!(errors[0].message.contains("empty list"), "{}", errors[0]);
    assert!(errors[1].message.contains("absolute path"), "{}", errors[1]);
    assert!(
        errors[2].message.contains("control characters"),
        "{}",
        errors[2]
    );
    // A valid list survives a write unchanged; a one-word list is written as a string.
    let config = Dir::bare();
    config.write(
        "containers.yaml",
        "templates:\n  - name: ok\n    image: debian\n    shell: [/bin/bash, --norc]\n  - name: one\n    image: debian\n    shell: [/bin/zsh]\n",
    );
    let loaded = berth_config::check(config.path()).unwrap();
    let ok = loaded.template("ok").unwrap();
    assert_eq!(ok.shell.argv(), ["/bin/bash", "--norc"]);
    assert_eq!(
        serde_json::to_value(&ok.shell).unwrap(),
        serde_json::json!(["/bin/bash", "--norc"])
    );
    let one = loaded.template("one").unwrap();
    assert_eq!(
        serde_json::to_value(&one.shell).unwrap(),
        serde_json::json!("/bin/zsh")
    );
}

#[test]
fn the_fleet_section_is_checked_field_by_field() {
    let dir = Dir::valid();
    dir.write(
        "main.yaml",
        "fleet:\n  repository: ssh://git@git.example.invalid:2222/ops/fleet.git\n  branch: release/1\n  sync_interval: 5s\n  keys_dir: /etc/berth/fleet-keys\n  health_interval: 1m\n  connect_timeout: 10s\n  connect_retries: 0\n  client_id_path: /etc/berth/client_id\n  trust_on_first_use: true\n  max_concurrency: 100\n",
    );
    let config = berth_config::check(dir.path()).unwrap();
    assert_eq!(config.main.fleet.max_concurrency, 100);
    assert!(config.main.fleet.trust_on_first_use);
    // Defaults when the section is left out.
    let defaults = berth_config::Fleet::default();
    assert_eq!(
        (
            defaults.branch.as_str(),
            defaults.sync_interval.as_secs(),
            defaults.connect_retries
        ),
        ("main", 300, 3)
    );
    assert_eq!(defaults.repository, None);

    dir.write(
        "main.yaml",
        "fleet:\n  repository: https://deploy:hunter2@git.example.invalid/ops/fleet.git\n  branch: --upload-pack=x\n  sync_interval: 1s\n  keys_dir: keys\n  health_interval: 2s\n  connect_timeout: 1h\n  client_id_path: etc/client_id\n",
    );
    let errors = dir.errors();
    for part in [
        "main.yaml:2: fleet.repository: the repository URL carries a password",
        "main.yaml:3: fleet.branch: not a valid branch name",
        "main.yaml:4: fleet.sync_interval: at least 5s",
        "main.yaml:5: fleet.keys_dir",
        "main.yaml:6: fleet.health_interval: at least 5s",
        "main.yaml:7: fleet.connect_timeout: at most 10m",
        "main.yaml:8: fleet.client_id_path",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(part)),
            "no {part:?} in {errors:#?}"
        );
    }
    assert!(
        errors.iter().all(|e| !e.contains("hunter2")),
        "the password is echoed: {errors:#?}"
    );
    for (key, value) in [
        ("connect_retries", "11"),
        ("max_concurrency", "0"),
        ("repository", "git@git.example.invalid:ops/fleet.git"),
        ("repository", "ext::sh -c id"),
    ] {
        dir.write("main.yaml", &format!("fleet:\n  {key}: {value}\n"));
        let errors = dir.errors();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("main.yaml:2: fleet.{key}"))),
            "{key}: {value}: {errors:#?}"
        );
    }
}

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL6ntyLn0+ksLPMTcEM1DytJC+gY1CUqLiExrDS3YTSO alice@laptop";

#[test]
fn ssh_keys_are_parsed_and_bad_ones_refused_with_their_line() {
    let dir = Dir::valid();
    dir.write(
        "users.yaml",
        &format!("users:\n  - username: alice\n    id: {ALICE_ID}\n    ssh_keys:\n      - {KEY}\n"),
    );
    let config = berth_config::check(dir.path()).unwrap();
    let alice = config.user("alice").unwrap();
    assert_eq!(
        alice.ssh_keys[0].fingerprint(),
        "SHA256:TavkIFzWzFE5zX++FZcybHRnucQV7dtiaMKyOdQeUHU"
    );

    dir.write(
        "users.yaml",
        &format!(
            "users:\n  - username: alice\n    id: {ALICE_ID}\n    ssh_keys:\n      - {KEY}\n      - ssh-dss AAAAB3NzaC1kc3MAAACBAP\n      - \"-----BEGIN OPENSSH PRIVATE KEY-----\"\n      - ssh-ed25519 AAAA!!\n  - username: bob\n    id: {BOB_ID}\n    ssh_keys: [{KEY}, \"{KEY} again\"]\n"
        ),
    );
    let errors = dir.errors();
    assert_error(
        &errors,
        &["users.yaml:6", "unsupported key type \"ssh-dss\""],
    );
    assert_error(&errors, &["users.yaml:7", "private key"]);
    assert_error(&errors, &["users.yaml:8", "not an OpenSSH public key"]);

    dir.write(
        "users.yaml",
        &format!(
            "users:\n  - username: bob\n    id: {BOB_ID}\n    ssh_keys:\n      - {KEY}\n      - \"{KEY} again\"\n"
        ),
    );
    assert_eq!(
        dir.errors(),
        [
            "users.yaml:6: users[0].ssh_keys[1]: duplicate SSH key SHA256:TavkIFzWzFE5zX++FZcybHRnucQV7dtiaMKyOdQeUHU (first defined at line 5)"
        ]
    );
}

#[test]
fn the_ssh_section_has_defaults_and_refuses_bad_values() {
    let dir = Dir::valid();
    let ssh = berth_config::check(dir.path()).unwrap().main.ssh;
    assert_eq!(ssh, berth_config::Ssh::default());
    assert_eq!(ssh.listen, None, "off by default");
    assert_eq!(ssh.login_timeout.to_string(), "30s");
    assert_eq!(ssh.keepalive.to_string(), "30s");
    assert_eq!(
        (
            ssh.max_auth_attempts,
            ssh.max_connections,
            ssh.max_connections_per_address
        ),
        (6, 256, 16)
    );
    dir.write(
        "main.yaml",
        "ssh:\n  listen: 127.0.0.1:2222\n  host_key: /etc/berth/ssh_host_key\n  public_address: lab.example.com:2222\n",
    );
    let ssh = berth_config::check(dir.path()).unwrap().main.ssh;
    assert_eq!(ssh.listen.unwrap().port(), 2222);
    assert_eq!(ssh.public_address.as_deref(), Some("lab.example.com:2222"));

    dir.write(
        "main.yaml",
        "ssh:\n  listen: 2222\n  host_key: relative/key\n  public_address: alice@lab\n  login_timeout: 11m\n  max_auth_attempts: 0\n  max_connections: 10\n  max_connections_per_address: 20\n  keepalive: 2h\n",
    );
    let errors = dir.errors();
    assert_error(&errors, &["main.yaml:2", "ssh.listen"]);
    assert_error(&errors, &["main.yaml:3", "ssh.host_key"]);
    assert_error(&errors, &["main.yaml:4", "ssh.public_address", "alice@lab"]);
    assert_error(&errors, &["main.yaml:5", "ssh.login_timeout", "1s to 10m"]);
    assert_error(
        &errors,
        &["main.yaml:6", "ssh.max_auth_attempts", "from 1 to 64"],
    );
    assert_error(
        &errors,
        &[
            "main.yaml:8",
            "ssh.max_connections_per_address",
            "more than max_connections",
        ],
    );
    assert_error(&errors, &["main.yaml:9", "ssh.keepalive", "1s to 1h"]);
}
