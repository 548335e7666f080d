//! `$BERTH_HOME`: where Berth keeps its configuration, database, logs and recordings.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The layout of a Berth home directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `explicit` (from `--home` or `BERTH_HOME`), else `/var/lib/berth` for root, else
    /// `$XDG_DATA_HOME/berth`, else `~/.local/share/berth`.
    pub fn resolve(explicit: Option<PathBuf>) -> anyhow::Result<Self> {
        let root = match explicit {
            Some(dir) => dir,
            None if running_as_root() => PathBuf::from("/var/lib/berth"),
            None => match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
                Some(data) => PathBuf::from(data).join("berth"),
                None => std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|home| PathBuf::from(home).join(".local/share/berth"))
                    .context("cannot find a home for Berth: set --home or BERTH_HOME")?,
            },
        };
        Ok(Self { root })
    }

    /// Creates the directories, private to the user running Berth (mode 0700 whatever the
    /// umask); those of an existing home are restricted to 0700 too, so files an older Berth
    /// left readable inside them (recordings, rotated logs) are out of others' reach.
    pub fn create(&self) -> anyhow::Result<()> {
        for dir in [
            self.root.clone(),
            self.config(),
            self.logs(),
            self.recordings(),
        ] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
            let mode = fs::metadata(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("cannot restrict permissions of {}", dir.display()))?;
            }
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("config")
    }

    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn recordings(&self) -> PathBuf {
        self.root.join("recordings")
    }
}

/// `/proc/self` belongs to the effective user of the process: no libc call needed.
fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
