//! The SSH test machines started by `scripts/test-machines.sh`: their list from
//! BERTH_TEST_MACHINES, the client keys from BERTH_TEST_SSH_KEYS. Without them a test skips
//! loudly, except under CI=true, where it fails.
#![allow(dead_code)] // each test file uses a different part
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

pub mod inventory;

use std::path::PathBuf;
use std::time::Duration;

use berth_ssh::{ClientKey, ConnectOptions, HostKeyPolicy, Passphrase, Session, Target};

pub const PATIENCE: Duration = Duration::from_secs(30);

const HOW_TO_START: &str = "start the SSH test machines: `scripts/test-machines.sh start && \
    eval \"$(scripts/test-machines.sh env)\"` (as root, with the test Docker Engine and image), \
    or run the tests through `make test`";

#[derive(Debug, Clone)]
pub struct Machine {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub host_key: String,
    pub client_id: String,
    pub jump: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Lab {
    pub machines: Vec<Machine>,
    pub keys: PathBuf,
}

/// The machines, or `None` (after a loud message) when they are not set up outside CI.
pub fn lab() -> Option<Lab> {
    let (Some(list), Some(keys)) = (
        std::env::var_os("BERTH_TEST_MACHINES"),
        std::env::var_os("BERTH_TEST_SSH_KEYS"),
    ) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("BERTH_TEST_MACHINES / BERTH_TEST_SSH_KEYS are not set: {HOW_TO_START}");
        }
        eprintln!(
            "\n*** SKIPPED: no SSH test machines (BERTH_TEST_MACHINES is not set); {HOW_TO_START} ***\n"
        );
        return None;
    };
    let text = std::fs::read_to_string(&list).unwrap_or_else(|e| {
        panic!("cannot read BERTH_TEST_MACHINES={list:?} ({e}): {HOW_TO_START}")
    });
    let machines = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 7, "bad machines line {line:?}");
            Machine {
                name: f[0].into(),
                host: f[1].into(),
                port: f[2].parse().unwrap(),
                user: f[3].into(),
                host_key: f[4].into(),
                client_id: f[5].into(),
                jump: (f[6] != "-").then(|| f[6].to_owned()),
            }
        })
        .collect();
    Some(Lab {
        machines,
        keys: PathBuf::from(keys),
    })
}

impl Lab {
    pub fn machine(&self, name: &str) -> &Machine {
        self.machines
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no machine {name} in BERTH_TEST_MACHINES"))
    }

    /// The plain machines (m1, m2, ...), reachable directly.
    pub fn plain(&self) -> Vec<&Machine> {
        self.machines
            .iter()
            .filter(|m| m.name.starts_with('m'))
            .collect()
    }

    pub fn key(&self, file: &str) -> ClientKey {
        ClientKey::new(self.keys.join(file))
    }

    pub fn encrypted_key(&self) -> ClientKey {
        let passphrase = std::fs::read_to_string(self.keys.join("passphrase")).unwrap();
        ClientKey {
            path: self.keys.join("id_ed25519_enc"),
            passphrase: Some(Passphrase::new(passphrase.trim())),
        }
    }

    /// A target with the machine's host key pinned and the ed25519 client key; a machine that
    /// is reachable only through another gets that one as its jump host.
    pub fn target(&self, machine: &Machine) -> Target {
        let jump = match &machine.jump {
            Some(via) => vec![self.target(self.machine(via))],
            None => Vec::new(),
        };
        Target {
            host: machine.host.clone(),
            port: machine.port,
            user: machine.user.clone(),
            key: self.key("id_ed25519"),
            host_key: HostKeyPolicy::Pinned(machine.host_key.clone()),
            jump,
        }
    }

    pub async fn connect(&self, machine: &Machine) -> Session {
        berth_ssh::connect(&self.target(machine), &options())
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", machine.name))
    }
}

/// Fast options for tests: machines on loopback answer in milliseconds.
pub fn options() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(10),
        retries: 0,
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        ..ConnectOptions::default()
    }
}

/// Runs `command` and returns (stdout, stderr, status).
pub async fn run(session: &Session, command: &str) -> (String, String, berth_ssh::ExitStatus) {
    let collected = tokio::time::timeout(PATIENCE, async {
        session
            .exec(berth_ssh::ExecRequest::new(command))
            .await
            .unwrap()
            .collect(1 << 20)
            .await
    })
    .await
    .unwrap_or_else(|_| panic!("{command:?} did not finish within {PATIENCE:?}"));
    (
        String::from_utf8_lossy(&collected.stdout).into_owned(),
        String::from_utf8_lossy(&collected.stderr).into_owned(),
        collected.status,
    )
}
