//! Login attempts, kept by [`LoginStore`] so the server can lock an account after repeated
//! failures (and so the lock survives a restart and holds across replicas).

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::db::{Bind, SqlStore};
use crate::{StoreError, sql};

/// The longest login username kept; longer attempts are refused before they reach the table.
const MAX_LOGIN_USERNAME: usize = 256;

/// The login attempts table (`login_attempts`): what was typed, from where, whether it worked.
#[async_trait]
pub trait LoginStore: Send + Sync + fmt::Debug {
    /// Records a login attempt. `username` is what was typed (it may name no user); at most
    /// 256 bytes, else [`StoreError::InvalidInput`].
    async fn record_login_attempt(
        &self,
        username: &str,
        ip: IpAddr,
        success: bool,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Failed attempts for `username` at or after `since` that no later successful login
    /// cleared. The server locks the account when this reaches its limit (5 in 5 minutes).
    async fn recent_failures(
        &self,
        username: &str,
        since: OffsetDateTime,
    ) -> Result<u32, StoreError>;

    /// Deletes login attempts older than `before`; returns how many.
    async fn prune_login_attempts(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

fn check_login_username(username: &str) -> Result<(), StoreError> {
    if username.len() > MAX_LOGIN_USERNAME {
        return Err(StoreError::InvalidInput(format!(
            "login username of {} bytes, at most {MAX_LOGIN_USERNAME} are kept",
            username.len()
        )));
    }
    Ok(())
}

#[async_trait]
impl LoginStore for SqlStore {
    async fn record_login_attempt(
        &self,
        username: &str,
        ip: IpAddr,
        success: bool,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        check_login_username(username)?;
        self.execute(
            sql::INSERT_LOGIN_ATTEMPT,
            &[
                Bind::text(username),
                Bind::Text(ip.to_string()),
                Bind::Bool(success),
                Bind::Time(at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn recent_failures(
        &self,
        username: &str,
        since: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        let row = self
            .fetch_one(
                sql::RECENT_FAILURES,
                &[Bind::text(username), Bind::Time(since)],
            )
            .await?;
        Ok(sql::count(row.get_i64(0)?))
    }

    async fn prune_login_attempts(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.execute(sql::PRUNE_LOGIN_ATTEMPTS, &[Bind::Time(before)])
            .await
    }
}
