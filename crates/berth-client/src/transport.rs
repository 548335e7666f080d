//! The HTTP side: one pooled hyper client over TCP or TLS, JSON in and out, error answers
//! decoded.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiFailure, ClientError};

/// Answers larger than this are refused.
/// (An operation with `MAX_INLINE_OUTPUT` bytes of output is at most about 60 MiB of JSON.)
const MAX_ANSWER: usize = 64 * 1024 * 1024;
/// How long a call may take by default (a workspace start creates a container).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A client of one Berth server. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: Hyper<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// How an `https://` server is verified (also for the CLI's WebSockets); `None` for an
    /// `http://` one.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    token: Option<HeaderValue>,
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<secret>"))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// An answer as it came: for tests and tools that look at what the typed methods hide.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl RawResponse {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::Decode {
            status: self.status,
            reason: e.to_string(),
        })
    }
}

impl Client {
    /// A client of the server at `base_url` (`http://host:port` or `https://host:port`,
    /// optionally with a path prefix when Berth is behind a proxy). An `https://` server is
    /// verified against the system's roots.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::with_ca(base_url, &[])
    }

    /// [`Client::new`], trusting the CA certificates `ca` as well as the system's (a private
    /// CA, or the server's self-signed certificate; see [`crate::read_ca`]).
    pub fn with_ca(
        base_url: &str,
        ca: &[rustls::pki_types::CertificateDer<'static>],
    ) -> Result<Self, ClientError> {
        let bad = |reason: &str| ClientError::Url {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = base_url.parse().map_err(|_| bad("not a URL"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("use an http:// or https:// URL")),
        };
        if uri.authority().is_none() {
            return Err(bad("the URL has no host"));
        }
        if uri.query().is_some() {
            return Err(bad("the URL may not have a query"));
        }
        let tls = if https {
            Some(crate::tls::client_config(ca)?)
        } else {
            None
        };
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        // Plain http:// servers get a TLS configuration that trusts nothing: it is never used.
        let config = match &tls {
            Some(config) => std::sync::Arc::clone(config),
            None => crate::tls::with_roots(rustls::RootCertStore::empty())?,
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*config).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let http = Hyper::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            base: base_url.trim_end_matches('/').to_owned(),
            http,
            tls,
            token: None,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client, authenticating with `token` (a client token or a login JWT).
    #[must_use]
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = HeaderValue::from_str(&format!("Bearer {token}"))
            .ok()
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        self
    }

    /// The same client, without credentials.
    #[must_use]
    pub fn anonymous(mut self) -> Self {
        self.token = None;
        self
    }

    /// The same client with another limit on how long a call may take.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The server's URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// How an `https://` server is verified, for connections the client does not make itself
    /// (the CLI's WebSockets); `None` for an `http://` server.
    #[must_use]
    pub fn tls_config(&self) -> Option<std::sync::Arc<rustls::ClientConfig>> {
        self.tls.clone()
    }

    /// Sends a request as given (plus the client's token, unless `headers` has an
    /// `Authorization` of its own) and returns the answer whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<RawResponse, ClientError> {
        let url = format!("{}{path}", self.base);
        let request = self.request(method, &url, headers, body.into())?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| transport(&url, error_chain(&e)))?;
            read_whole(&url, response).await
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                url,
                seconds: self.timeout.as_secs(),
            }),
        }
    }

    /// `GET path` whose body is read as it arrives (an event stream): the answer's head
    /// must come within the client's timeout and be a success of `content_type`; the body
    /// has no time limit.
    pub(crate) async fn open_stream(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        content_type: &str,
    ) -> Result<BodyStream, ClientError> {
        let url = format!("{}{path}", self.base);
        let request = self.request(Method::GET, &url, headers, Bytes::new())?;
        let head = async {
            self.http
                .request(request)
                .await
                .map_err(|e| transport(&url, error_chain(&e)))
        };
        let response = match tokio::time::timeout(self.timeout, head).await {
            Ok(response) => response?,
            Err(_) => {
                return Err(ClientError::Timeout {
                    url,
                    seconds: self.timeout.as_secs(),
                });
            }
        };
        if !response.status().is_success() {
            let failure = tokio::time::timeout(self.timeout, read_whole(&url, response))
                .await
                .map_err(|_| ClientError::Timeout {
                    url: url.clone(),
                    seconds: self.timeout.as_secs(),
                })??;
            return Err(failure_of(&failure));
        }
        let given = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !given
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(content_type))
        {
            return Err(ClientError::Decode {
                status: response.status().as_u16(),
                reason: format!("expected {content_type}, got {given:?}"),
            });
        }
        Ok(BodyStream {
            url,
            body: response.into_body(),
        })
    }

    fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut request = Request::builder().method(method).uri(url);
        let mut has_authorization = false;
        for (name, value) in headers {
            has_authorization |= name.eq_ignore_ascii_case("authorization");
            request = request.header(*name, *value);
        }
        if let Some(token) = self.token.as_ref().filter(|_| !has_authorization) {
            request = request.header(AUTHORIZATION, token.clone());
        }
        request
            .body(Full::new(body))
            .map_err(|e| transport(url, format!("cannot build the request: {e}")))
    }

    /// Sends `body` as JSON (or nothing) and returns the answer if it is a success.
    async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<RawResponse, ClientError> {
        let (headers, bytes): (&[(&str, &str)], Bytes) = match body {
            Some(body) => (
                &[
                    ("content-type", "application/json"),
                    ("accept", "application/json"),
                ],
                serde_json::to_vec(body)
                    .map_err(|e| ClientError::Decode {
                        status: 0,
                        reason: format!("cannot encode the request: {e}"),
                    })?
                    .into(),
            ),
            None => (&[("accept", "application/json")], Bytes::new()),
        };
        let response = self.send(method, path, headers, bytes).await?;
        if (200..300).contains(&response.status) {
            return Ok(response);
        }
        Err(failure_of(&response))
    }

    /// A call whose answer is JSON of type `T`.
    pub(crate) async fn json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let response = self.call(method, path, body).await?;
        serde_json::from_slice(&response.body).map_err(|e| ClientError::Decode {
            status: response.status,
            reason: e.to_string(),
        })
    }

    /// A call whose answer has no body.
    pub(crate) async fn empty(&self, method: Method, path: &str) -> Result<(), ClientError> {
        self.call(method, path, None::<&()>).await.map(|_| ())
    }

    /// A call whose answer is bytes, as they are.
    pub(crate) async fn bytes(&self, method: Method, path: &str) -> Result<Bytes, ClientError> {
        Ok(self.call(method, path, None::<&()>).await?.body)
    }

    /// A call whose answer is text.
    pub(crate) async fn text(&self, method: Method, path: &str) -> Result<String, ClientError> {
        let response = self.call(method, path, None::<&()>).await?;
        String::from_utf8(response.body.to_vec()).map_err(|e| ClientError::Decode {
            status: response.status,
            reason: e.to_string(),
        })
    }

    /// `GET path` whose success is text of `content_type` (an error answer is still JSON).
    pub(crate) async fn typed_text(
        &self,
        path: &str,
        content_type: &str,
    ) -> Result<String, ClientError> {
        // The error answers are JSON whatever the success is, so both are acceptable.
        let accept = format!("{content_type}, application/json;q=0.5");
        let response = self
            .send(Method::GET, path, &[("accept", &accept)], Bytes::new())
            .await?;
        if !(200..300).contains(&response.status) {
            return Err(failure_of(&response));
        }
        let given = response
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !given
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(content_type))
        {
            return Err(ClientError::Decode {
                status: response.status,
                reason: format!("expected {content_type}, got {given:?}"),
            });
        }
        String::from_utf8(response.body.to_vec()).map_err(|e| ClientError::Decode {
            status: response.status,
            reason: e.to_string(),
        })
    }
}

/// A response body read as it arrives, from [`Client::open_stream`].
pub(crate) struct BodyStream {
    url: String,
    body: Incoming,
}

impl fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyStream")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl BodyStream {
    /// The next bytes; `None` once the server ended the body.
    pub(crate) async fn chunk(&mut self) -> Option<Result<Bytes, ClientError>> {
        loop {
            match self.body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        return Some(Ok(data));
                    }
                }
                Err(e) => return Some(Err(transport(&self.url, error_chain(&e)))),
            }
        }
    }
}

/// Reads a whole answer (at most [`MAX_ANSWER`] bytes).
async fn read_whole(url: &str, response: Response<Incoming>) -> Result<RawResponse, ClientError> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| transport(url, format!("reading the answer: {e}")))?
        .to_bytes();
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// An error answer as a [`ClientError::Api`].
fn failure_of(response: &RawResponse) -> ClientError {
    let retry_after = response
        .headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    ClientError::Api(Box::new(ApiFailure::from_body(
        response.status,
        &response.body,
        retry_after,
    )))
}

fn transport(url: &str, reason: String) -> ClientError {
    ClientError::Transport {
        url: url.to_owned(),
        reason,
    }
}

/// An error and its causes, on one line; a certificate the client does not trust says so
/// first, in words a user can act on.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    // rustls's error reaches here inside an io::Error, whose `source` skips it: its text
    // (`invalid peer certificate: …`) is what is left to recognize it by.
    if text.contains("invalid peer certificate") {
        format!(
            "the server's TLS certificate is not trusted: it must be signed by a CA of the \
             system's or of --ca FILE, and name the host in the URL ({text})"
        )
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_are_accepted() {
        assert!(Client::new("http://127.0.0.1:8080").is_ok());
        assert!(
            Client::new("http://127.0.0.1:8080")
                .unwrap()
                .tls_config()
                .is_none()
        );
        assert!(
            Client::new("https://127.0.0.1:8443")
                .unwrap()
                .tls_config()
                .is_some()
        );
        assert_eq!(Client::new("http://h:1/").unwrap().base_url(), "http://h:1");
        for bad in ["ftp://h", "h:80", "", "http://h/?q=1", "not a url"] {
            assert!(
                matches!(Client::new(bad), Err(ClientError::Url { .. })),
                "{bad}"
            );
        }
        let client = Client::new("http://h").unwrap().with_token("s3cret");
        assert!(!format!("{client:?}").contains("s3cret"));
    }
}
