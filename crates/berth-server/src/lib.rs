//! Berth's HTTP server as a library: [`serve`] takes a bound listener and a shutdown future, so
//! the binary stays thin and tests bind port 0.
#![forbid(unsafe_code)]

use std::future::Future;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

/// Builds the router.
pub fn router() -> Router {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz() -> &'static str {
    "ok"
}

/// Serves Berth on `listener` until `shutdown` completes, then drains open connections.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown)
        .await
}
