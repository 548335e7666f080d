//! Helpers shared by the integration tests: configuration directories written as files.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use berth_config::{ConfigError, ConfigErrors};
use tempfile::TempDir;

/// A well-formed password hash that costs nothing to validate (PBKDF2, 1000 rounds).
pub const HASH: &str =
    "$pbkdf2-sha256$i=1000,l=32$c2FsdHNhbHRzYWx0c2FsdA$MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI";

pub const ALICE_ID: &str = "6f1c2a9e-8d4b-4c47-9a53-0b1d2e3f4a5b";
pub const BOB_ID: &str = "0b6f3c1e-2f7a-4d8e-9c1b-5a4d3e2f1a0b";

pub const MAIN: &str = "admin:\n  username: admin\nruntime:\n  allowed_bind_mounts: [/srv/data]\n";
pub const CONTAINERS: &str = "templates:\n  - name: base\n    image: berth-test/base\n  - name: python\n    image: berth-test/python\n";

pub fn users_yaml() -> String {
    format!(
        "users:\n  - username: alice\n    id: {ALICE_ID}\n    templates: [base]\n  - username: bob\n    id: {BOB_ID}\n    role: admin\n"
    )
}

/// A configuration directory with valid files; tests overwrite the ones they break.
pub struct Dir {
    pub tmp: TempDir,
}

impl Dir {
    pub fn valid() -> Self {
        let dir = Self {
            tmp: tempfile::tempdir().unwrap(),
        };
        dir.write("main.yaml", MAIN);
        dir.write("containers.yaml", CONTAINERS);
        dir.write("users.yaml", &users_yaml());
        dir
    }

    /// Valid files where no user refers to a template, for tests that rewrite containers.yaml.
    pub fn bare() -> Self {
        let dir = Self::valid();
        dir.write(
            "users.yaml",
            &users_yaml().replace("    templates: [base]\n", ""),
        );
        dir
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) {
        let path = self.file(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.file(name)).unwrap()
    }

    /// The errors of `berth_config::check`, as printed.
    pub fn errors(&self) -> Vec<String> {
        match berth_config::check(self.path()) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    pub fn error_list(&self) -> Vec<ConfigError> {
        berth_config::check(self.path())
            .err()
            .map(ConfigErrors::into_vec)
            .unwrap_or_default()
    }
}

/// Asserts that some error contains every part of `parts`.
#[track_caller]
pub fn assert_error(errors: &[String], parts: &[&str]) {
    assert!(
        errors.iter().any(|e| parts.iter().all(|p| e.contains(p))),
        "no error contains {parts:?}; errors:\n{}",
        errors.join("\n")
    );
}
