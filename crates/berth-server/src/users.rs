//! `/api/v1/users` (admins): the users of users.yaml, read and written through the
//! configuration store. Passwords arrive in clear and are stored as argon2id hashes; neither
//! hashes nor token hashes ever leave the server, in answers or in audit entries.

use axum::extract::State;
use axum::http::StatusCode;
use berth_config::{NewUser, User, hash_password};
use berth_core::bridge::{Revocation, close};
use berth_store::WorkspaceFilter;
use berth_types::Username;
use berth_types::api::{ClientTokenView, Secret, UserBody, UserList, UserView};
use serde_json::{Value, json};

use crate::audit::Audit;
use crate::auth::{AdminUser, ClientIp};
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, Path, Query};
use crate::state::AppState;

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
    let user = state
        .change_config(move |store| {
            let user = store.add_user(new)?;
            if disabled {
                return store.update_user(user.username.as_str(), |u| u.disabled = true);
            }
            Ok(user)
        })
        .await?;
    Audit::new(
        caller.username.as_str(),
        "user.create",
        user.username.as_str(),
        ip,
    )
    .details(json!({ "after": audited(&user) }))
    .record(state.store.as_ref())
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
        // Workspaces, their containers and volumes are named after their owner.
        let owned = state
            .workspaces
            .list(&WorkspaceFilter {
                owner: Some(username.clone()),
                ..WorkspaceFilter::default()
            })
            .await
            .map_err(|e| ApiError::workspace(e, true))?;
        if !owned.is_empty() {
            return Err(ApiError::conflict(
                "in_use",
                format!(
                    "{username} owns {} workspace(s): delete them before renaming the account",
                    owned.len()
                ),
            ));
        }
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
            })
        })
        .await?;
    if renaming && let Err(err) = state.store.rename_member(&username, &after.username).await {
        tracing::error!(error = %err, from = %username, to = %after.username, "cannot move the memberships of a renamed account");
    }
    if renaming
        && let Err(err) = state
            .store
            .rename_recordings(&username, &after.username)
            .await
    {
        tracing::error!(error = %err, from = %username, to = %after.username, "cannot move the recordings of a renamed account");
    }
    if after.disabled {
        end_sessions(
            &state,
            &username,
            close::UNAUTHENTICATED,
            "Your account was disabled.",
        );
    } else if after.username != username || before.as_ref().is_some_and(|b| b.role != after.role) {
        // Renamed, or made an admin or no longer one: attach again as who they are now.
        end_sessions(
            &state,
            &username,
            close::ROLE_CHANGED,
            "Your account changed; reconnecting.",
        );
    }
    Audit::new(
        caller.username.as_str(),
        "user.update",
        username.as_str(),
        ip,
    )
    .details(json!({
        "before": before.as_ref().map(audited),
        "after": audited(&after),
        "password_changed": password_changed,
    }))
    .record(state.store.as_ref())
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
        .workspaces
        .remove_owner(
            &username,
            &format!("the account was deleted by {}", caller.username),
        )
        .await
        .map_err(|e| ApiError::workspace(e, true))?;
    let recordings = state
        .terminals
        .recordings()
        .remove_owner(&username)
        .await
        .map_err(ApiError::internal)?;
    let target = username.to_string();
    let removed = state
        .change_config(move |store| store.remove_user(&target))
        .await?;
    state
        .shared
        .sessions
        .end_user(state.store.as_ref(), username.as_str())
        .await;
    end_sessions(
        &state,
        &username,
        close::UNAUTHENTICATED,
        "Your account was deleted.",
    );
    Audit::new(
        caller.username.as_str(),
        "user.delete",
        username.as_str(),
        ip,
    )
    .details(json!({
        "before": audited(&removed),
        "workspaces_deleted": removal.workspaces,
        "volumes_removed": removal.volumes,
        "memberships_ended": removal.memberships,
        "recordings_deleted": recordings.recordings.len(),
    }))
    .record(state.store.as_ref())
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every open terminal of `username` (in every workspace) with `message` and `code`: an
/// account change takes effect on sessions already attached, not only on the next login.
fn end_sessions(state: &AppState, username: &Username, code: u16, message: &str) {
    let revocation = Revocation {
        code,
        message: message.to_owned(),
    };
    let ended = state.terminals.revoke(None, username, &revocation);
    if ended > 0 {
        tracing::info!(user = %username, ended, "ended the open terminals of a changed account");
    }
}
