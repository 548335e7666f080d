//! The admin API for users and templates: CRUD through the configuration store, validation
//! errors with field paths, secrets never returned, every change audited.

use berth_config::Template;
use berth_types::api::{FilterOp, Secret, TableFilter, TableQuery, UserBody};
use berth_types::{Role, Username};
use http::Method;
use serde_json::json;

use crate::common::{TestServer, assert_api_error, assert_error, send_json};

fn user(name: &str) -> UserBody {
    UserBody {
        username: Username::new(name).unwrap(),
        role: Role::User,
        password: None,
        templates: Vec::new(),
        access_locked: false,
        disabled: false,
        metadata: Default::default(),
        machines: Vec::new(),
    }
}

async fn audit_of(admin: &berth_client::Client, action: &str) -> Vec<serde_json::Value> {
    admin
        .query_table(&TableQuery {
            table: "audit".into(),
            filters: vec![TableFilter {
                column: "action".into(),
                op: FilterOp::Eq,
                value: json!(action),
            }],
            ..TableQuery::default()
        })
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(serde_json::Value::Object)
        .collect()
}

#[tokio::test]
async fn users_are_added_changed_renamed_and_removed() {
    let server = TestServer::builder()
        .template("base", "")
        .template("python", "")
        .admin_user("carol", "carol-password")
        .start()
        .await;
    // A users.yaml admin can use the admin API like the main.yaml admin.
    let admin = server.login("carol", "carol-password").await;

    let mut dave = user("dave");
    dave.password = Some(Secret::new("dave-password"));
    dave.templates = vec!["base".into()];
    dave.metadata.insert("team".into(), "infra".into());
    let created = admin.create_user(&dave).await.unwrap();
    assert_eq!(created.username.as_str(), "dave");
    assert!(created.has_password);
    assert_eq!(created.templates, ["base"]);
    let dave_client = server.login("dave", "dave-password").await;
    assert_eq!(dave_client.config().await.unwrap().templates.len(), 1);
    assert_api_error(admin.create_user(&dave).await, 409, "already_exists");

    // The answer never holds hashes, in the list or one by one.
    for path in ["/api/v1/users", "/api/v1/users/dave"] {
        let raw = admin.send(Method::GET, path, &[], "").await.unwrap();
        let text = String::from_utf8_lossy(&raw.body);
        assert!(!text.contains("hash") && !text.contains("argon2"), "{text}");
    }

    // PUT replaces: templates changed, password kept, a new name renames.
    dave.password = None;
    dave.templates = vec!["base".into(), "python".into()];
    let updated = admin.update_user("dave", &dave).await.unwrap();
    assert_eq!(updated.templates, ["base", "python"]);
    assert!(updated.has_password);
    assert_eq!(
        dave_client.config().await.unwrap().templates.len(),
        2,
        "in force at once"
    );
    dave.username = Username::new("david").unwrap();
    admin.update_user("dave", &dave).await.unwrap();
    assert_api_error(admin.user("dave").await, 404, "not_found");
    assert_eq!(admin.user("david").await.unwrap().id, created.id);
    server.login("david", "dave-password").await;

    // Validation errors name the field.
    let mut bad = user("erin");
    bad.templates = vec!["pyhton".into()];
    let failure = assert_api_error(admin.create_user(&bad).await, 422, "invalid");
    let errors = &failure.details.unwrap()["errors"];
    assert_eq!(errors[0]["field"], "templates[0]", "{errors}");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("pyhton"),
        "{errors}"
    );
    let mut bad = user("erin");
    bad.password = Some(Secret::new(""));
    let failure = assert_api_error(admin.create_user(&bad).await, 422, "invalid");
    assert_eq!(failure.details.unwrap()["errors"][0]["field"], "password");
    let answer = send_json(&admin, "POST", "/api/v1/users", r#"{"username": "Erin"}"#).await;
    let body = assert_error(&answer, 422, "invalid_body");
    assert_eq!(
        body["error"]["details"]["errors"][0]["field"], "username",
        "{body}"
    );
    let answer = send_json(
        &admin,
        "POST",
        "/api/v1/users",
        r#"{"username": "erin", "password_hash": "x"}"#,
    )
    .await;
    assert_error(&answer, 422, "invalid_body");

    // An access-locked user's templates cannot change through the API.
    let mut frank = user("frank");
    frank.access_locked = true;
    admin.create_user(&frank).await.unwrap();
    frank.templates = vec!["base".into()];
    assert_api_error(
        admin.update_user("frank", &frank).await,
        403,
        "access_locked",
    );

    // The same lock covers the machines the user may see.
    frank.templates = Vec::new();
    frank.machines = vec!["m1".parse().unwrap()];
    assert_api_error(
        admin.update_user("frank", &frank).await,
        403,
        "access_locked",
    );

    admin.delete_user("david").await.unwrap();
    assert_api_error(admin.delete_user("david").await, 404, "not_found");
    assert_api_error(admin.user("admin").await, 404, "not_found");

    // Every change is audited with before and after, and no secret.
    let created = audit_of(&admin, "user.create").await;
    assert_eq!(created.len(), 2, "{created:?}");
    let updates = audit_of(&admin, "user.update").await;
    assert!(
        updates
            .iter()
            .any(|e| e["details"]["before"]["templates"] == json!(["base"])
                && e["details"]["after"]["templates"] == json!(["base", "python"])),
        "{updates:?}"
    );
    let deleted = audit_of(&admin, "user.delete").await;
    assert_eq!(deleted[0]["actor"], "carol");
    assert_eq!(deleted[0]["target"], "david");
    let all = serde_json::to_string(&(created, updates, deleted)).unwrap();
    assert!(
        !all.contains("dave-password") && !all.contains("argon2"),
        "{all}"
    );
}

#[tokio::test]
async fn templates_are_added_changed_and_removed_in_the_yaml_shape() {
    let server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .start()
        .await;
    let admin = server.admin().await;

    let mut python = Template::new("python", "berth-test/base");
    python.description = "Python 3".into();
    python.env.insert("API_KEY".into(), "s3cret".into());
    let created = admin.create_template(&python).await.unwrap();
    assert_eq!(created, python);
    assert_eq!(
        admin.template("python").await.unwrap().description,
        "Python 3"
    );
    assert_eq!(admin.templates().await.unwrap().len(), 2);
    let yaml = std::fs::read_to_string(server.config_dir().join("containers.yaml")).unwrap();
    assert!(yaml.contains("name: python"), "{yaml}");
    assert_api_error(admin.create_template(&python).await, 409, "already_exists");

    // The body is the YAML entry as JSON: units and all.
    let answer = send_json(
        &admin,
        "PUT",
        "/api/v1/templates/python",
        r#"{"name": "python", "image": "berth-test/base", "memory": "512m", "idle_timeout": "30m"}"#,
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let updated = admin.template("python").await.unwrap();
    assert_eq!(updated.memory.unwrap().bytes(), 512 * 1024 * 1024);
    assert!(updated.env.is_empty(), "PUT replaces");
    let answer = send_json(
        &admin,
        "PUT",
        "/api/v1/templates/python",
        r#"{"name": "python", "image": "berth-test/base", "memory": "1x"}"#,
    )
    .await;
    let body = assert_error(&answer, 422, "invalid_body");
    assert_eq!(
        body["error"]["details"]["errors"][0]["field"], "memory",
        "{body}"
    );
    let mut invalid = python.clone();
    invalid.image = String::new();
    let failure = assert_api_error(
        admin.update_template("python", &invalid).await,
        422,
        "invalid",
    );
    assert_eq!(failure.details.unwrap()["errors"][0]["field"], "image");

    // Rename; a template users may start can be neither renamed nor removed.
    let mut renamed = python.clone();
    renamed.name = "py".into();
    admin.update_template("python", &renamed).await.unwrap();
    assert_api_error(admin.template("python").await, 404, "not_found");
    let mut base = admin.template("base").await.unwrap();
    base.name = "base2".into();
    assert_api_error(admin.update_template("base", &base).await, 409, "in_use");
    let failure = assert_api_error(admin.delete_template("base").await, 409, "in_use");
    assert!(failure.message.contains("alice"), "{failure:?}");
    admin.delete_template("py").await.unwrap();
    assert_api_error(admin.delete_template("py").await, 404, "not_found");

    // Audit entries hide environment values.
    let created = audit_of(&admin, "template.create").await;
    assert_eq!(created[0]["details"]["after"]["env"]["API_KEY"], "<hidden>");
    assert!(!serde_json::to_string(&created).unwrap().contains("s3cret"));
    assert_eq!(audit_of(&admin, "template.update").await.len(), 2);
    assert_eq!(audit_of(&admin, "template.delete").await.len(), 1);
}

#[tokio::test]
async fn expired_recordings_are_deleted_and_audited() {
    // Off while the test makes its recordings (the server applies retention as it starts).
    let server = TestServer::builder()
        .recordings("max_age", "null")
        .recordings("max_total_size", "null")
        .start()
        .await;
    let now = time::OffsetDateTime::now_utc();
    let mut made = Vec::new();
    for (days_ago, finished) in [(100, true), (1, true), (200, false)] {
        let at = now - time::Duration::days(days_ago);
        let recording = crate::common::insert_recording(&server, "alice", "alice", at).await;
        // A session never finished counts from its file's last write.
        let file =
            crate::common::write_recording_file(&server, &recording, "{\"version\": 2}\n", at);
        if finished {
            server
                .state
                .store
                .finish_recording(recording.id, at, 15)
                .await
                .unwrap();
        }
        made.push((recording.id, file));
    }

    server.state.expire_recordings().await;
    assert!(made.iter().all(|(_, file)| file.exists()), "retention off");
    assert!(
        audit_of(&server.admin().await, "recording.expire")
            .await
            .is_empty()
    );

    // The defaults of main.yaml: 90 days, 20g.
    let main = server.config_dir().join("main.yaml");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        text.replace("recordings:\n  max_age: null\n  max_total_size: null\n", ""),
    )
    .unwrap();
    server.state.config.reload().unwrap();
    assert_eq!(
        server
            .state
            .config
            .current()
            .main
            .recordings
            .max_age
            .unwrap()
            .to_string(),
        "90d"
    );
    server.state.expire_recordings().await;
    let kept: Vec<bool> = made.iter().map(|(_, file)| file.exists()).collect();
    assert_eq!(kept, [false, true, false]);
    let admin = server.admin().await;
    let entries = audit_of(&admin, "recording.expire").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry["actor"], "(berth)");
    let details = &entry["details"];
    assert_eq!(details["deleted"], 2, "{entry}");
    assert_eq!(details["max_age"], "90d");
    let ids: Vec<String> = [&made[0].0, &made[2].0]
        .iter()
        .map(|id| id.to_string())
        .collect();
    let mut audited: Vec<String> = details["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    audited.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(audited, expected);

    // Nothing more to delete: no new entry.
    server.state.expire_recordings().await;
    assert_eq!(audit_of(&admin, "recording.expire").await.len(), 1);
}

#[tokio::test]
async fn a_users_fleet_machines_are_set_through_the_api_and_kept_in_users_yaml() {
    let server = TestServer::builder().start().await;
    let admin = server.admin().await;
    let mut grace = user("grace");
    grace.machines = vec!["web-1".parse().unwrap(), "tag:lab".parse().unwrap()];
    let created = admin.create_user(&grace).await.unwrap();
    assert_eq!(created.machines, grace.machines);
    let text = std::fs::read_to_string(server.config_dir().join("users.yaml")).unwrap();
    assert!(text.contains("tag:lab"), "{text}");
    // PUT replaces: without `machines` the user sees none again.
    grace.machines = Vec::new();
    let updated = admin.update_user("grace", &grace).await.unwrap();
    assert!(updated.machines.is_empty());
    // A selector that is neither an id nor tag:NAME names the field.
    for bad in [r#"["Web_1"]"#, r#"["tag:"]"#, r#"["tag:A B"]"#, r#"[7]"#] {
        let body = format!(r#"{{"username": "heidi", "machines": {bad}}}"#);
        let answer = send_json(&admin, "POST", "/api/v1/users", &body).await;
        let error = assert_error(&answer, 422, "invalid_body");
        assert!(error.to_string().contains("machines"), "{bad}: {error}");
    }
    assert_api_error(admin.user("heidi").await, 404, "not_found");
}

const ALICE_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFBl1pK0jDORglRkhgVI4ZhPMp5ohgLOim1FXjZWkTYN alice@laptop";
const ALICE_FINGERPRINT: &str = "SHA256:O8V0FwqbCHaaSx29SKJ9/oYCcjg+t7C+emeUS/dAbg8";
const OTHER_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA6MecZ69BRl8Sj0lII+tK+jkY7N5RcCcHLl4NCIwTMD";

#[tokio::test]
async fn users_keep_ssh_keys_they_or_an_admin_add_and_remove() {
    let server = TestServer::builder()
        .user("alice", "alice-password", &[])
        .user("bob", "bob-password", &[])
        .start()
        .await;
    let alice = server.login("alice", "alice-password").await;
    let bob = server.login("bob", "bob-password").await;
    let admin = server.admin().await;
    assert!(alice.ssh_keys("alice").await.unwrap().is_empty());

    let added = alice.add_ssh_key("alice", ALICE_KEY).await.unwrap();
    assert_eq!(
        added.fingerprint, ALICE_FINGERPRINT,
        "as ssh-keygen -lf prints it"
    );
    assert_eq!(added.algorithm, "ssh-ed25519");
    assert_eq!(added.comment, "alice@laptop");
    assert_eq!(added.key, ALICE_KEY);
    // Kept in users.yaml, one line per key.
    let yaml = std::fs::read_to_string(server.config_dir().join("users.yaml")).unwrap();
    assert!(yaml.lines().any(|l| l.contains(ALICE_KEY)), "{yaml}");
    // The same key again, with another comment, is one already there.
    let again = send_json(
        &alice,
        "POST",
        "/api/v1/users/alice/keys",
        &json!({"key": ALICE_KEY.replace("alice@laptop", "alice@desktop")}).to_string(),
    )
    .await;
    assert_error(&again, 409, "already_exists");
    // An admin adds one for her; a PUT of the user keeps them.
    admin.add_ssh_key("alice", OTHER_KEY).await.unwrap();
    admin.update_user("alice", &user("alice")).await.unwrap();
    let keys = alice.ssh_keys("alice").await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].comment, "");

    // Nobody else sees or changes them, and is told there is no such user.
    let expected = [
        bob.ssh_keys("alice").await.unwrap_err(),
        bob.add_ssh_key("alice", OTHER_KEY).await.unwrap_err(),
        bob.remove_ssh_key("alice", ALICE_FINGERPRINT)
            .await
            .unwrap_err(),
        bob.ssh_keys("nobody").await.unwrap_err(),
        admin.ssh_keys("nobody").await.unwrap_err(),
    ];
    for err in expected {
        assert_eq!(err.status(), Some(404), "{err}");
    }
    // The main.yaml admin has no users.yaml entry to keep keys in, and is told so.
    let own = admin.ssh_keys("admin").await.unwrap_err();
    assert_eq!(own.status(), Some(409), "{own}");
    assert!(own.to_string().contains("main.yaml admin"), "{own}");

    // What is not one public key is refused, saying why, and nothing changes.
    let private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----";
    for (body, status) in [
        (json!({"key": "not a key"}), 422),
        (json!({"key": ""}), 422),
        (json!({"key": "ssh-ed25519 AAAA"}), 422),
        (json!({"key": "ssh-ed25519 !!!notbase64!!! c"}), 422),
        (json!({"key": private}), 422),
        (json!({"key": format!("{ALICE_KEY}\n{OTHER_KEY}")}), 422),
        (
            json!({"key": format!("ssh-ed25519 {}", "A".repeat(5000))}),
            422,
        ),
        (json!({"key": 7}), 422),
        (json!({}), 422),
        (json!({"key": OTHER_KEY, "extra": true}), 422),
    ] {
        let answer = send_json(
            &alice,
            "POST",
            "/api/v1/users/alice/keys",
            &body.to_string(),
        )
        .await;
        assert_eq!(
            answer.status,
            status,
            "{body}: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    assert_eq!(alice.ssh_keys("alice").await.unwrap(), keys);

    // Removed by fingerprint (percent-encoded in the path); unknown ones are 404.
    alice
        .remove_ssh_key("alice", ALICE_FINGERPRINT)
        .await
        .unwrap();
    let gone = alice
        .remove_ssh_key("alice", ALICE_FINGERPRINT)
        .await
        .unwrap_err();
    assert_eq!(gone.status(), Some(404), "{gone}");
    let garbage = alice
        .remove_ssh_key("alice", "not a fingerprint")
        .await
        .unwrap_err();
    assert_eq!(garbage.status(), Some(404), "{garbage}");
    assert_eq!(alice.ssh_keys("alice").await.unwrap(), keys[1..]);

    // Audited, with the fingerprint.
    let adds = audit_of(&admin, "user.key.add").await;
    assert_eq!(adds.len(), 2, "{adds:?}");
    let removes = audit_of(&admin, "user.key.remove").await;
    assert_eq!(removes.len(), 1, "{removes:?}");
    assert_eq!(removes[0]["target"], "alice");
    assert!(
        removes[0]["details"]
            .to_string()
            .contains(ALICE_FINGERPRINT),
        "{removes:?}"
    );
}
