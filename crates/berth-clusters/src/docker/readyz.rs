//! `GET /readyz` on a cluster's API over TLS, verified with the cluster's own CA and
//! authenticated with its client certificate: the readiness check k3d and kubectl would make.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::kubeconfig::Credentials;

/// Longest wait for one probe (connect, handshake, answer).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// `/readyz` answers `ok`, or a list of checks when not ready: a few KiB at most.
const BODY_LIMIT: usize = 64 * 1024;

/// Whether the API at `address:port` answers `/readyz` with 200 `ok`; `Err` says why not.
pub(crate) async fn probe(
    credentials: &Credentials,
    address: IpAddr,
    port: u16,
) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, get(credentials, address, port)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "GET /readyz did not answer within {}s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

fn client_config(credentials: &Credentials) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&credentials.ca_pem) {
        let cert = cert.map_err(|e| format!("the kubeconfig's CA is not PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("the kubeconfig's CA is not usable: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the kubeconfig's CA holds no certificate".to_owned());
    }
    let chain = CertificateDer::pem_slice_iter(&credentials.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the kubeconfig's client certificate is not PEM: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&credentials.key_pem)
        .map_err(|e| format!("the kubeconfig's client key is not PEM: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("the kubeconfig's client credentials are not usable: {e}"))
}

async fn get(credentials: &Credentials, address: IpAddr, port: u16) -> Result<(), String> {
    let config = client_config(credentials)?;
    let target = SocketAddr::new(address, port);
    let tcp = tokio::net::TcpStream::connect(target)
        .await
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::IpAddress(address.into()), tcp)
        .await
        .map_err(|e| format!("TLS with {target} failed: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("HTTP with {target} failed: {e}"))?;
    let driver = tokio::spawn(connection);
    let host = match address {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    };
    let request = hyper::Request::get("/readyz")
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "berth")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("GET /readyz on {target} failed: {e}"))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), BODY_LIMIT)
            .collect()
            .await
            .map_err(|e| format!("reading /readyz's answer failed: {e}"))?
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        if status == hyper::StatusCode::OK && text.trim() == "ok" {
            Ok(())
        } else {
            let text: String = text.trim().chars().take(300).collect();
            Err(format!("GET /readyz answered {status}: {text}"))
        }
    }
    .await;
    driver.abort();
    result
}
