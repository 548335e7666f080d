//! The Debian package (`scripts/deb.sh`) and the install scripts (`deploy/install.sh`,
//! `deploy/uninstall.sh`), installed into fresh containers of the test image the way an admin
//! installs them on a host: the berth user, its home, the units, a server started as that user
//! and answering `/healthz`, then removal, with the data kept until a purge.
//!
//! The containers have no network (`--network none`) and no systemd, so the maintainer scripts
//! and install.sh take their "systemd is not running" path and the test starts the server by
//! hand, as the user berth, the way they tell the admin to.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{both, remove_instance, require_engine};

const IMAGE: &str = "berth-test/base";
/// On the container's own loopback: every container has its own, so no two tests collide.
const LISTEN: &str = "127.0.0.1:8080";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The engine's socket on this machine, from DOCKER_HOST (`unix://PATH`).
fn docker_socket() -> String {
    require_engine();
    let host = std::env::var("DOCKER_HOST").unwrap();
    host.strip_prefix("unix://").unwrap().to_owned()
}

/// A container of the test image, removed with whatever a server in it made on the engine
/// (containers and volumes of its `berth.instance`) when the test ends, however it ends.
struct Container {
    id: String,
    instance: String,
}

impl Container {
    /// Starts a container of the test image with the engine's socket at /var/run/docker.sock,
    /// where Berth looks by default, and `mounts` (HOST, CONTAINER) read-only.
    fn start(mounts: &[(&Path, &str)], instance: &str) -> Container {
        let mut command = Command::new("docker");
        command
            .args(["run", "-d", "--network", "none"])
            .arg("-v")
            .arg(format!("{}:/var/run/docker.sock", docker_socket()));
        for (host, inside) in mounts {
            command
                .arg("-v")
                .arg(format!("{}:{inside}:ro", host.display()));
        }
        let output = command
            .args([IMAGE, "sleep", "infinity"])
            .output()
            .expect("the docker CLI (Debian package docker.io) is needed");
        assert!(output.status.success(), "docker run: {}", both(&output));
        let container = Container {
            id: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            instance: instance.to_owned(),
        };
        // The socket's group is the host's docker group, which the image does not know. A
        // group `docker` of that gid in the container makes it what a Debian host with the
        // engine looks like (root:docker, mode 0660), so the berth user reaches the engine
        // through the step of postinst / install.sh that adds it to the docker group: the test
        // exercises that step instead of working around it (-o: the gid may be taken).
        container.ok("groupadd -o -g \"$(stat -c %g /var/run/docker.sock)\" docker");
        container
    }

    /// Runs `script` with sh in the container as root.
    fn sh(&self, script: &str) -> Output {
        Command::new("docker")
            .args(["exec", &self.id, "sh", "-c", script])
            .output()
            .expect("docker exec")
    }

    /// Runs `script` and fails the test unless it succeeds; its stdout and stderr.
    fn ok(&self, script: &str) -> String {
        let output = self.sh(script);
        assert!(output.status.success(), "{script}: {}", both(&output));
        text(&output)
    }

    /// Runs `script` and fails the test if it succeeds; its stdout and stderr.
    fn fails(&self, script: &str) -> String {
        let output = self.sh(script);
        assert!(
            !output.status.success(),
            "{script} should have failed: {}",
            both(&output)
        );
        text(&output)
    }

    /// Starts `berth serve` on /var/lib/berth as the user berth, the way postinst and
    /// install.sh tell the admin to when systemd is not running, and waits for `/healthz`.
    /// `runuser` sets the user's groups from /etc/group, docker among them: the server reaches
    /// the engine only if the installation put berth in that group. Returns the server's
    /// output so far (the first start prints the admin password).
    fn serve_as_berth(&self) -> String {
        let output = Command::new("docker")
            .args(["exec", "-d", &self.id, "runuser", "-u", "berth", "--"])
            .args(["sh", "-c"])
            .arg(format!(
                "echo $$ >/tmp/serve.pid; exec env BERTH_INSTANCE={} berth serve \
                 --home /var/lib/berth --listen {LISTEN} >/tmp/serve.log 2>&1",
                self.instance
            ))
            .output()
            .expect("docker exec");
        assert!(output.status.success(), "{}", both(&output));
        // A hang guard, not a timing assertion: the first start hashes the admin password.
        let deadline = Instant::now() + Duration::from_secs(90);
        let (port_host, port) = LISTEN.split_once(':').unwrap();
        let probe = format!(
            "timeout 10 bash -c 'exec 3<>/dev/tcp/{port_host}/{port} && \
             printf \"GET /healthz HTTP/1.0\\r\\nHost: {LISTEN}\\r\\n\\r\\n\" >&3 && cat <&3'"
        );
        loop {
            let answer = self.sh(&probe);
            let response = String::from_utf8_lossy(&answer.stdout).into_owned();
            if response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200") {
                assert!(response.ends_with("\r\n\r\nok"), "/healthz: {response:?}");
                break;
            }
            if Instant::now() > deadline {
                let log = self.sh("cat /tmp/serve.log");
                panic!(
                    "berth serve did not answer /healthz; its output:\n{}",
                    text(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // Running as berth, not root: the pid file's process is owned by it.
        let user = self.ok("ps -o user= -p \"$(cat /tmp/serve.pid)\"");
        assert_eq!(user.trim(), "berth", "berth serve runs as {user:?}");
        self.ok("cat /tmp/serve.log")
    }

    /// Stops the server started by [`Container::serve_as_berth`] (SIGTERM) and waits for it
    /// to exit; the loop is a hang guard.
    fn stop_serve(&self) {
        self.ok("pid=$(cat /tmp/serve.pid); kill \"$pid\"; i=0; \
             while kill -0 \"$pid\" 2>/dev/null; do \
               i=$((i + 1)); [ $i -lt 300 ] || { echo still running; exit 1; }; sleep 0.1; \
             done");
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.id])
            .output();
        remove_instance(&self.instance);
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A `berth.instance` of its own per test and run, so parallel runs never share containers.
fn instance(test: &str) -> String {
    format!("test-package-{test}-{}", std::process::id())
}

/// Owner, group and mode of /var/lib/berth.
fn home_state(container: &Container) -> String {
    container
        .ok("stat -c '%U:%G %a' /var/lib/berth")
        .trim()
        .to_owned()
}

fn assert_user_gone(container: &Container) {
    container.fails("getent passwd berth");
    container.fails("getent group berth");
    container.fails("test -e /var/lib/berth");
}

/// Builds the .deb of the test's binary with `scripts/deb.sh --binary … --out DIR`.
fn build_deb(out: &Path) -> PathBuf {
    let output = Command::new("bash")
        .arg(repo_root().join("scripts/deb.sh"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_berth"))
        .arg("--out")
        .arg(out)
        .output()
        .expect("run scripts/deb.sh");
    assert!(output.status.success(), "scripts/deb.sh: {}", both(&output));
    let deb = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let arch = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .expect("dpkg");
    let name = format!(
        "berth_{}_{}.deb",
        env!("CARGO_PKG_VERSION"),
        String::from_utf8_lossy(&arch.stdout).trim()
    );
    assert_eq!(deb, out.join(name), "the package's name");
    assert!(deb.is_file(), "{} is missing", deb.display());
    deb
}

#[test]
fn deb_script_refuses_bad_arguments() {
    let script = repo_root().join("scripts/deb.sh");
    let output = Command::new("bash")
        .arg(&script)
        .args(["--binary", "/nonexistent/berth"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("--binary /nonexistent/berth: no such file"),
        "{}",
        both(&output)
    );
    let output = Command::new("bash")
        .arg(&script)
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("unknown argument: --frobnicate"),
        "{}",
        both(&output)
    );
}

#[test]
fn debian_package_is_lintian_clean_installs_serves_as_berth_and_purges() {
    let out = tempfile::tempdir().unwrap();
    let deb = build_deb(out.path());

    // The package's metadata and files.
    let info = Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .output()
        .unwrap();
    assert!(info.status.success(), "{}", both(&info));
    let info = text(&info);
    for field in [
        "Package: berth",
        &format!("Version: {}", env!("CARGO_PKG_VERSION")),
        "Recommends: docker.io",
        "Section: admin",
        "Homepage: ",
    ] {
        assert!(info.contains(field), "no {field:?} in:\n{info}");
    }
    let depends = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends in:\n{info}"));
    assert!(
        depends.contains("libc6 (>= ") && depends.contains("adduser"),
        "Depends: {depends}"
    );
    let contents = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    let contents = text(&contents);
    for path in [
        "./usr/bin/berth",
        "./lib/systemd/system/berth.service",
        "./lib/systemd/system/berth-agent.service",
        "./usr/share/doc/berth/copyright",
        "./usr/share/doc/berth/changelog.gz",
        "./usr/share/doc/berth/README.md.gz",
        "./usr/share/doc/berth/install.md",
        "./usr/share/man/man1/berth.1.gz",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(path)),
            "{path} not in the package:\n{contents}"
        );
    }
    assert!(
        !contents.contains("./var/lib/berth"),
        "postinst makes /var/lib/berth for the berth user; the package must not ship it:\n{contents}"
    );

    // lintian: no errors (warnings would show here too; docs/install.md lists the info tags).
    let lint = Command::new("lintian")
        .args(["--fail-on", "error,warning"])
        .arg(&deb)
        .output()
        .expect("lintian is needed (scripts/test.sh installs it)");
    assert!(lint.status.success(), "lintian: {}", both(&lint));

    let container = Container::start(&[(&deb, "/tmp/berth.deb")], &instance("deb"));
    // A home left by the unit of before, which ran Berth as root: postinst hands it to berth.
    container.ok(
        "mkdir -p -m 0700 /var/lib/berth && mkdir /var/lib/berth/logs && \
         echo old >/var/lib/berth/logs/berth.log.1",
    );
    // The image has what Depends names (libc6, libgcc-s1, adduser): dpkg alone installs it.
    let installed = container.ok("dpkg -i /tmp/berth.deb");
    assert!(
        installed.contains("giving /var/lib/berth and everything in it to the user berth")
            && installed.contains("systemd is not running, so the service was not started")
            && installed.contains("runuser -u berth -- /usr/bin/berth serve --home /var/lib/berth"),
        "{installed}"
    );
    let passwd = container.ok("getent passwd berth");
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    assert_eq!(fields[5], "/var/lib/berth", "the user's home: {passwd}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "the user's shell: {passwd}");
    assert!(
        fields[2].parse::<u32>().unwrap() < 1000,
        "a system user: {passwd}"
    );
    let groups = container.ok("id -nG berth");
    assert!(
        groups.split_whitespace().any(|g| g == "berth")
            && groups.split_whitespace().any(|g| g == "docker"),
        "berth's groups: {groups}"
    );
    assert_eq!(home_state(&container), "berth:berth 700");
    let unit = container.ok("cat /lib/systemd/system/berth.service");
    for line in [
        "User=berth",
        "Group=berth",
        "SupplementaryGroups=docker",
        "ExecStart=/usr/bin/berth serve --home /var/lib/berth",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/berth -/run/docker.sock",
        "PrivateTmp=true",
        "ProtectHome=true",
        "Restart=on-failure",
    ] {
        assert!(unit.lines().any(|l| l == line), "no {line} in:\n{unit}");
    }
    // Enabled for the next boot under systemd, although nothing runs it here.
    container.ok("test -L /etc/systemd/system/multi-user.target.wants/berth.service");

    let version = container.ok("berth --version");
    assert_eq!(
        version.trim(),
        format!("berth {}", env!("CARGO_PKG_VERSION"))
    );
    // Before the first start there is nothing to check, and it says so.
    let empty = container.fails("berth config check --home /var/lib/berth");
    assert!(
        empty.contains("nothing to check (berth serve writes a default configuration"),
        "{empty}"
    );

    let banner = container.serve_as_berth();
    assert!(banner.contains("password: "), "{banner}");
    let checked = container.ok("runuser -u berth -- berth config check --home /var/lib/berth");
    assert!(checked.contains("configuration is valid"), "{checked}");
    // Everything the server wrote belongs to berth.
    let foreign = container.ok("find /var/lib/berth ! -user berth");
    assert_eq!(foreign.trim(), "", "files in the home not owned by berth");
    container.stop_serve();

    // Installing again (an upgrade's path through postinst) keeps the user and the data.
    let uid = container.ok("id -u berth");
    container.ok("dpkg -i /tmp/berth.deb");
    assert_eq!(container.ok("id -u berth"), uid);
    container.ok("test -s /var/lib/berth/berth.db && test -f /var/lib/berth/config/main.yaml");
    assert_eq!(home_state(&container), "berth:berth 700");

    // Remove: the program and the units go, the data and the user stay; the unit is masked
    // (disabled so that nothing can start it), and a reinstall enables it again.
    let masked = "test \"$(readlink /etc/systemd/system/berth.service)\" = /dev/null";
    container.ok("dpkg -r berth");
    container.fails("test -e /usr/bin/berth");
    container.fails("test -e /lib/systemd/system/berth.service");
    container.ok(masked);
    container.ok("test -s /var/lib/berth/berth.db && getent passwd berth");
    assert_eq!(home_state(&container), "berth:berth 700");
    container.ok("dpkg -i /tmp/berth.deb");
    container.fails(masked);
    container.ok("test -L /etc/systemd/system/multi-user.target.wants/berth.service");
    container.ok("dpkg -r berth");

    // Purge: the data and the user go too, and every trace of the unit.
    container.ok("dpkg -P berth");
    assert_user_gone(&container);
    container.fails("test -L /etc/systemd/system/berth.service");
    container.fails("test -L /etc/systemd/system/multi-user.target.wants/berth.service");
}

#[test]
fn install_script_is_idempotent_serves_as_berth_and_uninstall_purges() {
    let deploy = repo_root().join("deploy");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_berth"));
    let container = Container::start(
        &[(&deploy, "/tmp/deploy"), (&binary, "/tmp/berth-bin")],
        &instance("script"),
    );
    let install = "sh /tmp/deploy/install.sh --binary /tmp/berth-bin";

    // Bad input: a clear error and a non-zero exit, before anything changes.
    let not_root = container.fails(&format!("runuser -u nobody -- {install} --no-start"));
    assert!(not_root.contains("must run as root"), "{not_root}");
    let unknown = container.fails(&format!("{install} --frobnicate"));
    assert!(
        unknown.contains("unknown argument: --frobnicate"),
        "{unknown}"
    );
    let missing = container.fails("sh /tmp/deploy/install.sh --binary /nonexistent --no-start");
    assert!(
        missing.contains("/nonexistent is not an executable"),
        "{missing}"
    );
    container.fails("getent passwd berth");

    let first = container.ok(&format!("{install} --no-start"));
    for step in [
        "created the system user berth",
        "added berth to the group docker",
        "created /var/lib/berth (berth:berth, mode 0700)",
        "installed /usr/local/bin/berth",
        "installed /etc/systemd/system/berth.service",
    ] {
        assert!(first.contains(step), "no {step:?} in:\n{first}");
    }
    let second = container.ok(&format!("{install} --no-start"));
    assert!(
        second.contains("nothing changed: Berth was already installed like this"),
        "{second}"
    );
    assert!(!second.contains("created"), "{second}");

    let groups = container.ok("id -nG berth");
    assert!(
        groups.split_whitespace().any(|g| g == "docker"),
        "berth's groups: {groups}"
    );
    assert_eq!(home_state(&container), "berth:berth 700");
    let unit = container.ok("cat /etc/systemd/system/berth.service");
    assert!(
        unit.lines()
            .any(|l| l == "ExecStart=/usr/local/bin/berth serve --home /var/lib/berth")
            && unit.lines().any(|l| l == "User=berth"),
        "{unit}"
    );
    container.ok("test -f /etc/systemd/system/berth-agent.service");
    let version = container.ok("/usr/local/bin/berth --version");
    assert_eq!(
        version.trim(),
        format!("berth {}", env!("CARGO_PKG_VERSION"))
    );

    // A home whose mode drifted is put right, and only that is reported.
    container.ok("chmod 0755 /var/lib/berth");
    let repaired = container.ok(&format!("{install} --no-start"));
    assert!(
        repaired.contains("set the mode of /var/lib/berth to 0700")
            && !repaired.contains("nothing changed"),
        "{repaired}"
    );
    assert_eq!(home_state(&container), "berth:berth 700");
    // A root-owned home (the root-run unit of before) is handed over with everything in it…
    container.ok("touch /var/lib/berth/old.log && chown -R root:root /var/lib/berth");
    let handed = container.ok(&format!("{install} --no-start"));
    assert!(
        handed.contains("gave /var/lib/berth and everything in it to berth:berth"),
        "{handed}"
    );
    let foreign = container.ok("find /var/lib/berth ! -user berth");
    assert_eq!(foreign.trim(), "", "files in the home not owned by berth");
    // …but one of another user, or one others could enter, is not taken over.
    container.ok("chown nobody /var/lib/berth");
    let other = container.fails(&format!("{install} --no-start"));
    assert!(
        other.contains("/var/lib/berth belongs to nobody:berth"),
        "{other}"
    );
    container.ok("chown root:root /var/lib/berth && chmod 0755 /var/lib/berth");
    let open = container.fails(&format!("{install} --no-start"));
    assert!(open.contains("belongs to root:root (mode 755)"), "{open}");
    container.ok("chown berth:berth /var/lib/berth && chmod 0700 /var/lib/berth");
    container.ok("rm /var/lib/berth/old.log");

    // Without --no-start and without systemd it says how to start the server by hand.
    let no_systemd = container.ok(install);
    assert!(
        no_systemd.contains("systemd is not running here")
            && no_systemd.contains("runuser -u berth -- /usr/local/bin/berth serve")
            && no_systemd.contains("nothing changed"),
        "{no_systemd}"
    );

    let banner = container.serve_as_berth();
    assert!(banner.contains("password: "), "{banner}");
    let checked = container.ok("runuser -u berth -- berth config check --home /var/lib/berth");
    assert!(checked.contains("configuration is valid"), "{checked}");
    // A purge waits for the server started by hand to stop, and touches nothing meanwhile.
    let busy = container.fails("sh /tmp/deploy/uninstall.sh --purge");
    assert!(
        busy.contains("processes of the user berth still run"),
        "{busy}"
    );
    container.ok("test -x /usr/local/bin/berth && test -s /var/lib/berth/berth.db");
    container.stop_serve();

    let not_root = container.fails("runuser -u nobody -- sh /tmp/deploy/uninstall.sh");
    assert!(not_root.contains("must run as root"), "{not_root}");
    let removed = container.ok("sh /tmp/deploy/uninstall.sh");
    for step in [
        "removed /etc/systemd/system/berth.service",
        "removed /etc/systemd/system/berth-agent.service",
        "removed /usr/local/bin/berth",
        "kept /var/lib/berth and the user berth",
    ] {
        assert!(removed.contains(step), "no {step:?} in:\n{removed}");
    }
    container.fails("test -e /usr/local/bin/berth");
    container.ok("test -s /var/lib/berth/berth.db && getent passwd berth");
    let again = container.ok("sh /tmp/deploy/uninstall.sh");
    assert!(again.contains("nothing to remove"), "{again}");

    let purged = container.ok("sh /tmp/deploy/uninstall.sh --purge");
    assert!(
        purged.contains("removed /var/lib/berth") && purged.contains("removed the user berth"),
        "{purged}"
    );
    assert_user_gone(&container);
    let again = container.ok("sh /tmp/deploy/uninstall.sh --purge");
    assert!(again.contains("nothing to remove"), "{again}");
}
