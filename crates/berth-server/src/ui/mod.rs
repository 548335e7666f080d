//! The admin web UI: server-rendered pages (askama) with a little htmx and one small static
//! script, embedded in the binary.
//!
//! Pages authenticate with the session cookie only ([`Viewer`]); anonymous visitors are sent to
//! `/login`, non-admins get 403 on `/admin/*`. Every form that changes anything carries the
//! session's CSRF token (`_csrf`), checked in constant time, and the Origin/Referer check of
//! `security` runs in front of everything. The pages do no business logic of their own: they
//! call the API's handlers, so validation, audit entries and the config reload that follows a
//! change are exactly the API's.

mod audit;
mod dashboard;
mod home;
mod login;
mod paging;
mod recordings;
pub(crate) mod security;
mod templates;
mod users;

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use berth_types::Role;

use crate::auth::session::{self, Session};
use crate::auth::{AdminUser, AuthUser, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// The largest form body accepted.
const MAX_FORM_BODY: usize = 64 * 1024;

/// The UI's routes.
pub(crate) fn router(state: AppState) -> Router {
    let watch = Arc::new(ConfigWatch::default());
    Router::new()
        .route("/", get(home::page))
        .route("/workspaces", post(home::start))
        .route("/workspaces/{id}/stop", post(home::stop))
        .route("/workspaces/{id}/delete", post(home::delete))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/admin/dashboard", get(dashboard::page))
        .route("/admin/dashboard/events", get(dashboard::events))
        .route("/admin/workspaces/{id}/stop", post(dashboard::stop))
        .route("/admin/users", get(users::list).post(users::create))
        .route("/admin/users/new", get(users::new))
        .route("/admin/users/{name}", get(users::edit).post(users::update))
        .route("/admin/users/{name}/delete", post(users::delete))
        .route("/admin/users/{name}/token", post(users::reset_token))
        .route(
            "/admin/templates",
            get(templates::list).post(templates::create),
        )
        .route("/admin/templates/new", get(templates::new))
        .route(
            "/admin/templates/{name}",
            get(templates::edit).post(templates::update),
        )
        .route("/admin/templates/{name}/delete", post(templates::delete))
        .route("/admin/audit", get(audit::page))
        .route("/admin/recordings", get(recordings::page))
        .route("/admin/recordings/{id}/delete", post(recordings::delete))
        .route("/static/{file}", get(asset))
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), watch),
            fresh_config,
        ))
        .layer(DefaultBodyLimit::max(MAX_FORM_BODY))
        .with_state(state)
}

/// The modification times of the configuration files last seen.
#[derive(Debug, Default)]
struct ConfigWatch {
    seen: Mutex<Option<Vec<Option<SystemTime>>>>,
}

/// Reloads the configuration before a page when a file changed on disk since the last look,
/// so a hand edit shows without a SIGHUP. A bad file keeps the configuration in force.
async fn fresh_config(
    State((state, watch)): State<(AppState, Arc<ConfigWatch>)>,
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
async fn asset(crate::extract::Path(file): crate::extract::Path<String>) -> Response {
    let (body, kind): (&'static [u8], &str) = match file.as_str() {
        "berth.css" => (include_bytes!("../../static/berth.css"), "text/css"),
        "ui.js" => (include_bytes!("../../static/ui.js"), "text/javascript"),
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
    pub(crate) fn nav(&self) -> Nav {
        Nav {
            username: self.caller.username.to_string(),
            admin: self.caller.is_admin(),
            csrf: self.session.csrf.clone(),
        }
    }

    /// Checks the form's `_csrf` field against the session's token.
    #[allow(clippy::result_large_err)] // the refusal is the page to answer with
    pub(crate) fn check_csrf(&self, form: &Form) -> Result<(), Response> {
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
    let name = session::cookie_name(session::SESSION_COOKIE, crate::auth::https(&config));
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

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        current_session(state, &parts.headers).ok_or_else(|| Redirect::to("/login").into_response())
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
