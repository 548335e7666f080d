//! Reaching the engine: version negotiation against the real engine, and each way of failing to
//! reach one, produced for real (missing socket, stale socket, EACCES, a silent listener).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use berth_runtime::{DockerOptions, DockerRuntime, RuntimeError, Unreachable};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;

fn quick() -> DockerOptions {
    DockerOptions {
        timeout: Duration::from_millis(300),
    }
}

#[tokio::test]
async fn api_version_is_negotiated_with_the_engine() {
    let rt = common::runtime().await;
    let (major, minor) = rt
        .api_version()
        .split_once('.')
        .map(|(a, b)| (a.parse::<u32>().unwrap(), b.parse::<u32>().unwrap()))
        .unwrap();
    assert!((major, minor) >= (1, 41), "api {}", rt.api_version());
    if rt.engine_version().starts_with("20.10") {
        assert_eq!(
            rt.api_version(),
            "1.41",
            "a 20.10 engine must be spoken to in its own API version"
        );
    }
}

#[tokio::test]
async fn missing_socket_means_engine_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nothing.sock");
    let err = DockerRuntime::connect(&socket, quick()).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::EngineNotRunning { reason: Unreachable::SocketMissing, socket: s } if s == &socket),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("not running")
            && msg.contains("nothing.sock")
            && msg.contains("docker-engine.sh start"),
        "{msg}"
    );
}

#[tokio::test]
async fn stale_socket_means_engine_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("stale.sock");
    drop(UnixListener::bind(&socket).unwrap()); // the file stays, nobody listens
    let err = DockerRuntime::connect(&socket, quick()).await.unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::EngineNotRunning {
                reason: Unreachable::ConnectionRefused,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("connection refused"), "{err}");
}

#[tokio::test]
async fn silent_engine_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream); // accept, never answer
        }
    });
    let err = DockerRuntime::connect(&socket, quick()).await.unwrap_err();
    holder.abort();
    assert!(
        matches!(err, RuntimeError::Timeout { operation: "version", after, .. } if after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("did not answer `version` within 300ms"),
        "{err}"
    );
}

#[tokio::test]
async fn something_else_on_the_socket_is_not_an_engine() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ssh.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream
            .write_all(b"SSH-2.0-OpenSSH_9.2p1\r\n")
            .await
            .unwrap();
    });
    let err = DockerRuntime::connect(&socket, quick()).await.unwrap_err();
    server.await.unwrap();
    assert!(matches!(err, RuntimeError::NotAnEngine { .. }), "{err:?}");
}

const CHILD_SOCKET: &str = "BERTH_RUNTIME_TEST_EACCES_SOCKET";

/// Root ignores file permissions, so as root the connect runs in a child process (this test
/// binary, this test) as `nobody`, against a root-owned socket with mode 0600: a real EACCES.
#[tokio::test]
async fn socket_without_permission_is_permission_denied() {
    if let Some(socket) = std::env::var_os(CHILD_SOCKET) {
        return assert_permission_denied(Path::new(&socket)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("engine.sock");
    let _listener = UnixListener::bind(&socket).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();

    let uid = std::fs::metadata("/proc/self").unwrap().uid(); // our effective uid
    if uid != 0 {
        return assert_permission_denied(&socket).await; // not root: the mode applies to us
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "socket_without_permission_is_permission_denied",
            "--nocapture",
        ])
        .env(CHILD_SOCKET, &socket)
        .uid(65534)
        .gid(65534)
        .stdout(std::process::Stdio::piped())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success() && out.contains("1 passed"),
        "child as nobody failed:\n{out}\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
}

async fn assert_permission_denied(socket: &Path) {
    let Err(err) = DockerRuntime::connect(socket, quick()).await else {
        panic!(
            "connecting to {} without permission succeeded",
            socket.display()
        );
    };
    assert!(
        matches!(&err, RuntimeError::PermissionDenied { socket: s } if s == socket),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("permission denied") && err.to_string().contains("`docker`"),
        "{err}"
    );
}
