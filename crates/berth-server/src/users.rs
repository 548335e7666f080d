//! `/api/v1/users` (admins): the users of users.yaml, read and written through the
//! configuration store. Passwords arrive in clear and are stored as argon2id hashes; neither
//! hashes nor token hashes ever leave the server, in answers or in audit entries.

use axum::extract::State;
use axum::http::StatusCode;
use berth_config::{NewUser, User, hash_password};
use berth_core::AccountError;
use berth_types::Username;
use berth_types::api::{ClientTokenView, Secret, UserBody, UserList, UserView};
use serde_json::{Value, json};

use crate::auth::{AdminUser, ClientIp};
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, Path, Query};
use crate::state::AppState;
use berth_core::{AuditAction, AuditEvent};

/// A `{name}` path parameter as a username; anything else (`..`, slashes, capitals) is a 400.
pub(crate) fn username_param(name: &str) -> Result<Username, ApiError> {
    Username::new(name).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_path",
            format!("invalid username in the path: {e}"),
        )
    })
}

pub(crate) fn user_view(user: &User) -> UserView {
    UserView {
        username: user.username.clone(),
        id: user.id,
        role: user.role,
        has_password: user.password_hash.is_some(),
        templates: user.templates.clone(),
        access_locked: user.access_locked,
        disabled: user.disabled,
        clients: user
            .client_tokens
            .iter()
            .map(|t| ClientTokenView {
                id: t.id,
                created: t.created,
                label: t.label.clone(),
            })
            .collect(),
        metadata: user.metadata.clone(),
        machines: user.machines.clone(),
    }
}

/// A user for the audit log: the view, which has no secrets.
fn audited(user: &User) -> Value {
    serde_json::to_value(user_view(user)).unwrap_or(Value::Null)
}

/// Hashes a password from a request off the async threads.
async fn hash(password: Option<Secret>) -> Result<Option<berth_config::PasswordHash>, ApiError> {
    let Some(password) = password else {
        return Ok(None);
    };
    tokio::task::spawn_blocking(move || hash_password(password.expose()))
        .await
        .map_err(ApiError::internal)?
        .map(Some)
        .map_err(|e| ApiError::from(berth_config::StoreError::Password(e)))
}

fn check_metadata(body: &UserBody) -> Result<(), ApiError> {
    const MAX_ENTRIES: usize = 64;
    const MAX_LEN: usize = 1024;
    if body.metadata.len() > MAX_ENTRIES
        || body
            .metadata
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 128 || v.len() > MAX_LEN)
    {
        return Err(ApiError::invalid(format!(
            "metadata: at most {MAX_ENTRIES} entries, keys of 1 to 128 bytes, values of at most \
             {MAX_LEN} bytes"
        ))
        .with_details(json!({ "errors": [{ "field": "metadata", "message": "too large" }] })));
    }
    Ok(())
}

/// `GET /api/v1/users`.
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    Query(NoQuery {}): Query<NoQuery>,
) -> Json<UserList> {
    let config = state.config.current();
    Json(UserList {
        users: config.users.iter().map(user_view).collect(),
    })
}

/// `GET /api/v1/users/{name}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    Path(name): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let username = username_param(&name)?;
    let config = state.config.current();
    config
        .user(username.as_str())
        .map(|u| Json(user_view(u)))
        .ok_or_else(|| ApiError::not_found(format!("there is no user {username:?}")))
}

/// `POST /api/v1/users`.
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminUser(caller): AdminUser,
    ClientIp(ip): ClientIp,
    Json(body): Json<UserBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    check_metadata(&body)?;
    let password_hash = hash(body.password).await?;
    let new = NewUser {
        username: body.username.clone(),
        role: body.role,
        password_hash,
        templates: body.templates,
        access_locked: body.access_locked,
        metadata: body.metadata,
    };
    let disabled = body.disabled;
    let machines = body.machines;
    let user = state
        .change_config(move |store| {
            let user = store.add_user(new)?;
            if disabled || !machines.is_empty() {
                return store.update_user(user.username.as_str(), |u| {
                    u.disabled = disabled;
                    u.machines = machines;
                });
            }
            Ok(user)
        })
        .await?;
    AuditEvent::new(
        &caller.username,
        AuditAction::UserCreate,
        user.username.as_str(),
    )
    .from_ip(ip)
    .details(json!({ "after": audited(&user) }))
    .record_to(&state.audit)
    .await;
    Ok((StatusCode::CREATED, Json(user_view(&user))))
}

/// `PUT /api/v1/users/{name}`: replaces the user (a new name renames it); the password is kept
/// when the body has none.
pub(crate) async fn update(
    State(state): State<AppState>,
    AdminUser(caller): AdminUser,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
    Json(body): Json<UserBody>,
) -> Result<Json<UserView>, ApiError> {
    let username = username_param(&name)?;
    check_metadata(&body)?;
    let password_changed = body.password.is_some();
    let password_hash = hash(body.password.clone()).await?;
    let before = state.config.current().user(username.as_str()).cloned();
    let renaming = body.username != username;
    if renaming {
        state
            .accounts
            .check_rename(&username)
            .await
            .map_err(account_error)?;
    }
    let target = username.to_string();
    let after = state
        .change_config(move |store| {
            store.update_user(&target, |user| {
                user.username = body.username;
                user.role = body.role;
                if let Some(hash) = password_hash {
                    user.password_hash = Some(hash);
                }
                user.templates = body.templates;
                user.access_locked = body.access_locked;
                user.disabled = body.disabled;
                user.metadata = body.metadata;
                user.machines = body.machines;
            })
        })
        .await?;
    let moved = if renaming {
        state.accounts.renamed(&username, &after.username).await
    } else {
        serde_json::Map::new()
    };
    if after.disabled {
        state
            .accounts
            .account_closed(&username, "Your account was disabled.");
        // Their clusters' kubeconfigs are cluster-admin on a privileged container: they end
        // with the account, not with their TTL.
        if let Some(clusters) = &state.clusters {
            match clusters
                .delete_owned(&after.username, "its owner's account was disabled")
                .await
            {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(user = %after.username, deleted, "deleted the clusters of a disabled account")
                }
                Err(err) => {
                    tracing::error!(user = %after.username, error = %err, "cannot delete the clusters of a disabled account")
                }
            }
        }
    } else if after.username != username || before.as_ref().is_some_and(|b| b.role != after.role) {
        // Renamed, or made an admin or no longer one: attach again as who they are now.
        state.accounts.account_changed(&username);
    }
    AuditEvent::new(&caller.username, AuditAction::UserUpdate, username.as_str())
        .from_ip(ip)
        .details(json!({
            "before": before.as_ref().map(audited),
            "after": audited(&after),
            "password_changed": password_changed,
            "moved": moved,
        }))
        .record_to(&state.audit)
        .await;
    Ok(Json(user_view(&after)))
}

/// `DELETE /api/v1/users/{name}`: removes the user and their users.d file, and everything
/// they have: their workspaces, named volumes and the recordings of their workspaces are
/// deleted (a name given to someone new must find nothing of the old account), their
/// memberships end and their open terminals close. If a workspace cannot be deleted the user
/// stays, so the admin can try again. The audit log stays; to keep recordings, disable the
/// account instead.
pub(crate) async fn delete(
    State(state): State<AppState>,
    AdminUser(caller): AdminUser,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let username = username_param(&name)?;
    if state.config.current().user(username.as_str()).is_none() {
        return Err(ApiError::not_found(format!("no user {username}")));
    }
    let removal = state
        .accounts
        .remove(
            &username,
            &format!("the account was deleted by {}", caller.username),
        )
        .await
        .map_err(account_error)?;
    let target = username.to_string();
    let removed = state
        .change_config(move |store| store.remove_user(&target))
        .await?;
    state
        .shared
        .sessions
        .end_user(&state.web_sessions, username.as_str())
        .await;
    state
        .accounts
        .account_closed(&username, "Your account was deleted.");
    AuditEvent::new(&caller.username, AuditAction::UserDelete, username.as_str())
        .from_ip(ip)
        .details({
            let mut details = removal;
            details.insert("before".into(), audited(&removed));
            details.into()
        })
        .record_to(&state.audit)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// An account change refused or failed, as the API answers it.
fn account_error(err: AccountError) -> ApiError {
    match err {
        AccountError::InUse(message) => ApiError::conflict("in_use", message),
        AccountError::Failed {
            workspace: Some(err),
            ..
        } => ApiError::workspace(err, true),
        other => ApiError::internal(other),
    }
}
