//! HTTPS for the client: rustls with the ring provider, verifying the server against the
//! system's roots (`/etc/ssl/certs`, read by rustls-native-certs) and, when given, a CA file of
//! the user's (`berth login --ca FILE`: a private CA, or a self-signed certificate). Nothing is
//! ever accepted unverified.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use crate::error::ClientError;

/// The certificates of a PEM file (or its text), at least one.
pub fn read_ca(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let bad = |reason: String| ClientError::Tls {
        reason: format!("{what}: {reason}"),
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM certificates ({e})")))?;
    if certs.is_empty() {
        return Err(bad(
            "no certificate in it (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

/// A TLS client configuration trusting the system's roots, plus `extra` CAs.
pub fn client_config(extra: &[CertificateDer<'static>]) -> Result<Arc<ClientConfig>, ClientError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    // An unreadable system store is no error when the user named the CA to trust.
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    for cert in extra {
        roots.add(cert.clone()).map_err(|e| ClientError::Tls {
            reason: format!("the CA file holds a certificate rustls refuses: {e}"),
        })?;
    }
    if added == 0 && extra.is_empty() {
        return Err(ClientError::Tls {
            reason: "no trusted CA certificates: the system store (ca-certificates) is empty \
                     or unreadable; install it, or name the server's CA with --ca FILE"
                .into(),
        });
    }
    with_roots(roots)
}

/// A TLS client configuration (ring, the safe default protocol versions) trusting `roots`.
pub(crate) fn with_roots(roots: RootCertStore) -> Result<Arc<ClientConfig>, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls {
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates() {
        assert!(read_ca(b"", "ca.pem").is_err());
        assert!(read_ca(b"not pem at all", "ca.pem").is_err());
        let err = read_ca(
            b"-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
            "ca.pem",
        )
        .unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }
}
