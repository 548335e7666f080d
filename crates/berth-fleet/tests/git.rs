//! The mirror against the real `git` binary: repositories on disk (`file://` and plain paths),
//! and bare repositories served over SSH by the OpenSSH test machines
//! (`scripts/test-machines.sh`; the test image has git, so sshd runs `git-upload-pack`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The machines' list and keys, shared with berth-ssh's tests.
#[path = "../../berth-ssh/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_fleet::{EntryKind, GitError, Mirror, RepositoryUrl};

use common::inventory::Repo as Source;

fn url(source: &Source) -> RepositoryUrl {
    RepositoryUrl::parse(&source.file_url()).unwrap()
}

fn mirror(root: &Path) -> Mirror {
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    Mirror::new(
        root.join("fleet/inventory.git"),
        keys,
        root.join("fleet/known_hosts"),
        Duration::from_secs(60),
    )
}

#[tokio::test]
async fn first_sync_creates_a_bare_mirror_and_later_syncs_fetch() {
    let root = tempfile::tempdir().unwrap();
    let source = Source::new(root.path(), "source");
    let first = source.commit(
        &[
            ("links.yaml", "machines: []\n"),
            ("scripts/hello.sh", "echo hi\n"),
        ],
        "first",
    );
    let mirror = mirror(root.path());

    let commit = mirror.fetch(&url(&source), "main").await.unwrap();
    assert_eq!(commit.as_str(), first);
    // A bare repository, no work tree.
    assert!(mirror.dir().join("HEAD").is_file());
    assert!(!mirror.dir().join("links.yaml").exists());
    assert_eq!(
        mirror
            .read_file(&commit, "links.yaml", 1024)
            .await
            .unwrap()
            .unwrap(),
        b"machines: []\n"
    );
    assert_eq!(
        mirror.entry(&commit, "scripts/hello.sh").await.unwrap(),
        Some((EntryKind::File, 8))
    );
    assert_eq!(
        mirror
            .read_file(&commit, "missing.yaml", 1024)
            .await
            .unwrap(),
        None
    );

    let second = source.commit(&[("links.yaml", "machines: [] # v2\n")], "second");
    let commit2 = mirror.fetch(&url(&source), "main").await.unwrap();
    assert_eq!(commit2.as_str(), second);
    assert_eq!(
        mirror
            .read_file(&commit2, "links.yaml", 1024)
            .await
            .unwrap()
            .unwrap(),
        b"machines: [] # v2\n"
    );
    // The older commit stays readable: the inventory in force is read from its own commit.
    assert_eq!(
        mirror
            .read_file(&commit, "links.yaml", 1024)
            .await
            .unwrap()
            .unwrap(),
        b"machines: []\n"
    );

    // A plain path works like file://.
    let by_path = RepositoryUrl::parse(source.dir.to_str().unwrap()).unwrap();
    assert_eq!(
        mirror.fetch(&by_path, "main").await.unwrap().as_str(),
        second
    );
}

#[tokio::test]
async fn a_rewritten_history_is_followed() {
    let root = tempfile::tempdir().unwrap();
    let source = Source::new(root.path(), "source");
    source.commit(&[("links.yaml", "a\n")], "a");
    let mirror = mirror(root.path());
    mirror.fetch(&url(&source), "main").await.unwrap();
    source.commit(&[("links.yaml", "b\n")], "b");
    mirror.fetch(&url(&source), "main").await.unwrap();
    // Force-push: the branch moves back and on to an unrelated commit.
    source.git(&["reset", "--quiet", "--hard", "HEAD~1"]);
    let rewritten = source.commit(&[("links.yaml", "c\n")], "c");
    let commit = mirror.fetch(&url(&source), "main").await.unwrap();
    assert_eq!(commit.as_str(), rewritten);
    assert_eq!(
        mirror
            .read_file(&commit, "links.yaml", 16)
            .await
            .unwrap()
            .unwrap(),
        b"c\n"
    );
}

#[tokio::test]
async fn a_missing_branch_or_repository_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let source = Source::new(root.path(), "source");
    source.commit(&[("links.yaml", "a\n")], "a");
    let mirror = mirror(root.path());
    let err = mirror.fetch(&url(&source), "production").await.unwrap_err();
    assert!(matches!(err, GitError::BranchNotFound { .. }), "{err}");
    assert!(err.to_string().contains("production"), "{err}");

    let nowhere =
        RepositoryUrl::parse(&format!("file://{}/nowhere.git", root.path().display())).unwrap();
    let err = mirror.fetch(&nowhere, "main").await.unwrap_err();
    assert!(
        matches!(
            err,
            GitError::Failed {
                action: "fetch",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("nowhere.git"), "{err}");

    // A branch that looks like an option never reaches git.
    let err = mirror
        .fetch(&url(&source), "--upload-pack=touch")
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::BadPath { .. }), "{err}");
}

#[tokio::test]
async fn symlinks_directories_and_large_files_are_not_read() {
    let root = tempfile::tempdir().unwrap();
    let source = Source::new(root.path(), "source");
    std::fs::write(root.path().join("secret"), "root password\n").unwrap();
    std::fs::create_dir_all(&source.dir).unwrap();
    std::os::unix::fs::symlink(root.path().join("secret"), source.dir.join("links.yaml")).unwrap();
    let commit = source.commit(
        &[("scripts/big.sh", &"#".repeat(2000)), ("dir/x", "x")],
        "odd files",
    );
    let mirror = mirror(root.path());
    let fetched = mirror.fetch(&url(&source), "main").await.unwrap();
    assert_eq!(fetched.as_str(), commit);

    let err = mirror
        .read_file(&fetched, "links.yaml", 1024)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::NotAFile { .. }), "{err}");
    assert!(!err.to_string().contains("root password"));
    let err = mirror.read_file(&fetched, "dir", 1024).await.unwrap_err();
    assert!(matches!(err, GitError::NotAFile { .. }), "{err}");
    let err = mirror
        .read_file(&fetched, "scripts/big.sh", 1000)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GitError::TooLarge {
                size: 2000,
                max: 1000,
                ..
            }
        ),
        "{err}"
    );
    let err = mirror
        .read_file(&fetched, "../secret", 1000)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::BadPath { .. }), "{err}");
}

#[tokio::test]
async fn a_world_readable_https_credentials_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let mirror = mirror(root.path());
    let file = root
        .path()
        .join("keys")
        .join(berth_fleet::git::CREDENTIALS_FILE);
    std::fs::write(&file, "https://deploy:token@git.example.invalid\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = RepositoryUrl::parse("https://git.example.invalid/ops/fleet.git").unwrap();
    let err = mirror.fetch(&url, "main").await.unwrap_err();
    assert!(matches!(err, GitError::Key(_)), "{err}");
    assert!(err.to_string().contains("0644"), "{err}");
    assert!(!err.to_string().contains("token@"), "{err}");
}

#[tokio::test]
async fn a_silent_ssh_server_times_out_and_leaves_no_process_behind() {
    // A TCP listener that accepts and never speaks SSH.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for conn in listener.incoming().take(2) {
            conns.push(conn);
        }
        std::thread::sleep(Duration::from_secs(20));
    });
    let root = tempfile::tempdir().unwrap();
    let keys = root.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let mirror = Mirror::new(
        root.path().join("fleet/inventory.git"),
        keys,
        root.path().join("fleet/known_hosts"),
        Duration::from_secs(3),
    );
    let url = RepositoryUrl::parse(&format!("ssh://git@127.0.0.1:{port}/ops/fleet.git")).unwrap();
    let err = mirror.fetch(&url, "main").await.unwrap_err();
    assert!(
        matches!(err, GitError::Timeout { .. } | GitError::Failed { .. }),
        "{err}"
    );
    // Neither git nor the ssh it started is left running.
    let pattern = format!("127.0.0.1.*{port}|-p {port}");
    let left = Command::new("pgrep")
        .args(["-f", &pattern])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "left behind: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    drop(held);
}

// --- ssh:// against the test machines -------------------------------------------------------

/// A `known_hosts` line for `machine`, as OpenSSH writes it (`[host]:port` off port 22).
fn known_hosts_line(machine: &common::Machine, key: &str) -> String {
    if machine.port == 22 {
        format!("{} {key}\n", machine.host)
    } else {
        format!("[{}]:{} {key}\n", machine.host, machine.port)
    }
}

/// A bare repository on a test machine, made over SSH with the `ssh` binary and removed on drop.
/// The machines are shared by parallel tests and outlive them, so each gets its own path.
struct RemoteRepo {
    machine: common::Machine,
    path: String,
    /// The OpenSSH command (key, known_hosts with the machine's real key) for setup and pushes.
    ssh: String,
    _dir: tempfile::TempDir,
}

impl RemoteRepo {
    fn create(lab: &common::Lab, machine: &common::Machine) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = tempfile::tempdir().unwrap();
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, known_hosts_line(machine, &machine.host_key)).unwrap();
        let ssh = format!(
            "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes \
             -o GlobalKnownHostsFile=/dev/null -o UserKnownHostsFile='{}' -o IdentitiesOnly=yes \
             -o ConnectTimeout=10 -i '{}'",
            known_hosts.display(),
            lab.keys.join("id_ed25519").display()
        );
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = format!(
            "/home/{}/fleet-test-{}-{}-{nanos}.git",
            machine.user,
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let repo = Self {
            machine: machine.clone(),
            path,
            ssh,
            _dir: dir,
        };
        repo.remote(&format!(
            "git init --quiet --bare --initial-branch=main '{}'",
            repo.path
        ));
        repo
    }

    /// Runs `command` on the machine.
    fn remote(&self, command: &str) -> std::process::Output {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{} -p {} {}@{} \"$0\"",
                self.ssh, self.machine.port, self.machine.user, self.machine.host
            ))
            .arg(command)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "on {}: {command}: {}",
            self.machine.name,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn url(&self) -> RepositoryUrl {
        RepositoryUrl::parse(&format!(
            "ssh://{}@{}:{}{}",
            self.machine.user, self.machine.host, self.machine.port, self.path
        ))
        .unwrap()
    }

    /// Pushes `source`'s `main` here (git over the same SSH).
    fn push(&self, source: &Source) {
        source.git_with(
            &[
                "push",
                "--quiet",
                "--force",
                &self.url().to_string(),
                "main",
            ],
            &[("GIT_SSH_COMMAND", &self.ssh)],
        );
    }
}

impl Drop for RemoteRepo {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{} -p {} {}@{} \"$0\"",
                self.ssh, self.machine.port, self.machine.user, self.machine.host
            ))
            .arg(format!("rm -rf -- '{}'", self.path))
            .output();
    }
}

/// A mirror whose keys dir holds the test client key as `repository` (mode 0600) and whose
/// known_hosts holds `known_hosts`.
fn ssh_mirror(lab: &common::Lab, root: &Path, known_hosts: &str) -> Mirror {
    use std::os::unix::fs::PermissionsExt;
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key = keys.join(berth_fleet::git::SSH_KEY_FILE);
    std::fs::copy(lab.keys.join("id_ed25519"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(root.join("fleet")).unwrap();
    std::fs::write(root.join("fleet/known_hosts"), known_hosts).unwrap();
    Mirror::new(
        root.join("fleet/inventory.git"),
        keys,
        root.join("fleet/known_hosts"),
        Duration::from_secs(60),
    )
}

fn assert_failed_fetch(err: &GitError, expected: &[&str]) {
    assert!(
        matches!(
            err,
            GitError::Failed {
                action: "fetch",
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    for wanted in expected {
        assert!(text.contains(wanted), "{wanted:?} not in: {text}");
    }
}

#[tokio::test]
async fn clone_and_fetch_over_ssh_from_a_test_machine() {
    let Some(lab) = common::lab() else { return };
    let machine = lab.machine("m1").clone();
    let remote = RemoteRepo::create(&lab, &machine);
    let root = tempfile::tempdir().unwrap();
    let source = Source::new(root.path(), "source");
    let first = source.commit(
        &[
            ("links.yaml", "machines: []\n"),
            ("scripts/hello.sh", "#!/bin/bash\necho hi\n"),
        ],
        "first",
    );
    remote.push(&source);
    let mirror = ssh_mirror(
        &lab,
        root.path(),
        &known_hosts_line(&machine, &machine.host_key),
    );

    // The first sync makes the mirror (the clone).
    let commit = mirror.fetch(&remote.url(), "main").await.unwrap();
    assert_eq!(commit.as_str(), first);
    assert!(mirror.dir().join("HEAD").is_file());
    assert_eq!(
        mirror
            .read_file(&commit, "links.yaml", 1024)
            .await
            .unwrap()
            .unwrap(),
        b"machines: []\n"
    );
    assert_eq!(
        mirror.entry(&commit, "scripts/hello.sh").await.unwrap(),
        Some((EntryKind::File, 20))
    );

    // Later syncs fetch what was pushed since, and follow a rewritten history.
    let second = source.commit(&[("links.yaml", "machines: [] # v2\n")], "second");
    remote.push(&source);
    let commit2 = mirror.fetch(&remote.url(), "main").await.unwrap();
    assert_eq!(commit2.as_str(), second);
    assert_eq!(
        mirror
            .read_file(&commit2, "links.yaml", 1024)
            .await
            .unwrap()
            .unwrap(),
        b"machines: [] # v2\n"
    );
    source.git(&["reset", "--quiet", "--hard", "HEAD~1"]);
    let rewritten = source.commit(&[("links.yaml", "machines: [] # v3\n")], "third");
    remote.push(&source);
    let commit3 = mirror.fetch(&remote.url(), "main").await.unwrap();
    assert_eq!(commit3.as_str(), rewritten);

    // A branch the remote lacks, and a repository that is not there, over SSH too.
    let err = mirror.fetch(&remote.url(), "production").await.unwrap_err();
    assert!(matches!(err, GitError::BranchNotFound { .. }), "{err}");
    let missing = RepositoryUrl::parse(&format!(
        "ssh://{}@{}:{}{}-nowhere.git",
        machine.user, machine.host, machine.port, remote.path
    ))
    .unwrap();
    let err = mirror.fetch(&missing, "main").await.unwrap_err();
    assert_failed_fetch(&err, &["nowhere.git"]);
    // The failures left the mirror as it was.
    let again = mirror.fetch(&remote.url(), "main").await.unwrap();
    assert_eq!(again, commit3);
}

#[tokio::test]
async fn an_unknown_host_key_is_refused_and_not_recorded() {
    let Some(lab) = common::lab() else { return };
    let machine = lab.machine("m1").clone();
    let remote = RemoteRepo::create(&lab, &machine);
    let root = tempfile::tempdir().unwrap();
    let source = Source::new(root.path(), "source");
    source.commit(&[("links.yaml", "machines: []\n")], "first");
    remote.push(&source);

    // An empty known_hosts; then one that knows only another machine.
    let other = lab.machine("m2");
    for known in [String::new(), known_hosts_line(other, &other.host_key)] {
        let mirror = ssh_mirror(&lab, root.path(), &known);
        let err = mirror.fetch(&remote.url(), "main").await.unwrap_err();
        assert_failed_fetch(
            &err,
            &[
                "Host key verification failed",
                "host key is known",
                &machine.host,
            ],
        );
        // StrictHostKeyChecking=yes: nothing was added to the fleet's known_hosts.
        assert_eq!(
            std::fs::read_to_string(root.path().join("fleet/known_hosts")).unwrap(),
            known
        );
        let _ = std::fs::remove_dir_all(root.path().join("fleet"));
    }
}

#[tokio::test]
async fn a_changed_host_key_is_refused() {
    let Some(lab) = common::lab() else { return };
    let machine = lab.machine("m1").clone();
    let remote = RemoteRepo::create(&lab, &machine);
    let root = tempfile::tempdir().unwrap();
    let source = Source::new(root.path(), "source");
    source.commit(&[("links.yaml", "machines: []\n")], "first");
    remote.push(&source);

    // The machine's address recorded with another machine's key: a man in the middle.
    let wrong = known_hosts_line(&machine, &lab.machine("m2").host_key);
    let mirror = ssh_mirror(&lab, root.path(), &wrong);
    let err = mirror.fetch(&remote.url(), "main").await.unwrap_err();
    // OpenSSH's warning names the key the machine presented, as `ssh-keygen -l` prints it.
    let presented =
        berth_ssh::fingerprint(&berth_ssh::host_keys::parse_public_key(&machine.host_key).unwrap());
    assert_failed_fetch(
        &err,
        &[
            "REMOTE HOST IDENTIFICATION HAS CHANGED",
            &presented,
            "Host key verification failed",
        ],
    );
    assert!(
        !mirror.dir().join("refs/remotes/origin/main").exists(),
        "a refused fetch left a branch"
    );
    assert_eq!(
        std::fs::read_to_string(root.path().join("fleet/known_hosts")).unwrap(),
        wrong
    );
}

#[tokio::test]
async fn the_right_known_hosts_line_lets_a_refused_mirror_sync() {
    let Some(lab) = common::lab() else { return };
    let machine = lab.machine("m1").clone();
    let remote = RemoteRepo::create(&lab, &machine);
    let root = tempfile::tempdir().unwrap();
    let source = Source::new(root.path(), "source");
    let first = source.commit(&[("links.yaml", "machines: []\n")], "first");
    remote.push(&source);

    let mirror = ssh_mirror(&lab, root.path(), "");
    let err = mirror.fetch(&remote.url(), "main").await.unwrap_err();
    assert_failed_fetch(&err, &["Host key verification failed"]);
    // An admin adds the machine's key (among others) to known_hosts: the same mirror syncs.
    let other = lab.machine("m2");
    std::fs::write(
        root.path().join("fleet/known_hosts"),
        format!(
            "# fleet known_hosts\n{}{}",
            known_hosts_line(other, &other.host_key),
            known_hosts_line(&machine, &machine.host_key)
        ),
    )
    .unwrap();
    let commit = mirror.fetch(&remote.url(), "main").await.unwrap();
    assert_eq!(commit.as_str(), first);
}

#[tokio::test]
async fn over_ssh_only_the_repository_key_is_offered() {
    use std::os::unix::fs::PermissionsExt;
    let Some(lab) = common::lab() else { return };
    let machine = lab.machine("m1").clone();
    let remote = RemoteRepo::create(&lab, &machine);
    let root = tempfile::tempdir().unwrap();
    let known = known_hosts_line(&machine, &machine.host_key);

    // A key the machine does not accept.
    let mirror = ssh_mirror(&lab, root.path(), &known);
    let key = root
        .path()
        .join("keys")
        .join(berth_fleet::git::SSH_KEY_FILE);
    std::fs::copy(lab.keys.join("other_ed25519"), &key).unwrap();
    let err = mirror.fetch(&remote.url(), "main").await.unwrap_err();
    assert_failed_fetch(&err, &["Permission denied (publickey)"]);

    // No key at all: none is offered (never one from ~/.ssh or an agent).
    std::fs::remove_file(&key).unwrap();
    let err = mirror.fetch(&remote.url(), "main").await.unwrap_err();
    assert_failed_fetch(&err, &["Permission denied (publickey)"]);

    // A key others may read is refused before git runs.
    std::fs::copy(lab.keys.join("id_ed25519"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = mirror.fetch(&remote.url(), "main").await.unwrap_err();
    assert!(matches!(err, GitError::Key(_)), "{err}");
    assert!(err.to_string().contains("0644"), "{err}");
}
