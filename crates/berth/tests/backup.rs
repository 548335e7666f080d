//! `berth backup` and `berth restore` as an admin runs them: a running server with users, a
//! template, a running workspace, a recording, the SSH gateway's host key and fleet keys is
//! backed up while a client keeps writing (users made and removed, pings), restored into a
//! new home, and a server started there (another `BERTH_INSTANCE`) has all of it: the users,
//! the workspace's row, the recording's cast, the keys byte for byte with mode 0600, the same
//! admin password and login-token key. Then what is refused: a non-empty home, archives that
//! are not backups (or damaged, or of a newer format), hostile entries (absolute paths, `..`,
//! links, devices, oversized files, paths a backup never writes), a home or target that is
//! wrong; and a PostgreSQL home, whose archive has no database and says to use pg_dump.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a panic is the failure report

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use berth_client::api::{PingRequest, UserBody, WorkspaceQuery};
use berth_client::{Client, Template};
use common::{CliHome, Pty, Server, berth, block_on, both, eventually, require_engine, wait_child};

const ALICE: &str = "correct horse battery";

fn backup(home: &Path, file: &Path, extra: &[&str]) -> Output {
    berth()
        .arg("backup")
        .arg(file)
        .arg("--home")
        .arg(home)
        .args(extra)
        .env_remove("BERTH_DATABASE")
        .output()
        .unwrap()
}

fn restore(file: &Path, home: &Path) -> Output {
    berth()
        .arg("restore")
        .arg(file)
        .arg("--home")
        .arg(home)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Fails unless `output` failed with exit status 1 and its stderr says `needle`.
fn assert_refused(output: &Output, needle: &str) {
    assert_eq!(output.status.code(), Some(1), "{}", both(output));
    assert!(
        stderr(output).contains(needle),
        "expected {needle:?}:\n{}",
        both(output)
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A private file of `contents`.
fn write_private(path: &Path, contents: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// An API client logged in as `username`, and its token.
fn logged_in(server: &Server, username: &str, password: &str) -> (Client, String) {
    let client = Client::new(&server.url()).unwrap();
    let login = block_on(client.login(username, password)).unwrap();
    let token = login.token.expose().to_owned();
    (client.with_token(&token), token)
}

fn user_body(name: &str) -> UserBody {
    UserBody {
        username: berth_types::Username::new(name).unwrap(),
        role: berth_types::Role::User,
        // No password: no slow hash, so the rounds come fast.
        password: None,
        templates: Vec::new(),
        access_locked: false,
        disabled: false,
        metadata: Default::default(),
        machines: Vec::new(),
    }
}

/// The fingerprint the SSH gateway's start-up line shows.
fn gateway_fingerprint(server: &Server) -> String {
    let line = server
        .banner
        .iter()
        .find(|l| l.starts_with("The SSH gateway is listening on "))
        .unwrap_or_else(|| panic!("no gateway line: {:#?}", server.banner));
    line.split("host key ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// Writes keep coming while the backup runs: users made and removed (users.yaml and the audit
/// log), pings from a client (the clients table). Stops when told, or after 50 rounds: the
/// default `security.ping_rate_per_minute` is 60.
struct Load {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl Load {
    /// `admin` makes and removes users; `user` (a users.yaml user) pings.
    fn start(server: &Server, admin: Client, user: &Client) -> Self {
        let token = block_on(user.create_token(Some("load"))).unwrap();
        let pinger = Client::new(&server.url())
            .unwrap()
            .with_token(token.token.expose());
        let client_id = token.client_id;
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::spawn({
            let (stop, rounds) = (stop.clone(), rounds.clone());
            move || {
                block_on(async {
                    for round in 0..50 {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let name = format!("load{round}");
                        admin.create_user(&user_body(&name)).await.unwrap();
                        let ping = PingRequest {
                            client_id,
                            hostname: "loadgen".into(),
                            version: format!("0.0.{round}"),
                            local_workspaces: Vec::new(),
                        };
                        pinger.ping(&ping).await.unwrap();
                        admin.delete_user(&name).await.unwrap();
                        rounds.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        Self {
            stop,
            rounds,
            thread,
        }
    }

    fn rounds(&self) -> usize {
        self.rounds.load(Ordering::SeqCst)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the load ran without errors");
    }
}

#[test]
fn a_running_server_is_backed_up_under_load_and_restored_elsewhere() {
    require_engine();
    let home = tempfile::tempdir().unwrap();
    // A first start writes the configuration and the admin; then the SSH gateway is turned on,
    // so the home has a host key.
    let mut first = Server::start(home.path());
    let admin_password = first.printed_password().unwrap();
    {
        let admin = first.admin();
        let mut template = Template::new("backed", "berth-test/base");
        "none".clone_into(&mut template.network);
        admin.create_template(&template);
        admin.create_user("alice", ALICE, &["backed"]);
        admin.create_user("bob", "battery horse staple", &[]);
    }
    first.signal("TERM");
    assert!(first.wait_exit(Duration::from_secs(30)).success());
    let main_yaml = home.path().join("config/main.yaml");
    let text = std::fs::read_to_string(&main_yaml).unwrap();
    let at = text.find("\nssh:\n").expect("an ssh: section");
    let (head, tail) = text.split_at(at);
    let tail = tail.replacen("  listen: null", "  listen: 127.0.0.1:0", 1);
    std::fs::write(&main_yaml, format!("{head}{tail}")).unwrap();
    let server = Server::start(home.path());
    let fingerprint = gateway_fingerprint(&server);
    let (admin, admin_token) = logged_in(&server, "admin", &admin_password);

    // A running workspace of alice's, and a recorded terminal session in it.
    let alice = CliHome::new();
    alice.login(&server, "alice", ALICE);
    let workspace = alice.ok(&["start", "backed"]).trim().to_owned();
    let attached = alice.run_with_stdin(&["attach", &workspace], "echo saved-$((6*7))\nexit 0\n");
    assert!(attached.status.success(), "{}", both(&attached));
    assert!(String::from_utf8_lossy(&attached.stdout).contains("saved-42"));
    let workspace_id: berth_client::WorkspaceId = workspace.parse().unwrap();
    let mut recordings = Vec::new();
    eventually(Duration::from_secs(30), "the recording is listed", || {
        recordings = block_on(admin.recordings(workspace_id)).unwrap();
        recordings.iter().any(|r| r.ended_at.is_some())
    });
    let recording = recordings[0].id;
    let cast = block_on(admin.recording_cast(recording)).unwrap();
    assert!(cast.contains("saved-42"), "{cast}");

    // Fleet keys, as an admin puts them in the fleet keys dir.
    let fleet_key = home.path().join("fleet/keys/id_ed25519");
    write_private(
        &fleet_key,
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n",
    );
    let known_hosts = home.path().join("fleet/known_hosts");
    write_private(
        &known_hosts,
        b"web-1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK\n",
    );

    // A terminal stays open through the backup: its recording is being written.
    let mut command = alice.berth();
    command.args(["attach", &workspace]);
    let (mut live, mut pty) = Pty::spawn(command);
    pty.wait_for(
        "live-42",
        Some(b"echo live-$((6*7))\r"),
        Duration::from_secs(60),
    );

    // The backup, while the load writes.
    let (bob, _) = logged_in(&server, "bob", "battery horse staple");
    let load = Load::start(&server, admin.clone(), &bob);
    eventually(Duration::from_secs(60), "the load is under way", || {
        load.rounds() >= 3
    });
    let backups = tempfile::tempdir().unwrap();
    let archive = backups.path().join("berth.tar");
    let backed_up = backup(home.path(), &archive, &[]);
    // Every write of the load succeeded while the backup read (a lock held too long would
    // have failed one).
    load.stop();
    assert!(backed_up.status.success(), "{}", both(&backed_up));
    pty.type_text(b"echo after-the-backup\rexit 0\r");
    assert!(wait_child(&mut live, Duration::from_secs(30)).success());
    let said = stderr(&backed_up);
    for line in [
        "database: a consistent snapshot",
        "config: 3 files",
        "recordings: 2 files,",
        "Wrote ",
    ] {
        assert!(said.contains(line), "{line:?} in:\n{said}");
    }
    assert_eq!(mode(&archive), 0o600, "the archive holds secrets");
    let left: Vec<_> = std::fs::read_dir(backups.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file is left: {left:?}");

    // Restored into a new home, and served from there under another instance name.
    let restored_parent = tempfile::tempdir().unwrap();
    let restored = restored_parent.path().join("restored");
    let output = restore(&archive, &restored);
    assert!(output.status.success(), "{}", both(&output));
    assert!(stderr(&output).contains("Start it with: berth serve --home"));
    for key in [
        "jwt.key",
        "ssh_host_ed25519_key",
        "fleet/keys/id_ed25519",
        "fleet/known_hosts",
    ] {
        let (before, after) = (home.path().join(key), restored.join(key));
        assert_eq!(
            std::fs::read(&before).unwrap(),
            std::fs::read(&after).unwrap(),
            "{key} is the same"
        );
        assert_eq!(mode(&after), 0o600, "{key} is private");
    }
    assert_eq!(mode(&restored.join("berth.db")), 0o600);
    // The finished recording is whole; the live one as long as it was when copied: the start
    // of what the file holds now.
    let casts = std::fs::read_dir(home.path().join("recordings").join(&workspace)).unwrap();
    let mut live_seen = false;
    for cast in casts {
        let name = cast.unwrap().file_name();
        let relative = Path::new("recordings").join(&workspace).join(&name);
        let now = std::fs::read(home.path().join(&relative)).unwrap();
        let copied = std::fs::read(restored.join(&relative)).unwrap();
        assert!(
            !copied.is_empty() && now.starts_with(&copied),
            "{relative:?}"
        );
        live_seen |= copied.len() < now.len();
    }
    assert!(live_seen, "the live recording went on after the backup");
    assert!(
        !restored.join("fleet/inventory.git").exists() && restored.join("logs").is_dir(),
        "the mirror is left out; logs/ is made"
    );

    let copy = Server::start(&restored);
    assert_ne!(
        common::instance_for(&restored),
        common::instance_for(home.path())
    );
    assert_eq!(gateway_fingerprint(&copy), fingerprint, "the same host key");
    // The admin logs in with the same password, and a token the first server signed is good
    // here: the same jwt.key.
    let (admin_here, _) = logged_in(&copy, "admin", &admin_password);
    let reused = Client::new(&copy.url()).unwrap().with_token(&admin_token);
    let users = block_on(reused.users()).unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    assert!(
        names.contains(&"alice") && names.contains(&"bob"),
        "{names:?}"
    );
    let workspaces = block_on(admin_here.list_workspaces(&WorkspaceQuery::default())).unwrap();
    let row = workspaces
        .iter()
        .find(|w| w.id == workspace_id)
        .unwrap_or_else(|| panic!("the workspace's row: {workspaces:#?}"));
    assert_eq!(row.owner.as_str(), "alice");
    assert_eq!(row.template, "backed");
    let listed = block_on(admin_here.recordings(workspace_id)).unwrap();
    assert!(listed.iter().any(|r| r.id == recording), "{listed:#?}");
    assert_eq!(
        block_on(admin_here.recording_cast(recording)).unwrap(),
        cast
    );
    // alice logs in there too, with the password of the users.yaml that was backed up.
    let alice_there = CliHome::new();
    alice_there.login(&copy, "alice", ALICE);
}

/// A home made without a server: the default configuration, a migrated database, the
/// login-token and kubeconfig keys, and recordings.
fn small_home(dir: &Path) -> PathBuf {
    let home = dir.join("home");
    berth_config::init(&home.join("config")).unwrap();
    block_on(async {
        let store = berth_store::open(home.join("berth.db").to_str().unwrap())
            .await
            .unwrap();
        store.close().await;
    });
    write_private(&home.join("jwt.key"), b"0123456789abcdef0123456789abcdef");
    write_private(
        &home.join("keys/clusters.key"),
        b"fedcba9876543210fedcba9876543210",
    );
    write_private(
        &home.join("recordings/w1/r1.cast"),
        b"{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.1, \"o\", \"cut-mid-line",
    );
    // A name over tar's 100 bytes (a pax record in the archive).
    write_private(&home.join(LONG_RECORDING), b"{\"version\": 2}\n");
    home
}

/// A machine's recording whose path is longer than a ustar name.
const LONG_RECORDING: &str = "recordings/machines/a-machine-with-a-rather-long-name-in-the-inventory.example.org/0b6c2c1e-5e3f-4c55-9d7e-1a2b3c4d5e6f.cast";

#[test]
fn a_home_is_restored_as_it_was_and_a_second_restore_into_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let home = small_home(dir.path());
    let archive = dir.path().join("home.tar");
    let output = backup(&home, &archive, &[]);
    assert!(output.status.success(), "{}", both(&output));
    let target = dir.path().join("new");
    let output = restore(&archive, &target);
    assert!(output.status.success(), "{}", both(&output));
    for file in [
        "config/main.yaml",
        "config/users.yaml",
        "config/containers.yaml",
        "jwt.key",
        "keys/clusters.key",
        "recordings/w1/r1.cast",
        LONG_RECORDING,
    ] {
        assert_eq!(
            std::fs::read(home.join(file)).unwrap(),
            std::fs::read(target.join(file)).unwrap(),
            "{file}"
        );
    }
    // Other tools read the archive: GNU tar lists every name whole.
    let listing = std::process::Command::new("tar")
        .arg("tvf")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(listing.status.success(), "{}", both(&listing));
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains(LONG_RECORDING) && listing.contains("-rw------- 0/0"),
        "{listing}"
    );
    // ...and extract it; the checksum list ends it in sha256sum's format.
    let extracted = dir.path().join("extracted");
    std::fs::create_dir(&extracted).unwrap();
    let untar = std::process::Command::new("tar")
        .arg("xf")
        .arg(&archive)
        .arg("-C")
        .arg(&extracted)
        .output()
        .unwrap();
    assert!(untar.status.success(), "{}", both(&untar));
    let check = std::process::Command::new("sha256sum")
        .args(["--strict", "-c", "berth-backup.sha256"])
        .current_dir(&extracted)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", both(&check));
    // A recording cut mid-line is kept as it was.
    assert!(
        std::fs::read_to_string(target.join("recordings/w1/r1.cast"))
            .unwrap()
            .ends_with("\"cut-mid-line")
    );
    assert_eq!(mode(&target), 0o700);
    assert_eq!(mode(&target.join("config")), mode(&home.join("config")));
    assert_eq!(mode(&target.join("recordings/w1/r1.cast")), 0o600);
    assert_eq!(mode(&target.join("keys/clusters.key")), 0o600);
    // The database is a Berth database.
    block_on(async {
        let store = berth_store::SqliteStore::open_read_only(&target.join("berth.db"))
            .await
            .unwrap();
        drop(store);
    });

    // Into a home that has anything at all: refused, and nothing is changed.
    let output = restore(&archive, &target);
    assert_refused(&output, "is not empty");
    let busy = dir.path().join("busy");
    write_private(&busy.join("notes.txt"), b"mine");
    let output = restore(&archive, &busy);
    assert_refused(&output, "is not empty");
    let names: Vec<_> = std::fs::read_dir(&busy)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["notes.txt"]);
    // An empty directory is fine.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = restore(&archive, &empty);
    assert!(output.status.success(), "{}", both(&output));
}

#[test]
fn a_backup_refuses_a_wrong_home_or_target_and_replaces_only_when_forced() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("b.tar");
    let output = backup(&dir.path().join("nowhere"), &archive, &[]);
    assert_refused(&output, "no such home");
    let output = backup(dir.path(), &archive, &[]);
    assert_refused(&output, "is not a Berth home");
    let home = small_home(dir.path());
    let output = backup(&home, &dir.path().join("no/such/dir/b.tar"), &[]);
    assert_refused(&output, "does not exist");
    // sysfs takes no new files, not even from root.
    let output = backup(&home, Path::new("/sys/berth.tar"), &[]);
    assert_refused(&output, "cannot write /sys/berth.tar.tmp");
    let output = backup(&home, &home.join("recordings/b.tar"), &[]);
    assert_refused(&output, "which the archive holds");

    std::fs::write(&archive, "an older backup").unwrap();
    let output = backup(&home, &archive, &[]);
    assert_refused(&output, "pass --force");
    assert_eq!(
        std::fs::read_to_string(&archive).unwrap(),
        "an older backup"
    );
    let output = backup(&home, &archive, &["--force"]);
    assert!(output.status.success(), "{}", both(&output));
    assert!(std::fs::metadata(&archive).unwrap().len() > 10_000);
    // A FILE.tmp a killed backup left: said, and replaced only with --force.
    let other = dir.path().join("c.tar");
    std::fs::write(dir.path().join("c.tar.tmp"), "half").unwrap();
    let output = backup(&home, &other, &[]);
    assert_refused(&output, "c.tar.tmp exists");
    assert!(!other.exists());
    let output = backup(&home, &other, &["--force"]);
    assert!(output.status.success(), "{}", both(&output));
    assert!(!dir.path().join("c.tar.tmp").exists());

    // A database that is not Berth's.
    std::fs::write(home.join("berth.db"), "not a database").unwrap();
    let output = backup(&home, &dir.path().join("d.tar"), &[]);
    assert_refused(&output, "cannot open the database");
    assert!(!dir.path().join("d.tar").exists() && !dir.path().join("d.tar.tmp").exists());
}

#[test]
fn a_postgres_home_is_backed_up_without_its_database() {
    let url = std::env::var("BERTH_TEST_POSTGRES_URL")
        .expect("BERTH_TEST_POSTGRES_URL names the test PostgreSQL (run through make test)");
    let dir = tempfile::tempdir().unwrap();
    let home = small_home(dir.path());
    std::fs::remove_file(home.join("berth.db")).unwrap();
    let main_yaml = home.join("config/main.yaml");
    let text = std::fs::read_to_string(&main_yaml).unwrap();
    let text = text.replacen(
        "# database: postgres://berth@localhost/berth",
        &format!("database: {url}"),
        1,
    );
    assert!(text.contains(&format!("database: {url}")));
    std::fs::write(&main_yaml, text).unwrap();

    let archive = dir.path().join("pg.tar");
    let output = backup(&home, &archive, &[]);
    assert!(output.status.success(), "{}", both(&output));
    assert!(stderr(&output).contains("pg_dump"), "{}", both(&output));
    let listing = std::process::Command::new("tar")
        .arg("tf")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(listing.status.success(), "{}", both(&listing));
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(
        names.contains("config/main.yaml") && names.contains("jwt.key"),
        "{names}"
    );
    assert!(!names.contains("berth.db"), "{names}");
    let manifest = std::process::Command::new("tar")
        .arg("xOf")
        .arg(&archive)
        .arg("berth-backup.json")
        .output()
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.stdout).unwrap();
    assert_eq!(manifest["database"]["kind"], "postgres", "{manifest}");

    let target = dir.path().join("restored");
    let output = restore(&archive, &target);
    assert!(output.status.success(), "{}", both(&output));
    assert!(stderr(&output).contains("pg_dump"), "{}", both(&output));
    assert!(!target.join("berth.db").exists());
}

/// One tar header block (ustar) with a correct checksum.
fn header(name: &str, kind: u8, size: u64, link: &str) -> Vec<u8> {
    let mut block = vec![0_u8; 512];
    block[..name.len()].copy_from_slice(name.as_bytes());
    block[100..107].copy_from_slice(b"0000600");
    block[108..115].copy_from_slice(b"0000000");
    block[116..123].copy_from_slice(b"0000000");
    if size < 0o777_7777_7777 {
        block[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    } else {
        // GNU base-256, as tar writes sizes of 8 GiB and more.
        block[124] = 0x80;
        block[128..136].copy_from_slice(&size.to_be_bytes());
    }
    block[136..147].copy_from_slice(b"00000000000");
    block[156] = kind;
    block[157..157 + link.len()].copy_from_slice(link.as_bytes());
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    block
}

/// An archive of `entries` (name, type, data, link target), ended as tar ends one.
fn tar(entries: &[(&str, u8, &[u8], &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data, link) in entries {
        out.extend(header(name, *kind, data.len() as u64, link));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend([0; 1024]);
    out
}

fn manifest(version: u32) -> Vec<u8> {
    serde_json::json!({
        "format": "berth-backup",
        "format_version": version,
        "berth_version": "9.9.9",
        "created_at": "2026-01-01T00:00:00Z",
        "host": "elsewhere",
        "home": "/var/lib/berth",
        "instance": "berth",
        "database": {"kind": "postgres", "location": "postgres://db/berth"},
        "contents": [],
        "left_out": []
    })
    .to_string()
    .into_bytes()
}

/// Restores `archive` into a new home beside it: refused saying `needle`, with no home made
/// and nothing written next to it.
fn assert_archive_refused(archive: &[u8], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.tar");
    std::fs::write(&file, archive).unwrap();
    let home = dir.path().join("home");
    let output = restore(&file, &home);
    assert_refused(&output, needle);
    assert!(!home.exists(), "the home made for the restore is removed");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["hostile.tar"], "nothing written beside the home");
}

#[test]
fn archives_that_are_not_backups_are_refused() {
    const FILE: u8 = b'0';
    let newer = manifest(2);
    let manifest = manifest(1);
    assert_archive_refused(b"just some text, no tar at all", "not a Berth backup");
    assert_archive_refused(&[0; 1024], "the archive is empty");
    assert_archive_refused(
        &tar(&[("config/main.yaml", FILE, b"listen: x", "")]),
        "not the manifest berth-backup.json",
    );
    assert_archive_refused(
        &tar(&[("berth-backup.json", FILE, b"{not json", "")]),
        "not valid JSON",
    );
    assert_archive_refused(
        &tar(&[("berth-backup.json", FILE, br#"{"format": "zip"}"#, "")]),
        "not a Berth backup's",
    );
    assert_archive_refused(
        &tar(&[("berth-backup.json", FILE, &newer, "")]),
        "format 2, written by Berth 9.9.9",
    );
    // No checksum list at its end: truncated.
    assert_archive_refused(
        &tar(&[("berth-backup.json", FILE, &manifest, "")]),
        "has no berth-backup.sha256",
    );

    // A real archive, cut short or with one byte changed.
    let dir = tempfile::tempdir().unwrap();
    let home = small_home(dir.path());
    let file = dir.path().join("real.tar");
    let output = backup(&home, &file, &[]);
    assert!(output.status.success(), "{}", both(&output));
    let real = std::fs::read(&file).unwrap();
    assert_archive_refused(&real[..real.len() / 2], "truncated");
    let at = real
        .windows(b"cut-mid-line".len())
        .position(|w| w == b"cut-mid-line")
        .unwrap();
    let mut changed = real.clone();
    changed[at] = b'C';
    assert_archive_refused(&changed, "does not match its checksum");
}

#[test]
fn hostile_entries_are_refused() {
    const FILE: u8 = b'0';
    let manifest = manifest(1);
    let m: (&str, u8, &[u8], &str) = ("berth-backup.json", FILE, &manifest, "");
    let cases: [(&str, u8, &[u8], &str, &str); 12] = [
        ("/tmp/escaped", FILE, b"x", "", "has an absolute path"),
        ("../escaped", FILE, b"x", "", "`..` in its path"),
        ("config/../../escaped", FILE, b"x", "", "`..` in its path"),
        ("config/./main.yaml", FILE, b"x", "", "`.` in its path"),
        (
            "config/main.yaml",
            b'2',
            b"",
            "/etc/passwd",
            "is a symbolic link to \"/etc/passwd\"",
        ),
        ("recordings/r", b'2', b"", "../../../etc", "holds no links"),
        ("keys/shadow", b'1', b"", "/etc/shadow", "is a hard link"),
        ("keys/tty", b'3', b"", "", "is a character device"),
        ("keys/disk", b'4', b"", "", "is a block device"),
        ("recordings/pipe", b'6', b"", "", "is a FIFO"),
        (
            "logs/berth.log",
            FILE,
            b"x",
            "",
            "is not part of a Berth backup",
        ),
        (".bashrc", FILE, b"x", "", "is not part of a Berth backup"),
    ];
    for (name, kind, data, link, needle) in cases {
        assert_archive_refused(&tar(&[m, (name, kind, data, link)]), needle);
    }
    // Oversized: a key file larger than any key, and an entry that claims more than the
    // archive holds (100 GiB in a few kilobytes).
    let big = vec![b'k'; 2 << 20];
    assert_archive_refused(&tar(&[m, ("jwt.key", FILE, &big, "")]), "oversized");
    let mut claim = tar(&[m]);
    claim.truncate(claim.len() - 1024);
    claim.extend(header("recordings/huge.cast", FILE, 100 << 30, ""));
    claim.extend([b'x'; 4096]);
    claim.extend([0; 1024]);
    assert_archive_refused(&claim, "more than the");
    // The same entry twice, an entry after the checksums, a directory a backup never holds.
    assert_archive_refused(
        &tar(&[m, ("jwt.key", FILE, b"a", ""), ("jwt.key", FILE, b"b", "")]),
        "appears twice",
    );
    assert_archive_refused(
        &tar(&[
            m,
            ("berth-backup.sha256", FILE, b"", ""),
            ("jwt.key", FILE, b"late", ""),
        ]),
        "follows berth-backup.sha256",
    );
    assert_archive_refused(&tar(&[m, ("logs/", b'5', b"", "")]), "not a directory of a");
    // A database entry where the manifest says PostgreSQL.
    assert_archive_refused(
        &tar(&[m, ("berth.db", FILE, b"SQLite format 3\0", "")]),
        "the manifest says the database is PostgreSQL",
    );
}

#[test]
fn the_help_names_both_commands() {
    let help = berth().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("backup") && text.contains("restore"),
        "{text}"
    );
    let output = berth()
        .args(["restore", "x.tar"])
        .env_remove("BERTH_HOME")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "--home is required: {}",
        both(&output)
    );
}
