//! `/api/v1/templates` (admins): the entries of containers.yaml, read and written through the
//! configuration store, in the same shape as the YAML (JSON field names are the YAML keys).

use axum::extract::State;
use axum::http::StatusCode;
use berth_config::Template;
use berth_core::{WorkspaceFilter, WorkspaceState};
use berth_types::api::TemplateList;
use serde_json::{Value, json};

use crate::auth::{AdminUser, ClientIp};
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, Path, Query};
use crate::state::AppState;
use berth_core::{AuditAction, AuditEvent};

/// A `{name}` path parameter as a template name: 1 to 63 of `a-z 0-9 _ . -`, starting with a
/// letter or `_`. Anything else (`..`, slashes) is a 400.
fn name_param(name: &str) -> Result<String, ApiError> {
    let valid = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_path",
            "invalid template name in the path: 1 to 63 characters, a-z, 0-9, '_', '.', '-', \
             starting with a letter or '_'",
        ))
    }
}

/// A template for the audit log, with environment values hidden: they may hold credentials.
fn audited(template: &Template) -> Value {
    let mut value = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(env) = value.get_mut("env").and_then(Value::as_object_mut) {
        for v in env.values_mut() {
            *v = Value::String("<hidden>".into());
        }
    }
    value
}

/// `GET /api/v1/templates`.
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    Query(NoQuery {}): Query<NoQuery>,
) -> Json<TemplateList<Template>> {
    Json(TemplateList {
        templates: state.config.current().templates.clone(),
    })
}

/// `GET /api/v1/templates/{name}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    Path(name): Path<String>,
) -> Result<Json<Template>, ApiError> {
    let name = name_param(&name)?;
    state
        .config
        .current()
        .template(&name)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("there is no template {name:?}")))
}

/// `POST /api/v1/templates`.
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminUser(caller): AdminUser,
    ClientIp(ip): ClientIp,
    Json(template): Json<Template>,
) -> Result<(StatusCode, Json<Template>), ApiError> {
    let name = template.name.clone();
    let saved = template.clone();
    state
        .change_config(move |store| store.add_template(saved))
        .await?;
    let template = state
        .config
        .current()
        .template(&name)
        .cloned()
        .unwrap_or(template);
    AuditEvent::new(&caller.username, AuditAction::TemplateCreate, name)
        .from_ip(ip)
        .details(json!({ "after": audited(&template) }))
        .record_to(&state.audit)
        .await;
    Ok((StatusCode::CREATED, Json(template)))
}

/// `PUT /api/v1/templates/{name}`: replaces the template; a different `name` renames it
/// (refused while users may start it).
pub(crate) async fn update(
    State(state): State<AppState>,
    AdminUser(caller): AdminUser,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
    Json(template): Json<Template>,
) -> Result<Json<Template>, ApiError> {
    let name = name_param(&name)?;
    let before = state.config.current().template(&name).cloned();
    let target = name.clone();
    let after = state
        .change_config(move |store| store.update_template(&target, |t| *t = template))
        .await?;
    AuditEvent::new(&caller.username, AuditAction::TemplateUpdate, name)
        .from_ip(ip)
        .details(json!({ "before": before.as_ref().map(audited), "after": audited(&after) }))
        .record_to(&state.audit)
        .await;
    Ok(Json(after))
}

/// `DELETE /api/v1/templates/{name}`: refused while workspaces use the template (live ones, and
/// stopped persistent ones, which keep a container to start again) or users may start it.
pub(crate) async fn delete(
    State(state): State<AppState>,
    AdminUser(caller): AdminUser,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = name_param(&name)?;
    let in_use: Vec<String> = state
        .workspaces
        .list(&WorkspaceFilter::default())
        .await
        .map_err(|e| ApiError::workspace(e, true))?
        .into_iter()
        .filter(|w| {
            w.template == name
                && (WorkspaceState::LIVE.contains(&w.state)
                    || (w.persistent && w.state == WorkspaceState::Stopped))
        })
        .map(|w| w.id.to_string())
        .collect();
    if !in_use.is_empty() {
        return Err(ApiError::conflict(
            "in_use",
            format!(
                "template {name:?} is used by {} workspace(s); stop and delete them first",
                in_use.len()
            ),
        )
        .with_details(json!({ "workspaces": in_use })));
    }
    let target = name.clone();
    let removed = state
        .change_config(move |store| store.remove_template(&target))
        .await?;
    AuditEvent::new(&caller.username, AuditAction::TemplateDelete, name)
        .from_ip(ip)
        .details(json!({ "before": audited(&removed) }))
        .record_to(&state.audit)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_names_in_paths() {
        for good in ["python", "_x", "a.b-c_1"] {
            assert!(name_param(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "..",
            "../etc",
            "a/b",
            "Python",
            "1abc",
            &"x".repeat(64),
            "a\0b",
        ] {
            assert!(name_param(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn audit_entries_hide_environment_values() {
        let mut t = Template::new("t", "img");
        t.env.insert("TOKEN".into(), "s3cret".into());
        let value = audited(&t);
        assert_eq!(value["env"]["TOKEN"], "<hidden>");
        assert!(!value.to_string().contains("s3cret"));
    }
}
