//! The inventory repository, mirrored with the `git` binary (as Semaphore and Argo CD do).
//!
//! A bare mirror under `$BERTH_HOME/fleet/` receives one branch (`git fetch --prune` of
//! `refs/heads/BRANCH`); files are read from the fetched commit with `git ls-tree` and
//! `git cat-file`, so there is no work tree to go stale or be tampered with. The first sync
//! creates the mirror (the equivalent of a bare single-branch clone), later ones fetch.
//!
//! git runs with a clean environment: no system or global git config, no terminal prompts,
//! only the `file`, `ssh` and `https` transports. Credentials come from the keys dir and never
//! from a command line:
//!
//! - `ssh://` URLs use the OpenSSH client with the private key `repository` in the keys dir,
//!   `BatchMode`, and `StrictHostKeyChecking=yes` against the fleet's known_hosts file (the one
//!   the machines use), so the repository host's key is checked like a machine's;
//! - `https://` URLs use `repository.credentials` in the keys dir, in git's credential-store
//!   format (`https://USER:TOKEN@HOST`), when it exists. A URL with a password in it is refused.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;

use crate::keys::{KeyFileError, check_secret_file};

/// The private key for `ssh://` repositories, in the keys dir.
pub const SSH_KEY_FILE: &str = "repository";
/// Credentials for `https://` repositories, in the keys dir (git's credential-store format).
pub const CREDENTIALS_FILE: &str = "repository.credentials";

/// The longest stderr kept from a failed git command for the error message.
const MAX_ERROR_BYTES: usize = 2048;

pub use berth_types::repository::RepositoryUrl;

/// The URL or path as git's argument.
fn url_arg(url: &RepositoryUrl) -> OsString {
    match url {
        RepositoryUrl::Path(path) => path.clone().into_os_string(),
        RepositoryUrl::File(url) | RepositoryUrl::Ssh(url) | RepositoryUrl::Https(url) => {
            url.into()
        }
    }
}

/// A commit id as git prints it (40 or 64 hex digits).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitId(String);

impl CommitId {
    /// Checks a commit id read back from git or the store.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = matches!(text.len(), 40 | 64)
            && text
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommitId({})", self.0)
    }
}

/// What a path in the fetched commit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Executable,
    Symlink,
    Directory,
    Submodule,
}

/// One git operation that went wrong, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    #[error("git {action} did not finish within {}s", timeout.as_secs())]
    Timeout {
        action: &'static str,
        timeout: Duration,
    },
    #[error("the branch {branch:?} does not exist in {url}")]
    BranchNotFound { url: String, branch: String },
    #[error("git {action} failed: {message}")]
    Failed {
        action: &'static str,
        message: String,
    },
    #[error(transparent)]
    Key(#[from] KeyFileError),
    #[error("{path}: {message}")]
    BadPath { path: String, message: String },
    #[error("{path}: {size} bytes, more than the {max} bytes an inventory file may have")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("{path}: {message}")]
    NotAFile { path: String, message: String },
}

/// Where the mirror lives and what git may use.
#[derive(Debug, Clone)]
pub struct Mirror {
    /// The bare repository, e.g. `$BERTH_HOME/fleet/inventory.git`.
    dir: PathBuf,
    /// The fleet's keys dir.
    keys_dir: PathBuf,
    /// OpenSSH known_hosts for `ssh://` repositories.
    known_hosts: PathBuf,
    /// How long one git command may take.
    timeout: Duration,
}

impl Mirror {
    pub fn new(dir: PathBuf, keys_dir: PathBuf, known_hosts: PathBuf, timeout: Duration) -> Self {
        Self {
            dir,
            keys_dir,
            known_hosts,
            timeout,
        }
    }

    /// The bare repository's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fetches `branch` of `url` into the mirror (creating it on the first sync) and answers
    /// the commit it points to.
    pub async fn fetch(&self, url: &RepositoryUrl, branch: &str) -> Result<CommitId, GitError> {
        check_branch(branch)?;
        if !self.dir.join("HEAD").is_file() {
            if let Some(parent) = self.dir.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(GitError::Spawn)?;
            }
            let mut init = self.command();
            init.arg("init").arg("--bare").arg("--quiet").arg(&self.dir);
            self.run("init", init).await?;
        }
        let mut fetch = self.command();
        fetch.arg("-C").arg(&self.dir);
        self.credentials(url, &mut fetch)?;
        let refspec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
        fetch
            .args([
                "fetch",
                "--prune",
                "--no-tags",
                "--quiet",
                "--no-recurse-submodules",
                "--",
            ])
            .arg(url_arg(url))
            .arg(refspec);
        match self.run("fetch", fetch).await {
            Ok(_) => {}
            Err(GitError::Failed { message, .. })
                if message.contains("couldn't find remote ref") =>
            {
                return Err(GitError::BranchNotFound {
                    url: url.to_string(),
                    branch: branch.to_owned(),
                });
            }
            Err(e) => return Err(e),
        }
        let mut rev = self.command();
        rev.arg("-C")
            .arg(&self.dir)
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("refs/remotes/origin/{branch}^{{commit}}"));
        let out = self.run("rev-parse", rev).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        CommitId::parse(text.trim()).ok_or_else(|| GitError::Failed {
            action: "rev-parse",
            message: format!("unexpected commit id {:?}", text.trim()),
        })
    }

    /// What `path` is in `commit`, with its size for files; `None` when it does not exist.
    pub async fn entry(
        &self,
        commit: &CommitId,
        path: &str,
    ) -> Result<Option<(EntryKind, u64)>, GitError> {
        check_path(path)?;
        let mut ls = self.command();
        ls.arg("-C")
            .arg(&self.dir)
            .args(["ls-tree", "-z", "-l", "--full-tree"])
            .arg(commit.as_str())
            .arg("--")
            .arg(path);
        let out = self.run("ls-tree", ls).await?;
        // "MODE TYPE OBJECT SIZE\tPATH\0", one entry for an exact path.
        let Some(record) = out.stdout.split(|&b| b == 0).find(|r| !r.is_empty()) else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(record);
        let Some((meta, name)) = text.split_once('\t') else {
            return Err(GitError::Failed {
                action: "ls-tree",
                message: format!("unexpected output {text:?}"),
            });
        };
        if name != path {
            return Ok(None);
        }
        let fields: Vec<&str> = meta.split_whitespace().collect();
        let kind = match fields.first().copied() {
            Some("100644") => EntryKind::File,
            Some("100755") => EntryKind::Executable,
            Some("120000") => EntryKind::Symlink,
            Some("040000") => EntryKind::Directory,
            Some("160000") => EntryKind::Submodule,
            other => {
                return Err(GitError::Failed {
                    action: "ls-tree",
                    message: format!("unknown mode {other:?}"),
                });
            }
        };
        let size = fields.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok(Some((kind, size)))
    }

    /// The content of the regular file `path` in `commit`, at most `max` bytes; `None` when
    /// there is no such path. A symlink, a directory or a submodule is an error: the inventory
    /// is read from the commit alone, never from what a link points to.
    pub async fn read_file(
        &self,
        commit: &CommitId,
        path: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>, GitError> {
        let Some((kind, size)) = self.entry(commit, path).await? else {
            return Ok(None);
        };
        match kind {
            EntryKind::File | EntryKind::Executable => {}
            EntryKind::Symlink => {
                return Err(GitError::NotAFile {
                    path: path.to_owned(),
                    message: "a symlink; the inventory reads regular files only".to_owned(),
                });
            }
            EntryKind::Directory | EntryKind::Submodule => {
                return Err(GitError::NotAFile {
                    path: path.to_owned(),
                    message: "a directory, not a file".to_owned(),
                });
            }
        }
        if size > max {
            return Err(GitError::TooLarge {
                path: path.to_owned(),
                size,
                max,
            });
        }
        let mut cat = self.command();
        cat.arg("-C")
            .arg(&self.dir)
            .args(["cat-file", "blob"])
            .arg(format!("{commit}:{path}"));
        let out = self.run("cat-file", cat).await?;
        if out.stdout.len() as u64 > max {
            return Err(GitError::TooLarge {
                path: path.to_owned(),
                size: out.stdout.len() as u64,
                max,
            });
        }
        Ok(Some(out.stdout))
    }

    /// A git command with a clean environment (see the module docs).
    fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("HOME", self.dir.parent().unwrap_or(&self.dir))
            .env("LC_ALL", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ALLOW_PROTOCOL", "file:ssh:https")
            .env("GIT_PROTOCOL_FROM_USER", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, so a timeout kills its ssh or https helper with it.
            .process_group(0)
            .kill_on_drop(true);
        cmd
    }

    /// Adds the credentials for `url` from the keys dir, through the environment.
    fn credentials(&self, url: &RepositoryUrl, cmd: &mut Command) -> Result<(), GitError> {
        match url {
            RepositoryUrl::Ssh(_) => {
                let key = self.keys_dir.join(SSH_KEY_FILE);
                let mut ssh = String::from(
                    "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes \
                     -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o ForwardAgent=no \
                     -o ClearAllForwardings=yes -o ServerAliveInterval=15 -o ServerAliveCountMax=3",
                );
                ssh.push_str(&format!(
                    " -o ConnectTimeout={}",
                    self.timeout.as_secs().max(1)
                ));
                ssh.push_str(&format!(
                    " -o UserKnownHostsFile={}",
                    shell_quote(&self.known_hosts)?
                ));
                if key.exists() {
                    check_secret_file(&key)?;
                    ssh.push_str(&format!(" -i {}", shell_quote(&key)?));
                } else {
                    // No key in the keys dir: none at all, never the user's ~/.ssh ones.
                    ssh.push_str(" -o IdentityFile=none");
                }
                cmd.env("GIT_SSH_COMMAND", ssh);
            }
            RepositoryUrl::Https(_) => {
                let file = self.keys_dir.join(CREDENTIALS_FILE);
                if file.exists() {
                    check_secret_file(&file)?;
                    cmd.env("GIT_CONFIG_COUNT", "1")
                        .env("GIT_CONFIG_KEY_0", "credential.helper")
                        .env(
                            "GIT_CONFIG_VALUE_0",
                            format!("store --file={}", shell_quote(&file)?),
                        );
                }
            }
            RepositoryUrl::Path(_) | RepositoryUrl::File(_) => {}
        }
        Ok(())
    }

    async fn run(&self, action: &'static str, mut cmd: Command) -> Result<Output, GitError> {
        let child = cmd.spawn().map_err(GitError::Spawn)?;
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw);
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(out) => out.map_err(GitError::Spawn)?,
            Err(_) => {
                // git and every helper it started (ssh, git-remote-https); dropping the child
                // reaps git itself.
                if let Some(group) = group {
                    let _ =
                        rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
                }
                return Err(GitError::Timeout {
                    action,
                    timeout: self.timeout,
                });
            }
        };
        if out.status.success() {
            return Ok(out);
        }
        let mut message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if message.len() > MAX_ERROR_BYTES {
            let mut end = MAX_ERROR_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        if message.is_empty() {
            message = format!("exit status {}", out.status);
        }
        Err(GitError::Failed { action, message })
    }
}

/// A branch name git accepts and that cannot be read as an option or a refspec.
fn check_branch(branch: &str) -> Result<(), GitError> {
    match berth_types::repository::branch_problem(branch) {
        Some(message) => Err(GitError::BadPath {
            path: branch.to_owned(),
            message: message.to_owned(),
        }),
        None => Ok(()),
    }
}

/// A path inside the repository: relative, no `..`, no NUL or control characters.
pub fn check_path(path: &str) -> Result<(), GitError> {
    let message = if path.is_empty() || path.len() > 4096 {
        Some("a repository path is 1 to 4096 bytes")
    } else if path.starts_with('/') {
        Some("a repository path is relative to the repository root")
    } else if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        Some("a repository path has no empty, '.' or '..' components")
    } else if path.chars().any(char::is_control) {
        Some("a repository path has no control characters")
    } else if path.starts_with(':') || path.starts_with('-') {
        Some("a repository path does not start with ':' or '-'")
    } else {
        None
    };
    match message {
        Some(message) => Err(GitError::BadPath {
            path: path.escape_debug().to_string(),
            message: message.to_owned(),
        }),
        None => Ok(()),
    }
}

/// Single-quotes a path for the shell git runs `GIT_SSH_COMMAND` and credential helpers with.
fn shell_quote(path: &Path) -> Result<String, GitError> {
    let text = path
        .to_str()
        .filter(|t| !t.contains(['\'', '\n', '\0']))
        .ok_or_else(|| GitError::BadPath {
            path: path.display().to_string(),
            message: "the keys dir path must be UTF-8 without quotes or newlines".to_owned(),
        })?;
    Ok(format!("'{text}'"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn repository_urls() {
        assert!(matches!(
            RepositoryUrl::parse("/srv/fleet.git"),
            Ok(RepositoryUrl::Path(_))
        ));
        assert!(matches!(
            RepositoryUrl::parse("file:///srv/fleet.git"),
            Ok(RepositoryUrl::File(_))
        ));
        assert!(matches!(
            RepositoryUrl::parse("ssh://git@example.invalid:2222/ops/fleet.git"),
            Ok(RepositoryUrl::Ssh(_))
        ));
        assert!(matches!(
            RepositoryUrl::parse("https://git.example.invalid/ops/fleet.git"),
            Ok(RepositoryUrl::Https(_))
        ));
        assert!(matches!(
            RepositoryUrl::parse("https://deploy@git.example.invalid/ops/fleet.git"),
            Ok(RepositoryUrl::Https(_))
        ));
        for bad in [
            "",
            "relative/path",
            "git@example.invalid:ops/fleet.git",
            "http://example.invalid/x",
            "ext::sh -c touch% /tmp/pwned",
            "git://example.invalid/x",
            "file://relative",
            "https://user:token@example.invalid/x.git",
            "ssh://-oProxyCommand=touch%20x/y",
            "https://example.invalid",
            "https:///x",
            "ssh://host/x\ny",
            "/srv/with space",
        ] {
            assert!(RepositoryUrl::parse(bad).is_err(), "{bad:?}");
        }
        let err = RepositoryUrl::parse("https://user:token@example.invalid/x.git").unwrap_err();
        assert!(
            !err.contains("token"),
            "the error repeats the password: {err}"
        );
    }

    #[test]
    fn branches_and_paths() {
        for ok in ["main", "release/1.2", "ops-fleet_2"] {
            check_branch(ok).unwrap();
        }
        for bad in [
            "", "-x", "a..b", "a b", "a:b", "a^", "x.lock", "/x", "x/", "a@{1}", "a\0b", "*",
        ] {
            assert!(check_branch(bad).is_err(), "{bad:?}");
        }
        for ok in ["links.yaml", "scripts/hello.sh", "a/b c/ü.sh"] {
            check_path(ok).unwrap();
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a/",
            ":x",
            "-x",
            "a\nb",
            "a\0b",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn commit_ids() {
        assert!(CommitId::parse(&"a".repeat(40)).is_some());
        assert!(CommitId::parse(&"0".repeat(64)).is_some());
        for bad in ["", "abc", &"A".repeat(40), &"g".repeat(40), &"a".repeat(41)] {
            assert!(CommitId::parse(bad).is_none(), "{bad:?}");
        }
    }
}
