//! `/register`: self-service sign-up (main.yaml `registration`), the page of
//! `POST /api/v1/auth/register`. Protected against CSRF like the login form (a pre-session
//! token in a short-lived cookie that the form repeats); a new account goes to the login page.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use berth_config::RegistrationMode;
use berth_types::Username;
use berth_types::api::{RegisterRequest, Secret};

use super::login::{form_token_matches, with_form_token};
use super::{Form, current_session, error_page, render};
use crate::auth::session::{LOGIN_COOKIE, random_token, set_cookie};
use crate::auth::{ClientIp, https};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    token: String,
    error: String,
    username: String,
    invite: String,
    /// Whether the form asks for an invite code.
    needs_invite: bool,
}

fn page(
    state: &AppState,
    status: StatusCode,
    error: &str,
    username: &str,
    invite: &str,
) -> Response {
    let config = state.config.current();
    let mode = config.main.registration.mode;
    let https = https(state, &config);
    drop(config);
    if mode == RegistrationMode::Off {
        return error_page(
            StatusCode::FORBIDDEN,
            "Sign-up is off on this server: ask an admin for an account.",
        );
    }
    let token = random_token();
    let response = (
        status,
        render(&RegisterPage {
            token: token.clone(),
            error: error.to_owned(),
            username: username.to_owned(),
            invite: invite.to_owned(),
            needs_invite: mode == RegistrationMode::Invite,
        }),
    )
        .into_response();
    with_form_token(response, &token, https)
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct InviteQuery {
    invite: Option<String>,
}

/// `GET /register[?invite=CODE]`.
pub(crate) async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<InviteQuery>,
) -> Response {
    if current_session(&state, &headers).is_some() {
        return Redirect::to("/").into_response();
    }
    let invite = query
        .invite
        .filter(|code| code.len() <= 256 && !code.chars().any(char::is_control))
        .unwrap_or_default();
    page(&state, StatusCode::OK, "", "", &invite)
}

/// `POST /register`.
pub(crate) async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let https = https(&state, &state.config.current());
    if !form_token_matches(&headers, &form, https) {
        return error_page(
            StatusCode::FORBIDDEN,
            "The sign-up form expired or did not come from this site. Open /register again.",
        );
    }
    let username = form.text("username");
    let invite = form.text("invite");
    let password = form.get("password").unwrap_or_default().to_owned();
    if form.get("password_again").unwrap_or_default() != password {
        return page(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            "the two passwords differ",
            &username,
            &invite,
        );
    }
    let name = match Username::new(username.clone()) {
        Ok(name) => name,
        Err(err) => {
            return page(
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                &err.to_string(),
                &username,
                &invite,
            );
        }
    };
    let request = RegisterRequest {
        username: name,
        password: Secret::new(password),
        invite: (!invite.is_empty()).then(|| Secret::new(invite.clone())),
    };
    match crate::registration::register_account(&state, ip, request).await {
        Ok(registered) => {
            let mut response =
                Redirect::to(&format!("/login?registered={}", registered.username)).into_response();
            if let Ok(value) = HeaderValue::from_str(&set_cookie(LOGIN_COOKIE, "", https, Some(0)))
            {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(error) => page(&state, error.status, &error.message, &username, &invite),
    }
}
