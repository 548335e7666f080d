//! Login attempts, kept by [`LoginStore`] so the server can lock an address out of an account
//! after repeated failures, slow down failures spread over many addresses, and recognize the
//! addresses an account logged in from (and so all of it survives a restart and holds across
//! replicas).

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
    /// 256 bytes, else [`StoreError::InvalidInput`]. `ip` is the client as the server counts
    /// it (the server passes an IPv6 client as the first address of its /64); it is kept and
    /// matched as its text.
    async fn record_login_attempt(
        &self,
        username: &str,
        ip: IpAddr,
        success: bool,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// What the attempts for `username` (what was typed) say about it and about `ip`: the
    /// failures at or after `since` (from `ip` and not cleared by a later success from `ip`;
    /// from every address), and whether `ip` logged in to it at or after `known_since`.
    async fn login_pressure(
        &self,
        username: &str,
        ip: IpAddr,
        since: OffsetDateTime,
        known_since: OffsetDateTime,
    ) -> Result<LoginPressure, StoreError>;

    /// Deletes failed attempts older than `failures_before` and successful ones older than
    /// `successes_before` (kept longer: they name the addresses an account is used from);
    /// returns how many.
    async fn prune_login_attempts(
        &self,
        failures_before: OffsetDateTime,
        successes_before: OffsetDateTime,
    ) -> Result<u64, StoreError>;
}

/// What the login attempts of a window say about one account (a typed username) and one
/// client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginPressure {
    /// Failures from the address that no later success from the same address cleared.
    pub address_failures: u32,
    /// Failures from every address.
    pub account_failures: u32,
    /// How many addresses those failures came from.
    pub failing_addresses: u32,
    /// When the latest failure was.
    pub last_failure: Option<OffsetDateTime>,
    /// Whether the address logged in to the account successfully since the cut-off asked for.
    pub known_address: bool,
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

    async fn login_pressure(
        &self,
        username: &str,
        ip: IpAddr,
        since: OffsetDateTime,
        known_since: OffsetDateTime,
    ) -> Result<LoginPressure, StoreError> {
        let row = self
            .fetch_one(
                sql::LOGIN_PRESSURE,
                &[
                    Bind::text(username),
                    Bind::Text(ip.to_string()),
                    Bind::Time(since),
                    Bind::Time(known_since),
                ],
            )
            .await?;
        Ok(LoginPressure {
            address_failures: sql::count(row.get_i64(0)?),
            account_failures: sql::count(row.get_i64(1)?),
            failing_addresses: sql::count(row.get_i64(2)?),
            last_failure: row.get_opt_time(3)?,
            known_address: row.get_i64(4)? > 0,
        })
    }

    async fn prune_login_attempts(
        &self,
        failures_before: OffsetDateTime,
        successes_before: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.execute(
            sql::PRUNE_LOGIN_ATTEMPTS,
            &[Bind::Time(failures_before), Bind::Time(successes_before)],
        )
        .await
    }
}
