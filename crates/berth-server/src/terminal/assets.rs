//! The browser terminal's scripts and stylesheet, embedded from `web/dist`. Their names are not
//! content-hashed, so they are served with `Cache-Control: no-cache` and an `ETag`: browsers
//! revalidate and get a 304 while the binary is the same.

use std::sync::OnceLock;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
#[derive(Debug)]
pub(crate) struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
    etag: OnceLock<String>,
}

impl Asset {
    const fn new(bytes: &'static [u8], content_type: &'static str) -> Self {
        Self {
            bytes,
            content_type,
            etag: OnceLock::new(),
        }
    }

    fn etag(&self) -> &str {
        self.etag.get_or_init(|| {
            let digest = Sha256::digest(self.bytes);
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
    }

    fn serve(&self, headers: &HeaderMap) -> Response {
        let etag = self.etag();
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
        let common = [
            (header::CACHE_CONTROL, "no-cache"),
            (header::ETAG, etag),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ];
        if fresh {
            return (StatusCode::NOT_MODIFIED, common).into_response();
        }
        (
            common,
            [(header::CONTENT_TYPE, self.content_type)],
            self.bytes,
        )
            .into_response()
    }
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

static TERMINAL_JS: Asset = Asset::new(include_bytes!("../../../../web/dist/terminal.js"), JS);
static GRID_JS: Asset = Asset::new(include_bytes!("../../../../web/dist/grid.js"), JS);
static REPLAY_JS: Asset = Asset::new(include_bytes!("../../../../web/dist/replay.js"), JS);
static TERMINAL_CSS: Asset = Asset::new(include_bytes!("../../../../web/dist/terminal.css"), CSS);

/// Handlers of `/assets/<file>`, one per file (so the route table lists each).
pub(crate) mod asset {
    use axum::http::HeaderMap;
    use axum::response::Response;

    pub(crate) async fn terminal_js(headers: HeaderMap) -> Response {
        super::TERMINAL_JS.serve(&headers)
    }

    pub(crate) async fn grid_js(headers: HeaderMap) -> Response {
        super::GRID_JS.serve(&headers)
    }

    pub(crate) async fn replay_js(headers: HeaderMap) -> Response {
        super::REPLAY_JS.serve(&headers)
    }

    pub(crate) async fn terminal_css(headers: HeaderMap) -> Response {
        super::TERMINAL_CSS.serve(&headers)
    }
}
