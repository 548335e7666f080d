//! `/admin/users`: list and search, add, edit, delete, reset a client token (shown once).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use berth_types::api::{NewTokenRequest, Secret, UserBody, UserView};
use berth_types::{Role, Username};
use serde::Deserialize;

use super::{AdminViewer, CsrfForm, Form, Nav, api_error_page, error_page, field_errors, render};
use crate::auth::ClientIp;
use crate::error::ApiError;
use crate::extract::{Json, OptionalJson, PagePath, Path, Query};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Search {
    #[serde(default)]
    q: String,
}

struct UserRow {
    username: String,
    id: String,
    role: String,
    templates: String,
    clients: usize,
    disabled: bool,
    access_locked: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Nav,
    q: String,
    users: Vec<UserRow>,
}

/// A template checkbox.
struct Choice {
    name: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "user_edit.html")]
struct EditPage {
    nav: Nav,
    /// `None` when adding.
    editing: Option<String>,
    username: String,
    admin_role: bool,
    templates: Vec<Choice>,
    access_locked: bool,
    disabled: bool,
    metadata: String,
    /// The fleet machines the user may see, as typed: ids and `tag:NAME`, space separated.
    machines: String,
    error: String,
    errors: Vec<(String, String)>,
}

impl EditPage {
    /// The error about `field`, for display beside it.
    fn error_for(&self, field: &str) -> String {
        self.errors
            .iter()
            .filter(|(f, _)| f == field || f.starts_with(&format!("{field}[")))
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[derive(Template)]
#[template(path = "token.html")]
struct TokenPage {
    nav: Nav,
    username: String,
    client_id: String,
    token: String,
}

fn row(u: &UserView) -> UserRow {
    UserRow {
        username: u.username.to_string(),
        id: u.id.to_string(),
        role: if u.role == Role::Admin {
            "admin"
        } else {
            "user"
        }
        .to_owned(),
        templates: u.templates.join(", "),
        clients: u.clients.len(),
        disabled: u.disabled,
        access_locked: u.access_locked,
    }
}

/// `GET /admin/users?q=`.
pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: AdminViewer,
    Query(search): Query<Search>,
) -> Response {
    let config = state.config.current();
    let q = search.q.trim().to_lowercase();
    let users = config
        .users
        .iter()
        .map(crate::users::user_view)
        .filter(|u| {
            q.is_empty()
                || u.username.as_str().contains(&q)
                || u.id.to_string().contains(&q)
                || u.templates.iter().any(|t| t.contains(&q))
        })
        .map(|u| row(&u))
        .collect();
    render(&UsersPage {
        nav: viewer.0.nav(&state),
        q: search.q,
        users,
    })
}

fn edit_page(
    state: &AppState,
    viewer: &AdminViewer,
    editing: Option<String>,
    body: &UserBody,
    error: Option<&ApiError>,
) -> Response {
    let config = state.config.current();
    let page = EditPage {
        nav: viewer.0.nav(state),
        editing,
        username: body.username.to_string(),
        admin_role: body.role == Role::Admin,
        templates: config
            .templates
            .iter()
            .map(|t| Choice {
                name: t.name.clone(),
                checked: body.templates.contains(&t.name),
            })
            .collect(),
        access_locked: body.access_locked,
        disabled: body.disabled,
        metadata: body
            .metadata
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect(),
        machines: body
            .machines
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        error: error.map(|e| e.message.clone()).unwrap_or_default(),
        errors: error.map(field_errors).unwrap_or_default(),
    };
    let status = error.map_or(axum::http::StatusCode::OK, |e| e.status);
    (status, render(&page)).into_response()
}

/// `GET /admin/users/new`.
pub(crate) async fn new(State(state): State<AppState>, viewer: AdminViewer) -> Response {
    let body = UserBody {
        username: Username::new("new-user").unwrap_or_else(|_| viewer.0.caller.username.clone()),
        role: Role::User,
        password: None,
        templates: Vec::new(),
        access_locked: false,
        disabled: false,
        metadata: BTreeMap::new(),
        machines: Vec::new(),
    };
    edit_page(&state, &viewer, None, &body, None)
}

/// `GET /admin/users/{name}`.
pub(crate) async fn edit(
    State(state): State<AppState>,
    viewer: AdminViewer,
    PagePath(name): PagePath<String>,
) -> Response {
    let config = state.config.current();
    let Some(user) = config.user(&name) else {
        return error_page(axum::http::StatusCode::NOT_FOUND, "There is no such user.");
    };
    let body = UserBody {
        username: user.username.clone(),
        role: user.role,
        password: None,
        templates: user.templates.clone(),
        access_locked: user.access_locked,
        disabled: user.disabled,
        metadata: user.metadata.clone(),
        machines: user.machines.clone(),
    };
    edit_page(&state, &viewer, Some(name), &body, None)
}

/// The form as a request body; an unreadable username is reported beside its field.
#[allow(clippy::result_large_err)] // the error carries the form to show again
fn body(form: &Form) -> Result<UserBody, (UserBody, ApiError)> {
    let password = form.get("password").unwrap_or_default();
    let mut metadata = BTreeMap::new();
    let mut bad_metadata = None;
    for line in form
        .text("metadata")
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        match line.split_once('=') {
            Some((k, v)) => {
                metadata.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            None => bad_metadata = Some(line.to_owned()),
        }
    }
    let mut machines = Vec::new();
    let mut bad_machine = None;
    for word in form
        .text("machines")
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
    {
        match word.parse::<berth_types::fleet::MachineSelector>() {
            Ok(selector) => machines.push(selector),
            Err(e) => bad_machine = Some(e.to_string()),
        }
    }
    let typed = form.text("username");
    let username = Username::new(&typed);
    let body = UserBody {
        username: username
            .clone()
            .unwrap_or_else(|_| Username::new("invalid").unwrap_or_else(|_| unreachable_name())),
        role: if form.get("role") == Some("admin") {
            Role::Admin
        } else {
            Role::User
        },
        password: (!password.is_empty()).then(|| Secret::new(password.to_owned())),
        templates: form.all("templates"),
        access_locked: form.checked("access_locked"),
        disabled: form.checked("disabled"),
        metadata,
        machines,
    };
    let field = |field: &str, message: String| {
        ApiError::invalid(format!("{field}: {message}"))
            .with_details(serde_json::json!({ "errors": [{ "field": field, "message": message }] }))
    };
    if let Err(e) = username {
        return Err((body, field("username", e.to_string())));
    }
    if let Some(message) = bad_machine {
        return Err((body, field("machines", message)));
    }
    if let Some(line) = bad_metadata {
        return Err((
            body,
            field("metadata", format!("`{line}` is not of the form key=value")),
        ));
    }
    Ok(body)
}

/// A name that always parses, for redisplaying a form whose username did not.
fn unreachable_name() -> Username {
    Username::new("user").unwrap_or_else(|_| unreachable!("`user` is a valid username"))
}

/// `POST /admin/users`: add.
pub(crate) async fn create(
    State(state): State<AppState>,
    ip: ClientIp,
    CsrfForm(viewer, form): CsrfForm<AdminViewer>,
) -> Response {
    let body = match body(&form) {
        Ok(body) => body,
        Err((body, error)) => return edit_page(&state, &viewer, None, &body, Some(&error)),
    };
    let shown = UserBody {
        password: None,
        ..body.clone()
    };
    match crate::users::create(State(state.clone()), viewer.0.admin(), ip, Json(body)).await {
        Ok(_) => Redirect::to("/admin/users").into_response(),
        Err(e) => edit_page(&state, &viewer, None, &shown, Some(&e)),
    }
}

/// `POST /admin/users/{name}`: edit. The templates of an `access_locked` user are kept as they
/// are whatever the form says.
pub(crate) async fn update(
    State(state): State<AppState>,
    ip: ClientIp,
    PagePath(name): PagePath<String>,
    CsrfForm(viewer, form): CsrfForm<AdminViewer>,
) -> Response {
    let mut body = match body(&form) {
        Ok(body) => body,
        Err((body, error)) => return edit_page(&state, &viewer, Some(name), &body, Some(&error)),
    };
    if let Some(user) = state.config.current().user(&name)
        && user.access_locked
    {
        body.templates = user.templates.clone();
        body.access_locked = true;
    }
    let shown = UserBody {
        password: None,
        ..body.clone()
    };
    match crate::users::update(
        State(state.clone()),
        viewer.0.admin(),
        ip,
        Path(name.clone()),
        Json(body),
    )
    .await
    {
        Ok(Json(user)) => Redirect::to(&format!("/admin/users/{}", user.username)).into_response(),
        Err(e) => edit_page(&state, &viewer, Some(name), &shown, Some(&e)),
    }
}

/// `POST /admin/users/{name}/delete`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    ip: ClientIp,
    PagePath(name): PagePath<String>,
    CsrfForm(viewer, _form): CsrfForm<AdminViewer>,
) -> Response {
    match crate::users::delete(
        State(state.clone()),
        viewer.0.admin(),
        ip,
        Path(name.clone()),
    )
    .await
    {
        Ok(_) => Redirect::to("/admin/users").into_response(),
        Err(e) => api_error_page(&e),
    }
}

/// `POST /admin/users/{name}/token`: replaces the user's client tokens with one new token,
/// shown on this page only.
pub(crate) async fn reset_token(
    State(state): State<AppState>,
    ip: ClientIp,
    PagePath(name): PagePath<String>,
    CsrfForm(viewer, form): CsrfForm<AdminViewer>,
) -> Response {
    let label = form.text("label");
    let request = NewTokenRequest {
        label: (!label.is_empty()).then_some(label),
    };
    match crate::auth::tokens::reset(
        State(state.clone()),
        viewer.0.admin(),
        ip,
        Path(name.clone()),
        OptionalJson(request),
    )
    .await
    {
        Ok((_, Json(issued))) => {
            let mut response = render(&TokenPage {
                nav: viewer.0.nav(&state),
                username: name,
                client_id: issued.client_id.to_string(),
                token: issued.token.expose().to_owned(),
            });
            response.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(e) => api_error_page(&e),
    }
}
