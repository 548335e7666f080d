//! Berth's HTTP server as a library.
//!
//! [`serve`] takes a bound listener, the shared [`AppState`] and a shutdown future, so the binary
//! stays thin and tests bind port 0. This is the only crate that knows axum.
#![forbid(unsafe_code)]

mod state;

use std::future::Future;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

pub use state::AppState;

/// Builds the router over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Liveness: answers 200 as long as the process serves requests.
async fn healthz() -> &'static str {
    "ok"
}

/// Serves Berth on `listener` until `shutdown` completes, then stops accepting and drains open
/// connections. The caller bounds how long the drain may take.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
