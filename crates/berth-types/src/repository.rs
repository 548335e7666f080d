//! Where the fleet's inventory comes from: the repository URL and branch of main.yaml's
//! `fleet` section, checked once for the configuration and for the git mirror alike.

use std::fmt;
use std::path::PathBuf;

/// Where the inventory comes from (main.yaml `fleet.repository`).
#[derive(Clone, PartialEq, Eq)]
pub enum RepositoryUrl {
    /// An absolute local path to a repository (bare or not).
    Path(PathBuf),
    /// `file:///…`.
    File(String),
    /// `ssh://[user@]host[:port]/path`.
    Ssh(String),
    /// `https://host/path`, perhaps `https://user@host/path` (never with a password).
    Https(String),
}

impl RepositoryUrl {
    /// Parses main.yaml's `fleet.repository`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.len() > 2048 {
            return Err("a repository URL is 1 to 2048 bytes".to_owned());
        }
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("a repository URL has no spaces or control characters".to_owned());
        }
        if text.starts_with('/') {
            return Ok(Self::Path(PathBuf::from(text)));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "{text:?}: expected an absolute path or a file://, ssh:// or https:// URL (scp-style \
                 host:path is not accepted: write ssh://host/path)"
            ));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        match scheme {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(format!(
                        "{text:?}: a file:// URL names an absolute path (file:///srv/fleet.git)"
                    ));
                }
                Ok(Self::File(text.to_owned()))
            }
            "ssh" | "https" => {
                if authority.is_empty() || rest.len() <= authority.len() + 1 {
                    return Err(format!(
                        "{text:?}: a {scheme}:// URL needs a host and a path"
                    ));
                }
                if authority.contains(':') && authority.contains('@') {
                    let (userinfo, _) = authority.rsplit_once('@').unwrap_or_default();
                    if userinfo.contains(':') {
                        return Err(
                            "the repository URL carries a password: put credentials in the fleet's keys dir \
                             (docs/fleet.md), never in main.yaml"
                                .to_owned(),
                        );
                    }
                }
                if authority.starts_with('-') || authority.contains(['\'', '"', '\\', ';']) {
                    return Err(format!("{text:?}: not a valid host"));
                }
                Ok(if scheme == "ssh" {
                    Self::Ssh(text.to_owned())
                } else {
                    Self::Https(text.to_owned())
                })
            }
            _ => Err(format!(
                "{scheme}://: only file://, ssh:// and https:// repositories are supported"
            )),
        }
    }
}

impl fmt::Display for RepositoryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(path) => write!(f, "{}", path.display()),
            Self::File(url) | Self::Ssh(url) | Self::Https(url) => f.write_str(url),
        }
    }
}

impl fmt::Debug for RepositoryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepositoryUrl({self})")
    }
}

/// Why `branch` cannot be a branch to sync: git would refuse it, or it could be read as an
/// option or a refspec. `None` when it is fine.
pub fn branch_problem(branch: &str) -> Option<&'static str> {
    let bad = branch.is_empty()
        || branch.len() > 255
        || branch.starts_with(['-', '/', '.'])
        || branch.ends_with(['/', '.'])
        || branch.ends_with(".lock")
        || branch.contains("..")
        || branch.contains("//")
        || branch.contains("@{")
        || branch
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    bad.then_some(
        "not a valid branch name (as git check-ref-format takes it, not starting with '-')",
    )
}
