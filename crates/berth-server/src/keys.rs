//! `/api/v1/users/{name}/keys`: the SSH public keys a user logs in to the SSH gateway with
//! (users.yaml `ssh_keys`), read and changed by the user themself or an admin. Anyone else
//! is told there is no such user, as if it did not exist.

use axum::extract::State;
use axum::http::StatusCode;
use berth_config::SshKey;
use berth_core::{AuditAction, AuditEvent};
use berth_types::Username;
use berth_types::api::{NewSshKey, SshKeyList, SshKeyView};
use serde_json::json;

use crate::auth::{AuthUser, Caller, ClientIp};
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, Path, Query};
use crate::state::AppState;
use crate::users::username_param;

pub(crate) fn key_view(key: &SshKey) -> SshKeyView {
    SshKeyView {
        fingerprint: key.fingerprint().to_owned(),
        algorithm: key.algorithm(),
        comment: key.comment(),
        key: key.as_str().to_owned(),
    }
}

/// The user named in the path, if `caller` may manage their keys: themself, or an admin.
fn owner(state: &AppState, caller: &Caller, name: &str) -> Result<Username, ApiError> {
    let username = username_param(name)?;
    let exists = state.config.current().user(username.as_str()).is_some();
    if exists && (caller.is_admin() || caller.username == username) {
        Ok(username)
    } else if !exists && caller.username == username {
        // Logged in, yet not in users.yaml: the main.yaml admin.
        Err(ApiError::conflict(
            "no_ssh_keys",
            "the main.yaml admin has no users.yaml entry, so no SSH keys: give a users.yaml \
             account (an admin one if need be) the keys to log in over ssh",
        ))
    } else {
        // Not the name asked for: an answer that echoes it tells nothing, but the probing
        // rule is that refusals echo nothing.
        Err(ApiError::not_found("there is no such user"))
    }
}

/// `GET /api/v1/users/{name}/keys`.
pub(crate) async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(name): Path<String>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<SshKeyList>, ApiError> {
    let username = owner(&state, &caller, &name)?;
    let config = state.config.current();
    let keys = config
        .user(username.as_str())
        .map(|user| user.ssh_keys.iter().map(key_view).collect())
        .unwrap_or_default();
    Ok(Json(SshKeyList { keys }))
}

/// `POST /api/v1/users/{name}/keys` `{key}`: adds a public key in OpenSSH format.
pub(crate) async fn add(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
    Json(body): Json<NewSshKey>,
) -> Result<(StatusCode, Json<SshKeyView>), ApiError> {
    let username = owner(&state, &caller, &name)?;
    let key = SshKey::parse(&body.key)
        .map_err(|e| ApiError::invalid(format!("not an SSH public key: {e}")))?;
    let target = username.to_string();
    let added = state
        .change_config(move |store| store.add_ssh_key(&target, key))
        .await?;
    AuditEvent::new(&caller.username, AuditAction::SshKeyAdd, username.as_str())
        .from_ip(ip)
        .details(json!({
            "fingerprint": added.fingerprint(),
            "algorithm": added.algorithm(),
            "comment": added.comment(),
        }))
        .record_to(&state.audit)
        .await;
    Ok((StatusCode::CREATED, Json(key_view(&added))))
}

/// `DELETE /api/v1/users/{name}/keys/{fingerprint}`: the gateway refuses the key from the
/// next login on and closes the sessions opened with it.
pub(crate) async fn remove(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Path((name, fingerprint)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let username = owner(&state, &caller, &name)?;
    let target = username.to_string();
    let removed = state
        .change_config(move |store| store.remove_ssh_key(&target, &fingerprint))
        .await
        .map_err(|e| {
            if e.status() == StatusCode::NOT_FOUND {
                // Without the fingerprint asked for: refusals echo nothing.
                ApiError::not_found("there is no SSH key with that fingerprint")
            } else {
                e
            }
        })?;
    AuditEvent::new(
        &caller.username,
        AuditAction::SshKeyRemove,
        username.as_str(),
    )
    .from_ip(ip)
    .details(json!({
        "fingerprint": removed.fingerprint(),
        "algorithm": removed.algorithm(),
        "comment": removed.comment(),
    }))
    .record_to(&state.audit)
    .await;
    Ok(StatusCode::NO_CONTENT)
}
