//! `GET /api/v1/config`: the caller's merged configuration, what the CLI needs to list and
//! start templates (also on its own machine with `berth start --local`).

use axum::extract::State;
use berth_config::Template;
use berth_core::{allowed_templates, role_of};
use berth_types::api::{ClientConfig, Me, RuntimeDefaults, UserLimits};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, Query};
use crate::pings::PING_INTERVAL_SECONDS;
use crate::state::AppState;

pub(crate) async fn config(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<ClientConfig<Template>>, ApiError> {
    let config = state.config.current();
    let role = role_of(&config, &caller.username)
        .ok_or_else(|| ApiError::unauthenticated("the account no longer exists"))?;
    let templates: Vec<Template> = allowed_templates(&config, &caller.username)
        .into_iter()
        .cloned()
        .collect();
    let overrides = config.overrides(caller.username.as_str());
    let runtime = &config.main.runtime;
    Ok(Json(ClientConfig {
        user: Me {
            username: caller.username.clone(),
            role,
            templates: templates.iter().map(|t| t.name.clone()).collect(),
        },
        limits: UserLimits {
            max_workspaces: config.max_workspaces(caller.username.as_str()),
            memory_bytes: overrides.and_then(|o| o.memory).map(|m| m.bytes()),
            cpus: overrides.and_then(|o| o.cpus),
            extra_templates: overrides.map(|o| o.templates.clone()).unwrap_or_default(),
        },
        defaults: RuntimeDefaults {
            memory_bytes: runtime.default_memory.bytes(),
            pids_limit: runtime.default_pids_limit,
            idle_timeout_seconds: runtime.default_idle_timeout.as_secs(),
        },
        templates,
        ping_interval_seconds: PING_INTERVAL_SECONDS,
    }))
}
