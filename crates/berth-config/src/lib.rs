//! Berth's configuration: the YAML files of `$BERTH_HOME/config`, their types and JSON Schema,
//! validation with file, line and field in every error, an atomic locked store, changes to
//! users and templates, and password hashing.
//!
//! # Files
//!
//! | file | type | holds |
//! |---|---|---|
//! | `main.yaml` | [`MainConfig`] | listen address, public URL, TLS, admin account, database, logging, runtime defaults, security, recordings, fleet, SSH gateway, clusters, registration |
//! | `users.yaml` | [`UsersFile`] | users: username, id, role, password hash, allowed templates, `access_locked`, `clusters`, client tokens (hashed), SSH public keys, metadata |
//! | `containers.yaml` | [`ContainersFile`] | templates: image, command, env, volumes, bind mounts, network, limits, shared, persist, idle timeout, TTL, pool |
//! | `users.d/<username>.yaml` | [`UserOverrides`] | one user's limits and extra templates |
//!
//! [`init`] writes commented defaults on first start (and creates the admin with a random
//! password); [`check`] reads and validates a directory into a [`Config`]; [`json_schema`]
//! describes every file; `docs/config.md` is the reference for people.
//!
//! # Errors
//!
//! Validation reports every problem it finds, not only the first: unknown fields, wrong
//! types, missing fields, values out of range, invalid names and paths, duplicates, references
//! to templates or users that do not exist. Each [`ConfigError`] displays as
//! `FILE:LINE: PATH: MESSAGE`:
//!
//! ```text
//! users.yaml:12: users[2].templates[0]: unknown template "pyhton" (did you mean "python"?)
//! ```
//!
//! Only regular files are read: their type is checked before they are opened, and they are
//! opened without blocking, so a FIFO in place of a file is refused instead of waiting for a
//! writer. A file without YAML (empty, blanks or comments only) is taken for a truncated one
//! and refused: `users: []` says "no users". Errors in a file reached through a symbolic link
//! name its lines but never quote it.
//!
//! The YAML parser runs under limits so that hostile files are refused quickly: files over
//! 1 MiB are not read, nesting deeper than 32 levels and documents that expand to more than
//! 200,000 values through aliases ("billion laughs") are refused while parsing.
//!
//! # Saving
//!
//! [`ConfigStore`] changes files with a locked read-modify-write: it takes `flock` locks on
//! lock files beside the files (`main.yaml.lock`, `containers.yaml.lock`, `users.yaml.lock`,
//! which also guards `users.d/`), always in that order, exclusive for the file it writes and
//! shared for those it checks against; re-reads the files under the locks, applies the change,
//! validates the result as it will be read back, and replaces each changed file atomically
//! (temporary file in the same directory, fsync, rename, fsync of the directory). Readers
//! ([`check`]) take the locks shared. A writer killed mid-write leaves the old file and a
//! temporary file, removed by [`ConfigStore::open`] or [`clean_stray_temp_files`].
//!
//! # Passwords and tokens
//!
//! [`hash_password`] uses argon2id with OWASP's parameters; [`verify_password`] also accepts
//! PBKDF2-SHA256 hashes from imported configurations and asks for an upgrade. Both are slow on
//! purpose and synchronous: call them in `spawn_blocking`. Client tokens are random UUIDs shown
//! once and stored as SHA-256 ([`verify_client_token`]).
#![forbid(unsafe_code)]

mod defaults;
mod error;
mod init;
mod load;
mod model;
mod names;
mod passwords;
mod schema;
mod secret;
mod ssh_keys;
mod store;
mod tokens;
mod units;
mod validate;
mod yaml;

pub use error::{ConfigError, ConfigErrors};
pub use init::{InitialAdmin, init};
pub use load::MAX_FILE_BYTES;
pub use model::{
    Admin, BindMount, ClientToken, ClusterNetwork, ClusterProvider, Clusters, Config,
    ContainersFile, DEFAULT_CLUSTER_IMAGE, Fleet, Logging, MainConfig, Persist, REGISTERED_AT_KEY,
    REGISTERED_KEY, REGISTERED_SELF, Recordings, Registration, RegistrationDefaults,
    RegistrationMode, Runtime, Security, Shell, Ssh, Template, Tls, User, UserOverrides, UsersFile,
    Volume,
};
pub use passwords::{
    MAX_PASSWORD_CHARS, PasswordError, PasswordHash, Verification, hash_password, verify_password,
};
pub use schema::json_schema;
pub use secret::Secret;
pub use ssh_keys::{MAX_SSH_KEY_CHARS, MAX_SSH_KEYS_PER_USER, SshKey, SshKeyError};
pub use store::users::NewUser;
pub use store::{ConfigStore, StoreError, check, clean_stray_temp_files};
pub use tokens::{IssuedToken, hash_client_token, verify_client_token};
pub use units::{DiskSize, HumanDuration, IpNet, Memory};
