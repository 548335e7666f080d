//! Self-service sign-up (`POST /api/v1/auth/register`, main.yaml `registration`) and the
//! invites that admit it (`/api/v1/invites`, admins).
//!
//! With `registration.mode: off` the route exists and answers 403 `registration_disabled`;
//! with `invite` a one-time code an admin made is needed; with `open` anyone may sign up.
//! Accounts land in users.yaml through the locked configuration store, as role `user` with
//! `registration.defaults`, by the same password rules as admin-made users. The route spends
//! the address's login budget, so sign-ups are rate limited per address.

use axum::extract::State;
use axum::http::StatusCode;
use berth_config::RegistrationMode;
use berth_core::{AuditAction, AuditEvent, AuditOutcome, InviteRecord, InviteUse};
use berth_types::api::{
    InviteCreated, InviteList, InviteView, NewInvite, RegisterRequest, Registered, Secret,
};
use berth_types::{InviteId, Username};
use serde_json::json;

use crate::auth::{AdminUser, ClientIp};
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, Path, Query};
use crate::state::AppState;

/// Names nobody may sign up as, whatever the configuration: the audit log's actor of failed
/// logins, and names people read as Berth's or the system's.
const RESERVED_NAMES: [&str; 7] = [
    "anonymous",
    "admin",
    "administrator",
    "root",
    "berth",
    "system",
    "nobody",
];

/// Whether the audit log holds actions of an account named `name` (a former one).
async fn has_history(state: &AppState, name: &berth_types::Username) -> bool {
    let query: berth_core::TableQuery = match serde_json::from_value(json!({
        "table": "audit",
        "filters": [{"column": "actor", "op": "eq", "value": name}],
        "limit": 1,
    })) {
        Ok(query) => query,
        Err(_) => return true,
    };
    // Unsure is taken: a failed query refuses the name rather than risk it.
    state
        .tables
        .query(&query, None)
        .await
        .map_or(true, |result| !result.rows.is_empty())
}

fn valid_code(code: &Secret) -> bool {
    let code = code.expose();
    !code.is_empty() && code.len() <= 256 && !code.chars().any(char::is_control)
}

fn invite_invalid() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "invite_invalid",
        "that invite code is not valid",
    )
}

/// Why a sign-up was refused, for the API and the `/register` page alike.
pub(crate) fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "registration_disabled",
        "sign-up is off on this server: ask an admin for an account",
    )
}

/// Makes the account `body` asks for; the one path of the API and the `/register` page.
pub(crate) async fn register_account(
    state: &AppState,
    ip: std::net::IpAddr,
    body: RegisterRequest,
) -> Result<Registered, ApiError> {
    let config = state.config.current();
    let registration = config.main.registration.clone();
    let admin = config.main.admin.username.clone();
    let exists = body.username == admin || config.user(body.username.as_str()).is_some();
    drop(config);
    if registration.mode == RegistrationMode::Off {
        AuditEvent::new(
            berth_core::Actor::Anonymous,
            AuditAction::UserRegister,
            body.username.as_str(),
        )
        .from_ip(ip)
        .details(json!({ "refused": "registration off" }))
        .outcome(AuditOutcome::Denied)
        .record_to(&state.audit)
        .await;
        return Err(disabled());
    }
    // A name is taken when an account has it, when it is one Berth or people read as someone
    // else's (`anonymous` is the audit log's actor of failed logins), or when the audit log
    // still holds a former account's actions under it: the newcomer would read them.
    let taken = exists
        || RESERVED_NAMES.contains(&body.username.as_str())
        || has_history(state, &body.username).await;
    let refused = |error: ApiError, why: &str| {
        let audit = AuditEvent::new(
            berth_core::Actor::Anonymous,
            AuditAction::UserRegister,
            body.username.as_str(),
        )
        .from_ip(ip)
        .details(json!({ "refused": why }))
        .outcome(AuditOutcome::Denied);
        (error, audit)
    };
    let name_taken = || {
        refused(
            ApiError::conflict("username_taken", "that username is taken: choose another"),
            "username taken",
        )
    };
    let result = async {
        // With invites, nobody without a valid code learns which names are taken.
        if taken && registration.mode != RegistrationMode::Invite {
            return Err(name_taken());
        }
        // The password rules are checked before an invite is spent, so a bad password never
        // burns a code (the store checks them again when it hashes).
        let chars = body.password.expose().chars().count();
        let rule = if chars == 0 {
            Some(berth_config::PasswordError::Empty)
        } else if chars > berth_config::MAX_PASSWORD_CHARS {
            Some(berth_config::PasswordError::TooLong { chars })
        } else {
            None
        };
        if let Some(rule) = rule {
            return Err(refused(
                ApiError::from(berth_config::StoreError::Password(rule)),
                "bad password",
            ));
        }
        let invite = match registration.mode {
            RegistrationMode::Invite => {
                let Some(code) = body.invite.as_ref() else {
                    return Err(refused(
                        ApiError::new(
                            StatusCode::FORBIDDEN,
                            "invite_required",
                            "sign-up needs an invite code from an admin",
                        ),
                        "no invite",
                    ));
                };
                if !valid_code(code) {
                    return Err(refused(invite_invalid(), "invite_invalid"));
                }
                if taken {
                    // Only a code that would have been accepted learns that the name is taken.
                    let usable = state
                        .invites
                        .usable(code.expose(), state.workspaces.now())
                        .await
                        .map_err(|e| refused(ApiError::from(e), "internal"))?;
                    return Err(match usable {
                        true => name_taken(),
                        false => refused(invite_invalid(), "invite_invalid"),
                    });
                }
                Some(redeem(state, code, &body.username).await.map_err(|e| {
                    let why = e.code;
                    refused(e, why)
                })?)
            }
            _ => None,
        };
        let username = body.username.clone();
        let templates = registration.defaults.templates.clone();
        let clusters = registration.defaults.clusters;
        let password = body.password.clone();
        // Hashing takes a password slot, as a login does.
        let slot = state.shared.password_slots.acquire().await;
        let made = state
            .change_config(move |store| {
                store.register_user(&username, password.expose(), &templates, clusters)
            })
            .await;
        drop(slot);
        match made {
            Ok(user) => Ok((user, invite)),
            Err(err) => {
                if let Some(invite) = &invite
                    && let Err(release) = state.invites.release(invite.id).await
                {
                    tracing::error!(error = %release, invite = %invite.id, "cannot give back the invite of a failed sign-up");
                }
                // A sign-up of the same name that won a race: the name is taken.
                if err.code == "already_exists" {
                    return Err(name_taken());
                }
                Err(refused(err, "refused by the configuration"))
            }
        }
    }
    .await;
    match result {
        Ok((user, invite)) => {
            AuditEvent::new(
                &user.username,
                AuditAction::UserRegister,
                user.username.as_str(),
            )
            .from_ip(ip)
            .details(json!({
                "mode": format!("{:?}", registration.mode).to_lowercase(),
                "invite": invite.as_ref().map(|i| i.id),
                "templates": user.templates,
                "clusters": user.clusters,
            }))
            .record_to(&state.audit)
            .await;
            Ok(Registered {
                username: user.username,
                templates: user.templates,
                clusters: user.clusters,
            })
        }
        Err((error, audit)) => {
            audit.record_to(&state.audit).await;
            Err(error)
        }
    }
}

async fn redeem(
    state: &AppState,
    code: &Secret,
    username: &Username,
) -> Result<InviteRecord, ApiError> {
    if !valid_code(code) {
        return Err(invite_invalid());
    }
    let code = code.expose();
    let now = state.workspaces.now();
    match state.invites.redeem(code, username, now).await? {
        InviteUse::Accepted(invite) => Ok(invite),
        InviteUse::Unknown => Err(invite_invalid()),
        InviteUse::AlreadyUsed => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invite_used",
            "that invite code was used already: ask an admin for a new one",
        )),
        InviteUse::Expired => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invite_expired",
            "that invite code has expired: ask an admin for a new one",
        )),
    }
}

/// `POST /api/v1/auth/register`.
pub(crate) async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(body): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let registered = register_account(&state, ip, body).await?;
    Ok((StatusCode::CREATED, Json(registered)))
}

pub(crate) fn invite_view(invite: InviteRecord) -> InviteView {
    InviteView {
        id: invite.id,
        created_by: invite.created_by,
        note: invite.note,
        created_at: invite.created_at,
        expires_at: invite.expires_at,
        used_by: invite.used_by,
        used_at: invite.used_at,
    }
}

/// The sign-up page's address with `code` filled in.
fn register_url(state: &AppState, code: &str) -> String {
    let config = state.config.current();
    let base = config
        .main
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.main.listen));
    format!("{}/register?invite={code}", base.trim_end_matches('/'))
}

/// `POST /api/v1/invites` (admins): a one-time code, shown this once.
pub(crate) async fn create_invite(
    State(state): State<AppState>,
    AdminUser(caller): AdminUser,
    ClientIp(ip): ClientIp,
    Json(body): Json<NewInvite>,
) -> Result<(StatusCode, Json<InviteCreated>), ApiError> {
    if body.note.chars().count() > 200 || body.note.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "note: at most 200 characters, no control characters",
        ));
    }
    let lifetime = body.expires_in.map_or_else(
        || state.config.current().main.registration.invite_ttl.get(),
        |ttl| ttl.0.get(),
    );
    let now = state.workspaces.now();
    let expires_at = now + time::Duration::try_from(lifetime).map_err(ApiError::internal)?;
    let code = crate::auth::session::random_token();
    let invite = state
        .invites
        .create(&code, &caller.username, &body.note, now, expires_at)
        .await?;
    AuditEvent::new(
        &caller.username,
        AuditAction::InviteCreate,
        invite.id.to_string(),
    )
    .from_ip(ip)
    .details(json!({ "note": invite.note, "expires_at": invite.expires_at.unix_timestamp() }))
    .record_to(&state.audit)
    .await;
    let url = register_url(&state, &code);
    Ok((
        StatusCode::CREATED,
        Json(InviteCreated {
            invite: invite_view(invite),
            code: Secret::new(code),
            url,
        }),
    ))
}

/// `GET /api/v1/invites` (admins).
pub(crate) async fn list_invites(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<InviteList>, ApiError> {
    let invites = state.invites.list().await?;
    Ok(Json(InviteList {
        invites: invites.into_iter().map(invite_view).collect(),
    }))
}

/// `DELETE /api/v1/invites/{id}` (admins).
pub(crate) async fn delete_invite(
    State(state): State<AppState>,
    AdminUser(caller): AdminUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<InviteId>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<StatusCode, ApiError> {
    match state.invites.delete(id).await {
        Ok(()) => {}
        Err(berth_core::StoreError::NotFound) => {
            return Err(ApiError::not_found("no such invite"));
        }
        Err(err) => return Err(err.into()),
    }
    AuditEvent::new(&caller.username, AuditAction::InviteDelete, id.to_string())
        .from_ip(ip)
        .record_to(&state.audit)
        .await;
    Ok(StatusCode::NO_CONTENT)
}
