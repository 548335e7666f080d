//! Locks and atomic file replacement.
//!
//! Every file is replaced by writing a temporary file in the same directory, syncing it,
//! renaming it over the target and syncing the directory: a reader, or a crash, sees the old
//! file or the new one, never a mix. Writers are serialized with `flock` on lock files beside
//! the targets (`users.yaml.lock`), taken in one fixed order so two writers never wait for
//! each other in a cycle.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::load::{CONTAINERS, MAIN, OVERRIDES_DIR, USERS};

/// The lock files are taken in this order, by every process and thread. `users.yaml.lock` also
/// guards `users.d/`.
pub(crate) const LOCK_ORDER: [&str; 3] = [MAIN, CONTAINERS, USERS];

/// Marks Berth's temporary files: `.users.yaml.tmp-<pid>-<n>`.
const TMP_MARK: &str = ".tmp-";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Shared,
    Exclusive,
}

/// Held locks; dropping the value closes the files, which releases the locks.
#[derive(Debug)]
pub(crate) struct Locks {
    _files: Vec<File>,
}

/// Opens (creating it if needed) the lock file of `file`. An existing one is opened read-only:
/// `flock` does not need write access, so a user who may only read the directory can still
/// take a shared lock. A lock file is never followed through a symbolic link (which could
/// create a file elsewhere) and must be a regular file: opened without blocking, a FIFO put in
/// its place is refused instead of waiting for a writer.
fn open_lock(dir: &Path, file: &str) -> io::Result<File> {
    let path = dir.join(format!("{file}.lock"));
    let flags = lock_open_flags();
    let handle = match OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(&path)
    {
        Err(e) if e.kind() == io::ErrorKind::NotFound => OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(flags)
            .open(&path),
        result => result,
    }?;
    if !handle.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(handle)
}

/// `O_NONBLOCK | O_NOFOLLOW`, for [`OpenOptionsExt::custom_flags`].
fn lock_open_flags() -> i32 {
    let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOFOLLOW;
    i32::try_from(flags.bits()).unwrap_or(0)
}

/// Takes the lock of each file of [`LOCK_ORDER`] in the given mode, in order; blocks until all
/// are held.
pub(crate) fn lock(dir: &Path, modes: [Mode; 3]) -> io::Result<Locks> {
    let mut files = Vec::with_capacity(3);
    for (file, mode) in LOCK_ORDER.iter().zip(modes) {
        let handle = open_lock(dir, file)?;
        match mode {
            Mode::Shared => handle.lock_shared()?,
            Mode::Exclusive => handle.lock()?,
        }
        files.push(handle);
    }
    Ok(Locks { _files: files })
}

/// Shared locks for a consistent read, or `None` when the lock files cannot be created (a
/// read-only directory, another user's files, a directory that does not exist): the read then
/// relies on atomic replacement alone, which still shows every file whole.
pub(crate) fn lock_for_reading(dir: &Path) -> Option<Locks> {
    lock(dir, [Mode::Shared; 3]).ok()
}

/// A name for a temporary file beside `target`, unique within this machine.
fn temp_path(target: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    target.with_file_name(format!(".{name}{TMP_MARK}{}-{n}", std::process::id()))
}

/// How the target is put in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace {
    /// Replace the target if it exists.
    Overwrite,
    /// Fail with `AlreadyExists` if the target exists (`link` instead of `rename`).
    Create,
}

/// Writes `contents` to `target` atomically and durably. A new file is private to its owner; a
/// replaced file keeps its permissions.
pub(crate) fn write_atomic(target: &Path, contents: &str, how: Replace) -> io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let mode = fs::metadata(target).map_or(0o600, |m| m.permissions().mode() & 0o777);
    let tmp = temp_path(target);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        drop(file);
        match how {
            Replace::Overwrite => fs::rename(&tmp, target),
            Replace::Create => fs::hard_link(&tmp, target).and_then(|()| fs::remove_file(&tmp)),
        }
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

/// Removes `target` durably; a missing file is fine.
pub(crate) fn remove(target: &Path) -> io::Result<()> {
    match fs::remove_file(target) {
        Ok(()) => sync_dir(target.parent().unwrap_or(Path::new("."))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The rename is durable only once the directory entry is on disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes temporary files left by writers that died mid-write, in `dir` and `dir/users.d`.
/// Takes every lock first, so a live writer's file is never touched. Returns how many were
/// removed.
pub fn clean_stray_temp_files(dir: &Path) -> io::Result<usize> {
    let _locks = lock(dir, [Mode::Exclusive; 3])?;
    remove_temp_files(dir)
}

/// [`clean_stray_temp_files`] for a caller that already holds every lock exclusively.
pub(crate) fn remove_temp_files(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for dir in [dir.to_path_buf(), dir.join(OVERRIDES_DIR)] {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.contains(TMP_MARK) {
                remove(&entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_and_create() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("users.yaml");
        write_atomic(&target, "a: 1\n", Replace::Create).unwrap();
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let e = write_atomic(&target, "a: 2\n", Replace::Create).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&target).unwrap(), "a: 1\n");
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&target, "a: 3\n", Replace::Overwrite).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "a: 3\n");
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o640,
            "kept"
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["users.yaml"], "no temporary file left");
    }

    #[test]
    fn stray_temp_files_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(OVERRIDES_DIR)).unwrap();
        for name in [
            ".users.yaml.tmp-1-0",
            "users.d/.alice.yaml.tmp-7-3",
            "users.yaml",
            ".hidden",
        ] {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        assert_eq!(clean_stray_temp_files(dir.path()).unwrap(), 2);
        assert!(dir.path().join("users.yaml").exists() && dir.path().join(".hidden").exists());
        assert!(!dir.path().join(".users.yaml.tmp-1-0").exists());
        assert_eq!(clean_stray_temp_files(dir.path()).unwrap(), 0);
    }

    #[test]
    fn an_exclusive_lock_excludes_other_handles_in_the_same_process() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path(), [Mode::Shared, Mode::Shared, Mode::Exclusive]).unwrap();
        let other = open_lock(dir.path(), USERS).unwrap();
        assert!(other.try_lock_shared().is_err());
        let main = open_lock(dir.path(), MAIN).unwrap();
        assert!(main.try_lock_shared().is_ok(), "shared locks coexist");
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
