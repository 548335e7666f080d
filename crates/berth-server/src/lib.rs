//! Berth's HTTP server as a library.
//!
//! [`serve`] takes a bound listener, the shared [`AppState`] and a shutdown future, so the binary
//! stays thin and tests bind port 0. This is the only crate that knows axum.
//!
//! # Shape
//!
//! Every endpoint is one row of the route table (`routes.rs`): method, path, who may call it,
//! which rate limit applies, and the request and response types. The table builds both the axum
//! router and the OpenAPI 3.1 document served at `/api/v1/openapi.json`, so neither can list an
//! endpoint the other lacks ([`endpoints`] lists them). The admin UI's pages and form posts are
//! rows built the same way ([`page_routes`] lists them), left out of the document because they
//! answer HTML. Each route runs behind one small middleware (`guard.rs`) that resolves the
//! caller's credentials, applies the rate limit, enforces the route's access rule, turns a
//! panic into a 500 and records metrics. Handlers take the caller through the [`AuthUser`] and
//! [`AdminUser`] extractors (pages: `ui::Viewer`, forms: `ui::CsrfForm`, which checks the CSRF
//! token) and bodies through extractors of their own, so that every rejection, axum's
//! included, answers with Berth's error shape `{"error": {"code", "message", "details"}}` (see
//! `docs/api.md`), or, for a page, an HTML page with the same status.
#![forbid(unsafe_code)]

mod auth;
mod client_config;
mod clusters;
mod error;
mod events;
mod extract;
mod fleet;
mod guard;
mod host;
mod keys;
mod limits;
mod metrics;
mod monitor;
mod openapi;
mod operations;
mod origin;
mod pings;
mod registration;
mod routes;
mod state;
mod tables;
mod templates;
mod terminal;
mod tls;
mod ui;
mod users;
mod workspaces;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

pub use auth::{AdminUser, AuthUser, Caller, Claims, JwtError, JwtKey, KeyError, Via};
pub use error::ApiError;
pub use routes::{Endpoint, endpoints, page_routes};
pub use state::{AppState, SshGatewayInfo};
pub use tls::{TlsCertificate, TlsError, TlsListener, serve_redirect};

/// How often buffered pings are written to the database.
pub const PING_FLUSH_INTERVAL: Duration = Duration::from_secs(3);

/// Builds the router over `state`: the API, `/metrics`, `/healthz` and the admin UI's pages,
/// all rows of one guarded table, every response with the security headers (CSP, nosniff,
/// Referrer-Policy, HSTS over HTTPS) and every state-changing request through the
/// Origin/CSRF check of `ui::security`.
pub fn router(state: AppState) -> Router {
    routes::router(state.clone()).layer(axum::middleware::from_fn_with_state(
        state,
        ui::security::layer,
    ))
}

/// Serves Berth on `listener` until `shutdown` completes, then stops accepting and drains open
/// connections. The caller bounds how long the drain may take. Web sessions saved by an
/// earlier run are read first. Buffered client pings and web-session changes are written to
/// the database every [`PING_FLUSH_INTERVAL`] meanwhile, and once more when the server has
/// drained; a caller that gives up on the drain calls [`AppState::flush`] itself.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Terminal keystrokes and echoes are tiny writes: without TCP_NODELAY, Nagle's algorithm
    // holds one behind the peer's delayed ACK (about 40 ms on Linux).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
    });
    serve_on(listener, state, shutdown).await
}

/// [`serve`] over HTTPS: TLS connections on `listener` with `certificate`, which
/// [`TlsCertificate::reload`] renews without dropping open connections.
pub async fn serve_tls(
    listener: TcpListener,
    certificate: &TlsCertificate,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state
        .shared
        .serving_tls
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let listener = TlsListener::new(listener, certificate)?;
    // `tap_io` gives the listener axum's `ConnectInfo<SocketAddr>`; TCP_NODELAY is set
    // before the handshake.
    let listener = axum::serve::ListenerExt::tap_io(listener, |_| {});
    serve_on(listener, state, shutdown).await
}

async fn serve_on<L>(
    listener: L,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    for<'a> SocketAddr: axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    state.load_sessions().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let housekeeping = tokio::spawn(state.clone().housekeeping(stopped));
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop.send(true);
    let _ = housekeeping.await;
    state.flush().await;
    served
}
