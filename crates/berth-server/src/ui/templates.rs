//! `/admin/templates`: list, add, edit (every field: a group of form fields, plus JSON for the
//! structured ones), delete (refused while in use), and which users may start each.
//!
//! The form is turned into the JSON body of the API and handed to its handlers, so a field
//! the configuration refuses comes back with its path and is shown beside that field.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value, json};

use super::{AdminViewer, CsrfForm, Form, Nav, api_error_page, error_page, field_errors, render};
use crate::auth::ClientIp;
use crate::error::ApiError;
use crate::extract::{Json, PagePath, Path};
use crate::state::AppState;

/// Text fields, as (name, label, help).
const TEXT: &[(&str, &str, &str)] = &[
    ("name", "Name", "a-z, 0-9, _ . -; starts with a letter or _"),
    ("description", "Description", "one line"),
    ("image", "Image", "e.g. debian:12 or ghcr.io/org/img:1.2"),
    (
        "shell",
        "Shell",
        "an absolute path, then its arguments if any, separated by spaces (e.g. /bin/bash --norc); \
         if an argument has spaces, a JSON array of strings (e.g. [\"/bin/bash\", \"-c\", \"exec tmux new -A\"]); \
         default /bin/bash",
    ),
    ("workdir", "Working directory", "absolute path"),
    ("user", "User", "name, uid or uid:gid"),
    ("hostname", "Hostname", "one DNS label"),
    ("network", "Network", "none, host or a Docker network"),
    ("networks", "Other networks", "comma-separated"),
    ("cpus", "CPUs", "0.01 to 64"),
    ("memory", "Memory", "e.g. 512m, 2g"),
    ("pids_limit", "Process limit", "16 to 65536"),
    (
        "cap_add",
        "Added capabilities",
        "comma-separated, e.g. NET_RAW",
    ),
    ("idle_timeout", "Idle timeout", "e.g. 30m"),
    ("ttl", "TTL", "e.g. 8h"),
    ("pool", "Pool size", "0 to 50 pre-started containers"),
    ("max_per_user", "Max per user", "1 to 100"),
];
/// Boolean fields, as (name, label).
const FLAGS: &[(&str, &str)] = &[
    ("shared", "Shared (one tmux session for all attached)"),
    ("record", "Record terminal sessions"),
    ("read_only_root", "Read-only root filesystem"),
    ("allow_dangerous_caps", "Allow dangerous capabilities"),
];
/// Fields edited as JSON.
const STRUCTURED: &[&str] = &["command", "env", "volumes", "bind_mounts"];
const LISTS: &[&str] = &["networks", "cap_add"];
/// Fields whose words are separated by spaces (one word is a string, more a list), or, when a
/// word has spaces of its own, written as a JSON array of strings.
const WORDS: &[&str] = &["shell"];
const NUMBERS: &[&str] = &["cpus", "pids_limit", "pool", "max_per_user"];

struct Field {
    name: &'static str,
    label: &'static str,
    help: &'static str,
    value: String,
    error: String,
}

struct Flag {
    name: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "template_edit.html")]
struct EditPage {
    nav: Nav,
    editing: Option<String>,
    fields: Vec<Field>,
    flags: Vec<Flag>,
    persist: String,
    structured: String,
    structured_error: String,
    users: Vec<(String, bool)>,
    error: String,
}

struct Row {
    name: String,
    image: String,
    network: String,
    persist: String,
    shared: bool,
    users: String,
    description: String,
}

#[derive(Template)]
#[template(path = "templates.html")]
struct ListPage {
    nav: Nav,
    templates: Vec<Row>,
    error: String,
}

fn as_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| as_text(Some(i)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// A string, or a list's items separated by spaces; as a JSON array when that would not read
/// back as the same words (a word with whitespace, an empty one, a first one starting with
/// `[`). A string that starts with `[` is shown as it is: what was typed, shown again with
/// its error.
fn as_words(value: Option<&Value>) -> String {
    let words: Vec<String> = match value {
        Some(Value::Array(items)) => items.iter().map(|i| as_text(Some(i))).collect(),
        Some(Value::String(text)) if text.starts_with('[') => return text.clone(),
        Some(Value::String(text)) => vec![text.clone()],
        other => return as_text(other),
    };
    let splits_back = words
        .iter()
        .all(|w| !w.is_empty() && !w.contains(char::is_whitespace))
        && !words.first().is_some_and(|w| w.starts_with('['));
    if splits_back {
        words.join(" ")
    } else {
        Value::from(words).to_string()
    }
}

/// A [`WORDS`] field as typed: words separated by spaces, or a JSON array of strings (a
/// value starting with `[`); one word is a string, more a list.
fn from_words(text: &str) -> Result<Value, String> {
    let mut words: Vec<String> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
            .map_err(|e| format!("starts with `[` but is not a JSON array of strings: {e}"))?
    } else {
        text.split_whitespace().map(str::to_owned).collect()
    };
    Ok(if words.len() == 1 {
        Value::String(words.remove(0))
    } else {
        Value::from(words)
    })
}

/// The page over a template as JSON (`values`), with errors from `error`.
fn edit_page(
    state: &AppState,
    viewer: &AdminViewer,
    editing: Option<String>,
    values: &Map<String, Value>,
    error: Option<&ApiError>,
) -> Response {
    let errors = error.map(field_errors).unwrap_or_default();
    let error_for = |field: &str| {
        errors
            .iter()
            .filter(|(f, _)| {
                f == field
                    || f.starts_with(&format!("{field}."))
                    || f.starts_with(&format!("{field}["))
            })
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let structured: Map<String, Value> = STRUCTURED
        .iter()
        .filter_map(|k| values.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    let name = values
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let config = state.config.current();
    let page = EditPage {
        nav: viewer.0.nav(state),
        editing: editing.clone(),
        fields: TEXT
            .iter()
            .map(|(field, label, help)| Field {
                name: field,
                label,
                help,
                value: if WORDS.contains(field) {
                    as_words(values.get(*field))
                } else {
                    as_text(values.get(*field))
                },
                error: error_for(field),
            })
            .collect(),
        flags: FLAGS
            .iter()
            .map(|(field, label)| Flag {
                name: field,
                label,
                checked: values
                    .get(*field)
                    .and_then(Value::as_bool)
                    .unwrap_or(*field == "record"),
            })
            .collect(),
        persist: values
            .get("persist")
            .and_then(Value::as_str)
            .unwrap_or("optional")
            .to_owned(),
        structured: serde_json::to_string_pretty(&structured).unwrap_or_default(),
        structured_error: STRUCTURED
            .iter()
            .map(|f| error_for(f))
            .filter(|e| !e.is_empty())
            .chain(
                errors
                    .iter()
                    .filter(|(f, _)| f == "advanced")
                    .map(|(_, m)| m.clone()),
            )
            .collect::<Vec<_>>()
            .join("; "),
        users: config
            .users
            .iter()
            .map(|u| {
                (
                    u.username.to_string(),
                    editing.is_some() && u.templates.iter().any(|t| t == name),
                )
            })
            .collect(),
        error: error.map(|e| e.message.clone()).unwrap_or_default(),
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    (status, render(&page)).into_response()
}

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::invalid(format!("{field}: {message}"))
        .with_details(json!({ "errors": [{ "field": field, "message": message }] }))
}

/// The form as the template's JSON; `Err` carries what to show again and why.
fn values(form: &Form) -> Result<Map<String, Value>, (Map<String, Value>, ApiError)> {
    let mut map = Map::new();
    let mut first_error = None;
    for (field, _, _) in TEXT {
        let text = form.text(field);
        if text.is_empty() {
            continue;
        }
        let value = if WORDS.contains(field) {
            match from_words(&text) {
                Ok(value) => value,
                Err(message) => {
                    first_error.get_or_insert_with(|| invalid(field, message));
                    Value::String(text)
                }
            }
        } else if LISTS.contains(field) {
            Value::Array(
                text.split(',')
                    .map(|s| Value::String(s.trim().to_owned()))
                    .filter(|v| v.as_str() != Some(""))
                    .collect(),
            )
        } else if NUMBERS.contains(field) {
            match text.parse::<serde_json::Number>() {
                Ok(n) => Value::Number(n),
                Err(_) => {
                    first_error
                        .get_or_insert_with(|| invalid(field, format!("`{text}` is not a number")));
                    Value::String(text)
                }
            }
        } else {
            Value::String(text)
        };
        map.insert((*field).to_owned(), value);
    }
    for (field, _) in FLAGS {
        map.insert((*field).to_owned(), Value::Bool(form.checked(field)));
    }
    map.insert("persist".to_owned(), Value::String(form.text("persist")));
    let advanced = form.text("advanced");
    if !advanced.is_empty() {
        match serde_json::from_str::<Map<String, Value>>(&advanced) {
            Ok(extra) => {
                for (key, value) in extra {
                    if STRUCTURED.contains(&key.as_str()) {
                        map.insert(key, value);
                    } else {
                        first_error.get_or_insert_with(|| {
                            invalid(
                                "advanced",
                                format!("`{key}` is not edited here; use its field above"),
                            )
                        });
                    }
                }
            }
            Err(e) => {
                first_error
                    .get_or_insert_with(|| invalid("advanced", format!("not a JSON object: {e}")));
            }
        }
    }
    match first_error {
        Some(error) => Err((map, error)),
        None => Ok(map),
    }
}

fn template_of(map: &Map<String, Value>) -> Result<berth_config::Template, ApiError> {
    let bytes = serde_json::to_vec(map).map_err(ApiError::internal)?;
    crate::extract::parse::<berth_config::Template>(&bytes)
}

/// Gives `template` to exactly the `users` checked in the form, through the API's user update.
async fn assign(
    state: &AppState,
    viewer: &AdminViewer,
    ip: ClientIp,
    template: &str,
    checked: &[String],
) -> Result<(), ApiError> {
    let config = state.config.current();
    for user in &config.users {
        let has = user.templates.iter().any(|t| t == template);
        let wants = checked.iter().any(|c| c == user.username.as_str());
        if has == wants || user.access_locked {
            continue;
        }
        let mut body = berth_types::api::UserBody {
            username: user.username.clone(),
            role: user.role,
            password: None,
            templates: user.templates.clone(),
            access_locked: user.access_locked,
            disabled: user.disabled,
            metadata: user.metadata.clone(),
            machines: user.machines.clone(),
        };
        if wants {
            body.templates.push(template.to_owned());
        } else {
            body.templates.retain(|t| t != template);
        }
        crate::users::update(
            State(state.clone()),
            viewer.0.admin(),
            ip,
            Path(user.username.to_string()),
            Json(body),
        )
        .await?;
    }
    Ok(())
}

fn list_page(state: &AppState, viewer: &AdminViewer, error: Option<&ApiError>) -> Response {
    let config = state.config.current();
    let page = ListPage {
        nav: viewer.0.nav(state),
        templates: config
            .templates
            .iter()
            .map(|t| Row {
                name: t.name.clone(),
                image: t.image.clone(),
                network: t.network.clone(),
                persist: as_text(serde_json::to_value(t.persist).ok().as_ref()),
                shared: t.shared,
                users: config
                    .users
                    .iter()
                    .filter(|u| u.templates.contains(&t.name))
                    .map(|u| u.username.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                description: t.description.clone(),
            })
            .collect(),
        error: error.map(|e| e.message.clone()).unwrap_or_default(),
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    (status, render(&page)).into_response()
}

/// `GET /admin/templates`.
pub(crate) async fn list(State(state): State<AppState>, viewer: AdminViewer) -> Response {
    list_page(&state, &viewer, None)
}

/// `GET /admin/templates/new`.
pub(crate) async fn new(State(state): State<AppState>, viewer: AdminViewer) -> Response {
    let mut values = Map::new();
    values.insert("network".to_owned(), json!("none"));
    values.insert("record".to_owned(), json!(true));
    edit_page(&state, &viewer, None, &values, None)
}

/// `GET /admin/templates/{name}`.
pub(crate) async fn edit(
    State(state): State<AppState>,
    viewer: AdminViewer,
    PagePath(name): PagePath<String>,
) -> Response {
    let config = state.config.current();
    let Some(template) = config.template(&name) else {
        return error_page(StatusCode::NOT_FOUND, "There is no such template.");
    };
    let mut values = match serde_json::to_value(template) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    values
        .entry("record".to_owned())
        .or_insert(Value::Bool(template.record));
    edit_page(&state, &viewer, Some(name), &values, None)
}

/// `POST /admin/templates`: add.
pub(crate) async fn create(
    State(state): State<AppState>,
    ip: ClientIp,
    CsrfForm(viewer, form): CsrfForm<AdminViewer>,
) -> Response {
    save(state, viewer, ip, None, form).await
}

/// `POST /admin/templates/{name}`: edit.
pub(crate) async fn update(
    State(state): State<AppState>,
    ip: ClientIp,
    PagePath(name): PagePath<String>,
    CsrfForm(viewer, form): CsrfForm<AdminViewer>,
) -> Response {
    save(state, viewer, ip, Some(name), form).await
}

async fn save(
    state: AppState,
    viewer: AdminViewer,
    ip: ClientIp,
    editing: Option<String>,
    form: Form,
) -> Response {
    let values = match values(&form) {
        Ok(values) => values,
        Err((values, e)) => return edit_page(&state, &viewer, editing, &values, Some(&e)),
    };
    let template = match template_of(&values) {
        Ok(t) => t,
        Err(e) => return edit_page(&state, &viewer, editing, &values, Some(&e)),
    };
    let name = template.name.clone();
    let saved = match &editing {
        None => {
            crate::templates::create(State(state.clone()), viewer.0.admin(), ip, Json(template))
                .await
                .map(drop)
        }
        Some(old) => crate::templates::update(
            State(state.clone()),
            viewer.0.admin(),
            ip,
            Path(old.clone()),
            Json(template),
        )
        .await
        .map(drop),
    };
    if let Err(e) = saved {
        return edit_page(&state, &viewer, editing, &values, Some(&e));
    }
    if let Err(e) = assign(&state, &viewer, ip, &name, &form.all("users")).await {
        return api_error_page(&e);
    }
    Redirect::to("/admin/templates").into_response()
}

/// `POST /admin/templates/{name}/delete`: refused with the reason while in use.
pub(crate) async fn delete(
    State(state): State<AppState>,
    ip: ClientIp,
    PagePath(name): PagePath<String>,
    CsrfForm(viewer, _form): CsrfForm<AdminViewer>,
) -> Response {
    match crate::templates::delete(State(state.clone()), viewer.0.admin(), ip, Path(name)).await {
        Ok(_) => Redirect::to("/admin/templates").into_response(),
        Err(e) => list_page(&state, &viewer, Some(&e)),
    }
}
