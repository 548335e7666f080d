//! First start: commented default files and an admin with a random password.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use berth_types::Username;

use crate::defaults;
use crate::load::{CONTAINERS, MAIN, USERS};
use crate::model::default_admin_username;
use crate::passwords::{hash_password, random_password};
use crate::secret::Secret;
use crate::store::StoreError;
use crate::store::files::{self, Mode, Replace};

/// The admin account created by [`init`], with its password in clear, once.
#[derive(Debug)]
pub struct InitialAdmin {
    /// The admin's username (`admin`).
    pub username: Username,
    /// The generated password. Show it to the operator once; only its hash is stored.
    pub password: Secret,
}

/// Writes the commented default `main.yaml`, `users.yaml` and `containers.yaml` that `dir`
/// lacks, creating `dir` if needed. Existing files are never touched.
///
/// Writing `main.yaml` creates the admin with a random 24-character password, of which only
/// the argon2id hash is stored; the password is returned, once. Returns `None` when `main.yaml`
/// already existed. Hashing takes a moment: from async code, call this in `spawn_blocking`.
pub fn init(dir: &Path) -> Result<Option<InitialAdmin>, StoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::io(dir, e))?;
    let _locks = files::lock(dir, [Mode::Exclusive; 3]).map_err(|e| StoreError::io(dir, e))?;
    files::remove_temp_files(dir).map_err(|e| StoreError::io(dir, e))?;
    write_new(&dir.join(CONTAINERS), defaults::CONTAINERS_YAML)?;
    write_new(&dir.join(USERS), defaults::USERS_YAML)?;
    let main = dir.join(MAIN);
    if exists(&main)? {
        return Ok(None);
    }
    let password = random_password()?;
    let hash = hash_password(password.expose())?;
    if !write_new(&main, &defaults::main_yaml(&hash))? {
        return Ok(None);
    }
    Ok(Some(InitialAdmin {
        username: default_admin_username(),
        password,
    }))
}

fn exists(path: &Path) -> Result<bool, StoreError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// Writes `path` unless it exists (even if created by someone not taking the locks); returns
/// whether it wrote.
fn write_new(path: &Path, contents: &str) -> Result<bool, StoreError> {
    if exists(path)? {
        return Ok(false);
    }
    match files::write_atomic(path, contents, Replace::Create) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(StoreError::io(path, e)),
    }
}
