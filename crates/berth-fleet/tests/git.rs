//! The mirror against the real `git` binary and real repositories on disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_fleet::{EntryKind, GitError, Mirror, RepositoryUrl};

/// A source repository the test commits to.
struct Source {
    dir: PathBuf,
}

impl Source {
    fn new(root: &Path) -> Self {
        let dir = root.join("source");
        std::fs::create_dir_all(&dir).unwrap();
        let source = Self { dir };
        source.git(&["init", "--quiet", "--initial-branch=main"]);
        source
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Ops")
            .env("GIT_AUTHOR_EMAIL", "ops@example.invalid")
            .env("GIT_COMMITTER_NAME", "Ops")
            .env("GIT_COMMITTER_EMAIL", "ops@example.invalid")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let path = self.dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    fn url(&self) -> RepositoryUrl {
        RepositoryUrl::parse(&format!("file://{}", self.dir.display())).unwrap()
    }
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
    let source = Source::new(root.path());
    let first = source.commit(
        &[
            ("links.yaml", "machines: []\n"),
            ("scripts/hello.sh", "echo hi\n"),
        ],
        "first",
    );
    let mirror = mirror(root.path());

    let commit = mirror.fetch(&source.url(), "main").await.unwrap();
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
    let commit2 = mirror.fetch(&source.url(), "main").await.unwrap();
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
    let source = Source::new(root.path());
    source.commit(&[("links.yaml", "a\n")], "a");
    let mirror = mirror(root.path());
    mirror.fetch(&source.url(), "main").await.unwrap();
    source.commit(&[("links.yaml", "b\n")], "b");
    mirror.fetch(&source.url(), "main").await.unwrap();
    // Force-push: the branch moves back and on to an unrelated commit.
    source.git(&["reset", "--quiet", "--hard", "HEAD~1"]);
    let rewritten = source.commit(&[("links.yaml", "c\n")], "c");
    let commit = mirror.fetch(&source.url(), "main").await.unwrap();
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
    let source = Source::new(root.path());
    source.commit(&[("links.yaml", "a\n")], "a");
    let mirror = mirror(root.path());
    let err = mirror.fetch(&source.url(), "production").await.unwrap_err();
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
        .fetch(&source.url(), "--upload-pack=touch")
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::BadPath { .. }), "{err}");
}

#[tokio::test]
async fn symlinks_directories_and_large_files_are_not_read() {
    let root = tempfile::tempdir().unwrap();
    let source = Source::new(root.path());
    std::fs::write(root.path().join("secret"), "root password\n").unwrap();
    std::fs::create_dir_all(&source.dir).unwrap();
    std::os::unix::fs::symlink(root.path().join("secret"), source.dir.join("links.yaml")).unwrap();
    let commit = source.commit(
        &[("scripts/big.sh", &"#".repeat(2000)), ("dir/x", "x")],
        "odd files",
    );
    let mirror = mirror(root.path());
    let fetched = mirror.fetch(&source.url(), "main").await.unwrap();
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
