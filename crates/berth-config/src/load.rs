//! Reading a configuration directory and turning its texts into a validated [`Config`].
//!
//! The same path validates a configuration about to be saved: the store renders the files,
//! then loads the rendered texts exactly as they would be read back from disk.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::Path;

use berth_types::Username;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
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
    /// The files reached through a symbolic link (the file, or `users.d` itself, is one):
    /// errors name their lines but never quote them.
    pub linked: BTreeSet<String>,
}

impl Sources {
    fn read(&mut self, dir: &Path, file: &str, linked_dir: bool) -> Source {
        let (source, linked) = read_file(dir, file);
        if linked || linked_dir {
            self.linked.insert(file.to_owned());
        }
        source
    }
}

/// Reads every file of `dir`. Never fails: what cannot be read becomes an error of that file.
pub(crate) fn read_sources(dir: &Path) -> Sources {
    let mut sources = Sources {
        main: Ok(String::new()),
        containers: Ok(String::new()),
        users: Ok(String::new()),
        overrides: BTreeMap::new(),
        dir_errors: Vec::new(),
        linked: BTreeSet::new(),
    };
    sources.main = sources.read(dir, MAIN, false);
    sources.containers = sources.read(dir, CONTAINERS, false);
    sources.users = sources.read(dir, USERS, false);
    let overrides_dir = dir.join(OVERRIDES_DIR);
    let linked_dir = fs::symlink_metadata(&overrides_dir).is_ok_and(|m| m.file_type().is_symlink());
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
        let source = sources.read(dir, &file, linked_dir);
        sources.overrides.insert(name, source);
    }
    sources
}

/// Reads `dir/file` as UTF-8: see [`read_checked`]. Also says whether the file was reached
/// through a symbolic link.
pub(crate) fn read_file(dir: &Path, file: &str) -> (Source, bool) {
    let fail = |message: String| ConfigError::new(file, None, "", message);
    let path = dir.join(file);
    // The type is checked before the open: opening a FIFO waits for a writer (and a device may
    // do anything), and every configuration change would wait behind this read's lock.
    match fs::metadata(&path) {
        Ok(metadata) if metadata.is_file() => {}
        Ok(metadata) => return (Err(fail(not_regular(&metadata.file_type()))), false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let linked = fs::symlink_metadata(&path).is_ok();
            let message = if linked {
                "a symbolic link to a file that does not exist".to_owned()
            } else {
                format!(
                    "missing from {} (`berth serve` writes a commented default on first start)",
                    dir.display()
                )
            };
            return (Err(fail(message)), linked);
        }
        Err(e) => return (Err(fail(format!("cannot read: {e}"))), false),
    }
    // The file may be replaced between the check and the open. Non-blocking, the open returns
    // at once whatever it finds, and the opened file is checked again. Refusing to follow a
    // link first tells, without a race, whether the file is one.
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let (opened, linked) = match rustix::fs::open(&path, flags | OFlags::NOFOLLOW, Mode::empty()) {
        Err(Errno::LOOP) => (rustix::fs::open(&path, flags, Mode::empty()), true),
        opened => (opened, false),
    };
    let source = opened
        .map_err(|e| fail(format!("cannot read: {}", io::Error::from(e))))
        .and_then(|fd| read_checked(fs::File::from(fd), file));
    (source, linked)
}

fn not_regular(kind: &fs::FileType) -> String {
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    };
    format!("{what}, not a regular file; refusing to open it")
}

/// Reads an opened file as UTF-8, refusing anything but a regular file and files over
/// [`MAX_FILE_BYTES`] without reading them.
fn read_checked(mut handle: fs::File, file: &str) -> Source {
    let fail = |message: String| ConfigError::new(file, None, "", message);
    let metadata = handle
        .metadata()
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if !metadata.is_file() {
        return Err(fail(not_regular(&metadata.file_type())));
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

/// True when `text` holds no YAML at all: nothing, blanks or comments. Such a file is taken
/// for a truncated one, never for "no users" or "no templates": that is written `users: []`.
fn holds_nothing(text: &str) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    })
}

/// What to write instead of nothing, for the message about an empty file.
fn explicitly_empty(file: &str) -> &'static str {
    match file {
        USERS => "`users: []` if there are to be no users",
        CONTAINERS => "`templates: []` if there are to be no templates",
        _ => "`{}` to take every default",
    }
}

/// An error located in a file reached through a symbolic link, without what it quotes of the
/// file: the link may point at a file the reader of the error may not read.
fn unquoted(error: ConfigError) -> ConfigError {
    ConfigError {
        path: String::new(),
        message: "invalid; the file is a symbolic link, so errors do not quote its content \
                  (see docs/config.md)"
            .to_owned(),
        ..error
    }
}

/// One file read into its type, with the tree it came from.
pub(crate) struct Loaded<T> {
    pub value: Option<T>,
    pub root: Node,
    pub excluded: HashSet<u32>,
}

fn load<T: DeserializeOwned>(
    file: &str,
    sources: &Sources,
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
    if holds_nothing(text) {
        errors.push(ConfigError::new(
            file,
            None,
            "",
            format!(
                "the file is empty (or holds only blanks and comments): it looks truncated, so \
                 it is refused and nothing is read from it or written to it; restore it, or \
                 write {}",
                explicitly_empty(file)
            ),
        ));
        return None;
    }
    let linked = sources.linked.contains(file);
    let quoted = |e: ConfigError| if linked { unquoted(e) } else { e };
    let root = match yaml::parse(file, text) {
        Ok(root) => root,
        Err(e) => {
            errors.push(quoted(e));
            return None;
        }
    };
    // A document that is only `---`, `~` or `null` is as empty as a file of comments.
    if root.is_null() {
        errors.push(ConfigError::new(
            file,
            Some(root.line),
            "",
            format!(
                "the file holds no value: it looks truncated, so it is refused and nothing is \
                 read from it or written to it; restore it, or write {}",
                explicitly_empty(file)
            ),
        ));
        return None;
    }
    let outcome = yaml::from_node::<T>(file, &root);
    errors.extend(outcome.errors.into_iter().map(quoted));
    Some(Loaded {
        value: outcome.value,
        root,
        excluded: outcome.excluded,
    })
}

/// Reads, checks and cross-checks every file; returns the configuration or every error found.
pub(crate) fn build(sources: &Sources) -> Result<Config, ConfigErrors> {
    let mut errors = sources.dir_errors.clone();
    let main = load::<MainConfig>(MAIN, sources, &sources.main, &mut errors);
    let containers = load::<ContainersFile>(CONTAINERS, sources, &sources.containers, &mut errors);
    let users = load::<UsersFile>(USERS, sources, &sources.users, &mut errors);
    let overrides: Vec<(String, Option<Loaded<UserOverrides>>)> = sources
        .overrides
        .iter()
        .map(|(name, source)| {
            let file = format!("{OVERRIDES_DIR}/{name}");
            let loaded = load::<UserOverrides>(&file, sources, source, &mut errors);
            (file, loaded)
        })
        .collect();

    let checks = validate::Checks::new(main.as_ref(), containers.as_ref(), users.as_ref())
        .hint_templates(!sources.linked.contains(CONTAINERS));
    let mut found = Vec::new();
    checks.run(&overrides, &mut found);
    // Errors at a line quote what is written there; those about a whole file name it only.
    errors.extend(found.into_iter().map(|e| {
        if e.line.is_some() && sources.linked.contains(&e.file) {
            unquoted(e)
        } else {
            e
        }
    }));

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
