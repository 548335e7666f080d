//! Self-service sign-up through `ConfigStore::register_user`: what it writes, what it refuses,
//! and that two sign-ups of one name never both win.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Barrier};

use berth_config::{
    ConfigStore, MAX_PASSWORD_CHARS, PasswordError, REGISTERED_AT_KEY, StoreError, Verification,
    verify_password,
};
use berth_types::{Role, Username};
use common::Dir;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn name(s: &str) -> Username {
    Username::new(s).unwrap()
}

fn on_disk(dir: &Dir) -> berth_config::Config {
    berth_config::check(dir.path()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_registered_account_lands_in_users_yaml_and_reads_back() {
    let dir = Dir::valid();
    let store = ConfigStore::open(dir.path()).unwrap();
    let carol = store
        .register_user(
            &name("carol"),
            "correct horse battery staple",
            &["python".to_owned()],
            true,
        )
        .unwrap();
    assert_eq!(carol.role, Role::User);
    assert!(carol.is_self_registered());
    assert!(!carol.id.as_uuid().is_nil());

    let text = dir.read("users.yaml");
    assert!(text.contains("  - username: carol\n"), "{text}");
    assert!(text.contains("    registered: self\n"), "{text}");
    assert!(!text.contains("correct horse"), "only the hash is written");

    let config = on_disk(&dir);
    assert_eq!(config.users.len(), 3, "alice and bob are kept");
    let saved = config.user("carol").unwrap();
    assert_eq!(saved, &carol);
    assert_eq!(saved.templates, ["python"]);
    assert!(saved.clusters && config.may_use_clusters("carol"));
    let hash = saved.password_hash.as_ref().unwrap();
    assert!(hash.as_str().starts_with("$argon2id$"));
    assert_eq!(
        verify_password(hash.as_str(), "correct horse battery staple"),
        Verification::Valid
    );
    let at = OffsetDateTime::parse(&saved.metadata[REGISTERED_AT_KEY], &Rfc3339).unwrap();
    assert!((OffsetDateTime::now_utc() - at).whole_hours().abs() < 1);
    assert!(
        !config.user("alice").unwrap().is_self_registered(),
        "admin-made users are not marked"
    );

    let dave = store
        .register_user(&name("dave"), "pw", &[], false)
        .unwrap();
    assert!(dave.templates.is_empty() && !dave.clusters);
    assert!(!on_disk(&dir).may_use_clusters("dave"));
    assert_ne!(dave.id, carol.id, "a fresh id each");
}

#[test]
fn taken_names_the_admins_name_bad_passwords_and_unknown_templates_are_refused() {
    let dir = Dir::valid();
    let before = dir.read("users.yaml");
    let store = ConfigStore::open(dir.path()).unwrap();
    let refused = |username: &str, password: &str, templates: &[String]| {
        store
            .register_user(&name(username), password, templates, false)
            .unwrap_err()
    };
    assert!(
        matches!(refused("alice", "pw", &[]), StoreError::UserExists(n) if n == "alice"),
        "a user of users.yaml"
    );
    let admin = refused("admin", "pw", &[]);
    assert!(
        matches!(&admin, StoreError::AdminName(n) if n == "admin"),
        "{admin}"
    );
    assert_eq!(
        admin.to_string(),
        "\"admin\" is the admin's name; choose another username"
    );
    assert!(matches!(
        refused("carol", "", &[]),
        StoreError::Password(PasswordError::Empty)
    ));
    let long = "x".repeat(MAX_PASSWORD_CHARS + 1);
    assert!(matches!(
        refused("carol", &long, &[]),
        StoreError::Password(PasswordError::TooLong { .. })
    ));
    let unknown = refused("carol", "pw", &["nope".to_owned()]);
    assert!(matches!(&unknown, StoreError::Invalid(_)), "{unknown}");
    assert!(
        unknown.to_string().contains("unknown template \"nope\""),
        "{unknown}"
    );
    assert_eq!(dir.read("users.yaml"), before, "nothing was written");
    assert!(on_disk(&dir).user("carol").is_none());
}

#[test]
fn the_admin_renamed_in_main_yaml_is_refused_by_its_new_name() {
    let dir = Dir::valid();
    dir.write(
        "main.yaml",
        &common::MAIN.replace("username: admin", "username: root"),
    );
    let store = ConfigStore::open(dir.path()).unwrap();
    assert!(matches!(
        store.register_user(&name("root"), "pw", &[], false),
        Err(StoreError::AdminName(_))
    ));
    store
        .register_user(&name("admin"), "pw", &[], false)
        .unwrap();
}

#[test]
fn of_two_concurrent_sign_ups_of_one_name_exactly_one_wins() {
    for round in 0..3 {
        let dir = Dir::valid();
        let barrier = Arc::new(Barrier::new(2));
        let workers: Vec<_> = (0..2)
            .map(|i| {
                let store = ConfigStore::open(dir.path()).unwrap();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    store.register_user(&name("erin"), &format!("password {i}"), &[], false)
                })
            })
            .collect();
        let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        let lost = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert!(
            matches!(lost, StoreError::UserExists(n) if n == "erin"),
            "round {round}: {lost}"
        );
        let config = on_disk(&dir);
        let erins: Vec<_> = config
            .users
            .iter()
            .filter(|u| u.username.as_str() == "erin")
            .collect();
        assert_eq!(erins.len(), 1);
        assert_eq!(erins[0], won[0], "the winner is what was saved");
        assert_eq!(config.users.len(), 3, "alice and bob are kept");
    }
}
