//! First start: the commented defaults, the admin account, and what they document.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use berth_config::{Verification, init, verify_password};

const FILES: [&str; 3] = ["main.yaml", "users.yaml", "containers.yaml"];

#[test]
fn init_writes_commented_defaults_and_an_admin_with_a_random_password() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("config");
    let admin = init(&dir)
        .unwrap()
        .expect("the first call creates the admin");
    assert_eq!(admin.username.as_str(), "admin");
    let password = admin.password.expose().to_owned();
    assert!(password.chars().count() >= 24, "{password}");
    assert!(
        !format!("{admin:?}").contains(&password),
        "Debug redacts the password"
    );

    for file in FILES {
        let text = fs::read_to_string(dir.join(file)).unwrap();
        assert!(
            text.starts_with("# Berth: "),
            "{file} opens with its documentation"
        );
        assert!(!text.contains(&password), "{file} never holds the password");
        let mode = fs::metadata(dir.join(file)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} is private");
    }
    let config = berth_config::check(&dir).expect("the defaults are valid");
    let hash = config.main.admin.password_hash.as_ref().unwrap();
    assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert_eq!(
        verify_password(hash.as_str(), &password),
        Verification::Valid
    );
    assert_eq!(config.templates.len(), 1);
    assert_eq!(
        (
            config.templates[0].name.as_str(),
            config.templates[0].image.as_str()
        ),
        ("base", "berth-test/base")
    );
    assert!(config.users.is_empty());
    let mut defaults = config.main.clone();
    defaults.admin.password_hash = None;
    assert_eq!(
        defaults,
        berth_config::MainConfig::default(),
        "main.yaml shows the defaults of the code"
    );
}

#[test]
fn a_second_init_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path()).unwrap().unwrap();
    let before: Vec<String> = FILES
        .iter()
        .map(|f| fs::read_to_string(dir.path().join(f)).unwrap())
        .collect();
    assert!(init(dir.path()).unwrap().is_none());
    let after: Vec<String> = FILES
        .iter()
        .map(|f| fs::read_to_string(dir.path().join(f)).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn existing_files_are_never_overwritten() {
    let dir = common::Dir::valid();
    fs::remove_file(dir.file("users.yaml")).unwrap();
    assert!(
        init(dir.path()).unwrap().is_none(),
        "main.yaml exists: no new admin"
    );
    assert_eq!(dir.read("main.yaml"), common::MAIN);
    assert_eq!(dir.read("containers.yaml"), common::CONTAINERS);
    assert!(
        dir.read("users.yaml").starts_with("# Berth: users.yaml"),
        "the missing file is written"
    );

    fs::remove_file(dir.file("main.yaml")).unwrap();
    assert!(
        init(dir.path()).unwrap().is_some(),
        "a missing main.yaml gets an admin"
    );
    assert_eq!(dir.read("containers.yaml"), common::CONTAINERS);
}

/// The property names of a definition of the JSON Schema.
fn fields(schema: &serde_json::Value, definition: &str) -> Vec<String> {
    schema["$defs"][definition]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no definition {definition}"))
        .keys()
        .cloned()
        .collect()
}

#[test]
fn the_defaults_document_every_field() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path()).unwrap();
    let schema = berth_config::json_schema();
    let documented = [
        (
            "main.yaml",
            &[
                "MainConfig",
                "Tls",
                "Admin",
                "Logging",
                "Runtime",
                "Security",
                "Clusters",
                "Registration",
                "RegistrationDefaults",
            ][..],
        ),
        ("containers.yaml", &["Template", "Volume", "BindMount"][..]),
        ("users.yaml", &["User", "ClientToken", "UserOverrides"][..]),
    ];
    for (file, definitions) in documented {
        let text = fs::read_to_string(dir.path().join(file)).unwrap();
        for definition in definitions {
            // `containers` is the older name of `templates`, mentioned beside it.
            for field in fields(&schema, definition)
                .into_iter()
                .filter(|f| f != "containers")
            {
                assert!(
                    text.contains(&format!(" {field}:")) || text.contains(&format!("\n{field}:")),
                    "{file} does not document {definition}.{field}"
                );
            }
        }
    }
}

/// The example blocks of a comment: runs of lines starting with `#   `, uncommented.
fn examples(text: &str) -> Vec<String> {
    let mut blocks = vec![String::new()];
    for line in text.lines() {
        match line.strip_prefix("# ") {
            Some(body) if body.starts_with("  ") => {
                let block = blocks.last_mut().unwrap();
                block.push_str(body);
                block.push('\n');
            }
            _ if !blocks.last().unwrap().is_empty() => blocks.push(String::new()),
            _ => {}
        }
    }
    blocks.retain(|b| !b.is_empty());
    blocks
}

#[test]
fn the_commented_examples_are_valid() {
    let home = tempfile::tempdir().unwrap();
    init(home.path()).unwrap();
    let containers_examples =
        examples(&fs::read_to_string(home.path().join("containers.yaml")).unwrap());
    let users_examples = examples(&fs::read_to_string(home.path().join("users.yaml")).unwrap());
    assert_eq!((containers_examples.len(), users_examples.len()), (1, 2));

    let dir = common::Dir::valid();
    dir.write(
        "main.yaml",
        "runtime:\n  allowed_bind_mounts: [/srv/datasets]\n",
    );
    dir.write(
        "containers.yaml",
        &format!(
            "templates:\n{}  - name: base\n    image: x\n  - name: gpu\n    image: y\n",
            containers_examples[0]
        ),
    );
    let user: String = users_examples[0]
        .lines()
        .filter(|l| !l.contains("password_hash"))
        .map(|l| format!("{l}\n"))
        .collect();
    dir.write("users.yaml", &format!("users:\n{user}"));
    dir.write("users.d/alice.yaml", &users_examples[1]);
    let config = berth_config::check(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let python = config.template("python").unwrap();
    assert_eq!(python.bind_mounts[0].source.to_str(), Some("/srv/datasets"));
    assert_eq!(python.max_per_user, Some(1));
    let alice = config.user("alice").unwrap();
    assert_eq!(alice.client_tokens[0].label.as_deref(), Some("laptop"));
    assert_eq!(config.overrides("alice").unwrap().templates, ["gpu"]);
}

#[test]
fn the_commented_options_of_main_yaml_are_valid_when_uncommented() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path()).unwrap();
    let text = fs::read_to_string(dir.path().join("main.yaml")).unwrap();
    let mut uncommented = String::new();
    let mut continuing = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start().strip_prefix("# ");
        let is_key = body.is_some_and(|b| {
            b.split_once(':').is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            })
        });
        match body {
            Some(body) if is_key || (continuing && body.starts_with("  ")) => {
                uncommented.push_str(&" ".repeat(indent));
                uncommented.push_str(body);
                continuing = true;
            }
            _ => {
                uncommented.push_str(line);
                continuing = false;
            }
        }
        uncommented.push('\n');
    }
    fs::write(dir.path().join("main.yaml"), &uncommented).unwrap();
    let config = berth_config::check(dir.path()).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    assert!(config.main.public_url.is_some() && config.main.tls.is_some());
    assert!(config.main.database.is_some() && config.main.runtime.docker_socket.is_some());
    assert_eq!(
        config.main.clusters,
        berth_config::Clusters::default(),
        "the clusters block shows the defaults"
    );
    assert_eq!(
        config.main.registration,
        berth_config::Registration::default(),
        "the registration block shows the defaults"
    );
    assert!(uncommented.contains("\nclusters:\n") && uncommented.contains("\nregistration:\n"));
}
