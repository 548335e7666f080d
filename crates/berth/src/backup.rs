//! `berth backup FILE` and `berth restore FILE --home DIR`: one tar archive of what a Berth
//! home needs to start again elsewhere, taken while the server runs.
//!
//! An archive holds, in this order:
//!
//! 1. `berth-backup.json`, the manifest ([`Manifest`]): format version, Berth version, time,
//!    host, database kind, what is in it and what was left out;
//! 2. `config/` (the YAML files, read under the configuration's shared locks, so no change is
//!    seen half-done);
//! 3. `berth.db`, a consistent snapshot of the SQLite database (`VACUUM INTO` through
//!    [`berth_store::Store::snapshot_to`], while the server goes on writing; never the live
//!    file's bytes). With PostgreSQL there is none: that is `pg_dump`'s job;
//! 4. the keys: `jwt.key`, `keys/`, the SSH gateway's host key, `fleet/keys/` and
//!    `fleet/known_hosts`;
//! 5. `recordings/`, each file as long as it was when it was opened (one being written may end
//!    mid-line; the restore keeps it so);
//! 6. `berth-backup.sha256`, the SHA-256 of every file (`sha256sum -c` reads it), last.
//!
//! Left out: `logs/`, and the fleet's inventory mirror, which the next sync fetches again.
//!
//! The archive is plain tar, not compressed: nothing in Berth's build compresses, and an
//! uncompressed archive cannot expand to more than its own size when it is restored. It is
//! written to `FILE.tmp`, mode 0600 (it holds every secret of the home), and renamed to `FILE`
//! when complete. `docs/backup.md` is the guide.

mod restore;
mod tar;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use berth_store::Store as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::HomeArg;
use crate::home::Home;

pub use restore::RestoreArgs;

/// The manifest's name in an archive; always the first entry.
const MANIFEST: &str = "berth-backup.json";
/// The checksums' name in an archive; always the last entry.
const SUMS: &str = "berth-backup.sha256";
/// The manifest's `format`.
const FORMAT: &str = "berth-backup";
/// The archive format this Berth writes, and the newest it restores.
const FORMAT_VERSION: u32 = 1;
/// The database snapshot's name in an archive and in a home.
const DATABASE: &str = "berth.db";
/// Files of the home that are kept one by one: secrets, and the fleet's trusted host keys.
const KEY_FILES: [&str; 4] = [
    "jwt.key",
    berth_core::gateway::DEFAULT_HOST_KEY,
    "ssh_host_ed25519_key.pub",
    "fleet/known_hosts",
];
/// Directories of the home kept whole, and the part of the archive each belongs to.
const TREES: [(&str, Part); 4] = [
    ("config", Part::Config),
    ("keys", Part::Keys),
    ("fleet/keys", Part::Keys),
    ("recordings", Part::Recordings),
];
/// Directories made on the way to the trees (their modes are kept too).
const PARENTS: [&str; 1] = ["fleet"];
/// The largest key file (a private key, known_hosts) a restore accepts.
const MAX_KEY_BYTES: u64 = 1 << 20;
/// The largest manifest or checksum list a restore accepts.
const MAX_LIST_BYTES: u64 = 16 << 20;

/// What part of a home a file of the archive belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Config,
    Database,
    Keys,
    Recordings,
}

impl Part {
    /// Which part `path` (relative to the home) belongs to, if any: what a restore accepts.
    fn of(path: &str) -> Option<Part> {
        if path == DATABASE {
            return Some(Part::Database);
        }
        if KEY_FILES.contains(&path) {
            return Some(Part::Keys);
        }
        TREES
            .iter()
            .find(|(dir, _)| path.strip_prefix(dir).is_some_and(|r| r.starts_with('/')))
            .map(|(_, part)| *part)
    }

    /// The most bytes one file of this part may hold in an archive, if there is a limit.
    fn limit(self) -> Option<u64> {
        match self {
            // Berth reads no larger configuration file.
            Part::Config => Some(berth_config::MAX_FILE_BYTES),
            Part::Keys => Some(MAX_KEY_BYTES),
            Part::Database | Part::Recordings => None,
        }
    }
}

/// Whether `path` (relative to the home) is a directory an archive may hold.
fn is_archived_dir(path: &str) -> bool {
    PARENTS.contains(&path)
        || TREES.iter().any(|(dir, _)| {
            path == *dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
        })
}

/// The archive's first entry: what it is, so a restore can check it before anything else.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `berth-backup`.
    pub format: String,
    /// The archive format ([`FORMAT_VERSION`]); a restore refuses a newer one.
    pub format_version: u32,
    /// The version of Berth that wrote it.
    pub berth_version: String,
    /// When the backup started (RFC 3339, UTC).
    pub created_at: String,
    /// The host it was taken on.
    pub host: String,
    /// The home that was backed up.
    pub home: String,
    /// main.yaml's `runtime.instance` (the label of the server's containers), when readable.
    pub instance: Option<String>,
    /// The database, and whether it is in the archive.
    pub database: DatabaseInfo,
    /// What the archive holds, in words.
    pub contents: Vec<String>,
    /// What the archive leaves out, and why.
    pub left_out: Vec<String>,
}

/// The manifest's database section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DatabaseInfo {
    /// A snapshot is in the archive as `file`.
    Sqlite {
        /// Its name in the archive (`berth.db`).
        file: String,
        /// Its size.
        bytes: u64,
        /// The newest migration applied in it.
        schema_version: i64,
        /// Where the database was.
        source: String,
    },
    /// Not in the archive: PostgreSQL is backed up with `pg_dump`.
    Postgres {
        /// Where it is (without its password).
        location: String,
    },
}

/// `berth backup FILE`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The archive to write, a tar file (written as FILE.tmp, then renamed).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    home: HomeArg,
    /// The database, as `berth serve --database` takes it; overrides main.yaml `database`
    /// (default HOME/berth.db).
    #[arg(long, env = "BERTH_DATABASE", value_name = "URL")]
    database: Option<String>,
    /// Replace FILE (and a FILE.tmp a killed backup left) if it exists.
    #[arg(long)]
    force: bool,
}

/// Runs `berth backup`, printing its progress and any error on stderr.
pub fn backup(args: BackupArgs) -> ExitCode {
    report(run_backup(args))
}

/// Runs `berth restore`, printing its progress and any error on stderr.
pub fn restore(args: RestoreArgs) -> ExitCode {
    report(restore::run(args))
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("berth: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where the database is.
enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Database {
    /// `location` as `berth serve` reads it (see `berth_store::open`).
    fn parse(location: &str) -> anyhow::Result<Self> {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            return Ok(Self::Postgres(location.to_owned()));
        }
        let path = match location.strip_prefix("sqlite:") {
            Some(rest) => {
                let rest = rest.strip_prefix("//").unwrap_or(rest);
                let path = rest.split('?').next().unwrap_or(rest);
                if path.is_empty() || path == ":memory:" || location.contains("mode=memory") {
                    bail!("the database {location} is in memory: there is nothing to back up");
                }
                path
            }
            None if location.contains("://") => bail!(
                "the database {} is neither postgres:// nor SQLite",
                berth_store::redact_location(location)
            ),
            None => location,
        };
        Ok(Self::Sqlite(PathBuf::from(path)))
    }
}

/// What main.yaml says about the files to back up.
struct Settings {
    database: Database,
    instance: Option<String>,
    /// main.yaml paths outside the home that the archive cannot hold.
    elsewhere: Vec<String>,
}

impl Settings {
    fn read(home: &Home, database: Option<String>) -> anyhow::Result<Self> {
        let default_database = home.root().join(DATABASE).display().to_string();
        let main = match berth_config::check(&home.config()) {
            Ok(config) => Some(config.main),
            Err(errors) => {
                eprintln!(
                    "  warning: the configuration in {} has {} error(s) (`berth config check` \
                     lists them); it is backed up as it is, and the database is taken from \
                     --database or {default_database}",
                    home.config().display(),
                    errors.len()
                );
                None
            }
        };
        let location = database
            .or_else(|| main.as_ref().and_then(|m| m.database.clone()))
            .unwrap_or(default_database);
        let mut elsewhere = Vec::new();
        if let Some(main) = &main {
            let default_host_key = home.root().join(berth_core::gateway::DEFAULT_HOST_KEY);
            if let Some(key) = &main.ssh.host_key
                && *key != default_host_key
            {
                elsewhere.push(format!("ssh.host_key {}", key.display()));
            }
            let default_keys = home.root().join("fleet/keys");
            if let Some(dir) = &main.fleet.keys_dir
                && *dir != default_keys
            {
                elsewhere.push(format!("fleet.keys_dir {}", dir.display()));
            }
        }
        Ok(Self {
            database: Database::parse(&location)?,
            instance: main.map(|m| m.runtime.instance),
            elsewhere,
        })
    }
}

fn run_backup(args: BackupArgs) -> anyhow::Result<()> {
    let home = Home::resolve(args.home.home)?;
    check_home(home.root())?;
    let settings = Settings::read(&home, args.database)?;
    let target = Target::new(&args.file, args.force, home.root())?;
    eprintln!(
        "Backing up {} to {}",
        home.root().display(),
        target.path.display()
    );
    let mut temp = TempFiles::default();
    let file = target.create_temp(args.force)?;
    temp.0.push(target.temp.clone());
    let mut archive = Archive::new(file);
    let started = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());

    let (snapshot_file, database) = match &settings.database {
        Database::Sqlite(path) => {
            let snapshot_path = target.snapshot_path();
            let _ = fs::remove_file(&snapshot_path);
            temp.0.push(snapshot_path.clone());
            let snapshot = snapshot(path, &snapshot_path)?;
            eprintln!(
                "  database: a consistent snapshot of {} ({}, schema {})",
                path.display(),
                size(snapshot.bytes),
                snapshot.schema_version
            );
            let info = DatabaseInfo::Sqlite {
                file: DATABASE.to_owned(),
                bytes: snapshot.bytes,
                schema_version: snapshot.schema_version,
                source: std::path::absolute(path)
                    .unwrap_or_else(|_| path.clone())
                    .display()
                    .to_string(),
            };
            (Some(snapshot_path), info)
        }
        Database::Postgres(location) => {
            let location = berth_store::redact_location(location);
            eprintln!(
                "  database: PostgreSQL ({location}) is not in the archive: back it up with \
                 pg_dump (docs/backup.md)"
            );
            (None, DatabaseInfo::Postgres { location })
        }
    };
    for path in &settings.elsewhere {
        eprintln!("  warning: main.yaml sets {path}, outside the home: not in the archive");
    }

    let manifest = Manifest::new(&home, &settings, database, started);
    let json = serde_json::to_vec_pretty(&manifest)?;
    archive.bytes(MANIFEST, &json)?;

    let count = archive.files;
    {
        // Under the configuration's shared locks: a change in progress (two files edited
        // together) is in the archive before or after, never half-done.
        let _locks = config_locks(&home.config());
        archive.tree(home.root(), "config", &|name| skip_config(name))?;
    }
    eprintln!("  config: {}", files(archive.files - count));
    if let Some(snapshot_path) = &snapshot_file {
        archive.file(DATABASE, snapshot_path, Some(0o600))?;
    }

    let count = archive.files;
    for parent in PARENTS {
        archive.directory_if_present(home.root(), parent)?;
    }
    for name in KEY_FILES {
        let path = home.root().join(name);
        if path.exists() {
            archive.file(name, &path, None)?;
        }
    }
    archive.tree(home.root(), "keys", &|_| false)?;
    archive.tree(home.root(), "fleet/keys", &|_| false)?;
    eprintln!("  keys: {}", files(archive.files - count));

    let (count, bytes) = (archive.files, archive.data);
    archive.tree(home.root(), "recordings", &|_| false)?;
    eprintln!(
        "  recordings: {}, {}",
        files(archive.files - count),
        size(archive.data - bytes)
    );
    eprintln!("  left out: logs/, fleet/inventory.git (fetched again by the next sync)");

    let (files, data) = (archive.files, archive.data);
    let file = archive.finish()?;
    target.commit(file)?;
    temp.0.retain(|p| *p != target.temp);
    eprintln!(
        "Wrote {}: {}, {}.",
        target.path.display(),
        self::files(files),
        size(data)
    );
    Ok(())
}

impl Manifest {
    fn new(
        home: &Home,
        settings: &Settings,
        database: DatabaseInfo,
        started: time::OffsetDateTime,
    ) -> Self {
        Self {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            berth_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: started
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            host: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            home: std::path::absolute(home.root())
                .unwrap_or_else(|_| home.root().to_owned())
                .display()
                .to_string(),
            instance: settings.instance.clone(),
            database,
            contents: contents(&settings.database),
            left_out: vec![
                "logs/: the server's own logs".to_owned(),
                "fleet/inventory.git: the inventory mirror, fetched again by the next sync"
                    .to_owned(),
                "containers and Docker volumes: they live in the Docker Engine (docs/backup.md)"
                    .to_owned(),
            ],
        }
    }
}

fn contents(database: &Database) -> Vec<String> {
    let mut contents = vec!["config/: the YAML configuration".to_owned()];
    if matches!(database, Database::Sqlite(_)) {
        contents.push("berth.db: a consistent snapshot of the SQLite database".to_owned());
    }
    contents.extend([
        "keys: jwt.key, keys/, the SSH gateway's host key, fleet/keys/, fleet/known_hosts"
            .to_owned(),
        "recordings/: the terminal recordings".to_owned(),
    ]);
    contents
}

/// Refuses what is not a Berth home.
fn check_home(root: &Path) -> anyhow::Result<()> {
    match fs::metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            bail!("no such home: {} does not exist", root.display())
        }
        Err(e) => bail!("cannot read the home {}: {e}", root.display()),
        Ok(meta) if !meta.is_dir() => bail!("the home {} is not a directory", root.display()),
        Ok(_) => {}
    }
    if !root.join("config/main.yaml").is_file() {
        bail!(
            "{} is not a Berth home: it has no config/main.yaml (is --home or BERTH_HOME \
             right?)",
            root.display()
        );
    }
    Ok(())
}

/// Takes the snapshot of the SQLite database at `source` into `target`.
fn snapshot(source: &Path, target: &Path) -> anyhow::Result<berth_store::Snapshot> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = berth_store::SqliteStore::open_read_only(source)
            .await
            .with_context(|| format!("cannot open the database {}", source.display()))?;
        let snapshot = store.snapshot_to(target).await;
        store.close().await;
        snapshot.with_context(|| {
            format!(
                "cannot take a snapshot of the database {} into {}",
                source.display(),
                target.display()
            )
        })
    })
}

/// Shared locks on the configuration's lock files, those that exist (creating one here could
/// leave a file the server's user cannot open).
fn config_locks(dir: &Path) -> Vec<File> {
    ["main.yaml", "containers.yaml", "users.yaml"]
        .iter()
        .filter_map(|name| {
            let file = File::open(dir.join(format!("{name}.lock"))).ok()?;
            file.lock_shared().ok()?;
            Some(file)
        })
        .collect()
}

/// Configuration files a backup leaves out: lock files and the temporary files of a change in
/// progress (`.users.yaml.tmp-…`).
fn skip_config(name: &str) -> bool {
    name.ends_with(".lock") || (name.starts_with('.') && name.contains(".tmp-"))
}

/// The archive's file, its temporary name, and the checks before writing it.
struct Target {
    path: PathBuf,
    temp: PathBuf,
}

impl Target {
    fn new(file: &Path, force: bool, home: &Path) -> anyhow::Result<Self> {
        let path = std::path::absolute(file)
            .with_context(|| format!("cannot resolve {}", file.display()))?;
        let Some(name) = path.file_name() else {
            bail!("{} names no file", file.display());
        };
        let dir = path.parent().unwrap_or(Path::new("/"));
        if !dir.is_dir() {
            bail!(
                "cannot write {}: the directory {} does not exist",
                path.display(),
                dir.display()
            );
        }
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => bail!("{} is a directory", path.display()),
            Ok(_) if !force => bail!(
                "{} exists: pass --force to replace it (or choose another name)",
                path.display()
            ),
            _ => {}
        }
        // An archive written into a part of the home it backs up would be read while written.
        if let (Ok(dir), Ok(home)) = (dir.canonicalize(), home.canonicalize()) {
            for (tree, _) in TREES {
                if dir.starts_with(home.join(tree)) {
                    bail!(
                        "{} is inside {}, which the archive holds: write it elsewhere",
                        path.display(),
                        home.join(tree).display()
                    );
                }
            }
        }
        let mut temp = name.to_owned();
        temp.push(".tmp");
        Ok(Self {
            temp: path.with_file_name(temp),
            path,
        })
    }

    /// The database snapshot's temporary file, beside the archive.
    fn snapshot_path(&self) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.path
            .with_file_name(format!(".{name}.db-{}.tmp", std::process::id()))
    }

    /// Creates FILE.tmp, private (the archive holds every secret of the home).
    fn create_temp(&self, force: bool) -> anyhow::Result<File> {
        let open = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&self.temp)
        };
        match open() {
            Ok(file) => Ok(file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && force => {
                fs::remove_file(&self.temp)
                    .with_context(|| format!("cannot remove {}", self.temp.display()))?;
                open().with_context(|| format!("cannot write {}", self.temp.display()))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => bail!(
                "{} exists: another backup to {} is running, or one was killed (remove it, or \
                 pass --force)",
                self.temp.display(),
                self.path.display()
            ),
            Err(e) => Err(e).with_context(|| format!("cannot write {}", self.temp.display())),
        }
    }

    /// Makes the complete archive durable and gives it its name.
    fn commit(&self, file: File) -> anyhow::Result<()> {
        file.sync_all()
            .with_context(|| format!("cannot write {}", self.temp.display()))?;
        drop(file);
        fs::rename(&self.temp, &self.path).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.temp.display(),
                self.path.display()
            )
        })?;
        if let Some(dir) = self.path.parent()
            && let Ok(dir) = File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// Files removed when the backup ends, whether it succeeded or not.
#[derive(Default)]
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

/// The archive being written, with the checksum of every file in it.
struct Archive {
    writer: tar::Writer<BufWriter<File>>,
    sums: BTreeMap<String, String>,
    files: usize,
    data: u64,
}

impl Archive {
    fn new(file: File) -> Self {
        Self {
            writer: tar::Writer::new(BufWriter::with_capacity(256 * 1024, file)),
            sums: BTreeMap::new(),
            files: 0,
            data: 0,
        }
    }

    /// A file made of `data` (the manifest).
    fn bytes(&mut self, name: &str, data: &[u8]) -> anyhow::Result<()> {
        self.writer
            .file(name, 0o600, now(), data.len() as u64, &mut &data[..])?;
        Ok(())
    }

    /// The file at `path` as `name`, with its own mode unless `mode` is given. A file that is
    /// gone by now (a recording retention removed) is left out.
    fn file(&mut self, name: &str, path: &Path, mode: Option<u32>) -> anyhow::Result<()> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("  note: {name} was removed while the backup ran; left out");
                return Ok(());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        // The size of the open file: a recording being written is taken as long as it is
        // now (it only grows), so the tar header's size holds.
        let meta = file
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mode = mode.unwrap_or(meta.permissions().mode() & 0o777);
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        let mut hashing = Hashing {
            inner: file,
            hasher: Sha256::new(),
        };
        self.writer
            .file(name, mode, mtime, meta.len(), &mut hashing)
            .with_context(|| format!("cannot archive {}", path.display()))?;
        self.sums
            .insert(name.to_owned(), hex(&hashing.hasher.finalize()));
        self.files += 1;
        self.data += meta.len();
        Ok(())
    }

    fn directory_if_present(&mut self, root: &Path, name: &str) -> anyhow::Result<()> {
        if let Ok(meta) = fs::metadata(root.join(name))
            && meta.is_dir()
        {
            let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
            self.writer
                .directory(name, meta.permissions().mode() & 0o777, mtime)?;
        }
        Ok(())
    }

    /// The directory `root/name` and everything in it (files reached through a symbolic link
    /// are kept as files), except what `skip` names.
    fn tree(&mut self, root: &Path, name: &str, skip: &dyn Fn(&str) -> bool) -> anyhow::Result<()> {
        let dir = root.join(name);
        let meta = match fs::symlink_metadata(&dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        };
        if !meta.is_dir() {
            eprintln!("  warning: {} is not a directory; left out", dir.display());
            return Ok(());
        }
        self.directory_if_present(root, name)?;
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                eprintln!(
                    "  warning: {} has a name that is not UTF-8; left out",
                    entry.path().display()
                );
                continue;
            };
            if skip(&file_name) {
                continue;
            }
            let child = format!("{name}/{file_name}");
            let path = entry.path();
            match fs::metadata(&path) {
                Ok(meta) if meta.is_file() => self.file(&child, &path, None)?,
                Ok(meta) if meta.is_dir() && !entry.file_type().is_ok_and(|t| t.is_symlink()) => {
                    self.tree(root, &child, skip)?;
                }
                Ok(_) => eprintln!(
                    "  warning: {} is not a regular file or directory; left out",
                    path.display()
                ),
                // Removed meanwhile, or a dangling link.
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// Writes the checksums and the end of the archive.
    fn finish(mut self) -> anyhow::Result<File> {
        let mut sums = String::new();
        for (name, sum) in &self.sums {
            sums.push_str(&format!("{sum}  {name}\n"));
        }
        self.writer
            .file(SUMS, 0o600, now(), sums.len() as u64, &mut sums.as_bytes())?;
        let out = self.writer.finish()?;
        out.into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write the archive: {}", e.error()))
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Lowercase hex, as `sha256sum` prints it.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `1 file`, `2 files`.
fn files(n: usize) -> String {
    if n == 1 {
        "1 file".to_owned()
    } else {
        format!("{n} files")
    }
}

/// A size for people: `1.4 MiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn each_path_belongs_to_one_part_or_none() {
        assert_eq!(Part::of("berth.db"), Some(Part::Database));
        assert_eq!(Part::of("config/main.yaml"), Some(Part::Config));
        assert_eq!(Part::of("config/users.d/alice.yaml"), Some(Part::Config));
        assert_eq!(Part::of("jwt.key"), Some(Part::Keys));
        assert_eq!(Part::of("keys/clusters.key"), Some(Part::Keys));
        assert_eq!(Part::of("fleet/keys/id_ed25519"), Some(Part::Keys));
        assert_eq!(Part::of("fleet/known_hosts"), Some(Part::Keys));
        assert_eq!(Part::of("recordings/a/b.cast"), Some(Part::Recordings));
        for outside in [
            "config",
            "configs/x",
            "logs/berth.log",
            "fleet/inventory.git/HEAD",
            "fleet/other",
            ".bashrc",
            "berth.db-wal",
        ] {
            assert_eq!(Part::of(outside), None, "{outside}");
        }
        assert!(is_archived_dir("fleet"));
        assert!(is_archived_dir("recordings/abc"));
        assert!(!is_archived_dir("logs"));
        assert!(!is_archived_dir("fleet/inventory.git"));
    }

    #[test]
    fn database_locations_as_serve_reads_them() {
        let path = |l: &str| match Database::parse(l).unwrap() {
            Database::Sqlite(p) => p,
            Database::Postgres(_) => panic!("{l} is SQLite"),
        };
        assert_eq!(path("/srv/berth.db"), Path::new("/srv/berth.db"));
        assert_eq!(path("sqlite:///srv/berth.db"), Path::new("/srv/berth.db"));
        assert_eq!(path("sqlite://b.db?mode=rwc"), Path::new("b.db"));
        assert!(matches!(
            Database::parse("postgres://u:p@db/berth").unwrap(),
            Database::Postgres(_)
        ));
        let err = Database::parse("sqlite::memory:")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("in memory"), "{err}");
        let err = Database::parse("mysql://u:secret@db/x")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("neither") && !err.contains("secret"), "{err}");
    }

    #[test]
    fn config_lock_and_temporary_files_are_left_out() {
        assert!(skip_config("users.yaml.lock"));
        assert!(skip_config(".users.yaml.tmp-12-0"));
        assert!(!skip_config("users.yaml"));
        assert!(!skip_config("users.d"));
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(size(12), "12 bytes");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 << 20), "3.0 MiB");
    }
}
