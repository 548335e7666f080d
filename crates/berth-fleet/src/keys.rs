//! Secret files in the fleet's keys dir: private keys, the webhook secret, git credentials.
//!
//! A secret file must be a regular file (a symlink is followed, as Kubernetes mounts secrets
//! that way) readable by its owner alone: mode 0600 or 0400. Anything looser is refused with
//! the file and its mode, before a byte of it is read, so a key that others could read is
//! never used.

use std::fs;
use std::io;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The largest secret file read (a 16 kbit RSA key in PEM is well under this).
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Why a secret file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// There is no such file.
    #[error("{}: no such file", path.display())]
    Missing { path: PathBuf },
    /// It is a directory, a FIFO, a socket or a device.
    #[error("{}: not a regular file", path.display())]
    NotAFile { path: PathBuf },
    /// Others than the owner may read or write it, or it is executable.
    #[error(
        "{}: mode {mode:04o}, but a secret file must be 0600 or 0400 (chmod 600 {})",
        path.display(),
        path.display()
    )]
    Mode { path: PathBuf, mode: u32 },
    /// Larger than [`MAX_SECRET_FILE`].
    #[error("{}: {size} bytes, more than a secret file holds (at most {MAX_SECRET_FILE})", path.display())]
    TooLarge { path: PathBuf, size: u64 },
    /// Another user owns it (only Berth's own user, or root, may).
    #[error("{}: owned by uid {uid}, not by the user Berth runs as (chown it)", path.display())]
    Owner { path: PathBuf, uid: u32 },
    /// The file name is not a plain name inside the keys dir.
    #[error("{name:?}: a key is named by a file name in the keys dir, without '/' or '..'")]
    BadName { name: String },
    /// Reading it failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// Checks that `path` is a secret file Berth may use (see the module docs), without opening
/// it: for files another program opens (ssh, git, age).
pub fn check_secret_file(path: &Path) -> Result<(), KeyFileError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(KeyFileError::Missing {
                path: path.to_owned(),
            });
        }
        Err(source) => {
            return Err(KeyFileError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    check_metadata(path, &meta)
}

/// The checks of [`check_secret_file`] on what `stat` said.
fn check_metadata(path: &Path, meta: &fs::Metadata) -> Result<(), KeyFileError> {
    if !meta.is_file() {
        return Err(KeyFileError::NotAFile {
            path: path.to_owned(),
        });
    }
    let owner = meta.uid();
    if owner != 0 && owner != rustix::process::geteuid().as_raw() {
        return Err(KeyFileError::Owner {
            path: path.to_owned(),
            uid: owner,
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode != 0o600 && mode != 0o400 {
        return Err(KeyFileError::Mode {
            path: path.to_owned(),
            mode,
        });
    }
    if meta.len() > MAX_SECRET_FILE {
        return Err(KeyFileError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
        });
    }
    Ok(())
}

/// Reads a secret file: opened without blocking (a FIFO swapped in never hangs Berth) and
/// without becoming a child's descriptor, checked on the open file (so a swap between check
/// and open cannot slip through), and read up to [`MAX_SECRET_FILE`].
pub fn read_secret_file(path: &Path) -> Result<Vec<u8>, KeyFileError> {
    use rustix::fs::{Mode, OFlags};
    let io = |source: io::Error| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| {
        if e == rustix::io::Errno::NOENT {
            KeyFileError::Missing {
                path: path.to_owned(),
            }
        } else {
            io(e.into())
        }
    })?;
    let file = fs::File::from(fd);
    let meta = file.metadata().map_err(io)?;
    check_metadata(path, &meta)?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(KeyFileError::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// The path of the key file `name` in `keys_dir`: a plain file name, never a path that leaves
/// the directory.
pub fn key_path(keys_dir: &Path, name: &str) -> Result<PathBuf, KeyFileError> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
        && !name.chars().any(char::is_control);
    if !plain {
        return Err(KeyFileError::BadName {
            name: name.to_owned(),
        });
    }
    Ok(keys_dir.join(name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn file_with_mode(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, b"secret\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn owner_only_modes_pass() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o600, 0o400] {
            let path = file_with_mode(dir.path(), &format!("k{mode:o}"), mode);
            check_secret_file(&path).unwrap();
            assert_eq!(read_secret_file(&path).unwrap(), b"secret\n");
        }
    }

    #[test]
    fn looser_modes_are_refused_with_file_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [
            0o644, 0o640, 0o604, 0o700, 0o660, 0o666, 0o4600, 0o000, 0o200,
        ] {
            let path = file_with_mode(dir.path(), &format!("k{mode:o}"), mode);
            let err = check_secret_file(&path).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, KeyFileError::Mode { .. }), "{mode:o}: {text}");
            assert!(text.contains(&format!("{mode:04o}")), "{text}");
            assert!(text.contains(&path.display().to_string()), "{text}");
            // A refused file is never read.
            assert!(read_secret_file(&path).is_err());
        }
    }

    #[test]
    fn special_files_and_missing_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            check_secret_file(&dir.path().join("none")),
            Err(KeyFileError::Missing { .. })
        ));
        assert!(matches!(
            check_secret_file(dir.path()),
            Err(KeyFileError::NotAFile { .. })
        ));
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        fs::set_permissions(&fifo, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            check_secret_file(&fifo),
            Err(KeyFileError::NotAFile { .. })
        ));
        // Reading one answers at once instead of waiting for a writer.
        assert!(matches!(
            read_secret_file(&fifo),
            Err(KeyFileError::NotAFile { .. })
        ));
        assert!(matches!(
            read_secret_file(&dir.path().join("none")),
            Err(KeyFileError::Missing { .. })
        ));
    }

    #[test]
    fn a_file_of_another_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with_mode(dir.path(), "theirs", 0o600);
        let me = rustix::process::geteuid().as_raw();
        // Only root can give a file away; as another user the test has nothing to check.
        if me != 0 {
            return;
        }
        std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
        let err = read_secret_file(&path).unwrap_err();
        assert!(
            matches!(err, KeyFileError::Owner { uid: 4242, .. }),
            "{err}"
        );
        assert!(check_secret_file(&path).is_err());
    }

    #[test]
    fn a_symlink_is_judged_by_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = file_with_mode(dir.path(), "target", 0o644);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            check_secret_file(&link),
            Err(KeyFileError::Mode { mode: 0o644, .. })
        ));
        fs::set_permissions(&target, fs::Permissions::from_mode(0o400)).unwrap();
        check_secret_file(&link).unwrap();
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::write(&path, vec![b'a'; MAX_SECRET_FILE as usize + 1]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            check_secret_file(&path),
            Err(KeyFileError::TooLarge { .. })
        ));
    }

    #[test]
    fn key_names_stay_in_the_keys_dir() {
        let dir = Path::new("/keys");
        assert_eq!(
            key_path(dir, "web-1.key").unwrap(),
            Path::new("/keys/web-1.key")
        );
        for bad in [
            "",
            ".",
            "..",
            "../etc/shadow",
            "a/b",
            "/etc/shadow",
            "a\0b",
            "a\nb",
        ] {
            assert!(
                matches!(key_path(dir, bad), Err(KeyFileError::BadName { .. })),
                "{bad:?}"
            );
        }
    }
}
