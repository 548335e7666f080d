//! Changes through `ConfigStore`, checked by reading the files back from disk.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use berth_config::{
    BindMount, ConfigStore, NewUser, PasswordHash, Persist, StoreError, Template, UserOverrides,
    Volume, verify_client_token,
};
use berth_types::{Role, Username};
use common::{Dir, HASH};

fn store(dir: &Dir) -> ConfigStore {
    ConfigStore::open(dir.path()).unwrap()
}

fn name(s: &str) -> Username {
    Username::new(s).unwrap()
}

/// The configuration as a fresh reader sees it on disk.
fn on_disk(dir: &Dir) -> berth_config::Config {
    berth_config::check(dir.path()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn add_user_persists_with_a_generated_id_and_keeps_the_header() {
    let dir = Dir::valid();
    dir.write(
        "users.yaml",
        &format!(
            "# Our users. Ask Kim before adding one.\n\n{}# trailing comment\n",
            common::users_yaml()
        ),
    );
    let mut new = NewUser::new(name("carol"));
    new.password_hash = Some(PasswordHash::from_phc(HASH).unwrap());
    new.templates = vec!["python".into()];
    new.metadata.insert("team".into(), "yes".into());
    let carol = store(&dir).add_user(new).unwrap();

    let text = dir.read("users.yaml");
    assert!(
        text.starts_with("# Our users. Ask Kim before adding one.\n\nusers:\n"),
        "{text}"
    );
    assert!(text.contains("  - username: carol\n"), "{text}");
    assert!(text.contains(&format!("id: {}", carol.id)), "{text}");
    assert!(
        text.contains("team: \"yes\""),
        "a string that YAML 1.1 reads as a boolean is quoted: {text}"
    );
    let config = on_disk(&dir);
    assert_eq!(config.users.len(), 3);
    assert_eq!(config.user("carol"), Some(&carol));
    assert_eq!(config.user("carol").unwrap().metadata["team"], "yes");
}

#[test]
fn refused_user_changes_name_the_problem_and_write_nothing() {
    let dir = Dir::valid();
    let before = dir.read("users.yaml");
    let store = store(&dir);
    let err = store.add_user(NewUser::new(name("alice"))).unwrap_err();
    assert_eq!(err.to_string(), "a user \"alice\" already exists");
    let mut new = NewUser::new(name("carol"));
    new.templates = vec!["gpu".into()];
    let err = store.add_user(new).unwrap_err();
    let StoreError::Invalid(errors) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        errors.iter().next().unwrap().to_string(),
        "users.yaml: users[2].templates[0]: unknown template \"gpu\""
    );
    let err = store.add_user(NewUser::new(name("admin"))).unwrap_err();
    assert!(
        err.to_string()
            .contains("\"admin\" is the admin of main.yaml"),
        "{err}"
    );
    assert!(
        matches!(store.update_user("zed", |_| {}), Err(StoreError::NoSuchUser(n)) if n == "zed")
    );
    assert_eq!(dir.read("users.yaml"), before, "nothing was written");
}

#[test]
fn update_user_changes_what_the_edit_changes() {
    let dir = Dir::valid();
    let store = store(&dir);
    let hash = PasswordHash::from_phc(HASH).unwrap();
    let alice = store
        .update_user("alice", |u| {
            u.password_hash = Some(hash.clone());
            u.templates.push("python".into());
            u.role = Role::Admin;
            u.disabled = true;
            u.metadata.insert("course".into(), "rust 101".into());
        })
        .unwrap();
    let config = on_disk(&dir);
    assert_eq!(config.user("alice"), Some(&alice));
    assert_eq!(alice.password_hash, Some(hash));
    assert_eq!(alice.templates, ["base", "python"]);
    assert!(alice.disabled && alice.role == Role::Admin);

    let err = store
        .update_user("alice", |u| u.id = berth_types::UserId::random())
        .unwrap_err();
    assert_eq!(err.to_string(), "a user's id never changes");
    store.issue_client_token("alice", None).unwrap();
    let err = store
        .update_user("alice", |u| u.client_tokens.clear())
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("client tokens are changed with issue_client_token"),
        "{err}"
    );
    let err = store
        .update_user("alice", |u| u.username = name("bob"))
        .unwrap_err();
    assert_eq!(err.to_string(), "a user \"bob\" already exists");
}

#[test]
fn locked_access_cannot_be_changed_but_other_fields_can() {
    let dir = Dir::valid();
    dir.write(
        "users.yaml",
        &common::users_yaml().replace(
            "    templates: [base]\n",
            "    templates: [base]\n    access_locked: true\n",
        ),
    );
    dir.write("users.d/alice.yaml", "templates: [python]\n");
    let before = dir.read("users.yaml");
    let store = store(&dir);
    let err = store
        .update_user("alice", |u| u.templates.clear())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the access of \"alice\" is locked (access_locked: true in users.yaml): its templates cannot be changed \
         here; edit users.yaml to change it"
    );
    assert!(matches!(
        store.update_user("alice", |u| u.role = Role::Admin),
        Err(StoreError::AccessLocked { what: "role", .. })
    ));
    assert!(matches!(
        store.update_user("alice", |u| u.access_locked = false),
        Err(StoreError::AccessLocked {
            what: "access_locked flag",
            ..
        })
    ));
    let err = store.set_user_overrides("alice", None).unwrap_err();
    assert!(matches!(err, StoreError::AccessLocked { .. }), "{err}");
    assert_eq!(dir.read("users.yaml"), before);

    store
        .update_user("alice", |u| {
            u.metadata
                .insert("email".into(), "alice@example.com".into());
        })
        .unwrap();
    let overrides = UserOverrides {
        templates: vec!["python".into()],
        max_workspaces: Some(9),
        ..Default::default()
    };
    store.set_user_overrides("alice", Some(overrides)).unwrap();
    let config = on_disk(&dir);
    assert_eq!(
        config.user("alice").unwrap().metadata["email"],
        "alice@example.com"
    );
    assert_eq!(config.max_workspaces("alice"), 9);
}

#[test]
fn overrides_follow_renames_and_removals() {
    let dir = Dir::valid();
    let store = store(&dir);
    let overrides = UserOverrides {
        max_workspaces: Some(5),
        templates: vec!["python".into()],
        memory: Some("4g".parse().unwrap()),
        cpus: Some(1.5),
    };
    store
        .set_user_overrides("alice", Some(overrides.clone()))
        .unwrap();
    assert!(
        dir.read("users.d/alice.yaml")
            .starts_with("# Berth: per-user overrides")
    );
    assert_eq!(on_disk(&dir).overrides("alice"), Some(&overrides));

    store
        .update_user("alice", |u| u.username = name("alicia"))
        .unwrap();
    assert!(!dir.file("users.d/alice.yaml").exists());
    let config = on_disk(&dir);
    assert_eq!(config.overrides("alicia"), Some(&overrides));
    assert_eq!(
        config.user("alicia").unwrap().id.to_string(),
        common::ALICE_ID,
        "the id survives the rename"
    );

    let removed = store.remove_user("alicia").unwrap();
    assert_eq!(removed.username.as_str(), "alicia");
    assert!(!dir.file("users.d/alicia.yaml").exists());
    let config = on_disk(&dir);
    assert!(config.user("alicia").is_none() && config.overrides.is_empty());
    assert!(!dir.read("users.yaml").contains("alicia"));
    assert!(matches!(
        store.remove_user("alicia"),
        Err(StoreError::NoSuchUser(_))
    ));
}

#[test]
fn client_tokens_are_issued_once_and_stored_hashed() {
    let dir = Dir::valid();
    let store = store(&dir);
    let first = store
        .issue_client_token("alice", Some("laptop".into()))
        .unwrap();
    let second = store.issue_client_token("alice", None).unwrap();
    let text = dir.read("users.yaml");
    assert!(!text.contains(first.token.expose()) && !text.contains(second.token.expose()));
    assert!(text.contains(&berth_config::hash_client_token(first.token.expose()).unwrap()));

    let config = on_disk(&dir);
    assert_eq!(
        verify_client_token(&config, first.token.expose())
            .unwrap()
            .username
            .as_str(),
        "alice"
    );
    let (_, client) = config.client_for_token(second.token.expose()).unwrap();
    assert_eq!(client.id, second.client_id);
    assert_eq!(
        config.user("alice").unwrap().client_tokens[0]
            .label
            .as_deref(),
        Some("laptop")
    );

    store.revoke_client_token("alice", first.client_id).unwrap();
    let config = on_disk(&dir);
    assert!(verify_client_token(&config, first.token.expose()).is_none());
    assert!(verify_client_token(&config, second.token.expose()).is_some());
    assert!(matches!(
        store.revoke_client_token("alice", first.client_id),
        Err(StoreError::NoSuchClient { .. })
    ));

    let reset = store
        .reset_client_tokens("alice", Some("new laptop".into()))
        .unwrap();
    let config = on_disk(&dir);
    assert!(verify_client_token(&config, second.token.expose()).is_none());
    assert_eq!(
        verify_client_token(&config, reset.token.expose())
            .unwrap()
            .username
            .as_str(),
        "alice"
    );
    assert_eq!(config.user("alice").unwrap().client_tokens.len(), 1);
}

fn full_template() -> Template {
    let mut t = Template::new("lab", "registry.local/lab:1.2");
    t.description =
        "Everything: \"quotes\", colons: yes, # not a comment\nand a second line".into();
    t.command = Some(vec!["sleep".into(), "infinity".into()]);
    t.shell = berth_config::Shell::new("/bin/zsh");
    t.env = BTreeMap::from([
        ("LANG".into(), "C.UTF-8".into()),
        ("EMPTY".into(), String::new()),
        ("N".into(), "007".into()),
    ]);
    t.volumes = vec![Volume {
        name: "home".into(),
        target: "/home/dev".into(),
        read_only: false,
    }];
    t.bind_mounts = vec![BindMount {
        source: "/srv/data/sets".into(),
        target: "/data".into(),
        read_only: true,
    }];
    t.workdir = Some("/home/dev".into());
    t.user = Some("1000:1000".into());
    t.hostname = Some("lab".into());
    t.network = "host".into();
    t.networks = vec!["none".into(), "berth-lab".into()];
    t.cpus = Some(1.25);
    t.memory = Some("1536m".parse().unwrap());
    t.pids_limit = Some(1024);
    t.cap_add = vec!["NET_RAW".into(), "SYS_PTRACE".into()];
    t.allow_dangerous_caps = true;
    t.read_only_root = true;
    t.shared = true;
    t.persist = Persist::Always;
    t.idle_timeout = Some("1h30m".parse().unwrap());
    t.ttl = Some("8h".parse().unwrap());
    t.record = false;
    t.max_per_user = Some(2);
    t
}

#[test]
fn templates_round_trip_every_field() {
    let dir = Dir::valid();
    let store = store(&dir);
    store.add_template(full_template()).unwrap();
    assert_eq!(on_disk(&dir).template("lab"), Some(&full_template()));
    let text = dir.read("containers.yaml");
    assert!(
        text.contains("  - name: lab\n")
            && text.contains("memory: 1536m")
            && text.contains("idle_timeout: 1h30m"),
        "{text}"
    );

    let updated = store
        .update_template("lab", |t| {
            t.pool = 0;
            t.shared = false;
            t.pool = 3;
            t.persist = Persist::Never;
        })
        .unwrap();
    assert_eq!(on_disk(&dir).template("lab"), Some(&updated));
    assert_eq!(updated.pool, 3);

    assert!(
        matches!(store.add_template(full_template()), Err(StoreError::TemplateExists(n)) if n == "lab")
    );
    let err = store
        .update_template("lab", |t| t.memory = None)
        .map(|_| ())
        .and_then(|()| {
            store
                .update_template("lab", |t| t.bind_mounts[0].source = "/etc".into())
                .map(|_| ())
        });
    let Err(StoreError::Invalid(errors)) = err else {
        panic!("{err:?}")
    };
    assert!(
        errors
            .to_string()
            .contains("/etc is not inside an allowed directory"),
        "{errors}"
    );
}

#[test]
fn templates_in_use_cannot_be_removed_or_renamed() {
    let dir = Dir::valid();
    dir.write("users.d/bob.yaml", "templates: [base]\n");
    let store = store(&dir);
    let err = store.remove_template("base").unwrap_err();
    assert_eq!(
        err.to_string(),
        "template \"base\" cannot be removed: alice, bob may start it (users.yaml or users.d); take it from them first"
    );
    let err = store
        .update_template("base", |t| t.name = "debian".into())
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("template \"base\" cannot be renamed: alice, bob"),
        "{err}"
    );
    assert!(on_disk(&dir).template("base").is_some());

    let python = store.remove_template("python").unwrap();
    assert_eq!(python.image, "berth-test/python");
    assert!(!dir.read("containers.yaml").contains("\n  - name: python"));
    assert!(on_disk(&dir).template("python").is_none());
    assert!(matches!(
        store.remove_template("python"),
        Err(StoreError::NoSuchTemplate(_))
    ));
    store
        .update_template("base", |t| t.description = "renamed below".into())
        .unwrap();
}

#[test]
fn admin_credentials_are_updated_in_place() {
    let dir = Dir::valid();
    dir.write("main.yaml", "# Production Berth.\nlisten: 0.0.0.0:443 # behind the firewall\nadmin:\n  username: admin\n  password_hash: \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI\" # set by init\nruntime:\n  allowed_bind_mounts: [/srv/data]\n");
    let store = store(&dir);
    let hash = PasswordHash::from_phc(HASH).unwrap();
    store
        .update_admin(|a| a.password_hash = Some(hash.clone()))
        .unwrap();
    let text = dir.read("main.yaml");
    assert_eq!(
        text,
        format!(
            "# Production Berth.\nlisten: 0.0.0.0:443 # behind the firewall\nadmin:\n  username: \"admin\"\n  password_hash: \"{HASH}\" # set by init\nruntime:\n  allowed_bind_mounts: [/srv/data]\n"
        )
    );
    assert_eq!(on_disk(&dir).main.admin.password_hash, Some(hash));

    // No hash to replace in place: the file is rendered whole, below its header.
    dir.write(
        "main.yaml",
        "# Mine.\nruntime:\n  allowed_bind_mounts: [/srv/data]\n",
    );
    store.update_admin(|a| a.username = name("root")).unwrap();
    let text = dir.read("main.yaml");
    assert!(text.starts_with("# Mine.\n\n"), "{text}");
    assert_eq!(on_disk(&dir).main.admin.username.as_str(), "root");
    assert_eq!(
        on_disk(&dir).main.runtime.allowed_bind_mounts,
        [std::path::PathBuf::from("/srv/data")]
    );

    let err = store
        .update_admin(|a| a.username = name("alice"))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("\"alice\" is the admin of main.yaml"),
        "{err}"
    );
}

#[test]
fn the_metrics_token_is_stored_hashed_and_keeps_main_yaml_comments() {
    // The commented main.yaml that `berth serve` writes on first start.
    let tmp = tempfile::tempdir().unwrap();
    berth_config::init(tmp.path()).unwrap();
    let store = ConfigStore::open(tmp.path()).unwrap();
    let before = std::fs::read_to_string(tmp.path().join("main.yaml")).unwrap();
    assert!(!store.load().unwrap().is_metrics_token("anything"));

    let token = store.issue_metrics_token().unwrap();
    let text = std::fs::read_to_string(tmp.path().join("main.yaml")).unwrap();
    let config = store.load().unwrap();
    let hash = config.main.security.metrics_token_hash.clone().unwrap();
    assert_eq!(hash.len(), 64);
    assert!(!text.contains(token.expose()), "only the hash is written");
    assert!(config.is_metrics_token(token.expose()));
    assert!(!config.is_metrics_token(&uuid::Uuid::new_v4().to_string()));
    assert!(!config.is_metrics_token("not a token"));
    // The default file's `null` is replaced; every comment stays.
    assert_eq!(
        text,
        before.replace(
            "  metrics_token_hash: null\n",
            &format!("  metrics_token_hash: \"{hash}\"\n")
        )
    );

    // A new token replaces the old one in place; removing it leaves `null`.
    let second = store.issue_metrics_token().unwrap();
    let config = store.load().unwrap();
    assert!(config.is_metrics_token(second.expose()));
    assert!(!config.is_metrics_token(token.expose()));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("main.yaml"))
            .unwrap()
            .lines()
            .count(),
        before.lines().count()
    );
    assert!(store.remove_metrics_token().unwrap());
    assert!(!store.remove_metrics_token().unwrap());
    let config = store.load().unwrap();
    assert_eq!(config.main.security.metrics_token_hash, None);
    assert!(!config.is_metrics_token(second.expose()));
    let text = std::fs::read_to_string(tmp.path().join("main.yaml")).unwrap();
    assert_eq!(text, before);

    // A hand-written security section without the key gets it as a new line, indented alike.
    let dir = Dir::valid();
    dir.write(
        "main.yaml",
        "security:\n    # Keep.\n    lockout_attempts: 3 # three\n",
    );
    let store = ConfigStore::open(dir.path()).unwrap();
    let token = store.issue_metrics_token().unwrap();
    let hash = on_disk(&dir).main.security.metrics_token_hash.unwrap();
    assert_eq!(
        dir.read("main.yaml"),
        format!(
            "security:\n    # Keep.\n    metrics_token_hash: \"{hash}\"\n    lockout_attempts: 3 # three\n"
        )
    );
    assert!(on_disk(&dir).is_metrics_token(token.expose()));

    // A main.yaml without a security section is rendered whole and still read back.
    let dir = Dir::valid();
    dir.write("main.yaml", "# Mine.\nlisten: 127.0.0.1:9000\n");
    let store = ConfigStore::open(dir.path()).unwrap();
    let token = store.issue_metrics_token().unwrap();
    assert!(on_disk(&dir).is_metrics_token(token.expose()));
    assert!(dir.read("main.yaml").starts_with("# Mine.\n"));
}

#[test]
fn a_malformed_metrics_token_hash_is_an_error_with_its_line() {
    let dir = Dir::valid();
    for bad in ["\"ABC\"", "\"secret-in-clear\"", "12"] {
        dir.write(
            "main.yaml",
            &format!("security:\n  metrics_token_hash: {bad}\n"),
        );
        common::assert_error(
            &dir.errors(),
            &[
                "main.yaml:2",
                "security.metrics_token_hash",
                "64 lowercase hex",
            ],
        );
    }
}

#[test]
fn an_invalid_directory_is_not_changed() {
    let dir = Dir::valid();
    dir.write("containers.yaml", "templates:\n  - name: base\n");
    let store = store(&dir);
    let err = store.issue_client_token("alice", None).unwrap_err();
    let StoreError::InvalidOnDisk(errors) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        errors.iter().next().unwrap().to_string(),
        "containers.yaml:2: templates[0]: missing field \"image\""
    );
    assert!(
        err.to_string()
            .starts_with("the configuration on disk is invalid; fix it first:\ncontainers.yaml:2:")
    );
    assert_eq!(dir.read("users.yaml"), common::users_yaml());
}

#[test]
fn open_refuses_a_missing_directory() {
    let err = ConfigStore::open("/nonexistent/berth/config").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/berth/config: not a directory"),
        "{err}"
    );
}

#[test]
fn awkward_strings_survive_a_save() {
    let dir = Dir::valid();
    let values = [
        "*alias",
        "&anchor",
        "!tag",
        "%x",
        "@x",
        "`x",
        "- x",
        "? x",
        ": x",
        "x: y",
        "x #y",
        "[a]",
        "{a}",
        "'",
        "\"",
        "\t",
        " lead",
        "trail ",
        "~",
        "",
        "0x10",
        "1e3",
        ".inf",
        "---",
        "...",
        "é",
        "\\",
        "yes",
        "No",
        "on",
        "null",
        "12:30",
        "2025-01-01",
        "a\nb\n",
        "\n",
        "#",
        "|",
        ">",
    ];
    let metadata: BTreeMap<String, String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("k{i:02}"), (*v).to_owned()))
        .collect();
    let saved = store(&dir)
        .update_user("alice", |u| u.metadata = metadata.clone())
        .unwrap();
    assert_eq!(saved.metadata, metadata);
    assert_eq!(on_disk(&dir).user("alice").unwrap().metadata, metadata);
}

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL6ntyLn0+ksLPMTcEM1DytJC+gY1CUqLiExrDS3YTSO alice@laptop";
const FINGERPRINT: &str = "SHA256:TavkIFzWzFE5zX++FZcybHRnucQV7dtiaMKyOdQeUHU";

#[test]
fn ssh_keys_are_added_on_one_line_and_removed_by_fingerprint() {
    let dir = Dir::valid();
    let store = store(&dir);
    let key = berth_config::SshKey::parse(KEY).unwrap();
    store.add_ssh_key("alice", key.clone()).unwrap();
    let text = dir.read("users.yaml");
    assert!(
        text.contains(&format!("\n      - {KEY}\n")),
        "one line, not folded: {text}"
    );
    assert_eq!(
        on_disk(&dir).user("alice").unwrap().ssh_keys,
        std::slice::from_ref(&key)
    );

    let same_key = berth_config::SshKey::parse(&format!("{} other-comment", &KEY[..80])).unwrap();
    assert!(matches!(
        store.add_ssh_key("alice", same_key),
        Err(StoreError::SshKeyExists { fingerprint, .. }) if fingerprint == FINGERPRINT
    ));
    assert!(matches!(
        store.add_ssh_key("nobody", key.clone()),
        Err(StoreError::NoSuchUser(_))
    ));
    assert!(matches!(
        store.update_user("alice", |u| u.ssh_keys.clear()),
        Err(StoreError::Unchangeable(_))
    ));
    assert!(matches!(
        store.remove_ssh_key("alice", "SHA256:nope"),
        Err(StoreError::NoSuchSshKey { .. })
    ));
    assert!(matches!(
        store.remove_ssh_key("bob", FINGERPRINT),
        Err(StoreError::NoSuchSshKey { .. })
    ));
    assert_eq!(store.remove_ssh_key("alice", FINGERPRINT).unwrap(), key);
    assert!(on_disk(&dir).user("alice").unwrap().ssh_keys.is_empty());
    assert!(!dir.read("users.yaml").contains("\n    ssh_keys:"));
}
