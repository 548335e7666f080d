//! `berth serve` as a process: first start, health, signals and reload.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::{Server, eventually, log_lines};

#[test]
fn first_start_creates_the_config_and_prints_the_admin_password_once() {
    let home = tempfile::tempdir().unwrap();
    let mut server = Server::start(home.path());
    let password = server
        .printed_password()
        .expect("the first start prints the admin password");
    assert!(password.len() >= 20, "a strong password: {password}");
    for file in ["main.yaml", "users.yaml", "containers.yaml"] {
        let text = fs::read_to_string(home.path().join("config").join(file)).unwrap();
        assert!(text.starts_with('#'), "{file} is commented:\n{text}");
    }
    let main = fs::read_to_string(home.path().join("config/main.yaml")).unwrap();
    assert!(
        main.contains("$argon2id$"),
        "only an argon2id hash is stored"
    );
    assert!(
        !main.contains(&password),
        "the password itself is never stored"
    );
    assert!(
        !log_lines(home.path())
            .iter()
            .any(|l| l.to_string().contains(&password)),
        "the password is never logged"
    );
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());

    let mut again = Server::start(home.path());
    assert_eq!(again.printed_password(), None, "{:?}", again.banner);
    assert_eq!(
        fs::read_to_string(home.path().join("config/main.yaml")).unwrap(),
        main,
        "a second start changes nothing"
    );
    again.signal("INT");
    assert!(again.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn healthz_answers_and_unknown_paths_are_404() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    assert_eq!(server.get("/healthz"), (200, "ok".to_owned()));
    assert_eq!(server.get("/no-such-page").0, 404);
}

#[test]
fn sigterm_shuts_down_gracefully_with_a_connection_open() {
    let home = tempfile::tempdir().unwrap();
    let mut server = Server::start(home.path());
    // An idle keep-alive connection and a half-sent request must not keep the server alive.
    // Each connection is answered once first: then the server holds it, no sleep needed.
    let answered = |stream: &mut TcpStream| {
        write!(stream, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        while !String::from_utf8_lossy(&seen).ends_with("ok") {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed the connection: {seen:?}");
            seen.extend_from_slice(&buf[..n]);
        }
    };
    let mut idle = TcpStream::connect(server.addr).unwrap();
    answered(&mut idle);
    let mut half = TcpStream::connect(server.addr).unwrap();
    answered(&mut half);
    write!(half, "GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    let messages: Vec<String> = log_lines(home.path())
        .iter()
        .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("SIGTERM")),
        "{messages:?}"
    );
}

#[test]
fn sighup_reloads_and_a_bad_file_keeps_the_old_config() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let containers = home.path().join("config/containers.yaml");
    let good = fs::read_to_string(&containers).unwrap();

    server.signal("HUP");
    eventually(
        Duration::from_secs(10),
        "a successful reload is logged",
        || {
            log_lines(home.path())
                .iter()
                .any(|l| l["message"] == "configuration reloaded")
        },
    );

    fs::write(&containers, "templates:\n  - name: broken\n    imagee: x\n").unwrap();
    server.signal("HUP");
    eventually(
        Duration::from_secs(10),
        "the failed reload is logged",
        || {
            log_lines(home.path()).iter().any(|l| {
                l["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("reload failed")
            })
        },
    );
    let failure = log_lines(home.path())
        .into_iter()
        .find(|l| {
            l["message"]
                .as_str()
                .unwrap_or_default()
                .contains("reload failed")
        })
        .unwrap();
    let errors = failure["fields"]["errors"].as_str().unwrap();
    assert!(
        errors.contains("containers.yaml:3"),
        "file and line: {errors}"
    );
    assert_eq!(failure["level"], "ERROR");
    assert_eq!(
        server.get("/healthz").0,
        200,
        "still serving on the old config"
    );

    fs::write(&containers, good).unwrap();
    server.signal("HUP");
    eventually(Duration::from_secs(10), "the second good reload", || {
        log_lines(home.path())
            .iter()
            .filter(|l| l["message"] == "configuration reloaded")
            .count()
            == 2
    });
}

#[test]
fn an_invalid_config_stops_start_up_with_every_error() {
    let home = tempfile::tempdir().unwrap();
    let status = common::berth()
        .args(["config", "check", "--home"])
        .arg(home.path())
        .output()
        .unwrap();
    assert!(!status.status.success(), "nothing to check yet");

    // First start writes the defaults; then break two files.
    let mut server = Server::start(home.path());
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(10));
    let config = home.path().join("config");
    fs::write(
        config.join("containers.yaml"),
        "templates:\n  - name: a\n    image: x\n    memory: 1\n",
    )
    .unwrap();
    fs::write(
        config.join("users.yaml"),
        "users:\n  - username: alice\n    password_hash: x\n    templates: [pyhton]\n",
    )
    .unwrap();
    let output = common::berth()
        .args(["config", "check", "--home"])
        .arg(home.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("containers.yaml:4:"), "{stderr}");
    assert!(
        stderr.contains("users.yaml:4: users[0].templates[0]"),
        "{stderr}"
    );
    assert!(stderr.contains("pyhton"), "{stderr}");

    let output = common::berth()
        .args(["serve", "--listen", "127.0.0.1:0", "--home"])
        .arg(home.path())
        .env("BERTH_INSTANCE", common::instance_for(home.path()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("users.yaml:4:") && stderr.contains("containers.yaml:4:"),
        "{stderr}"
    );
}

#[test]
fn config_schema_prints_a_json_schema() {
    let output = common::berth().args(["config", "schema"]).output().unwrap();
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        schema.get("$schema").is_some() || schema.get("$defs").is_some(),
        "{schema}"
    );
}

#[test]
fn usage_errors_exit_with_status_2() {
    for args in [
        &["frobnicate"][..],
        &["serve", "--listen", "not-an-address"],
        &["config"],
    ] {
        let output = common::berth().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
    let help = common::berth().args(["serve", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("Examples:"));
}

/// A minimal HTTP/1.1 request: status code and body.
fn http_request(
    addr: std::net::SocketAddr,
    request: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let (status, _, body) = http_exchange(addr, request, headers, body);
    (status, body)
}

/// A minimal HTTP/1.1 request: status code, head (status line and headers) and body.
#[allow(clippy::unwrap_used)] // a test helper: a panic is the failure report
fn http_exchange(
    addr: std::net::SocketAddr,
    request: &str,
    headers: &str,
    body: &str,
) -> (u16, String, String) {
    use std::io::Read;
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{request} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_owned(), body.to_owned())
}

/// The value of cookie `name` set by a response head.
fn set_cookie(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
}

/// The value of the hidden `_csrf` input of a page.
fn form_token(body: &str) -> Option<String> {
    let rest = &body[body.find("name=\"_csrf\" value=\"")? + 20..];
    Some(rest[..rest.find('"')?].to_owned())
}

#[test]
fn a_browser_stays_logged_in_across_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let mut server = Server::start(home.path());
    let password = server.printed_password().unwrap();
    let origin = format!("Origin: http://{}\r\n", server.addr);

    let (status, head, page) = http_exchange(server.addr, "GET /login", "", "");
    assert_eq!(status, 200);
    let pre = set_cookie(&head, "berth_login").expect("the login form's cookie");
    let form = format!(
        "_csrf={}&username=admin&password={}",
        form_token(&page).unwrap(),
        password
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>()
    );
    let (status, head, body) = http_exchange(
        server.addr,
        "POST /login",
        &format!(
            "{origin}Cookie: berth_login={pre}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        ),
        &form,
    );
    assert_eq!(status, 303, "{head}\n{body}");
    let session = set_cookie(&head, "berth_session").expect("a session cookie");
    let cookie = format!("Cookie: berth_session={session}\r\n");
    let (status, _, page) = http_exchange(server.addr, "GET /", &cookie, "");
    assert_eq!(status, 200, "logged in");
    let csrf = form_token(&page).unwrap();

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    let database = fs::read(home.path().join("berth.db")).unwrap_or_default();
    let wal = fs::read(home.path().join("berth.db-wal")).unwrap_or_default();
    for bytes in [&database, &wal] {
        assert!(
            !bytes
                .windows(session.len())
                .any(|w| w == session.as_bytes()),
            "the session id itself is never written"
        );
    }

    let mut again = Server::start(home.path());
    let (status, _, page) = http_exchange(again.addr, "GET /", &cookie, "");
    assert_eq!(status, 200, "still logged in after the restart");
    assert_eq!(form_token(&page).unwrap(), csrf, "with the same CSRF token");
    let (status, _, _) = http_exchange(
        again.addr,
        "GET /",
        "Cookie: berth_session=not-a-session\r\n",
        "",
    );
    assert_eq!(status, 303, "a made-up cookie is nobody");

    // Logging out is remembered across the next restart too.
    let origin = format!("Origin: http://{}\r\n", again.addr);
    let (status, head, _) = http_exchange(
        again.addr,
        "POST /logout",
        &format!("{origin}{cookie}Content-Type: application/x-www-form-urlencoded\r\n"),
        &format!("_csrf={csrf}"),
    );
    assert_eq!(status, 303, "{head}");
    again.signal("TERM");
    assert!(again.wait_exit(Duration::from_secs(10)).success());
    let third = Server::start(home.path());
    let (status, head, _) = http_exchange(third.addr, "GET /", &cookie, "");
    assert_eq!(status, 303, "logged out for good: {head}");
}

#[test]
fn the_printed_password_logs_in_and_login_tokens_outlive_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let mut server = Server::start(home.path());
    let password = server.printed_password().unwrap();
    let key = home.path().join("jwt.key");
    let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the login token key is private");

    let login = serde_json::json!({ "username": "admin", "password": password }).to_string();
    let (status, body) = http_request(
        server.addr,
        "POST /api/v1/auth/login",
        "Content-Type: application/json\r\n",
        &login,
    );
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let auth = format!("Authorization: Bearer {token}\r\n");
    let (status, body) = http_request(server.addr, "GET /api/v1/config", &auth, "");
    assert_eq!(status, 200, "{body}");

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    let again = Server::start(home.path());
    let (status, body) = http_request(again.addr, "GET /api/v1/config", &auth, "");
    assert_eq!(
        status, 200,
        "the key is kept, so tokens survive a restart: {body}"
    );
    let (status, body) = http_request(again.addr, "GET /api/v1/nothing", "", "");
    assert_eq!(status, 404);
    assert!(body.contains("\"not_found\""), "{body}");
}

#[test]
fn a_tls_section_with_unusable_files_stops_berth_with_the_file_named() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config");
    fs::create_dir_all(&config).unwrap();
    let cert = home.path().join("cert.pem");
    fs::write(&cert, "not a certificate").unwrap();
    fs::write(
        config.join("main.yaml"),
        format!(
            "# test\ntls: {{cert: {}, key: /nonexistent/k.pem}}\n",
            cert.display()
        ),
    )
    .unwrap();
    let output = common::berth()
        .args(["serve", "--listen", "127.0.0.1:0", "--home"])
        .arg(home.path())
        .env("BERTH_INSTANCE", common::instance_for(home.path()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot serve HTTPS"), "{stderr}");
    assert!(stderr.contains("cert.pem"), "{stderr}");
    assert!(
        !stderr.contains("Berth is listening"),
        "never serves plain HTTP instead: {stderr}"
    );
}

#[test]
fn serve_keeps_its_state_in_postgresql_when_told_to() {
    let url = std::env::var("BERTH_TEST_POSTGRES_URL").expect(
        "BERTH_TEST_POSTGRES_URL is not set: run through `make test`, or \
         `scripts/postgres.sh start && eval \"$(scripts/postgres.sh env)\"`",
    );
    let home = tempfile::tempdir().unwrap();
    let mut server = Server::start_with(home.path(), &["--database", &url]);
    assert_eq!(server.get("/healthz").0, 200);
    let connected = log_lines(home.path())
        .into_iter()
        .find(|l| l["message"] == "connected")
        .expect("the connection is logged");
    assert_eq!(connected["fields"]["database"], "postgres");
    assert!(
        !home.path().join("berth.db").exists(),
        "no SQLite file is made"
    );
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(15)).success());
}

#[test]
fn a_metrics_token_made_by_the_cli_guards_metrics_after_a_reload() {
    let home = tempfile::tempdir().unwrap();
    let missing = common::berth()
        .args(["config", "metrics-token", "--home"])
        .arg(home.path().join("nowhere"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("berth serve writes a configuration"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    let mut server = Server::start(home.path());
    assert_eq!(server.get("/metrics").0, 200, "open until a token is made");
    let output = common::berth()
        .args(["config", "metrics-token", "--home"])
        .arg(home.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert_eq!(token.len(), 36, "one UUID on stdout: {token:?}");
    let main = fs::read_to_string(home.path().join("config/main.yaml")).unwrap();
    assert!(!main.contains(&token), "main.yaml keeps only the hash");
    assert!(
        main.contains("# SHA-256 of the token /metrics asks for"),
        "comments kept"
    );

    server.signal("HUP");
    eventually(
        Duration::from_secs(10),
        "/metrics to ask for the token",
        || server.get("/metrics").0 == 401,
    );
    let client = berth_client::Client::new(&server.url()).unwrap();
    let scrape = |token: &str| {
        let header = format!("Bearer {token}");
        common::block_on(client.send(
            berth_client::Method::GET,
            "/metrics",
            &[("authorization", header.as_str())],
            "",
        ))
        .unwrap()
    };
    let answer = scrape(&token);
    assert_eq!(answer.status, 200);
    assert!(String::from_utf8_lossy(&answer.body).contains("berth_workspaces"));
    assert_eq!(scrape("0b6c2c1e-0000-4000-8000-000000000000").status, 401);

    let removed = common::berth()
        .args(["config", "metrics-token", "--remove", "--home"])
        .arg(home.path())
        .output()
        .unwrap();
    assert!(removed.status.success());
    assert!(removed.stdout.is_empty(), "no token printed");
    server.signal("HUP");
    eventually(Duration::from_secs(10), "/metrics to be open again", || {
        server.get("/metrics").0 == 200
    });
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(10));
}

/// The octal permission bits of `path`.
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Under the usual umask 022, a fresh home keeps what it holds from other users: the database
/// (with its -wal and -shm), the log and the login key are 0600, the directories 0700. An
/// existing home whose files an older Berth left readable is restricted at the next start.
#[test]
fn the_home_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    // The umask is the process's: 022 is what a service gets by default, and what the other
    // tests of this binary run with anyway.
    let before = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("berth");
    let mut server = Server::start(&root);
    let files = [
        "berth.db",
        "berth.db-wal",
        "berth.db-shm",
        "logs/berth.log",
        "jwt.key",
    ];
    let dirs = ["", "config", "logs", "recordings"];
    for file in files {
        assert_eq!(mode_of(&root.join(file)), 0o600, "{file}");
    }
    for dir in dirs {
        assert_eq!(mode_of(&root.join(dir)), 0o700, "{dir:?}");
    }
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());

    for path in files.iter().chain(&dirs).map(|p| root.join(p)) {
        if path.exists() {
            let loose = if path.is_dir() { 0o755 } else { 0o644 };
            fs::set_permissions(&path, fs::Permissions::from_mode(loose)).unwrap();
        }
    }
    let mut server = Server::start(&root);
    rustix::process::umask(before);
    for file in files {
        assert_eq!(mode_of(&root.join(file)), 0o600, "{file} after a restart");
    }
    for dir in dirs {
        assert_eq!(mode_of(&root.join(dir)), 0o700, "{dir:?} after a restart");
    }
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}
