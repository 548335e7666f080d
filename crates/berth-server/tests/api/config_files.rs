//! The configuration files as the API meets them: hostile template values refused with their
//! field, truncated files and FIFOs on disk refusing changes without losing anything.

use std::time::Duration;

use berth_config::Template;
use berth_types::api::UserBody;
use berth_types::{Role, Username};

use crate::common::{TestServer, assert_api_error, send_json};

/// A failure detector for a request that would wait forever, not a measure of speed.
const DEADLINE: Duration = Duration::from_secs(10);

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

async fn promptly<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not answer within {DEADLINE:?}"))
}

#[tokio::test]
async fn hostile_images_and_shells_are_refused_with_the_field_named() {
    let server = TestServer::builder().template("base", "").start().await;
    let admin = server.admin().await;
    let hex = "0123456789abcdef".repeat(4);
    for image in [
        "--privileged",
        "debian --privileged",
        "debian|sh",
        "../../etc/passwd",
        "a/../b",
        "Debian:12",
        "org/Img",
        "",
        "debian:",
        "debian@sha256:abc",
    ] {
        let failure = assert_api_error(
            admin
                .create_template(&Template::new("hostile", image))
                .await,
            422,
            "invalid",
        );
        let errors = &failure.details.unwrap()["errors"];
        assert_eq!(errors[0]["field"], "image", "{image:?}: {errors}");
    }
    for shell in [
        "--privileged",
        "bash",
        "/bin/sh -c id",
        "/bin/sh|nc",
        "/bin/../../sh",
        "",
    ] {
        let mut template = Template::new("hostile", "debian:12");
        template.shell = berth_config::Shell::new(shell);
        let failure = assert_api_error(admin.create_template(&template).await, 422, "invalid");
        let errors = &failure.details.unwrap()["errors"];
        assert_eq!(errors[0]["field"], "shell", "{shell:?}: {errors}");
    }
    // A list: the program and each argument are checked, and named.
    for (argv, field) in [
        (vec![], "shell"),
        (vec!["bash", "-l"], "shell[0]"),
        (vec!["/bin/bash", "--rcfile\n/etc/x"], "shell[1]"),
    ] {
        let mut template = Template::new("hostile", "debian:12");
        template.shell =
            berth_config::Shell::from_argv(argv.iter().map(|w| (*w).to_owned()).collect());
        let failure = assert_api_error(admin.create_template(&template).await, 422, "invalid");
        let errors = &failure.details.unwrap()["errors"];
        assert_eq!(errors[0]["field"], field, "{argv:?}: {errors}");
    }
    // NUL, which no typed client would send.
    for body in [
        r#"{"name": "hostile", "image": "debian\u0000:12"}"#,
        r#"{"name": "hostile", "image": "debian:12", "shell": "/bin/sh\u0000"}"#,
    ] {
        let answer = send_json(&admin, "POST", "/api/v1/templates", body).await;
        let body = crate::common::assert_error(&answer, 422, "invalid");
        let field = &body["error"]["details"]["errors"][0]["field"];
        assert!(field == "image" || field == "shell", "{body}");
    }
    // An update is checked the same way, and changes nothing.
    let mut base = admin.template("base").await.unwrap();
    base.image = "berth-test/base --privileged".into();
    let failure = assert_api_error(admin.update_template("base", &base).await, 422, "invalid");
    assert_eq!(failure.details.unwrap()["errors"][0]["field"], "image");
    assert_eq!(
        admin.template("base").await.unwrap().image,
        "berth-test/base"
    );
    // Docker's grammar in full is accepted.
    for (i, image) in [
        "debian:12".to_owned(),
        "localhost:5000/x".to_owned(),
        format!("ghcr.io/org/img:1.2@sha256:{hex}"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut template = Template::new(format!("ok{i}"), image);
        template.shell = berth_config::Shell::from_argv(vec![
            "/usr/local/bin/fish".to_owned(),
            "--login".to_owned(),
        ]);
        admin.create_template(&template).await.unwrap();
    }
    assert!(server.state.config.current().template("ok2").is_some());
}

#[tokio::test]
async fn a_truncated_users_yaml_keeps_the_users_and_refuses_every_change() {
    let server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .start()
        .await;
    let admin = server.admin().await;
    let users_yaml = server.config_dir().join("users.yaml");
    std::fs::write(&users_yaml, "").unwrap();

    let errors = server.state.config.reload().unwrap_err();
    assert!(
        errors.to_string().contains("users.yaml: the file is empty"),
        "{errors}"
    );
    assert!(
        server.state.config.current().user("alice").is_some(),
        "the configuration in force is kept"
    );

    let failure = assert_api_error(
        admin.create_user(&user("carol")).await,
        409,
        "config_invalid_on_disk",
    );
    let errors = &failure.details.unwrap()["errors"];
    assert_eq!(errors[0]["file"], "users.yaml", "{errors}");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("truncated"),
        "{errors}"
    );
    assert_api_error(
        admin
            .create_template(&Template::new("other", "debian:12"))
            .await,
        409,
        "config_invalid_on_disk",
    );
    assert_api_error(
        admin.delete_user("alice").await,
        409,
        "config_invalid_on_disk",
    );
    assert_eq!(
        std::fs::read_to_string(&users_yaml).unwrap(),
        "",
        "nothing was rewritten from the empty file"
    );
    server.login("alice", "alice-password").await;
}

#[tokio::test]
async fn a_fifo_in_users_d_neither_hangs_a_reload_nor_a_change() {
    let server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .start()
        .await;
    let admin = server.admin().await;
    let fifo = server.config_dir().join("users.d/alice.yaml");
    std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());

    let config = server.state.config.clone();
    let reloaded = promptly(
        "a reload",
        tokio::task::spawn_blocking(move || config.reload()),
    )
    .await
    .unwrap();
    let errors = reloaded.unwrap_err().to_string();
    assert!(errors.contains("users.d/alice.yaml: a FIFO"), "{errors}");

    let failure = assert_api_error(
        promptly("a change", admin.create_user(&user("carol"))).await,
        409,
        "config_invalid_on_disk",
    );
    assert_eq!(
        failure.details.unwrap()["errors"][0]["file"],
        "users.d/alice.yaml"
    );
    promptly("a login", server.login("alice", "alice-password")).await;
}

#[tokio::test]
async fn a_user_is_told_the_files_on_disk_are_invalid_but_not_what_they_say() {
    let server = TestServer::builder()
        .template("base", "")
        .user("alice", "alice-password", &["base"])
        .admin_user("root", "root-password")
        .start()
        .await;
    let alice = server.login("alice", "alice-password").await;
    let kept = alice.create_token(Some("laptop")).await.unwrap();
    let root = server.login("root", "root-password").await;
    // A hand edit breaks users.yaml with a line that names something of someone else's.
    let users_yaml = server.config_dir().join("users.yaml");
    let mut text = std::fs::read_to_string(&users_yaml).unwrap();
    text.push_str("bob_secret_plans: 1\n");
    std::fs::write(&users_yaml, text).unwrap();
    server.state.config.reload().unwrap_err();

    // Both user routes that write users.yaml: the code and a generic message, nothing more.
    let created = assert_api_error(
        alice.create_token(None).await,
        409,
        "config_invalid_on_disk",
    );
    let revoked = assert_api_error(
        alice.revoke_token(kept.client_id).await,
        409,
        "config_invalid_on_disk",
    );
    for failure in [created, revoked] {
        assert!(failure.details.is_none(), "{failure:?}");
        assert!(failure.message.contains("an admin"), "{failure:?}");
        assert!(
            !format!("{failure:?}").contains("bob_secret"),
            "{failure:?}"
        );
    }
    // An admin on the same route sees where and what.
    let failure = assert_api_error(root.create_token(None).await, 409, "config_invalid_on_disk");
    let errors = &failure.details.unwrap()["errors"];
    assert_eq!(errors[0]["file"], "users.yaml", "{errors}");
    assert!(errors.to_string().contains("bob_secret_plans"), "{errors}");
}
