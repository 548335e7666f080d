//! API version negotiation. Every versioned path (`/v1.53/...`) is refused by an engine that
//! does not speak that version (20.10 stops at 1.41, 29 starts at 1.44), so the first request is
//! the one unversioned call, `GET /version`, as the Docker CLI does; the client then speaks
//! `min(engine, bollard)`. Done by hand over the socket so connect-time failures keep their
//! `io::ErrorKind` (missing socket, refused, permission denied).

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::error::{Result, RuntimeError, Unreachable};

/// The oldest API Berth supports: Docker Engine 20.10.
pub(crate) const MIN_API: (usize, usize) = (1, 41);
/// An engine's answer is a few hundred bytes; anything this large is not an engine.
const MAX_ANSWER: u64 = 64 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct EngineVersion {
    pub engine: String,
    pub api: (usize, usize),
}

pub(crate) async fn probe(socket: &Path, timeout: Duration) -> Result<EngineVersion> {
    let answer = tokio::time::timeout(timeout, exchange(socket))
        .await
        .map_err(|_| RuntimeError::Timeout {
            socket: socket.to_owned(),
            operation: "version",
            after: timeout,
        })?
        .map_err(|e| connect_error(socket, "version", &e))?;
    parse(socket, &answer)
}

async fn exchange(socket: &Path) -> io::Result<Vec<u8>> {
    let mut stream = UnixStream::connect(socket).await?;
    stream
        .write_all(b"GET /version HTTP/1.0\r\nHost: docker\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    match stream.take(MAX_ANSWER).read_to_end(&mut answer).await {
        // A peer that is not an engine may close without reading the request: judge what it
        // sent before the reset.
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !answer.is_empty() => Ok(answer),
        Err(e) => Err(e),
        Ok(_) => Ok(answer),
    }
}

/// Maps the I/O errors that have a meaning for an operator; the rest stay transport errors.
pub(crate) fn connect_error(
    socket: &Path,
    operation: &'static str,
    err: &io::Error,
) -> RuntimeError {
    let socket = socket.to_owned();
    match err.kind() {
        io::ErrorKind::NotFound => RuntimeError::EngineNotRunning {
            socket,
            reason: Unreachable::SocketMissing,
        },
        io::ErrorKind::ConnectionRefused => RuntimeError::EngineNotRunning {
            socket,
            reason: Unreachable::ConnectionRefused,
        },
        io::ErrorKind::PermissionDenied => RuntimeError::PermissionDenied { socket },
        _ => RuntimeError::Transport {
            socket,
            operation,
            detail: err.to_string(),
        },
    }
}

fn parse(socket: &Path, answer: &[u8]) -> Result<EngineVersion> {
    let bad = |detail: String| RuntimeError::NotAnEngine {
        socket: socket.to_owned(),
        detail,
    };
    if answer.len() as u64 >= MAX_ANSWER {
        return Err(bad(format!(
            "the answer to GET /version exceeds {MAX_ANSWER} bytes"
        )));
    }
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no HTTP answer to GET /version".into()))?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let status = head.lines().next().unwrap_or_default();
    let mut parts = status.split_whitespace();
    if !parts.next().is_some_and(|p| p.starts_with("HTTP/1.")) {
        return Err(bad("no HTTP answer to GET /version".into()));
    }
    if parts.next() != Some("200") {
        return Err(bad(format!("GET /version answered `{status}`")));
    }
    let body: serde_json::Value = serde_json::from_slice(&answer[split + 4..])
        .map_err(|e| bad(format!("GET /version is not JSON: {e}")))?;
    let field = |name: &str| body.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let api_text =
        field("ApiVersion").ok_or_else(|| bad("GET /version has no ApiVersion".into()))?;
    let engine = field("Version").unwrap_or_else(|| "(unknown)".into());
    let api = parse_api(&api_text)
        .ok_or_else(|| bad(format!("ApiVersion `{api_text}` is not MAJOR.MINOR")))?;
    if api < MIN_API {
        return Err(RuntimeError::UnsupportedEngine {
            engine,
            api: api_text,
        });
    }
    Ok(EngineVersion { engine, api })
}

fn parse_api(text: &str) -> Option<(usize, usize)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: &str, body: &str) -> Vec<u8> {
        format!("HTTP/1.0 {status}\r\nContent-Type: application/json\r\n\r\n{body}").into_bytes()
    }

    #[test]
    fn engine_versions_are_read() {
        let v = parse(
            Path::new("/s"),
            &answer("200 OK", r#"{"Version":"20.10.24","ApiVersion":"1.41"}"#),
        )
        .unwrap();
        assert_eq!((v.engine.as_str(), v.api), ("20.10.24", (1, 41)));
        let v = parse(
            Path::new("/s"),
            &answer("200 OK", r#"{"Version":"29.0.0","ApiVersion":"1.52"}"#),
        )
        .unwrap();
        assert_eq!(v.api, (1, 52));
    }

    #[test]
    fn old_engines_are_refused() {
        let err = parse(
            Path::new("/s"),
            &answer("200 OK", r#"{"Version":"19.03.1","ApiVersion":"1.40"}"#),
        )
        .unwrap_err();
        assert!(
            matches!(err, RuntimeError::UnsupportedEngine { .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("20.10 (API 1.41) or newer"),
            "{err}"
        );
    }

    #[test]
    fn hostile_answers_are_not_engines() {
        let big = vec![b'x'; MAX_ANSWER as usize];
        let cases: [(&[u8], &str); 6] = [
            (b"", "no HTTP answer"),
            (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "no HTTP answer"),
            (
                &answer("404 Not Found", "{}"),
                "answered `HTTP/1.0 404 Not Found`",
            ),
            (&answer("200 OK", "<html>"), "is not JSON"),
            (
                &answer("200 OK", r#"{"ApiVersion":"one"}"#),
                "is not MAJOR.MINOR",
            ),
            (&big, "exceeds"),
        ];
        for (bytes, expected) in cases {
            let err = parse(Path::new("/s"), bytes).unwrap_err();
            assert!(
                matches!(err, RuntimeError::NotAnEngine { .. })
                    && err.to_string().contains(expected),
                "{expected}: {err}"
            );
        }
    }
}
