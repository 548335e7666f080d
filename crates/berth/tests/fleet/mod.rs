//! A `berth serve` home with a fleet of the SSH test machines, for the CLI's fleet and
//! operations tests.

#![allow(dead_code)] // each test file uses a different part

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use berth_config::{ConfigStore, NewUser, hash_password};
use berth_types::Username;

use crate::common::{CliHome, eventually};
use crate::machines::Lab;
use crate::machines::inventory::{Repo, install_key, known_hosts};

pub const ADMIN_PASSWORD: &str = "fleet-admin-password";
pub const ALICE_PASSWORD: &str = "alice-password";

/// The text of a finished command's stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The text of a finished command's stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A server home whose main.yaml has a fleet on `repo` (timers far apart: the test syncs),
/// the test key in the keys dir, m1 and m2 in known_hosts (m3's key stays unknown), and
/// alice, a user whose users.yaml `machines:` selects m1.
pub fn fleet_home(lab: &Lab, root: &Path, repo: &Repo) -> PathBuf {
    let keys = root.join("keys");
    install_key(lab, &keys);
    let home = root.join("home");
    let config = home.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(home.join("fleet"))
        .unwrap();
    std::fs::write(
        home.join("fleet/known_hosts"),
        known_hosts(lab, &["m1", "m2"]),
    )
    .unwrap();
    let admin_hash = hash_password(ADMIN_PASSWORD).unwrap();
    std::fs::write(
        config.join("main.yaml"),
        format!(
            "admin:\n  username: admin\n  password_hash: \"{}\"\nfleet:\n  repository: {}\n  \
             keys_dir: {}\n  connect_timeout: 20s\n  sync_interval: 1h\n  health_interval: 1h\n",
            admin_hash.as_str(),
            repo.file_url(),
            keys.display()
        ),
    )
    .unwrap();
    // The other files as a first start writes them (main.yaml exists: no admin is made).
    assert!(berth_config::init(&config).unwrap().is_none());
    let store = ConfigStore::open(&config).unwrap();
    let mut alice = NewUser::new(Username::new("alice").unwrap());
    alice.password_hash = Some(hash_password(ALICE_PASSWORD).unwrap());
    store.add_user(alice).unwrap();
    store
        .update_user("alice", |u| u.machines = vec!["m1".parse().unwrap()])
        .unwrap();
    home
}

/// Waits for the sync Berth runs at start-up to end (`admin` is logged in as an admin).
pub fn start_up_sync(admin: &CliHome) {
    eventually(Duration::from_secs(120), "the start-up sync", || {
        let status = admin.json(&["fleet", "status"]);
        status["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["trigger"] == "start" && s["result"] != "running")
    });
}
