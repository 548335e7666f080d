//! `POST /api/v1/auth/login`: a password for a JWT, with lockout per address, throttling of
//! spread guessing ([`super::lockout`]) and an audit entry for every attempt (a throttled
//! account's refusals: one per delay period).

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use berth_config::{Config, PasswordHash, Security, Verification, hash_password, verify_password};
use berth_core::AuditOutcome;
use berth_types::UserId;
use berth_types::api::{LoginRequest, LoginResponse, Secret};
use serde_json::json;
use time::OffsetDateTime;

use super::lockout::{self, Period, Verdict};
use super::{AddressBlock, Claims, ClientIp};
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
    let block = ClientIp(ip).block();
    // A refused attempt is answered at once: it never waits for the account's queue, nor holds
    // up the admitted attempts (the owner's) in it.
    admit(&state, &typed, ip, block, &security).await?;
    // One admitted attempt per account at a time from here to the record of its outcome...
    let _turn = state
        .shared
        .login_queue
        .enter(&typed, lockout::QUEUE_DEADLINE)
        .await
        .map_err(|_| {
            state.shared.metrics.login_failed();
            ApiError::too_many(
                "login_busy",
                "too many logins for this account are waiting; retry later",
                lockout::QUEUE_DEADLINE,
            )
        })?;
    // ...which looks again: the attempts before it in the queue may have changed the verdict.
    let now = admit(&state, &typed, ip, block, &security).await?;

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
            state.logins.record(&typed, block.ip(), false, now).await?;
            state.shared.metrics.login_failed();
            denied(
                &typed,
                ip,
                json!({ "reason": "wrong username or password" }),
            )
            .record_to(&state.audit)
            .await;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "wrong username or password",
            ));
        }
    };
    state.logins.record(&typed, block.ip(), true, now).await?;
    let mut hash = account.hash.clone();
    if verification == Verification::ValidNeedsUpgrade {
        match upgrade(&state, &account, &body.password).await {
            Ok(new) => hash = new,
            Err(err) => {
                tracing::warn!(user = %account.username, error = %err.message, "could not upgrade the password hash")
            }
        }
    }
    let issued = OffsetDateTime::now_utc();
    let claims = Claims::new(&account.username, account.id, hash.as_str(), issued);
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
        expires_at: OffsetDateTime::from_unix_timestamp(claims.exp).unwrap_or(issued),
    }))
}

/// An anonymous, denied login attempt for the audit log, from the full address.
fn denied(typed: &str, ip: IpAddr, details: serde_json::Value) -> AuditEvent {
    AuditEvent::new(Actor::Anonymous, AuditAction::Login, typed.to_owned())
        .from_ip(ip)
        .outcome(AuditOutcome::Denied)
        .details(details)
}

/// The verdict on an attempt for `typed` from `ip` (in `block`) now: `Ok` with the time it was
/// taken at to check the password, or the refusal (audited: a lock each time, a throttle once
/// per delay period of the account, [`lockout::ThrottleReports`]).
async fn admit(
    state: &AppState,
    typed: &str,
    ip: IpAddr,
    block: AddressBlock,
    security: &Security,
) -> Result<OffsetDateTime, ApiError> {
    // Attempts are counted on the installation's clock (tests move it); the token's lifetime
    // on the system's, as its checks are.
    let now = state.workspaces.now();
    let window = time::Duration::minutes(i64::from(security.lockout_minutes));
    let known_since = now - time::Duration::days(lockout::KNOWN_ADDRESS_DAYS);
    let pressure = state
        .logins
        .pressure(typed, block.ip(), now - window, known_since)
        .await?;
    match lockout::verdict(&pressure, security.lockout_attempts, now) {
        Verdict::Admit => Ok(now),
        Verdict::Locked => {
            state.shared.metrics.login_failed();
            denied(
                typed,
                ip,
                json!({ "reason": "account locked for this address" }),
            )
            .record_to(&state.audit)
            .await;
            Err(ApiError::too_many(
                "account_locked",
                format!(
                    "{} failed logins from your address: this account is locked for logins \
                     from it for {} minute(s) after the last one",
                    pressure.address_failures, security.lockout_minutes
                ),
                Duration::from_secs(u64::from(security.lockout_minutes) * 60),
            ))
        }
        Verdict::Throttled { wait, delay } => {
            state.shared.metrics.login_failed();
            let first = Period::of(&pressure).is_some_and(|period| {
                state
                    .shared
                    .throttle_reports
                    .first_of(typed, period, now + wait, now)
            });
            if first {
                tracing::warn!(
                    username = %typed,
                    %ip,
                    failures = pressure.account_failures,
                    addresses = pressure.failing_addresses,
                    delay_seconds = delay.as_secs(),
                    "login throttled: failed logins for this account from many addresses \
                     (further refusals until the next admitted attempt are not logged)"
                );
                denied(
                    typed,
                    ip,
                    json!({
                        "reason": "login throttled",
                        "failures": pressure.account_failures,
                        "addresses": pressure.failing_addresses,
                        "delay_seconds": delay.as_secs(),
                    }),
                )
                .record_to(&state.audit)
                .await;
            }
            Err(ApiError::too_many(
                "login_throttled",
                format!(
                    "{} failed logins for this account from {} addresses in {} minute(s): it \
                     takes one attempt every {} second(s); retry later",
                    pressure.account_failures,
                    pressure.failing_addresses,
                    security.lockout_minutes,
                    delay.as_secs()
                ),
                wait,
            ))
        }
    }
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
