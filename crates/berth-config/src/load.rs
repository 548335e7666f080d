//! Reading a configuration directory and turning its texts into a validated [`Config`].
//!
//! The same path validates a configuration about to be saved: the store renders the files,
//! then loads the rendered texts exactly as they would be read back from disk.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::Path;

use berth_types::Username;
use serde::de::DeserializeOwned;

use crate::error::{ConfigError, ConfigErrors};
use crate::model::{Config, ContainersFile, MainConfig, UserOverrides, UsersFile};
use crate::validate;
use crate::yaml::{self, Node};

/// Files larger than this are refused unread: no configuration needs a mebibyte.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// At most this many files in `users.d/`.
const MAX_OVERRIDE_FILES: usize = 10_000;

pub(crate) const MAIN: &str = "main.yaml";
pub(crate) const CONTAINERS: &str = "containers.yaml";
pub(crate) const USERS: &str = "users.yaml";
pub(crate) const OVERRIDES_DIR: &str = "users.d";

/// The text of one file, or why it could not be read.
pub(crate) type Source = Result<String, ConfigError>;

/// The texts of a configuration directory.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub main: Source,
    pub containers: Source,
    pub users: Source,
    /// `users.d/*.yaml` by file name (`alice.yaml`).
    pub overrides: BTreeMap<String, Source>,
    /// Entries of `users.d/` that are not per-user files, and errors listing it.
    pub dir_errors: Vec<ConfigError>,
}

/// Reads every file of `dir`. Never fails: what cannot be read becomes an error of that file.
pub(crate) fn read_sources(dir: &Path) -> Sources {
    let mut sources = Sources {
        main: read_file(dir, MAIN),
        containers: read_file(dir, CONTAINERS),
        users: read_file(dir, USERS),
        overrides: BTreeMap::new(),
        dir_errors: Vec::new(),
    };
    let overrides_dir = dir.join(OVERRIDES_DIR);
    let entries = match fs::read_dir(&overrides_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return sources,
        Err(e) => {
            sources.dir_errors.push(ConfigError::new(
                OVERRIDES_DIR,
                None,
                "",
                format!("cannot list: {e}"),
            ));
            return sources;
        }
    };
    for entry in entries {
        let name = match entry {
            Ok(entry) => entry.file_name().to_string_lossy().into_owned(),
            Err(e) => {
                sources.dir_errors.push(ConfigError::new(
                    OVERRIDES_DIR,
                    None,
                    "",
                    format!("cannot list: {e}"),
                ));
                break;
            }
        };
        let file = format!("{OVERRIDES_DIR}/{name}");
        // Hidden files (Berth's temporary files, editors' swap files) and backups are not ours.
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        if !name.ends_with(".yaml") {
            sources.dir_errors.push(ConfigError::new(
                file,
                None,
                "",
                "not a per-user file: users.d holds only <username>.yaml files",
            ));
            continue;
        }
        if sources.overrides.len() >= MAX_OVERRIDE_FILES {
            sources.dir_errors.push(ConfigError::new(
                OVERRIDES_DIR,
                None,
                "",
                format!("more than {MAX_OVERRIDE_FILES} files; refusing to read them all"),
            ));
            break;
        }
        let source = read_file(dir, &file);
        sources.overrides.insert(name, source);
    }
    sources
}

/// Reads `dir/file` as UTF-8, refusing files over [`MAX_FILE_BYTES`] without reading them.
pub(crate) fn read_file(dir: &Path, file: &str) -> Source {
    let fail = |message: String| ConfigError::new(file, None, "", message);
    let mut handle = fs::File::open(dir.join(file)).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => fail(format!(
            "missing from {} (`berth serve` writes a commented default on first start)",
            dir.display()
        )),
        _ => fail(format!("cannot read: {e}")),
    })?;
    let metadata = handle
        .metadata()
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if !metadata.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let too_big = |len: u64| {
        fail(format!(
            "the file has {len} bytes, more than the 1 MiB allowed; refusing it"
        ))
    };
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_big(metadata.len()));
    }
    // The file may grow between the check and the read: never read more than the limit.
    let mut bytes = Vec::new();
    (&mut handle)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        ConfigError::new(file, Some(line), "", "not valid UTF-8 text")
    })
}

/// One file read into its type, with the tree it came from.
pub(crate) struct Loaded<T> {
    pub value: Option<T>,
    pub root: Node,
    pub excluded: HashSet<u32>,
}

fn load<T: DeserializeOwned>(
    file: &str,
    source: &Source,
    errors: &mut Vec<ConfigError>,
) -> Option<Loaded<T>> {
    let text = match source {
        Ok(text) => text,
        Err(e) => {
            errors.push(e.clone());
            return None;
        }
    };
    let root = match yaml::parse(file, text) {
        Ok(root) => root,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let outcome = yaml::from_node::<T>(file, &root);
    errors.extend(outcome.errors);
    Some(Loaded {
        value: outcome.value,
        root,
        excluded: outcome.excluded,
    })
}

/// Reads, checks and cross-checks every file; returns the configuration or every error found.
pub(crate) fn build(sources: &Sources) -> Result<Config, ConfigErrors> {
    let mut errors = sources.dir_errors.clone();
    let main = load::<MainConfig>(MAIN, &sources.main, &mut errors);
    let containers = load::<ContainersFile>(CONTAINERS, &sources.containers, &mut errors);
    let users = load::<UsersFile>(USERS, &sources.users, &mut errors);
    let overrides: Vec<(String, Option<Loaded<UserOverrides>>)> = sources
        .overrides
        .iter()
        .map(|(name, source)| {
            let file = format!("{OVERRIDES_DIR}/{name}");
            let loaded = load::<UserOverrides>(&file, source, &mut errors);
            (file, loaded)
        })
        .collect();

    let checks = validate::Checks::new(main.as_ref(), containers.as_ref(), users.as_ref());
    checks.run(&overrides, &mut errors);

    if let Some(errors) = ConfigErrors::from_vec(errors) {
        return Err(errors);
    }
    let mut config = Config {
        main: main.and_then(|l| l.value).unwrap_or_default(),
        users: users.and_then(|l| l.value).unwrap_or_default().users,
        templates: containers
            .and_then(|l| l.value)
            .unwrap_or_default()
            .templates,
        overrides: BTreeMap::new(),
    };
    for (file, loaded) in overrides {
        let username = file
            .strip_prefix(OVERRIDES_DIR)
            .and_then(|f| f.strip_prefix('/'))
            .and_then(|f| f.strip_suffix(".yaml"))
            .and_then(|name| Username::new(name).ok());
        if let (Some(username), Some(value)) = (username, loaded.and_then(|l| l.value)) {
            config.overrides.insert(username, value);
        }
    }
    Ok(config)
}

/// Reads and validates the configuration in `dir` without taking its locks.
pub(crate) fn load_dir_unlocked(dir: &Path) -> Result<Config, ConfigErrors> {
    build(&read_sources(dir))
}
