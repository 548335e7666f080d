//! `POST /api/v1/auth/login`: a password for a JWT, with lockout, throttling and an audit
//! entry for every attempt.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use berth_config::{Config, PasswordHash, Verification, hash_password, verify_password};
use berth_core::AuditOutcome;
use berth_types::UserId;
use berth_types::api::{LoginRequest, LoginResponse, Secret};
use serde_json::json;
use time::OffsetDateTime;

use super::{Claims, ClientIp};
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;
use berth_core::{Actor, AuditAction, AuditEvent};

/// The longest username recorded for an attempt (the store keeps at most this).
const MAX_LOGIN_USERNAME: usize = 256;

/// An account that may log in with a password.
struct Account {
    username: String,
    /// `None` for the main.yaml admin.
    id: Option<UserId>,
    hash: PasswordHash,
}

impl Account {
    /// The main.yaml admin or an enabled users.yaml user with a password.
    fn find(config: &Config, username: &str) -> Option<Self> {
        if config.main.admin.username.as_str() == username {
            return Some(Self {
                username: username.to_owned(),
                id: None,
                hash: config.main.admin.password_hash.clone()?,
            });
        }
        let user = config.user(username).filter(|u| !u.disabled)?;
        Some(Self {
            username: username.to_owned(),
            id: Some(user.id),
            hash: user.password_hash.clone()?,
        })
    }
}

pub(crate) async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(body): Json<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let typed = body.username;
    // Control characters name no account, and some databases refuse to store them.
    if typed.is_empty() || typed.len() > MAX_LOGIN_USERNAME || typed.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "username: 1 to {MAX_LOGIN_USERNAME} bytes, no control characters"
        )));
    }
    let security = state.config.current().main.security.clone();
    let now = OffsetDateTime::now_utc();
    let denied = |reason: &str| {
        AuditEvent::new(Actor::Anonymous, AuditAction::Login, typed.clone())
            .from_ip(ip)
            .outcome(AuditOutcome::Denied)
            .details(json!({ "reason": reason }))
    };

    let window = time::Duration::minutes(i64::from(security.lockout_minutes));
    let failures = state.logins.recent_failures(&typed, now - window).await?;
    if failures >= security.lockout_attempts {
        state.shared.metrics.login_failed();
        denied("account locked").record_to(&state.audit).await;
        return Err(ApiError::too_many(
            "account_locked",
            format!(
                "{failures} failed logins in a row: the account is locked for {} minute(s) after \
                 the last one",
                security.lockout_minutes
            ),
            Duration::from_secs(u64::from(security.lockout_minutes) * 60),
        ));
    }

    let account = Account::find(&state.config.current(), &typed);
    let verification = verify(
        &state,
        account.as_ref().map(|a| a.hash.clone()),
        &body.password,
    )
    .await?;
    let account = match (account, verification) {
        (Some(account), Verification::Valid | Verification::ValidNeedsUpgrade) => account,
        _ => {
            state.logins.record(&typed, ip, false, now).await?;
            state.shared.metrics.login_failed();
            denied("wrong username or password")
                .record_to(&state.audit)
                .await;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "wrong username or password",
            ));
        }
    };
    state.logins.record(&typed, ip, true, now).await?;
    let mut hash = account.hash.clone();
    if verification == Verification::ValidNeedsUpgrade {
        match upgrade(&state, &account, &body.password).await {
            Ok(new) => hash = new,
            Err(err) => {
                tracing::warn!(user = %account.username, error = %err.message, "could not upgrade the password hash")
            }
        }
    }
    let claims = Claims::new(&account.username, account.id, hash.as_str(), now);
    let token = state.shared.jwt.sign(&claims);
    AuditEvent::new(
        Actor::named(&account.username),
        AuditAction::Login,
        account.username.clone(),
    )
    .from_ip(ip)
    .details(json!({ "hash_upgraded": verification == Verification::ValidNeedsUpgrade }))
    .record_to(&state.audit)
    .await;
    Ok(Json(LoginResponse {
        token: Secret::new(token),
        expires_at: OffsetDateTime::from_unix_timestamp(claims.exp).unwrap_or(now),
    }))
}

/// Checks `password` against `hash` off the async threads, a few at a time. Without an
/// account it checks against a dummy hash, so an unknown username takes as long as a wrong
/// password.
async fn verify(
    state: &AppState,
    hash: Option<PasswordHash>,
    password: &Secret,
) -> Result<Verification, ApiError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let _slot = state
        .shared
        .password_slots
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let password = password.clone();
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_password(hash.as_str(), password.expose()),
        None => {
            let dummy = DUMMY.get_or_init(|| {
                hash_password("berth: no such account")
                    .map(|h| h.as_str().to_owned())
                    .unwrap_or_default()
            });
            let _ = verify_password(dummy, password.expose());
            Verification::Invalid
        }
    })
    .await
    .map_err(ApiError::internal)
}

/// Replaces an old (PBKDF2 or weak argon2) hash with argon2id of the password just verified.
async fn upgrade(
    state: &AppState,
    account: &Account,
    password: &Secret,
) -> Result<PasswordHash, ApiError> {
    let password = password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(password.expose()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let saved = hash.clone();
    let username = account.username.clone();
    if account.id.is_none() {
        state
            .change_config(move |store| store.update_admin(|a| a.password_hash = Some(saved)))
            .await?;
    } else {
        state
            .change_config(move |store| {
                store.update_user(&username, |u| u.password_hash = Some(saved))
            })
            .await?;
    }
    tracing::info!(user = %account.username, "upgraded the password hash to argon2id");
    Ok(hash)
}
