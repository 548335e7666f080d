//! The admin web UI: server-rendered pages (askama) with a little htmx and one small static
//! script, embedded in the binary.
//!
//! Every page and form post is a row of the route table (`ui_table` in `routes.rs`), behind the same guard as the API: rate limits (the API budget, the login limit for
//! the login form), access rules, panics as a 500 page, metrics per route. Pages authenticate
//! with the session cookie only ([`Viewer`]); anonymous visitors are sent to
//! `/login?next=…`, non-admins get a 403 page on `/admin/*`. Every form that changes anything
//! carries the session's CSRF token (`_csrf`), checked in constant time by the [`CsrfForm`]
//! extractor, and the Origin/Referer check of `security` runs in front of everything. The pages do no business logic of their own: they
//! call the API's handlers, so validation, audit entries and the config reload that follows a
//! change are exactly the API's.

pub(crate) mod audit;
pub(crate) mod clusters;
pub(crate) mod dashboard;
pub(crate) mod fleet;
pub(crate) mod home;
pub(crate) mod login;
pub(crate) mod machine;
pub(crate) mod operation;
pub(crate) mod operations;
mod paging;
pub(crate) mod recordings;
pub(crate) mod register;
pub(crate) mod run;
pub(crate) mod security;
pub(crate) mod templates;
pub(crate) mod users;

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::SystemTime;

use askama::Template;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use berth_types::Role;

use crate::auth::session::{self, Session};
use crate::auth::{AdminUser, AuthUser, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// The largest form body accepted.
pub(crate) const MAX_FORM_BODY: usize = 64 * 1024;

/// `GET /admin` and `/admin/`: the dashboard (the guard has let only admins through).
pub(crate) async fn admin_home() -> Redirect {
    Redirect::to("/admin/dashboard")
}

/// Where the guard sends an anonymous visitor of a page: the login page, which brings a GET
/// back to where it was (`next`); a form post is not replayed, so it goes to `/login`.
pub(crate) fn to_login(method: &Method, uri: &Uri) -> Response {
    if *method != Method::GET && *method != Method::HEAD {
        return Redirect::to("/login").into_response();
    }
    let next = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut to = String::from("/login?next=");
    for b in next.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            to.push(char::from(b));
        } else {
            let _ = write!(to, "%{b:02X}");
        }
    }
    Redirect::to(&to).into_response()
}

#[cfg(test)]
mod login_redirect_tests {
    use super::*;

    #[test]
    fn the_way_back_is_percent_encoded_and_forms_are_not_replayed() {
        let uri: Uri = "/w/a%20b?x=1".parse().unwrap();
        let page = to_login(&Method::GET, &uri);
        assert_eq!(
            page.headers()[axum::http::header::LOCATION],
            "/login?next=%2Fw%2Fa%2520b%3Fx%3D1"
        );
        let form = to_login(&Method::POST, &uri);
        assert_eq!(form.headers()[axum::http::header::LOCATION], "/login");
    }
}

/// The modification times of the configuration files last seen.
#[derive(Debug, Default)]
pub(crate) struct ConfigWatch {
    seen: Mutex<Option<Vec<Option<SystemTime>>>>,
}

/// Reloads the configuration before a page when a file changed on disk since the last look,
/// so a hand edit shows without a SIGHUP. A bad file keeps the configuration in force.
pub(crate) async fn fresh_config(
    State((state, watch)): State<(AppState, std::sync::Arc<ConfigWatch>)>,
    req: Request,
    next: Next,
) -> Response {
    let dir = state.config.dir().to_owned();
    let stamps = tokio::task::spawn_blocking(move || {
        let mut files = vec![
            dir.join("main.yaml"),
            dir.join("users.yaml"),
            dir.join("containers.yaml"),
        ];
        if let Ok(entries) = std::fs::read_dir(dir.join("users.d")) {
            files.extend(entries.flatten().map(|e| e.path()));
        }
        files.sort();
        files
            .iter()
            .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
            .collect::<Vec<_>>()
    })
    .await
    .ok();
    if let Some(stamps) = stamps {
        let changed = {
            let mut seen = watch
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let changed = seen.as_ref().is_some_and(|s| *s != stamps);
            *seen = Some(stamps);
            changed
        };
        if changed {
            let live = state.config.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(errors) = live.reload() {
                    tracing::warn!(errors = %errors, "a configuration file changed on disk but does not load; keeping the old one");
                }
            })
            .await;
        }
    }
    next.run(req).await
}

/// The static files, embedded.
pub(crate) async fn asset(crate::extract::Path(file): crate::extract::Path<String>) -> Response {
    let (body, kind): (&'static [u8], &str) = match file.as_str() {
        "berth.css" => (include_bytes!("../../static/berth.css"), "text/css"),
        "ui.js" => (include_bytes!("../../static/ui.js"), "text/javascript"),
        "live.js" => (include_bytes!("../../static/live.js"), "text/javascript"),
        "htmx.min.js" => (
            include_bytes!("../../static/htmx-2.0.4.min.js"),
            "text/javascript",
        ),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// What every page's header needs.
#[derive(Debug, Clone)]
pub(crate) struct Nav {
    pub(crate) username: String,
    pub(crate) admin: bool,
    pub(crate) csrf: String,
    /// main.yaml sets `fleet.repository`: the Fleet and Operations pages are in the menu.
    pub(crate) fleet: bool,
    /// main.yaml enables clusters: the Clusters page is in the menu.
    pub(crate) clusters: bool,
}

/// A logged-in browser: the session cookie names a session in force and an account that is
/// still the one that logged in. Anonymous requests are redirected to `/login`.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub(crate) caller: Caller,
    pub(crate) session_id: String,
    pub(crate) session: Session,
}

impl Viewer {
    pub(crate) fn nav(&self, state: &AppState) -> Nav {
        Nav {
            username: self.caller.username.to_string(),
            admin: self.caller.is_admin(),
            csrf: self.session.csrf.clone(),
            fleet: state.fleet.is_some(),
            clusters: state.clusters.is_some(),
        }
    }

    /// Checks the form's `_csrf` field against the session's token.
    #[allow(clippy::result_large_err)] // the refusal is the page to answer with
    fn check_csrf(&self, form: &Form) -> Result<(), Response> {
        match form.get("_csrf") {
            Some(token) if session::same_secret(token, &self.session.csrf) => Ok(()),
            _ => Err(error_page(
                StatusCode::FORBIDDEN,
                "The form's security token is missing or wrong. Reload the page and try again.",
            )),
        }
    }

    pub(crate) fn auth(&self) -> AuthUser {
        AuthUser(self.caller.clone())
    }

    pub(crate) fn admin(&self) -> AdminUser {
        AdminUser(self.caller.clone())
    }
}

/// The session of a request, if it is in force: (id, session, caller).
pub(crate) fn current_session(state: &AppState, headers: &axum::http::HeaderMap) -> Option<Viewer> {
    let config = state.config.current();
    let name = session::cookie_name(session::SESSION_COOKIE, crate::auth::https(state, &config));
    let id = session::read_cookie(headers, &name)?;
    let security = &config.main.security;
    let found =
        state
            .shared
            .sessions
            .get(id, security.session_idle.get(), security.session_ttl.get())?;
    let caller = crate::auth::account(&config, &found.username, found.uid, &found.pwd)?;
    Some(Viewer {
        caller,
        session_id: id.to_owned(),
        session: found,
    })
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    /// The viewer the guard found (page rows), else the session cookie's.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(viewer) = parts.extensions.get::<Viewer>() {
            return Ok(viewer.clone());
        }
        current_session(state, &parts.headers).ok_or_else(|| to_login(&parts.method, &parts.uri))
    }
}

/// A logged-in admin; others get a 403 page.
#[derive(Debug, Clone)]
pub(crate) struct AdminViewer(pub(crate) Viewer);

impl FromRequestParts<AppState> for AdminViewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        if viewer.caller.role == Role::Admin {
            Ok(Self(viewer))
        } else {
            Err(error_page(
                StatusCode::FORBIDDEN,
                "This page is for admins.",
            ))
        }
    }
}

/// Who posted a form: a [`Viewer`] or an [`AdminViewer`].
pub(crate) trait Poster: FromRequestParts<AppState, Rejection = Response> + Send {
    fn viewer(&self) -> &Viewer;
}

impl Poster for Viewer {
    fn viewer(&self) -> &Viewer {
        self
    }
}

impl Poster for AdminViewer {
    fn viewer(&self) -> &Viewer {
        &self.0
    }
}

/// A form posted by a logged-in browser (`V`: [`Viewer`] or [`AdminViewer`]) that carries its
/// session's CSRF token in `_csrf`, compared in constant time. A missing or wrong token is a
/// 403 page; nothing of the form is acted on.
#[derive(Debug)]
pub(crate) struct CsrfForm<V = Viewer>(pub(crate) V, pub(crate) Form);

impl<V: Poster> axum::extract::FromRequest<AppState> for CsrfForm<V> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let viewer = V::from_request_parts(&mut parts, state).await?;
        let form = <Form as axum::extract::FromRequest<AppState>>::from_request(
            Request::from_parts(parts, body),
            state,
        )
        .await?;
        viewer.viewer().check_csrf(&form)?;
        Ok(Self(viewer, form))
    }
}

/// A urlencoded form as its pairs, in order: repeated keys (checkboxes) are kept.
#[derive(Debug, Default)]
pub(crate) struct Form(pub(crate) Vec<(String, String)>);

impl Form {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed value, empty when missing.
    pub(crate) fn text(&self, key: &str) -> String {
        self.get(key).unwrap_or_default().trim().to_owned()
    }

    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub(crate) fn checked(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match axum::Form::<Vec<(String, String)>>::from_request(req, state).await {
            Ok(axum::Form(pairs)) => Ok(Self(pairs)),
            Err(rejection) => Err(error_page(rejection.status(), &rejection.body_text())),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
}

/// A plain error page.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        status: status.as_u16(),
        message,
    };
    (status, render(&page)).into_response()
}

/// An API error as a page.
pub(crate) fn api_error_page(error: &ApiError) -> Response {
    error_page(error.status, &error.message)
}

/// Renders a page; a template error is a logged 500.
pub(crate) fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

/// Field errors of an API error (`details.errors[].field/message`), and what is left for the
/// top of the page.
pub(crate) fn field_errors(error: &ApiError) -> Vec<(String, String)> {
    error
        .details
        .as_ref()
        .and_then(|d| d.get("errors"))
        .and_then(|e| e.as_array())
        .map(|list| {
            list.iter()
                .map(|e| {
                    (
                        e.get("field")
                            .and_then(|f| f.as_str())
                            .unwrap_or_default()
                            .to_owned(),
                        e.get("message")
                            .and_then(|f| f.as_str())
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A human age: `42s`, `5m`, `3h`, `2d`.
pub(crate) fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Bytes in binary units.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
