//! The layer in front of every response, API included: the client's address ([`ClientIp`]),
//! security headers (and `Cache-Control: no-store` on every HTML page), the Origin/Referer
//! check of state-changing requests (the policy [`crate::origin::state_change`]), and the CSRF
//! header the API wants from session-cookie callers.
//!
//! A Bearer token is never sent by a browser on its own, so Bearer requests need no CSRF
//! token; a cookie is, so a state-changing API request authenticated by the session cookie
//! must carry the session's token in `X-CSRF-Token`. Pages check their forms' `_csrf` field
//! through the `ui::CsrfForm` extractor.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::session::{self, same_secret};
use crate::auth::{ClientIp, client_ip};
use crate::error::ApiError;
use crate::state::AppState;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'; object-src 'none'";

/// The header a session-cookie caller of the API sends its CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

pub(crate) async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let config = state.config.current();
    let https = crate::auth::https(&state, &config);
    // Who is asking, once for every handler, the guard and the UI alike.
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let ip = client_ip(peer, req.headers(), &config.main.security.trusted_proxies);
    drop(config);
    req.extensions_mut().insert(ClientIp(ip));
    let mut response = match check(&state, &req) {
        Ok(()) => next.run(req).await,
        Err(error) => error.into_response(),
    };
    let headers = response.headers_mut();
    // Pages carry the session's CSRF token and the user's data: no cache, shared or the
    // browser's own, may keep them. Scripts and stylesheets set their own caching.
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    if html {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

fn safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn check(state: &AppState, req: &Request) -> Result<(), ApiError> {
    if safe(req.method()) {
        return Ok(());
    }
    let headers = req.headers();
    let bearer = headers.contains_key(header::AUTHORIZATION);
    let is_api = req.uri().path().starts_with("/api/");
    // Bearer API calls come from programs, not from pages another site could make a browser
    // send; everything else is checked for where it came from.
    if !bearer || !is_api {
        let public_url = state.config.current().main.public_url.clone();
        crate::origin::state_change(headers, public_url.as_deref()).map_err(ApiError::forbidden)?;
    }
    if is_api && !bearer {
        let config = state.config.current();
        let name =
            session::cookie_name(session::SESSION_COOKIE, crate::auth::https(state, &config));
        if let Some(id) = session::read_cookie(headers, &name) {
            let security = &config.main.security;
            let expected = state
                .shared
                .sessions
                .get(id, security.session_idle.get(), security.session_ttl.get())
                .map(|s| s.csrf);
            let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if let (Some(expected), Some(sent)) = (expected, sent)
                && same_secret(sent, &expected)
            {
                return Ok(());
            }
            // An expired session falls through to a 401 from the route guard.
            if state
                .shared
                .sessions
                .get(id, security.session_idle.get(), security.session_ttl.get())
                .is_some()
            {
                return Err(ApiError::forbidden(
                    "a request with the session cookie must send the session's CSRF token in \
                     X-CSRF-Token",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_methods() {
        assert!(safe(&Method::GET) && !safe(&Method::POST) && !safe(&Method::DELETE));
    }
}
