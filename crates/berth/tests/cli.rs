//! The `berth` CLI as a process against a real `berth serve` and Docker Engine: login, config
//! file, listing, start, stop, rm, persist/net, config fetch/show, errors and usage.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::{CliHome, Server, both, require_engine};

#[test]
fn usage_errors_exit_with_status_2_and_help_has_examples() {
    let cli = CliHome::new();
    for args in [
        &["frobnicate"][..],
        &["start"],
        &["login"],
        &["persist", "x", "maybe"],
        &["completions", "tcsh"],
        &["agent", "--interval", "soon"],
        &["login", "http://h", "--password-stdin"],
        &["config", "show", "--yaml"],
    ] {
        let output = cli.run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", both(&output));
    }
    let help = cli.ok(&["--help"]);
    assert!(
        help.contains("Examples:") && help.contains("berth login"),
        "{help}"
    );
    for command in [
        "login",
        "ls",
        "start",
        "stop",
        "rm",
        "attach",
        "persist",
        "net",
        "completions",
        "agent",
    ] {
        let help = cli.ok(&[command, "--help"]);
        assert!(
            help.contains("Examples:"),
            "berth {command} --help:\n{help}"
        );
    }
    for (command, help) in [
        ("config", "fetch"),
        ("config", "check"),
        ("config", "schema"),
    ] {
        let text = cli.ok(&[command, "--help"]);
        assert!(text.contains(help), "{text}");
    }
    let help = cli.ok(&["attach", "--help"]);
    assert!(
        help.contains("Ctrl-] then d"),
        "the detach keys are documented: {help}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = cli.ok(&["completions", shell]);
        assert!(
            script.contains("berth") && script.contains("attach"),
            "{shell}"
        );
    }
}

#[test]
fn commands_before_login_say_how_to_log_in() {
    let cli = CliHome::new();
    let log = cli.dir.path().join("agent.log");
    let log = log.to_str().unwrap();
    for args in [
        &["ls"][..],
        &["start", "base"],
        &["config", "fetch"],
        &["agent", "--log-file", log],
    ] {
        let output = cli.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", both(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("not logged in") && stderr.contains("berth login SERVER"),
            "{args:?}: {stderr}"
        );
    }
    let output = cli.run(&["config", "show"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("berth config fetch"), "{stderr}");
}

#[test]
fn an_unreachable_server_and_a_refused_token_read_as_what_to_do() {
    let cli = CliHome::new();
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = cli.run_with_stdin(
        &[
            "login",
            &format!("127.0.0.1:{port}"),
            "--username",
            "alice",
            "--password-stdin",
        ],
        "pw\n",
    );
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot reach http://127.0.0.1:{port} (connection refused)"
        )) && stderr.contains("hint: is `berth serve` running"),
        "{stderr}"
    );

    // A config.yaml with a token the server never issued.
    fs::create_dir_all(cli.config_file().parent().unwrap()).unwrap();
    fs::write(
        cli.config_file(),
        format!(
            "server: http://127.0.0.1:{port}\nclient_id: 7b0e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d\n\
             token: 0b6c2c1e-1111-4222-8333-444455556666\n"
        ),
    )
    .unwrap();
    let output = cli.run(&["ls"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("connection refused"), "{stderr}");

    require_engine();
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    fs::write(
        cli.config_file(),
        format!(
            "server: {}\nclient_id: 7b0e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d\n\
             token: 0b6c2c1e-1111-4222-8333-444455556666\n",
            server.url()
        ),
    )
    .unwrap();
    let output = cli.run(&["ls"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("your token was refused")
            && stderr.contains(&format!("berth login {}", server.url())),
        "{stderr}"
    );

    let output = cli.run_with_stdin(
        &[
            "login",
            &server.url(),
            "--username",
            "admin",
            "--password-stdin",
        ],
        "not the password\n",
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("wrong username or password"), "{stderr}");
}

#[test]
fn a_corrupt_config_file_is_reported_and_login_repairs_it_keeping_the_client_id() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let admin = server.admin();
    admin.create_user("alice", "alice's long password", &["base"]);
    let cli = CliHome::new();
    let file = cli.config_file();
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    let client_id = "7b0e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
    fs::write(
        &file,
        format!(
            "server: {}\nclient_id: {client_id}\ntoken: [unclosed\n",
            server.url()
        ),
    )
    .unwrap();
    let output = cli.run(&["ls"]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("~/config/berth/config.yaml is not valid YAML (line 3)")
            && stderr.contains("run `berth login SERVER` to repair it"),
        "{stderr}"
    );

    cli.login(&server, "alice", "alice's long password");
    let settings = cli.settings();
    assert_eq!(settings["client_id"], client_id, "the client id is kept");
    assert_eq!(settings["server"], server.url());
    assert_eq!(settings["username"], "alice");
    assert!(settings.contains_key("token_client_id"), "{settings:?}");
    assert!(
        !settings.contains_key("token_expires_at"),
        "a client token does not expire"
    );
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("alice's long password"),
        "the password is never stored"
    );
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    cli.ok(&["ls"]);

    // A missing client id cannot be kept: a new one is made.
    fs::write(&file, "{{{{\n").unwrap();
    cli.login(&server, "alice", "alice's long password");
    let again = cli.settings();
    assert_ne!(again["client_id"], client_id);
    assert!(again["client_id"].parse::<berth_types::ClientId>().is_ok());
}

#[test]
fn login_ls_start_stop_and_rm_against_a_real_server() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let admin = server.admin();
    admin.create_user("alice", "correct horse battery", &["base"]);
    let cli = CliHome::new();
    cli.login(&server, "alice", "correct horse battery");
    let dir = cli.config_file().parent().unwrap().to_owned();
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // The stored token is a client token of alice's, labelled with this machine's name.
    let alice = common::block_on(admin.client.user("alice")).unwrap();
    assert_eq!(alice.clients.len(), 1);
    assert_eq!(
        alice.clients[0].id.to_string(),
        cli.settings()["token_client_id"]
    );
    // Logging in again replaces the token rather than piling them up.
    cli.login(&server, "alice", "correct horse battery");
    let alice = common::block_on(admin.client.user("alice")).unwrap();
    assert_eq!(alice.clients.len(), 1, "{:?}", alice.clients);

    let listing = cli.json(&["ls"]);
    assert_eq!(listing["templates"][0]["name"], "base", "{listing}");
    assert_eq!(listing["workspaces"], serde_json::json!([]));
    let table = cli.ok(&["ls"]);
    assert!(
        table.contains("TEMPLATE") && table.contains("No workspaces"),
        "{table}"
    );

    let id = cli.ok(&["start", "base"]).trim().to_owned();
    assert!(id.parse::<berth_types::WorkspaceId>().is_ok(), "{id}");
    let listing = cli.json(&["ls"]);
    assert_eq!(listing["workspaces"][0]["id"], id.as_str());
    assert_eq!(listing["workspaces"][0]["state"], "running");
    let table = cli.ok(&["ls"]);
    assert!(
        table.contains(&id[..8]) && table.contains("running"),
        "{table}"
    );

    let output = cli.run(&["stop", "nothing-like-it"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("berth ls"),
        "{}",
        both(&output)
    );
    // The template's name stands for the one live workspace of it.
    cli.ok(&["stop", "base"]);
    let listing = cli.json(&["ls"]);
    assert_eq!(listing["workspaces"][0]["state"], "stopped", "{listing}");
    // A stopped workspace is no longer live: the name matches nothing to stop.
    assert_eq!(cli.run(&["stop", "base"]).status.code(), Some(1));

    let second = cli.ok(&["start", "base"]).trim().to_owned();
    cli.ok(&["rm", &id[..6]]);
    cli.ok(&["rm", &second]);
    assert_eq!(cli.json(&["ls"])["workspaces"], serde_json::json!([]));

    // The main.yaml admin has no client tokens: the login token is kept, with its expiry.
    let admin_cli = CliHome::new();
    admin_cli.login(&server, "admin", &admin.password);
    assert!(admin_cli.settings().contains_key("token_expires_at"));
    let listing = admin_cli.json(&["ls", "--all"]);
    assert!(listing["templates"].as_array().is_some(), "{listing}");
}

#[test]
fn config_fetch_caches_what_the_server_says_and_show_prints_it() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let admin = server.admin();
    admin.create_user("alice", "correct horse battery", &["base"]);
    let cli = CliHome::new();
    cli.login(&server, "alice", "correct horse battery");
    cli.ok(&["config", "fetch"]);
    let cache = cli.dir.path().join("cache/berth/config.json");
    assert!(cache.exists());
    let shown = cli.json(&["config", "show"]);
    assert_eq!(shown["server"], server.url());
    assert_eq!(shown["config"]["user"]["username"], "alice");
    let names = |shown: &serde_json::Value| -> Vec<String> {
        shown["config"]["templates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&shown), ["base"]);

    // A change on the server shows after the next fetch.
    let mut python = berth_client::Template::new("python", "berth-test/base");
    python.description = "Python, say".into();
    admin.create_template(&python);
    let mut body = berth_client::api::UserBody {
        username: berth_types::Username::new("alice").unwrap(),
        role: berth_types::Role::User,
        password: None,
        templates: vec!["base".into(), "python".into()],
        access_locked: false,
        disabled: false,
        metadata: Default::default(),
        machines: Vec::new(),
    };
    common::block_on(admin.client.update_user("alice", &body)).unwrap();
    assert_eq!(names(&cli.json(&["config", "show"])), ["base"], "cached");
    cli.ok(&["config", "fetch"]);
    assert_eq!(names(&cli.json(&["config", "show"])), ["base", "python"]);
    let text = cli.ok(&["config", "show"]);
    assert!(
        text.contains("alice") && text.contains("Python, say"),
        "{text}"
    );
    body.templates = vec!["base".into()];
    common::block_on(admin.client.update_user("alice", &body)).unwrap();

    fs::write(&cache, "{ not json").unwrap();
    let output = cli.run(&["config", "show"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("berth config fetch"),
        "{}",
        both(&output)
    );
}

#[test]
fn persist_and_net_replace_the_workspace_only_when_told_to() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let admin = server.admin();
    let mut hosty = berth_client::Template::new("hosty", "berth-test/base");
    hosty.networks = vec!["host".into()];
    admin.create_template(&hosty);
    admin.create_user("alice", "correct horse battery", &["base", "hosty"]);
    let cli = CliHome::new();
    cli.login(&server, "alice", "correct horse battery");
    let first = cli.ok(&["start", "hosty"]).trim().to_owned();

    let output = cli.run(&["persist", &first, "on"]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ephemeral") && stderr.contains("--yes"),
        "{stderr}"
    );
    assert_eq!(
        cli.json(&["ls"])["workspaces"][0]["id"],
        first.as_str(),
        "unchanged"
    );

    let second = cli
        .ok(&["persist", &first, "on", "--yes"])
        .trim()
        .to_owned();
    assert_ne!(second, first);
    let listing = cli.json(&["ls"]);
    let workspaces = listing["workspaces"].as_array().unwrap();
    assert_eq!(workspaces.len(), 1, "{listing}");
    assert_eq!(workspaces[0]["id"], second.as_str());
    assert_eq!(workspaces[0]["persistent"], true);

    let output = cli.run(&["net", "hosty", "bridge", "--yes"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("allowed: none, host"), "{stderr}");

    let third = cli.ok(&["net", "hosty", "host", "--yes"]).trim().to_owned();
    let listing = cli.json(&["ls"]);
    assert_eq!(listing["workspaces"][0]["id"], third.as_str());
    assert_eq!(listing["workspaces"][0]["network"], "host");
    assert_eq!(listing["workspaces"][0]["persistent"], true, "kept");

    let output = cli.run(&["net", &third, "host"]);
    assert!(output.status.success(), "{}", both(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to do"));

    let output = cli.run(&["persist", "base", "on", "--yes"]);
    assert_eq!(output.status.code(), Some(1), "no workspace of base");
    cli.ok(&["rm", &third]);
}

#[test]
fn the_password_prompt_does_not_echo_what_is_typed() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    server
        .admin()
        .create_user("alice", "a password nobody sees", &["base"]);
    let cli = CliHome::new();
    // `script` gives berth a controlling terminal, so /dev/tty is the terminal the test types on.
    let mut script = cli.with_env(std::process::Command::new("script"));
    script
        .arg("-qfec")
        .arg(format!(
            "{} login {} --username alice",
            env!("CARGO_BIN_EXE_berth"),
            server.url()
        ))
        .arg("/dev/null");
    let (mut child, mut pty) = common::Pty::spawn(script);
    pty.wait_for(
        "Password for alice",
        None,
        std::time::Duration::from_secs(30),
    );
    pty.type_text(b"a password nobody sees\r");
    let status = common::wait_child(&mut child, std::time::Duration::from_secs(30));
    assert!(status.success(), "{}", pty.seen());
    let seen = pty.seen();
    assert!(seen.contains("Logged in"), "{seen}");
    assert!(
        !seen.contains("nobody sees"),
        "the password was echoed:\n{seen}"
    );
    assert!(cli.settings().contains_key("token_client_id"));
}
