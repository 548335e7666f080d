//! `/login` and `/logout`: one login page for the main.yaml admin and users.yaml users, with
//! the API login's password check, lockout, throttling and audit (it calls that handler).
//!
//! The login form is protected against login CSRF by a pre-session token: a random value in
//! a short-lived cookie that the form repeats (double submit). A successful login always
//! starts a session with a new id, so an id planted before login is worthless.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use berth_types::api::{LoginRequest, Secret};

use super::{CsrfForm, Form, current_session, error_page, render};
use crate::auth::session::{
    self, LOGIN_COOKIE, LOGIN_FORM_TTL, SESSION_COOKIE, random_token, same_secret, set_cookie,
};
use crate::auth::{ClientIp, https, password_fingerprint};
use crate::extract::Json;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    token: String,
    error: String,
    username: String,
    next: String,
    /// A sign-up just made this account: say so above the form.
    registered: String,
    /// Whether main.yaml `registration` lets visitors sign up (a link to `/register`).
    sign_up: bool,
}

/// Where to go after login: a path on this site only (`/w/…`), never `//host` or a URL, so the
/// login page cannot be used to send people elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && path.len() <= 512
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// A login page with a fresh pre-session token.
fn page(state: &AppState, status: StatusCode, error: &str, username: &str, next: &str) -> Response {
    page_for(state, status, error, username, next, "")
}

fn page_for(
    state: &AppState,
    status: StatusCode,
    error: &str,
    username: &str,
    next: &str,
    registered: &str,
) -> Response {
    let token = random_token();
    let config = state.config.current();
    let https = https(state, &config);
    let sign_up = config.main.registration.mode != berth_config::RegistrationMode::Off;
    drop(config);
    let response = (
        status,
        render(&LoginPage {
            token: token.clone(),
            error: error.to_owned(),
            username: username.to_owned(),
            next: next.to_owned(),
            registered: registered.to_owned(),
            sign_up,
        }),
    )
        .into_response();
    with_form_token(response, &token, https)
}

/// `response` with the pre-session token `token` in its short-lived cookie: what the login
/// and sign-up forms repeat in `_csrf` (double submit).
pub(super) fn with_form_token(mut response: Response, token: &str, https: bool) -> Response {
    if let Ok(cookie) = HeaderValue::from_str(&set_cookie(
        LOGIN_COOKIE,
        token,
        https,
        Some(LOGIN_FORM_TTL.as_secs()),
    )) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Whether the form's `_csrf` repeats the pre-session cookie the form page set.
pub(super) fn form_token_matches(headers: &HeaderMap, form: &Form, https: bool) -> bool {
    let cookie = session::read_cookie(headers, &session::cookie_name(LOGIN_COOKIE, https));
    let sent = form.get("_csrf").unwrap_or_default();
    cookie.is_some_and(|c| !c.is_empty() && same_secret(c, sent))
}

/// `GET /login[?next=/path]`.
pub(crate) async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if current_session(&state, &headers).is_some() {
        return Redirect::to(&next).into_response();
    }
    // Only a valid username is echoed back.
    let registered = query
        .registered
        .as_deref()
        .and_then(|name| berth_types::Username::new(name).ok())
        .map(|name| name.to_string())
        .unwrap_or_default();
    page_for(&state, StatusCode::OK, "", &registered, &next, &registered)
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
    /// Set by `/register` after a sign-up.
    registered: Option<String>,
}

/// `POST /login`.
pub(crate) async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let config = state.config.current();
    let https = https(&state, &config);
    if !form_token_matches(&headers, &form, https) {
        return error_page(
            StatusCode::FORBIDDEN,
            "The login form expired or did not come from this site. Open /login again.",
        );
    }
    // The route's guard has spent this address's login budget (`login_rate_per_minute`).
    let next = safe_next(form.get("next"));
    drop(config);
    let username = form.text("username");
    let request = LoginRequest {
        username: username.clone(),
        password: Secret::new(form.get("password").unwrap_or_default().to_owned()),
    };
    if let Err(error) = crate::auth::login::login(
        State(state.clone()),
        crate::auth::ClientIp(ip),
        Json(request),
    )
    .await
    {
        return page(&state, error.status, &error.message, &username, &next);
    }
    // The account as it is now (the login may just have upgraded its hash).
    let config = state.config.current();
    let (uid, hash) = if config.main.admin.username.as_str() == username {
        (None, config.main.admin.password_hash.clone())
    } else {
        match config.user(&username) {
            Some(user) => (Some(user.id), user.password_hash.clone()),
            None => (None, None),
        }
    };
    let Some(hash) = hash else {
        return page(
            &state,
            StatusCode::UNAUTHORIZED,
            "wrong username or password",
            "",
            &next,
        );
    };
    let old = session::read_cookie(&headers, &session::cookie_name(SESSION_COOKIE, https));
    let id = state
        .shared
        .sessions
        .create(&username, uid, password_fingerprint(hash.as_str()), old);
    let mut response = Redirect::to(&next).into_response();
    for cookie in [
        set_cookie(SESSION_COOKIE, &id, https, None),
        set_cookie(LOGIN_COOKIE, "", https, Some(0)),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `POST /logout`: ends the session (CSRF-checked) and clears the cookie.
pub(crate) async fn logout(
    State(state): State<AppState>,
    CsrfForm(viewer, _form): CsrfForm,
) -> Response {
    state
        .shared
        .sessions
        .end(&state.web_sessions, &viewer.session_id)
        .await;
    let https = https(&state, &state.config.current());
    let mut response = Redirect::to("/login").into_response();
    if let Ok(value) = HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", https, Some(0))) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/w/123")), "/w/123");
        for hostile in [
            "//evil.example/x",
            "https://evil.example",
            "/\\evil.example",
            "w/1",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
