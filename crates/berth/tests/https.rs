//! `berth serve` terminating TLS (main.yaml `tls`), with a CA and certificates made in the
//! test: the CLI logs in and attaches over https with `--ca`, a wrong CA is refused with a
//! clear error, a renewed certificate is served after SIGHUP while an open connection goes on,
//! cookies are `__Host-` and `Secure` and HSTS is sent, `tls.redirect_http` answers 308, and
//! plain http to another machine is refused by the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a panic is the failure report

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_client::rustls;
use common::{CliHome, Pty, Server, block_on, both, require_engine, wait_child};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA: its certificate (PEM) and what signs with it.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A server certificate for 127.0.0.1 and localhost signed by `ca`: (cert PEM, key PEM, DER).
fn server_cert(ca: &Ca, serial: u64) -> (String, String, Vec<u8>) {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params.serial_number = Some(serial.into());
    params
        .distinguished_name
        .push(DnType::CommonName, format!("berth test {serial}"));
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

/// A TLS connection to `addr` trusting `ca_pem` only; the server's leaf certificate (DER).
async fn tls_connect(
    addr: SocketAddr,
    ca_pem: &str,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Vec<u8>,
) {
    let certs = berth_client::read_ca(ca_pem.as_bytes(), "ca").unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    (stream, leaf)
}

/// One HTTP/1.1 request on an open TLS connection (kept alive); the answer's head and body.
async fn get(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    path: &str,
) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0_u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text.into_owned();
            }
        }
        assert!(n > 0, "the connection closed: {text}");
    }
}

fn write_tls(dir: &Path, cert: &str, key: &str) {
    // The key is written first: a reload never sees a new certificate with the old key.
    std::fs::write(dir.join("key.pem"), key).unwrap();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
}

#[test]
fn berth_serves_https_with_a_renewable_certificate_and_the_cli_follows() {
    require_engine();
    let tls = tempfile::tempdir().unwrap();
    let authority = ca("Berth test CA");
    let (cert, key, first_der) = server_cert(&authority, 1);
    write_tls(tls.path(), &cert, &key);
    std::fs::write(tls.path().join("ca.pem"), &authority.pem).unwrap();
    let stranger = ca("Someone else's CA");
    std::fs::write(tls.path().join("other-ca.pem"), &stranger.pem).unwrap();

    let home = tempfile::tempdir().unwrap();
    let first = Server::start(home.path());
    let password = first.printed_password().unwrap();
    first.crash();
    let main = home.path().join("config/main.yaml");
    let mut text = std::fs::read_to_string(&main).unwrap();
    text.push_str(&format!(
        "tls:\n  cert: {}\n  key: {}\n  redirect_http: 127.0.0.1:0\n",
        tls.path().join("cert.pem").display(),
        tls.path().join("key.pem").display()
    ));
    std::fs::write(&main, text).unwrap();
    let server = Server::start(home.path());
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.starts_with("Berth is listening on https://")),
        "{:?}",
        server.banner
    );
    let url = format!("https://127.0.0.1:{}", server.addr.port());

    // The CLI: refused without the CA or with the wrong one, in words that say why.
    let cli = CliHome::new();
    for ca in [None, Some("other-ca.pem")] {
        let mut args = vec!["login", url.as_str(), "-u", "admin", "--password-stdin"];
        let path = ca.map(|c| tls.path().join(c).display().to_string());
        if let Some(path) = &path {
            args.extend(["--ca", path.as_str()]);
        }
        let refused = cli.run_with_stdin(&args, &format!("{password}\n"));
        assert!(!refused.status.success());
        let said = both(&refused);
        assert!(said.contains("cannot trust"), "{said}");
        assert!(said.contains("--ca"), "{said}");
    }
    // With the CA it logs in, keeps the CA for later commands, and attaches over wss.
    let ca_path = tls.path().join("ca.pem").display().to_string();
    let admin = berth_client::Client::with_ca(
        &url,
        &berth_client::read_ca(authority.pem.as_bytes(), "ca").unwrap(),
    )
    .unwrap();
    let login = block_on(admin.login("admin", &password)).unwrap();
    let admin = admin.with_token(login.token.expose());
    let body = berth_client::api::UserBody {
        username: berth_types::Username::new("alice").unwrap(),
        role: berth_types::Role::User,
        password: Some(berth_client::api::Secret::new("correct horse battery")),
        templates: vec!["base".to_owned()],
        access_locked: false,
        disabled: false,
        metadata: Default::default(),
        machines: Vec::new(),
    };
    block_on(admin.create_user(&body)).unwrap();
    let logged_in = cli.run_with_stdin(
        &[
            "login",
            url.as_str(),
            "-u",
            "alice",
            "--password-stdin",
            "--ca",
            ca_path.as_str(),
        ],
        "correct horse battery\n",
    );
    assert!(logged_in.status.success(), "{}", both(&logged_in));
    assert!(cli.settings().get("ca").is_some_and(|c| c == &ca_path));
    let id = cli.ok(&["start", "base"]).trim().to_owned();
    let mut command = cli.berth();
    command.args(["attach", &id]);
    let (mut child, mut pty) = Pty::spawn(command);
    pty.wait_for(
        "tls-42",
        Some(b"echo tls-$((6*7))\r"),
        Duration::from_secs(60),
    );
    pty.type_text(b"exit 0\r");
    let status = wait_child(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", pty.seen());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // HSTS and __Host- cookies that are Secure.
        let (mut open, leaf) = tls_connect(server.addr, &authority.pem).await;
        assert_eq!(leaf, first_der);
        let login_page = get(&mut open, "/login").await;
        let head = login_page
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            head.contains("strict-transport-security: max-age="),
            "{head}"
        );
        let cookie = head
            .lines()
            .find(|l| l.starts_with("set-cookie:"))
            .expect("the login page sets its cookie");
        assert!(cookie.contains("__host-berth_login="), "{cookie}");
        assert!(cookie.contains("secure"), "{cookie}");

        // A renewed certificate is served after SIGHUP; the open connection goes on.
        let (cert, key, second_der) = server_cert(&authority, 2);
        write_tls(tls.path(), &cert, &key);
        server.signal("HUP");
        let mut renewed = None;
        for _ in 0..100 {
            let (_, leaf) = tls_connect(server.addr, &authority.pem).await;
            if leaf == second_der {
                renewed = Some(leaf);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            renewed.is_some(),
            "the renewed certificate was never served"
        );
        let again = get(&mut open, "/healthz").await;
        assert!(again.starts_with("HTTP/1.1 200"), "{again}");

        // A broken certificate file on reload keeps the one in force.
        std::fs::write(tls.path().join("cert.pem"), "not a certificate").unwrap();
        server.signal("HUP");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, leaf) = tls_connect(server.addr, &authority.pem).await;
        assert_eq!(leaf, second_der);
    });

    // tls.redirect_http: plain HTTP answers 308 to the same path over https.
    let redirect: SocketAddr = server
        .banner
        .iter()
        .find_map(|l| {
            l.strip_prefix("Plain HTTP on ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|a| a.parse().ok())
        })
        .expect("the banner names the redirect listener");
    let (status, _) = common::http_get(redirect, "/w/abc?x=1");
    assert_eq!(status, 308);
    let raw = {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(redirect).unwrap();
        tcp.write_all(
            b"GET /w/abc?x=1 HTTP/1.1\r\nHost: 127.0.0.1:1234\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut text = String::new();
        tcp.read_to_string(&mut text).unwrap();
        text
    };
    assert!(
        raw.to_ascii_lowercase().contains(&format!(
            "location: https://127.0.0.1:{}/w/abc?x=1",
            server.addr.port()
        )),
        "{raw}"
    );
}

#[test]
fn plain_http_to_another_machine_needs_insecure_http() {
    let cli = CliHome::new();
    let refused = cli.run_with_stdin(
        &[
            "login",
            "http://192.0.2.1:8080",
            "-u",
            "alice",
            "--password-stdin",
        ],
        "pw\n",
    );
    assert!(!refused.status.success());
    let said = both(&refused);
    assert!(said.contains("refusing plain http"), "{said}");
    assert!(said.contains("--insecure-http"), "{said}");
    // A server named without a scheme is https, unless it is this machine.
    let https = cli.run_with_stdin(
        &["login", "192.0.2.1:1", "-u", "alice", "--password-stdin"],
        "pw\n",
    );
    assert!(!https.status.success());
    assert!(
        both(&https).contains("https://192.0.2.1:1"),
        "{}",
        both(&https)
    );
}
