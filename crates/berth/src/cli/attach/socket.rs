//! The terminal WebSocket of the server (`GET /api/v1/workspaces/{id}/terminal`), as
//! `docs/terminal-protocol.md` describes it: binary frames are terminal bytes both ways, text
//! frames are JSON control messages ([`ServerMessage`] and [`ClientMessage`] of `berth-types`).
//!
//! `ws://` to an `http://` server, `wss://` to an `https://` one, verified with the API
//! client's TLS configuration (the system's roots and the login's `--ca`).

use berth_client::api::{ErrorBody, Secret};
use berth_terminal::TtySize;
use berth_types::terminal::{ClientMessage, ServerMessage};
use berth_types::{SessionRole, WorkspaceId};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{Closed, Event, Incoming, Outgoing};
use crate::cli::errors::CliError;

type Socket = WebSocketStream<Transport>;

/// The connection under the socket: TCP, or TLS over TCP.
#[derive(Debug)]
pub enum Transport {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl tokio::io::AsyncRead for Transport {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => std::pin::Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => std::pin::Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Transport {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => std::pin::Pin::new(tcp).poll_write(cx, buf),
            Self::Tls(tls) => std::pin::Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => std::pin::Pin::new(tcp).poll_flush(cx),
            Self::Tls(tls) => std::pin::Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => std::pin::Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(tls) => std::pin::Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Text frames larger than this are ignored, as the protocol's clients do.
const MAX_TEXT: usize = 256 * 1024;
/// Error messages are shortened to this many characters.
const MAX_ERROR_CHARS: usize = 4096;
/// Frames and messages larger than this end the session.
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// The terminal URL of workspace `id` on `server` (`http(s)://host:port[/prefix]`).
pub fn terminal_url(server: &str, id: WorkspaceId, size: TtySize) -> Result<String, CliError> {
    let base = server.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        return Err(CliError::new(format!(
            "cannot use {server:?}: not an http:// or https:// URL"
        )));
    };
    Ok(format!(
        "{ws}/api/v1/workspaces/{id}/terminal?cols={}&rows={}",
        size.cols, size.rows
    ))
}

/// Connects TCP (and TLS for `wss://`) to the host of `request`.
async fn transport(
    request: &tokio_tungstenite::tungstenite::handshake::client::Request,
    tls: Option<std::sync::Arc<berth_client::rustls::ClientConfig>>,
    server: &str,
) -> Result<Transport, CliError> {
    let uri = request.uri();
    let secure = uri.scheme_str() == Some("wss");
    let host = uri
        .host()
        .ok_or_else(|| CliError::new(format!("cannot use {server:?}: no host")))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let unreachable = |e: std::io::Error| {
        CliError::new(format!("cannot reach {server} ({e})"))
            .hint("is `berth serve` running there, and is the address right?")
    };
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(unreachable)?;
    // Keystrokes are tiny writes: never hold one back for Nagle's algorithm.
    let _ = tcp.set_nodelay(true);
    if !secure {
        return Ok(Transport::Plain(tcp));
    }
    let config = tls.ok_or_else(|| CliError::new("no TLS configuration for an https:// server"))?;
    let name = berth_client::rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| CliError::new(format!("cannot use {host:?} as a TLS server name: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| {
            let why = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<berth_client::rustls::Error>())
                .map_or_else(|| e.to_string(), |r| r.to_string());
            CliError::new(format!("cannot trust {server}: the TLS handshake failed ({why})"))
                .hint("if the server uses a private CA or a self-signed certificate, log in with `berth login SERVER --ca FILE`")
        })?;
    Ok(Transport::Tls(Box::new(stream)))
}

/// Opens the terminal of workspace `id`, over TLS with `tls` for an `https://` server.
pub async fn connect(
    server: &str,
    token: &Secret,
    tls: Option<std::sync::Arc<berth_client::rustls::ClientConfig>>,
    id: WorkspaceId,
    size: TtySize,
) -> Result<(SocketIn, SocketOut), CliError> {
    let url = terminal_url(server, id, size)?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| CliError::new(format!("cannot build the terminal request: {e}")))?;
    let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| CliError::new("the stored token is not a valid header value"))?;
    bearer.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, bearer);
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    let stream = transport(&request, tls, server).await?;
    let (socket, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| refused(&e, server))?;
    let (sink, stream) = socket.split();
    Ok((
        SocketIn {
            stream,
            error: None,
        },
        SocketOut { sink },
    ))
}

/// Why the upgrade failed, for people.
fn refused(err: &WsError, server: &str) -> CliError {
    match err {
        WsError::Http(response) => {
            let status = response.status().as_u16();
            let message = response
                .body()
                .as_deref()
                .and_then(|body| serde_json::from_slice::<ErrorBody>(body).ok())
                .map(|body| body.error.message);
            match (status, message) {
                (401, _) => CliError::new("your token was refused (it expired or was revoked)")
                    .hint(format!("run `berth login {server}`")),
                (_, Some(message)) => {
                    CliError::new(format!("cannot open the terminal ({status}): {message}"))
                }
                (_, None) => CliError::new(format!(
                    "{server} answered {status} instead of opening a terminal"
                ))
                .hint(
                    "is it a Berth server with the terminal endpoint (same version as this CLI)?",
                ),
            }
        }
        WsError::Io(io) => {
            let why = if io.kind() == std::io::ErrorKind::ConnectionRefused {
                "connection refused".to_owned()
            } else {
                io.to_string()
            };
            CliError::new(format!("cannot reach {server} ({why})"))
                .hint("is `berth serve` running there, and is the address right?")
        }
        other => CliError::new(format!("cannot open the terminal: {other}")),
    }
}

/// Frames from the server.
#[derive(Debug)]
pub struct SocketIn {
    stream: SplitStream<Socket>,
    /// The last `error` message, shown when the socket closes.
    error: Option<String>,
}

impl SocketIn {
    fn closed(&mut self, code: u16, reason: String) -> Event {
        Event::Closed(Closed {
            code,
            reason,
            message: self.error.take(),
        })
    }
}

/// What a text frame says; `None` for frames too large or not a [`ServerMessage`].
fn control(text: &str) -> Option<ServerMessage> {
    if text.len() > MAX_TEXT {
        return None;
    }
    let mut message: ServerMessage = serde_json::from_str(text).ok()?;
    if let ServerMessage::Error { message } = &mut message {
        *message = message.chars().take(MAX_ERROR_CHARS).collect();
    }
    Some(message)
}

/// The role of a hello that is not quite [`ServerMessage::Hello`]: from a server older or newer
/// than this CLI (no `target`, a member it cannot read). Only the role matters to the CLI; a
/// role it does not know is taken as a viewer's, so nothing is typed that may not be.
fn lenient_hello(text: &str) -> Option<SessionRole> {
    #[derive(serde::Deserialize)]
    struct AnyHello {
        #[serde(rename = "type")]
        kind: String,
        role: String,
    }
    if text.len() > MAX_TEXT {
        return None;
    }
    let hello: AnyHello = serde_json::from_str(text).ok()?;
    if hello.kind != "hello" {
        return None;
    }
    Some(match hello.role.as_str() {
        "owner" => SessionRole::Owner,
        "peer" => SessionRole::Peer,
        _ => SessionRole::Viewer,
    })
}

impl Incoming for SocketIn {
    async fn next(&mut self) -> Event {
        loop {
            let message = match self.stream.next().await {
                None => return self.closed(1006, "the connection ended".into()),
                Some(Err(err)) => return self.closed(1006, err.to_string()),
                Some(Ok(message)) => message,
            };
            return match message {
                Message::Binary(bytes) => Event::Output(bytes),
                Message::Text(text) => match control(text.as_str()) {
                    Some(ServerMessage::Hello { role, .. }) => Event::Ready {
                        may_type: role.may_type(),
                        role: role.as_str().to_owned(),
                    },
                    Some(ServerMessage::Pong) => Event::Pong,
                    Some(ServerMessage::Exit { code }) => Event::Exit(code),
                    Some(ServerMessage::Error { message }) => {
                        self.error = Some(message);
                        continue;
                    }
                    Some(ServerMessage::Members { .. }) => Event::Ignored,
                    None => match lenient_hello(text.as_str()) {
                        Some(role) => Event::Ready {
                            may_type: role.may_type(),
                            role: role.as_str().to_owned(),
                        },
                        None => Event::Ignored,
                    },
                },
                Message::Close(frame) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |f| {
                        (u16::from(f.code), f.reason.to_string())
                    });
                    self.closed(code, reason)
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Event::Ignored,
            };
        }
    }
}

/// Frames to the server.
#[derive(Debug)]
pub struct SocketOut {
    sink: SplitSink<Socket, Message>,
}

impl Outgoing for SocketOut {
    async fn input(&mut self, bytes: Bytes) -> Result<(), String> {
        self.sink
            .send(Message::Binary(bytes))
            .await
            .map_err(|e| e.to_string())
    }

    async fn resize(&mut self, size: TtySize) -> Result<(), String> {
        let resize = ClientMessage::Resize {
            cols: size.cols,
            rows: size.rows,
        };
        self.sink
            .send(Message::text(resize.to_json()))
            .await
            .map_err(|e| e.to_string())
    }

    async fn ping(&mut self) -> Result<(), String> {
        self.sink
            .send(Message::text(ClientMessage::Ping.to_json()))
            .await
            .map_err(|e| e.to_string())
    }

    async fn close(&mut self) {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "detached".into(),
        };
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            self.sink.send(Message::Close(Some(frame))),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_server() {
        let id: WorkspaceId = "0b6c2c1e-0000-4000-8000-000000000001".parse().unwrap();
        let size = TtySize {
            cols: 120,
            rows: 40,
        };
        assert_eq!(
            terminal_url("http://127.0.0.1:8080", id, size).unwrap(),
            format!("ws://127.0.0.1:8080/api/v1/workspaces/{id}/terminal?cols=120&rows=40")
        );
        assert!(
            terminal_url("http://h/berth/", id, size)
                .unwrap()
                .starts_with("ws://h/berth/api/v1/")
        );
        assert!(
            terminal_url("https://h:8443", id, size)
                .unwrap()
                .starts_with("wss://h:8443/api/v1/")
        );
        let err = terminal_url("ftp://h", id, size).unwrap_err();
        assert!(err.message().contains("not an http"), "{err}");
    }

    #[test]
    fn control_messages_are_read_and_junk_is_ignored() {
        let hello = control(
            r#"{"type":"hello","target":{"kind":"machine","id":"web-1"},"you":"alice","role":"owner","members":[]}"#,
        );
        assert!(
            matches!(
                hello,
                Some(ServerMessage::Hello {
                    role: berth_types::SessionRole::Owner,
                    ..
                })
            ),
            "{hello:?}"
        );
        assert_eq!(
            control(r#"{"type":"exit","code":3}"#),
            Some(ServerMessage::Exit { code: 3 })
        );
        assert_eq!(control(r#"{"type":"pong"}"#), Some(ServerMessage::Pong));
        assert_eq!(
            control(&format!(
                r#"{{"type":"error","message":"{}"}}"#,
                "x".repeat(5000)
            )),
            Some(ServerMessage::Error {
                message: "x".repeat(MAX_ERROR_CHARS)
            })
        );
        for junk in [
            "not json",
            r#"{"type":"exit","code":"three"}"#,
            r#"{"type":"hello","you":"alice","role":"owner","members":[]}"#,
            r#"{"no":"type"}"#,
            r#"[1,2]"#,
        ] {
            assert_eq!(control(junk), None, "{junk}");
        }
        let huge = format!(r#"{{"type":"pong","pad":"{}"}}"#, "x".repeat(MAX_TEXT));
        assert_eq!(control(&huge), None);
    }

    #[test]
    fn a_hello_of_another_version_still_says_the_role() {
        // A server from before terminal targets: no `target`.
        let old = r#"{"type":"hello","workspace":"w","you":"alice","role":"owner","members":[]}"#;
        assert_eq!(control(old), None, "not this version's hello");
        assert_eq!(lenient_hello(old), Some(SessionRole::Owner));
        assert_eq!(
            lenient_hello(r#"{"type":"hello","role":"peer","members":[{"odd":1}]}"#),
            Some(SessionRole::Peer)
        );
        // A role this CLI does not know may not type.
        assert_eq!(
            lenient_hello(r#"{"type":"hello","role":"auditor"}"#),
            Some(SessionRole::Viewer)
        );
        assert_eq!(lenient_hello(r#"{"type":"exit","role":"owner"}"#), None);
        assert_eq!(lenient_hello("not json"), None);
    }
}
