//! Files that are not what they should be: FIFOs and other special files, truncated files,
//! symbolic links to files the reader of an error may not read.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use berth_config::{ConfigStore, StoreError};
use common::{Dir, assert_error};

/// Generous: a read that waits for a FIFO's writer never returns at all.
const DEADLINE: Duration = Duration::from_secs(10);

fn mkfifo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(path);
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Puts a symbolic link to `target` at `at`, replacing what is there.
fn link(target: &Path, at: &Path) {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(at);
    std::os::unix::fs::symlink(target, at).unwrap();
}

/// Runs `f` on a thread and returns its result, or panics if it has not returned by the
/// deadline (which is what opening a FIFO for reading without a writer does).
fn promptly<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("{what} did not return within {DEADLINE:?}: it blocked"))
}

fn check_errors(dir: &Path) -> Vec<String> {
    let dir = dir.to_owned();
    promptly("check", move || match berth_config::check(&dir) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    })
}

fn add_user(dir: &Path) -> Result<(), StoreError> {
    let dir = dir.to_owned();
    promptly("add_user", move || {
        let store = ConfigStore::open(&dir)?;
        let username = berth_types::Username::new("carol").unwrap();
        store
            .add_user(berth_config::NewUser::new(username))
            .map(drop)
    })
}

#[test]
fn a_fifo_in_place_of_a_file_is_refused_without_waiting_for_a_writer() {
    for file in [
        "users.d/alice.yaml",
        "users.yaml",
        "main.yaml",
        "containers.yaml",
    ] {
        let dir = Dir::valid();
        mkfifo(&dir.file(file));
        let errors = check_errors(dir.path());
        assert_error(&errors, &[&format!("{file}: a FIFO"), "not a regular file"]);
        let err = add_user(dir.path()).unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidOnDisk(e) if e.to_string().contains(file)),
            "{file}: {err}"
        );
    }
}

#[test]
fn a_symbolic_link_to_a_fifo_is_refused_too() {
    let dir = Dir::valid();
    let outside = tempfile::tempdir().unwrap();
    mkfifo(&outside.path().join("pipe"));
    link(&outside.path().join("pipe"), &dir.file("users.yaml"));
    assert_error(&check_errors(dir.path()), &["users.yaml: a FIFO"]);
}

#[test]
fn a_fifo_in_place_of_a_lock_file_is_refused_without_waiting() {
    let dir = Dir::valid();
    mkfifo(&dir.file("users.yaml.lock"));
    let err = add_user(dir.path()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Io { .. }) && err.to_string().contains("not a regular file"),
        "{err}"
    );
    // Readers fall back to reading without the locks, as for a read-only directory.
    assert_eq!(check_errors(dir.path()), Vec::<String>::new());
}

#[test]
fn a_fifo_in_place_of_users_d_is_refused_without_waiting() {
    let dir = Dir::valid();
    mkfifo(&dir.file("users.d"));
    assert_error(&check_errors(dir.path()), &["users.d: cannot list"]);
}

#[test]
fn a_directory_in_place_of_a_file_is_named() {
    let dir = Dir::valid();
    std::fs::remove_file(dir.file("containers.yaml")).unwrap();
    std::fs::create_dir(dir.file("containers.yaml")).unwrap();
    assert_error(&check_errors(dir.path()), &["containers.yaml: a directory"]);
}

#[test]
fn a_truncated_file_is_refused_and_never_rewritten() {
    for file in ["users.yaml", "containers.yaml", "main.yaml"] {
        for text in ["", " \n\t\n", "# users\n# (all gone)\n", "\u{feff}"] {
            let dir = Dir::valid();
            dir.write(file, text);
            let errors = check_errors(dir.path());
            assert_eq!(errors.len(), 1, "{file} {text:?}: {errors:#?}");
            assert_error(
                &errors,
                &[&format!("{file}: the file is empty"), "truncated"],
            );
            let err = add_user(dir.path()).unwrap_err();
            assert!(
                matches!(&err, StoreError::InvalidOnDisk(_)),
                "{file} {text:?}: {err}"
            );
            assert_eq!(dir.read(file), text, "{file} is left as it was");
        }
    }
}

#[test]
fn an_explicitly_empty_list_is_not_a_truncated_file() {
    let dir = Dir::bare();
    dir.write("users.yaml", "# nobody yet\nusers: []\n");
    dir.write("containers.yaml", "templates: []\n");
    let config = berth_config::check(dir.path()).unwrap();
    assert!(config.users.is_empty() && config.templates.is_empty());
    add_user(dir.path()).unwrap();
    assert_eq!(berth_config::check(dir.path()).unwrap().users.len(), 1);
}

#[test]
fn errors_in_a_file_reached_through_a_symbolic_link_do_not_quote_it() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "db_password: hunter2-s3cret\n").unwrap();

    // The same content in a regular file is quoted: the test sees what the link hides.
    let dir = Dir::valid();
    dir.write("users.d/alice.yaml", "db_password: hunter2-s3cret\n");
    assert_error(&check_errors(dir.path()), &["db_password"]);

    for file in [
        "users.d/alice.yaml",
        "users.yaml",
        "main.yaml",
        "containers.yaml",
    ] {
        let dir = Dir::valid();
        link(&secret, &dir.file(file));
        let errors = check_errors(dir.path());
        assert!(!errors.is_empty(), "{file}");
        for e in &errors {
            assert!(
                !e.contains("hunter2") && !e.contains("db_password"),
                "{file}: an error quotes the linked file: {e}"
            );
        }
        assert_error(&errors, &[&format!("{file}:1:"), "symbolic link"]);
    }

    // A syntax error quotes nothing either.
    std::fs::write(&secret, "a: [hunter2-s3cret\n").unwrap();
    let dir = Dir::valid();
    link(&secret, &dir.file("main.yaml"));
    for e in check_errors(dir.path()) {
        assert!(!e.contains("hunter2"), "{e}");
    }
}

#[test]
fn a_linked_users_d_or_containers_yaml_is_not_quoted_by_other_files() {
    let outside = tempfile::tempdir().unwrap();
    // users.d itself a link: its files are reached through it.
    let dir = Dir::valid();
    std::fs::write(outside.path().join("alice.yaml"), "hunter2: 1\n").unwrap();
    link(outside.path(), &dir.file("users.d"));
    let errors = check_errors(dir.path());
    assert_error(&errors, &["users.d/alice.yaml:1:", "symbolic link"]);
    assert!(errors.iter().all(|e| !e.contains("hunter2")), "{errors:#?}");

    // A linked containers.yaml: an unknown template in users.yaml gets no "did you mean".
    let dir = Dir::valid();
    let containers = outside.path().join("containers.yaml");
    std::fs::write(
        &containers,
        "templates:\n  - name: hunter2\n    image: berth-test/base\n  - name: base\n    image: berth-test/base\n",
    )
    .unwrap();
    link(&containers, &dir.file("containers.yaml"));
    dir.write(
        "users.yaml",
        &common::users_yaml().replace("templates: [base]", "templates: [hunter3]"),
    );
    let errors = check_errors(dir.path());
    assert_error(&errors, &["users.yaml:", "unknown template \"hunter3\""]);
    assert!(errors.iter().all(|e| !e.contains("hunter2")), "{errors:#?}");
}

#[test]
fn a_symbolic_link_to_a_valid_file_loads_and_a_dangling_one_is_named() {
    let outside = tempfile::tempdir().unwrap();
    let dir = Dir::valid();
    let users = outside.path().join("users.yaml");
    std::fs::write(&users, dir.read("users.yaml")).unwrap();
    link(&users, &dir.file("users.yaml"));
    assert_eq!(berth_config::check(dir.path()).unwrap().users.len(), 2);

    std::fs::remove_file(&users).unwrap();
    assert_error(
        &check_errors(dir.path()),
        &["users.yaml: a symbolic link to a file that does not exist"],
    );
}
