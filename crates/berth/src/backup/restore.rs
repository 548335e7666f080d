//! `berth restore FILE --home DIR`: an archive of `berth backup` back into a new home.
//!
//! The archive is read with suspicion, since it may not be what it claims: its first entry
//! must be a manifest of a format this Berth knows; every later entry must be a plain file or
//! directory at a path a backup writes (no absolute path, no `..`, no link, no device), within
//! the size its kind may have; every file must match the checksum list that ends the archive,
//! and every file the list names must be there. Everything is written into a staging directory
//! inside the home first, with `create_new` (nothing in the home is followed or overwritten)
//! and moved into place only once the whole archive passed, so a refused archive leaves the
//! home as empty as it was.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use super::tar::{Header, Reader};
use super::{
    DATABASE, DatabaseInfo, FORMAT, FORMAT_VERSION, MANIFEST, MAX_LIST_BYTES, Manifest, Part, SUMS,
    hex, is_archived_dir, size,
};
use crate::home::Home;

/// `berth restore FILE --home DIR`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The archive `berth backup` wrote.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The home to restore into: a new or empty directory (a non-empty one is refused).
    #[arg(long, env = "BERTH_HOME", value_name = "DIR")]
    home: PathBuf,
}

/// Names a home may hold and still count as empty (a file system's own).
const IGNORED_IN_EMPTY_HOME: [&str; 1] = ["lost+found"];

pub fn run(args: RestoreArgs) -> anyhow::Result<()> {
    let file = File::open(&args.file)
        .with_context(|| format!("cannot read the archive {}", args.file.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read the archive {}", args.file.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", args.file.display());
    }
    let root = std::path::absolute(&args.home)
        .with_context(|| format!("cannot resolve {}", args.home.display()))?;
    let created = prepare_home(&root)?;
    let staging = root.join(format!(".berth-restore-{}", std::process::id()));
    let result = fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .with_context(|| format!("cannot write in {}", root.display()))
        .and_then(|()| extract(file, meta.len(), &staging))
        .and_then(|restored| {
            move_into(&staging, &root)?;
            Ok(restored)
        });
    let restored = match result {
        Ok(restored) => restored,
        Err(err) => {
            let _ = fs::remove_dir_all(&staging);
            if created {
                let _ = fs::remove_dir(&root);
            }
            return Err(err);
        }
    };
    let home = Home::resolve(Some(root.clone()))?;
    // logs/ and any directory the archive had no entry for, private as `berth serve` makes them.
    home.create()?;
    if let Ok(dir) = File::open(&root) {
        let _ = dir.sync_all();
    }
    eprintln!(
        "Restored {} ({}) into {}.",
        super::files(restored.files),
        size(restored.bytes),
        root.display()
    );
    after_restore(&root, &restored.manifest);
    Ok(())
}

/// Makes sure `root` is a new or empty directory; whether it was made here.
fn prepare_home(root: &Path) -> anyhow::Result<bool> {
    match fs::metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)
                .with_context(|| format!("cannot create the home {}", root.display()))?;
            Ok(true)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the home {}", root.display())),
        Ok(meta) if !meta.is_dir() => bail!("the home {} is not a directory", root.display()),
        Ok(_) => {
            let mut found: Vec<String> = fs::read_dir(root)
                .with_context(|| format!("cannot read the home {}", root.display()))?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| !IGNORED_IN_EMPTY_HOME.contains(&name.as_str()))
                .collect();
            if !found.is_empty() {
                found.sort();
                found.truncate(3);
                bail!(
                    "the home {} is not empty (it holds {}…): a restore writes only into a new \
                     or empty directory, so that nothing of another Berth is mixed in or lost",
                    root.display(),
                    found.join(", ")
                );
            }
            Ok(false)
        }
    }
}

/// What a restore wrote.
struct Restored {
    manifest: Manifest,
    files: usize,
    bytes: u64,
}

/// Reads the whole archive into `staging`, checking each entry before its data.
fn extract(file: File, length: u64, staging: &Path) -> anyhow::Result<Restored> {
    let mut reader = Reader::new(BufReader::with_capacity(256 * 1024, file), Some(length));
    let manifest = read_manifest(&mut reader)?;
    eprintln!(
        "Restoring a backup of {} on {}, made {} by Berth {}",
        manifest.home, manifest.host, manifest.created_at, manifest.berth_version
    );
    let sqlite = match &manifest.database {
        DatabaseInfo::Sqlite { bytes, .. } => Some(*bytes),
        DatabaseInfo::Postgres { .. } => None,
    };
    let mut written: BTreeMap<String, String> = BTreeMap::new();
    let mut dirs: Vec<(PathBuf, u32)> = Vec::new();
    let mut sums: Option<BTreeMap<String, String>> = None;
    let mut bytes = 0;
    while let Some(header) = reader.next_header()? {
        let path = clean_path(&header)?;
        if sums.is_some() {
            bail!("entry {path} follows {SUMS}, which ends a backup: not a Berth backup");
        }
        check_kind(&header, &path)?;
        if header.is_dir() {
            if !is_archived_dir(&path) {
                bail!("entry {path}/ is not a directory of a Berth backup");
            }
            let dir = staging.join(&path);
            make_dir(&dir)?;
            dirs.push((dir, header.mode & 0o777));
            continue;
        }
        if path == SUMS {
            if header.size > MAX_LIST_BYTES {
                bail!(
                    "entry {SUMS} is {} bytes, more than a checksum list may be",
                    header.size
                );
            }
            let mut data = Vec::new();
            reader.copy_data(&mut data)?;
            sums = Some(parse_sums(&data)?);
            continue;
        }
        let part = match Part::of(&path) {
            Some(Part::Database) if sqlite.is_none() => bail!(
                "entry {DATABASE}: the manifest says the database is PostgreSQL, not in the archive"
            ),
            Some(part) => part,
            None if path == MANIFEST => bail!("entry {MANIFEST} appears twice"),
            None => bail!(
                "entry {path} is not part of a Berth backup (config/, berth.db, the keys, \
                 recordings/)"
            ),
        };
        if let Some(limit) = part.limit()
            && header.size > limit
        {
            bail!(
                "entry {path} is {} bytes: oversized (a file there holds at most {})",
                header.size,
                size(limit)
            );
        }
        if part == Part::Database && Some(header.size) != sqlite {
            bail!(
                "entry {DATABASE} is {} bytes, but the manifest says {}: the archive is damaged",
                header.size,
                sqlite.unwrap_or(0)
            );
        }
        if written.contains_key(&path) {
            bail!("entry {path} appears twice");
        }
        let sum = write_file(&mut reader, &header, &staging.join(&path))?;
        bytes += header.size;
        written.insert(path, sum);
    }
    if reader.trailing_data()? {
        bail!("data follows the end of the archive: not a Berth backup, or a damaged one");
    }
    let sums = sums.with_context(|| {
        format!("the archive has no {SUMS}, which ends every backup: it is truncated or not a Berth backup")
    })?;
    for (path, sum) in &written {
        match sums.get(path) {
            Some(expected) if expected == sum => {}
            Some(_) => bail!("{path} does not match its checksum: the archive is damaged"),
            None => bail!("{path} is not in {SUMS}: not a Berth backup"),
        }
    }
    if let Some(missing) = sums.keys().find(|p| !written.contains_key(*p)) {
        bail!("{missing} is listed in {SUMS} but not in the archive: it is damaged");
    }
    if sqlite.is_some() && !written.contains_key(DATABASE) {
        bail!("the manifest says the archive holds {DATABASE}, but it does not");
    }
    // Deepest first, once every file is in: a directory of mode 0500 is written into before.
    for (dir, mode) in dirs.iter().rev() {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700))
            .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
    }
    Ok(Restored {
        manifest,
        files: written.len(),
        bytes,
    })
}

/// The first entry, the manifest, checked.
fn read_manifest<R: io::Read>(reader: &mut Reader<R>) -> anyhow::Result<Manifest> {
    let first = reader
        .next_header()
        .context("not a Berth backup (not a tar archive)")?
        .context("the archive is empty: not a Berth backup")?;
    if first.path != MANIFEST || !first.is_file() {
        bail!(
            "not a Berth backup: its first entry is {:?}, not the manifest {MANIFEST} (was it \
             written by berth backup?)",
            first.path
        );
    }
    if first.size > MAX_LIST_BYTES {
        bail!("the manifest is {} bytes: oversized", first.size);
    }
    let mut data = Vec::new();
    reader.copy_data(&mut data)?;
    let value: serde_json::Value = serde_json::from_slice(&data)
        .map_err(|e| anyhow::anyhow!("the manifest {MANIFEST} is not valid JSON: {e}"))?;
    if value.get("format").and_then(serde_json::Value::as_str) != Some(FORMAT) {
        bail!("the manifest {MANIFEST} is not a Berth backup's (its format is not {FORMAT:?})");
    }
    let version = value
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .with_context(|| format!("the manifest {MANIFEST} has no format_version"))?;
    if version > u64::from(FORMAT_VERSION) {
        bail!(
            "the archive is of format {version}, written by Berth {}; this Berth ({}) restores \
             format {FORMAT_VERSION} and older: restore it with a newer Berth",
            value
                .get("berth_version")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?"),
            env!("CARGO_PKG_VERSION")
        );
    }
    if version == 0 {
        bail!("the manifest {MANIFEST} has format_version 0, which no Berth writes");
    }
    let manifest: Manifest = serde_json::from_value(value)
        .map_err(|e| anyhow::anyhow!("the manifest {MANIFEST} is incomplete: {e}"))?;
    if let DatabaseInfo::Sqlite { file, .. } = &manifest.database
        && file != DATABASE
    {
        bail!("the manifest names the database {file:?}; a Berth backup holds {DATABASE}");
    }
    Ok(manifest)
}

/// The entry's path, relative and plain, or why it is refused.
fn clean_path(header: &Header) -> anyhow::Result<String> {
    let raw = header.path.as_str();
    if !header.utf8 {
        bail!("entry {raw:?} has a name that is not UTF-8: not a Berth backup");
    }
    let name = if header.is_dir() {
        raw.strip_suffix('/').unwrap_or(raw)
    } else {
        raw
    };
    if name.is_empty() {
        bail!("an entry without a name: not a Berth backup");
    }
    if name.starts_with('/') {
        bail!("entry {raw} has an absolute path: a backup holds paths inside the home only");
    }
    if name.len() > 4096 || name.contains('\0') {
        bail!(
            "entry {:?}…: not a path a backup holds",
            &raw[..raw.len().min(64)]
        );
    }
    for component in name.split('/') {
        match component {
            "" => bail!("entry {raw} has an empty path component: not a Berth backup"),
            "." | ".." => bail!(
                "entry {raw} has `{component}` in its path, which could reach outside the home"
            ),
            c if c.len() > 255 => bail!("entry {raw} has a name too long for a file system"),
            _ => {}
        }
    }
    Ok(name.to_owned())
}

/// Only files and directories: a backup never holds links or devices.
fn check_kind(header: &Header, path: &str) -> anyhow::Result<()> {
    match header.kind {
        b'0' | b'\0' | b'5' => Ok(()),
        b'1' | b'2' => bail!(
            "entry {path} is {} to {:?}: a Berth backup holds no links, which could point \
             outside the home",
            header.kind_name(),
            header.link
        ),
        _ => bail!(
            "entry {path} is {}: a Berth backup holds only files and directories",
            header.kind_name()
        ),
    }
}

fn make_dir(dir: &Path) -> anyhow::Result<()> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) if dir.is_dir() => Ok(()),
        Ok(()) => bail!("{} is not a directory", dir.display()),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
}

/// Writes the entry's data to `path` (a new file) with its mode and time; its SHA-256.
fn write_file<R: io::Read>(
    reader: &mut Reader<R>,
    header: &Header,
    path: &Path,
) -> anyhow::Result<String> {
    if let Some(parent) = path.parent() {
        make_dir(parent)?;
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = Hashed {
        inner: io::BufWriter::new(file),
        hasher: Sha256::new(),
    };
    reader.copy_data(&mut out)?;
    let file = out
        .inner
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error()))?;
    // No set-id bits: the archive's word alone is not enough for those. Secrets (the keys,
    // the database) are the owner's alone whatever the archive says.
    let secret = path.components().any(|c| {
        matches!(
            c.as_os_str().to_str(),
            Some("keys" | "jwt.key" | "ssh_host_ed25519_key" | "berth.db")
        )
    }) || path.to_string_lossy().contains("fleet/keys");
    let mode = if secret {
        header.mode & 0o700
    } else {
        header.mode & 0o777
    };
    file.set_permissions(fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    let _ = file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(header.mtime));
    file.sync_all()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(hex(&out.hasher.finalize()))
}

/// A writer that hashes what passes through it.
struct Hashed<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for Hashed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `HEX  path` lines, as `sha256sum` writes them.
fn parse_sums(data: &[u8]) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::str::from_utf8(data).context("the checksum list is not text")?;
    let mut sums = BTreeMap::new();
    for line in text.lines() {
        let (sum, path) = line
            .split_once("  ")
            .with_context(|| format!("a line of {SUMS} is not `SHA256  PATH`: {line:?}"))?;
        if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("a line of {SUMS} has no SHA-256: {line:?}");
        }
        sums.insert(path.to_owned(), sum.to_ascii_lowercase());
    }
    Ok(sums)
}

/// Moves what was staged into the home, then removes the staging directory.
fn move_into(staging: &Path, root: &Path) -> anyhow::Result<()> {
    for entry in
        fs::read_dir(staging).with_context(|| format!("cannot read {}", staging.display()))?
    {
        let entry = entry?;
        let to = root.join(entry.file_name());
        fs::rename(entry.path(), &to)
            .with_context(|| format!("cannot move {} into place", to.display()))?;
    }
    fs::remove_dir(staging).with_context(|| format!("cannot remove {}", staging.display()))
}

/// What the person restoring should know before `berth serve`.
fn after_restore(root: &Path, manifest: &Manifest) {
    if let DatabaseInfo::Postgres { location } = &manifest.database {
        eprintln!(
            "  The database was PostgreSQL ({location}) and is not in the archive: restore it \
             from your pg_dump before starting Berth (docs/backup.md)."
        );
    }
    match berth_config::check(&root.join("config")) {
        Ok(config) => {
            let main = config.main;
            if let Some(database) = &main.database
                && matches!(manifest.database, DatabaseInfo::Sqlite { .. })
                && Path::new(database) != root.join(DATABASE)
            {
                eprintln!(
                    "  main.yaml sets `database: {}`; the restored database is {}: point \
                     `database` at it (or remove the line) before starting Berth.",
                    berth_store::redact_location(database),
                    root.join(DATABASE).display()
                );
            }
            eprintln!(
                "  runtime.instance is {:?}, as on the server backed up: if that server still \
                 runs on the same Docker Engine, give this one another name (runtime.instance \
                 or BERTH_INSTANCE) first. Workspaces' containers are not in a backup: those \
                 of the restored rows are gone on a new engine and show as stopped.",
                main.runtime.instance
            );
        }
        Err(errors) => eprintln!(
            "  warning: the restored configuration has {} error(s): `berth config check --home \
             {}` lists them",
            errors.len(),
            root.display()
        ),
    }
    if fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        eprintln!(
            "  The files belong to root: if Berth runs as another user, `chown -R USER: {}`.",
            root.display()
        );
    }
    eprintln!("Start it with: berth serve --home {}", root.display());
}
