//! Client tokens: minted for oneself, reset by an admin, revoked by either. The new token is in
//! the answer only; users.yaml keeps its SHA-256.

use axum::extract::State;
use axum::http::StatusCode;
use berth_config::IssuedToken;
use berth_types::ClientId;
use berth_types::api::{NewTokenRequest, Secret, TokenResponse};
use serde_json::json;

use super::{AdminUser, AuthUser, Caller, ClientIp};
use crate::error::ApiError;
use crate::extract::{Json, OptionalJson, Path};
use crate::state::AppState;
use crate::users::username_param;
use berth_core::{AuditAction, AuditEvent};

const MAX_LABEL_CHARS: usize = 100;

fn check_label(label: Option<&str>) -> Result<(), ApiError> {
    let Some(label) = label else {
        return Ok(());
    };
    let chars = label.chars().count();
    if chars == 0 || chars > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "label: 1 to {MAX_LABEL_CHARS} characters, no control characters"
        ))
        .with_details(json!({ "errors": [{ "field": "label", "message": "bad label" }] })));
    }
    Ok(())
}

/// The main.yaml admin lives outside users.yaml and so has no client tokens.
fn check_has_tokens(state: &AppState, username: &str) -> Result<(), ApiError> {
    if state.config.current().main.admin.username.as_str() == username {
        return Err(ApiError::conflict(
            "no_client_tokens",
            "the admin of main.yaml has no client tokens; give the CLI a users.yaml user \
             (role: admin if needed)",
        ));
    }
    Ok(())
}

fn issued(token: IssuedToken) -> Json<TokenResponse> {
    Json(TokenResponse {
        client_id: token.client_id,
        token: Secret::new(token.token.expose()),
    })
}

/// `POST /api/v1/auth/tokens`: a new client token for the caller.
pub(crate) async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    OptionalJson(body): OptionalJson<NewTokenRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    check_label(body.label.as_deref())?;
    check_has_tokens(&state, caller.username.as_str())?;
    let username = caller.username.to_string();
    let label = body.label.clone();
    let token = state
        .change_config(move |store| store.issue_client_token(&username, label))
        .await
        .map_err(|e| e.seen_by(&caller))?;
    AuditEvent::new(
        &caller.username,
        AuditAction::TokenCreate,
        caller.username.as_str(),
    )
    .from_ip(ip)
    .details(json!({ "client_id": token.client_id, "label": body.label }))
    .record_to(&state.audit)
    .await;
    Ok((StatusCode::CREATED, issued(token)))
}

/// `DELETE /api/v1/auth/tokens/{client_id}`: the caller revokes one of their tokens.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ClientIp(ip): ClientIp,
    Path(client): Path<ClientId>,
) -> Result<StatusCode, ApiError> {
    // Without the id: another user's token and none answer alike.
    revoke_of(&state, &caller, caller.username.as_str(), client, ip)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::not_found("you have no such client token")
            } else {
                e
            }
        })
}

/// `POST /api/v1/users/{name}/token`: revokes every token of a user and issues one.
pub(crate) async fn reset(
    State(state): State<AppState>,
    AdminUser(caller): AdminUser,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
    OptionalJson(body): OptionalJson<NewTokenRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    let username = username_param(&name)?;
    check_label(body.label.as_deref())?;
    check_has_tokens(&state, username.as_str())?;
    let label = body.label.clone();
    let target = username.to_string();
    let token = state
        .change_config(move |store| store.reset_client_tokens(&target, label))
        .await?;
    AuditEvent::new(&caller.username, AuditAction::TokenReset, username.as_str())
        .from_ip(ip)
        .details(json!({ "client_id": token.client_id, "label": body.label }))
        .record_to(&state.audit)
        .await;
    Ok((StatusCode::CREATED, issued(token)))
}

/// `DELETE /api/v1/users/{name}/tokens/{client_id}`: an admin revokes one token of a user.
pub(crate) async fn revoke_for_user(
    State(state): State<AppState>,
    AdminUser(caller): AdminUser,
    ClientIp(ip): ClientIp,
    Path((name, client)): Path<(String, ClientId)>,
) -> Result<StatusCode, ApiError> {
    let username = username_param(&name)?;
    revoke_of(&state, &caller, username.as_str(), client, ip).await
}

async fn revoke_of(
    state: &AppState,
    caller: &Caller,
    username: &str,
    client: ClientId,
    ip: std::net::IpAddr,
) -> Result<StatusCode, ApiError> {
    check_has_tokens(state, username)?;
    let target = username.to_owned();
    state
        .change_config(move |store| store.revoke_client_token(&target, client))
        .await
        .map_err(|e| e.seen_by(caller))?;
    AuditEvent::new(&caller.username, AuditAction::TokenRevoke, username)
        .from_ip(ip)
        .details(json!({ "client_id": client }))
        .record_to(&state.audit)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::check_label;

    #[test]
    fn labels_are_short_and_printable() {
        assert!(check_label(None).is_ok());
        assert!(check_label(Some("laptop")).is_ok());
        assert!(check_label(Some("Rechner von Zoë")).is_ok());
        assert!(check_label(Some("")).is_err());
        assert!(check_label(Some("a\nb")).is_err());
        assert!(check_label(Some(&"x".repeat(101))).is_err());
    }
}
