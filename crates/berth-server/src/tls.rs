//! HTTPS on `listen` (main.yaml `tls`): rustls with the ring provider, a certificate that can
//! be replaced while serving ([`TlsCertificate::reload`], on SIGHUP), and a listener whose TLS
//! handshakes run in tasks of their own, so a client that stalls its handshake holds nothing
//! but its own connection. Connections keep the certificate they started with; new ones get
//! the renewed one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the HTTP server to take them.
const READY_QUEUE: usize = 64;
/// Handshakes at once: past this, accepting waits, so stalled handshakes cannot use up the
/// process's file descriptors.
const MAX_HANDSHAKES: usize = 512;

/// Why a certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not what it should be.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The certificate and the key do not go together, or rustls refuses them.
    #[error("the certificate {cert} and the key {key} cannot be used together: {reason}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The certificate in force, shared by the listener and whoever reloads it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TlsCertificate {
    cert: PathBuf,
    key: PathBuf,
    config: Arc<watch::Sender<Arc<ServerConfig>>>,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A rustls server configuration of the PEM files `cert` (the chain, leaf first) and `key`.
fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let invalid = |path: &Path, reason: String| TlsError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(cert, format!("not PEM certificates ({e})")))?;
    if chain.is_empty() {
        return Err(invalid(
            cert,
            "no certificate in it (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let private = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| invalid(key, format!("no private key in it ({e})")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Pair {
            cert: cert.to_owned(),
            key: key.to_owned(),
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Pair {
            cert: cert.to_owned(),
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl TlsCertificate {
    /// Loads the certificate chain `cert` and its private key `key` (PEM files).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let config = server_config(cert, key)?;
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            config: Arc::new(watch::channel(config).0),
        })
    }

    /// Reads the files again (a renewed certificate): new connections get it, open ones
    /// keep theirs. On error the certificate in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.cert, &self.key)?;
        self.config.send_replace(config);
        Ok(())
    }

    /// The certificate file.
    #[must_use]
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
}

/// A listener of TLS connections over `tcp`, for `axum::serve`.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl TlsListener {
    /// Accepts on `tcp`, handshaking with the certificate `certificate` holds at the time.
    pub fn new(tcp: TcpListener, certificate: &TlsCertificate) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (queue, ready) = mpsc::channel(READY_QUEUE);
        let config = certificate.config.subscribe();
        let accepting = tokio::spawn(accept_loop(tcp, config, queue));
        Ok(Self {
            ready,
            local,
            accepting,
        })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    config: watch::Receiver<Arc<ServerConfig>>,
    queue: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %err, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Terminal keystrokes and echoes are tiny writes: never hold one back for Nagle.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&config.borrow()));
        let queue = queue.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            drop(slot);
            match handshake {
                Ok(Ok(tls)) => {
                    let _ = queue.send((tls, peer)).await;
                }
                Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when the listener goes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The plain-HTTP listener of main.yaml `tls.redirect_http`: every request answers 308 to the
/// same path on `https_base` (`https://host[:port]`), or, without one, on the request's host
/// with `https_port`.
pub async fn serve_redirect(
    listener: TcpListener,
    https_base: Option<String>,
    https_port: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::{HeaderMap, StatusCode, Uri, header};
    use axum::response::IntoResponse;
    // A public_url that is not https would send clients round in circles.
    let https_base = https_base.filter(|base| base.starts_with("https://"));
    let redirect = move |headers: HeaderMap, uri: Uri| {
        let base = https_base.clone();
        async move {
            let path = uri
                .path_and_query()
                .map_or("/", axum::http::uri::PathAndQuery::as_str)
                .to_owned();
            let base = match base {
                Some(base) => base,
                None => {
                    let host = headers
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok());
                    let Some(host) = host else {
                        return (StatusCode::BAD_REQUEST, "a Host header is needed")
                            .into_response();
                    };
                    // `host()` keeps an IPv6 address's brackets.
                    if https_port == 443 {
                        format!("https://{}", host.host())
                    } else {
                        format!("https://{}:{https_port}", host.host())
                    }
                }
            };
            let location = format!("{}{path}", base.trim_end_matches('/'));
            match axum::http::HeaderValue::from_str(&location) {
                Ok(value) => (
                    StatusCode::PERMANENT_REDIRECT,
                    [(header::LOCATION, value)],
                    "this server speaks https\n",
                )
                    .into_response(),
                Err(_) => (StatusCode::BAD_REQUEST, "cannot redirect this request").into_response(),
            }
        }
    };
    let app = axum::Router::new().fallback(redirect);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Location` the redirect listener answers `host` with.
    async fn location(base: Option<&str>, host: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_redirect(
            listener,
            base.map(str::to_owned),
            8443,
            async move {
                let _ = stopped.await;
            },
        ));
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET /w/x?y=1 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        let _ = stop.send(());
        let _ = server.await;
        assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
        answer
            .lines()
            .find_map(|l| l.strip_prefix("location: "))
            .unwrap_or_default()
            .to_owned()
    }

    #[tokio::test]
    async fn plain_http_is_sent_to_the_same_path_over_https() {
        assert_eq!(
            location(None, "lab.example:80").await,
            "https://lab.example:8443/w/x?y=1"
        );
        assert_eq!(
            location(None, "[2001:db8::1]:80").await,
            "https://[2001:db8::1]:8443/w/x?y=1"
        );
        assert_eq!(
            location(Some("https://berth.example/"), "other").await,
            "https://berth.example/w/x?y=1"
        );
        // A public_url that is not https would loop: the request's host is used instead.
        assert_eq!(
            location(Some("http://berth.example"), "lab.example").await,
            "https://lab.example:8443/w/x?y=1"
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let err = TlsCertificate::load(&cert, &key).unwrap_err();
        assert!(err.to_string().contains("cert.pem"), "{err}");
        std::fs::write(&cert, "not pem").unwrap();
        std::fs::write(&key, "not pem").unwrap();
        let err = TlsCertificate::load(&cert, &key).unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");
    }
}
