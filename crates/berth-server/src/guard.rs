//! The middleware in front of every route: resolve the caller, spend their rate-limit budget,
//! run the handler with panics turned into 500s, and record the request in the metrics.
//!
//! API rows and the admin UI's pages go through the same steps; a page row differs in how the
//! caller is found (the session cookie only, [`crate::ui::Viewer`]) and in how a refusal is
//! told: an anonymous visitor is redirected to the login page, which brings them back, and
//! every other refusal (403, 429, a panic's 500) is an HTML page instead of the JSON error.

use std::any::Any;
use std::net::{IpAddr, Ipv4Addr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;

use crate::auth::{Authentication, ClientIp, authenticate, bearer, require};
use crate::error::ApiError;
use crate::limits::{Class, Key};
use crate::state::AppState;
use crate::ui;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone; credentials are not even looked at.
    Public,
    /// Any authenticated caller.
    User,
    /// Admins.
    Admin,
    /// Anyone while main.yaml sets no `security.metrics_token_hash`; with one, a caller who
    /// sends that token as `Authorization: Bearer`.
    Metrics,
    /// A page for a logged-in browser (session cookie); anonymous visitors are redirected to
    /// `/login?next=…` (a GET) or `/login` (a form post).
    Page,
    /// A page for admins: like [`Access::Page`], and a 403 page for other users.
    AdminPage,
}

/// Which budget a route spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// `api_rate_per_minute`.
    Api,
    /// `ping_rate_per_minute`.
    Ping,
    /// `login_rate_per_minute`, per address.
    Login,
}

/// What the guard knows of its route.
#[derive(Debug)]
pub(crate) struct RouteInfo {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) access: Access,
    pub(crate) limit: Limit,
    /// Refusals and panics are answered as HTML pages.
    pub(crate) html: bool,
}

pub(crate) async fn guard(
    State((state, route)): State<(AppState, Arc<RouteInfo>)>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    // Set by the outermost layer (`ui::security::layer`) for every request.
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0);
    let config = state.config.current();
    let mut viewer = None;
    let authentication = match route.access {
        Access::Public | Access::Metrics => Authentication::Anonymous,
        Access::User | Access::Admin => authenticate(&state, &config, req.headers()),
        Access::Page | Access::AdminPage => match ui::current_session(&state, req.headers()) {
            Some(found) => {
                let caller = Authentication::Caller(found.caller.clone());
                viewer = Some(found);
                caller
            }
            None => Authentication::Anonymous,
        },
    };
    let metrics_allowed = route.access != Access::Metrics
        || config.main.security.metrics_token_hash.is_none()
        || bearer(req.headers()).is_some_and(|token| config.is_metrics_token(token));
    let (class, key, per_minute) = {
        let security = &config.main.security;
        match (route.limit, &authentication) {
            (Limit::Login, _) => (
                Class::Login,
                Key::Address(ClientIp(ip).block()),
                security.login_rate_per_minute,
            ),
            (Limit::Ping, Authentication::Caller(c)) => {
                (Class::Ping, c.limit_key(), security.ping_rate_per_minute)
            }
            (_, Authentication::Caller(c)) => {
                (Class::Api, c.limit_key(), security.api_rate_per_minute)
            }
            _ => (
                Class::Api,
                Key::Address(ClientIp(ip).block()),
                security.api_rate_per_minute,
            ),
        }
    };
    drop(config);
    let response = match state.shared.limits.take(class, key, per_minute) {
        Err(wait) => refusal(
            &route,
            ApiError::too_many(
                "rate_limited",
                format!("too many requests: at most {per_minute} a minute; retry later"),
                wait,
            ),
        ),
        Ok(()) => {
            // The table's access rule holds even for a handler that forgot its extractor.
            let allowed = match route.access {
                Access::Public => Ok(()),
                Access::Metrics if metrics_allowed => Ok(()),
                Access::Metrics => Err(ApiError::unauthenticated(
                    "/metrics needs the metrics token: send Authorization: Bearer TOKEN \
                     (made by `berth config metrics-token`)",
                )),
                Access::User => require(&authentication, false).map(drop),
                Access::Admin => require(&authentication, true).map(drop),
                Access::Page | Access::AdminPage => match &authentication {
                    Authentication::Caller(caller)
                        if route.access == Access::AdminPage && !caller.is_admin() =>
                    {
                        Err(ApiError::forbidden("This page is for admins."))
                    }
                    Authentication::Caller(_) => Ok(()),
                    _ => Err(ApiError::unauthenticated("log in first")),
                },
            };
            match allowed {
                Err(error)
                    if error.status == StatusCode::UNAUTHORIZED
                        && matches!(route.access, Access::Page | Access::AdminPage) =>
                {
                    ui::to_login(req.method(), req.uri())
                }
                Err(error) => refusal(&route, error),
                Ok(()) => {
                    req.extensions_mut().insert(authentication);
                    if let Some(viewer) = viewer {
                        req.extensions_mut().insert(viewer);
                    }
                    run_catching(&route, req, next).await
                }
            }
        }
    };
    state.shared.metrics.observe(
        route.path,
        route.method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// A refusal as the route tells them: Berth's JSON error, or an HTML page with the same
/// status (and `Retry-After`).
fn refusal(route: &RouteInfo, error: ApiError) -> Response {
    if !route.html {
        return error.into_response();
    }
    let mut page = ui::api_error_page(&error);
    if let Some(seconds) = error.retry_after() {
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    page
}

/// Runs the rest of the stack; a panic becomes a logged 500 that reveals nothing.
async fn run_catching(route: &RouteInfo, req: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let error = panicked(route.method, route.path, panic.as_ref());
            refusal(route, error)
        }
    }
}

/// A handler panicked: log what it said, answer a plain 500.
fn panicked(method: &str, path: &str, panic: &(dyn Any + Send)) -> ApiError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    tracing::error!(%method, %path, panic = %message, "a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the server failed to handle the request; the cause is in its log",
    )
}

/// The name of a method for metric labels, from a fixed set.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Unknown paths: an HTML page with a link home for a browser (an `Accept` that names
/// `text/html`) outside `/api/`, Berth's JSON error otherwise.
pub(crate) async fn not_found(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    state.shared.metrics.observe(
        "(unmatched)",
        method_label(&method),
        404,
        std::time::Duration::ZERO,
    );
    if !uri.path().starts_with("/api/") && accepts_html(&headers) {
        return ui::error_page(StatusCode::NOT_FOUND, "There is no page at this address.");
    }
    ApiError::not_found("no such endpoint; the API is described at /api/v1/openapi.json")
        .into_response()
}

/// Whether an `Accept` header names `text/html` (as browsers' navigations do).
fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|kind| {
            let kind = kind.split(';').next().unwrap_or_default().trim();
            kind.eq_ignore_ascii_case("text/html")
        })
}

/// Known paths asked with a method they do not take.
pub(crate) async fn method_not_allowed(State(state): State<AppState>, method: Method) -> Response {
    state.shared.metrics.observe(
        "(method not allowed)",
        method_label(&method),
        405,
        std::time::Duration::ZERO,
    );
    ApiError::from_status(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("this endpoint does not take {method}; see /api/v1/openapi.json"),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn route(html: bool) -> RouteInfo {
        RouteInfo {
            method: "GET",
            path: "/boom",
            access: Access::Public,
            limit: Limit::Api,
            html,
        }
    }

    async fn catch(req: Request, next: Next) -> Response {
        run_catching(&route(false), req, next).await
    }

    async fn catch_page(req: Request, next: Next) -> Response {
        run_catching(&route(true), req, next).await
    }

    async fn boom() -> &'static str {
        panic!("secret internals")
    }

    #[tokio::test]
    async fn a_panic_is_a_500_without_its_message() {
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(axum::middleware::from_fn(catch));
        let response = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("\"code\":\"internal\""), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[tokio::test]
    async fn a_panic_in_a_page_is_an_html_500_without_its_message() {
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(axum::middleware::from_fn(catch_page));
        let response = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        let kind = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(kind.starts_with("text/html"), "{kind}");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("<h1>Error 500</h1>"), "{text}");
        assert!(text.contains("href=\"/\""), "a link home: {text}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn browsers_are_told_by_their_accept_header() {
        let accept = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
            accepts_html(&h)
        };
        assert!(accept(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(accept("TEXT/HTML; q=0.5"));
        assert!(!accept("application/json"));
        assert!(!accept("*/*"));
        assert!(!accepts_html(&HeaderMap::new()));
    }
}
