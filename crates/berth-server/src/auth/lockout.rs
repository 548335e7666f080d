//! Who may try a password now: the rule over the login attempts of the last
//! `security.lockout_minutes` (docs/admin-guide.md, "Lockout and throttling").
//!
//! Failures are counted per account *and* client address: `lockout_attempts` failures from one
//! address lock that address out of the account, while the account's owner, elsewhere, still
//! logs in, so nobody can lock the admin out from afar. Failures spread over several
//! addresses slow the account down instead: once they reach `lockout_attempts`, the account
//! admits one attempt per delay, the delay doubling from [`FIRST_DELAY`] with each further
//! failure up to [`MAX_DELAY`]. An address that logged in to the account within
//! [`KNOWN_ADDRESS_DAYS`] is never slowed down, so its owner is not held up by an attack.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use berth_core::LoginPressure;
use time::OffsetDateTime;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Usernames tracked before the entries nobody waits on are dropped.
const QUEUE_PRUNE_AT: usize = 1024;

/// How long an admitted attempt waits for its account's turn before it is answered 429
/// `login_busy`.
pub(crate) const QUEUE_DEADLINE: Duration = Duration::from_secs(10);

/// Attempts for one account pass one at a time from a second look at the verdict through the
/// password check to the record of the outcome, so a burst of parallel guesses cannot all be
/// admitted on the same count: each sees the failures of the ones before it. Only attempts the
/// verdict admitted queue: a refused one is answered without waiting for (or holding up)
/// anyone, so a flood of refused guesses does not delay the owner. The wait has a deadline.
#[derive(Debug, Default)]
pub(crate) struct AccountQueue {
    accounts: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
}

/// The turn of an account did not come before the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueBusy;

impl AccountQueue {
    /// Waits up to `deadline` for the turn of `username` (what was typed, whether or not it
    /// names an account).
    pub(crate) async fn enter(
        &self,
        username: &str,
        deadline: Duration,
    ) -> Result<OwnedMutexGuard<()>, QueueBusy> {
        let lock = {
            let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
            if accounts.len() >= QUEUE_PRUNE_AT {
                accounts.retain(|_, waiting| waiting.strong_count() > 0);
            }
            match accounts.get(username).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(AsyncMutex::new(()));
                    accounts.insert(username.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        tokio::time::timeout(deadline, lock.lock_owned())
            .await
            .map_err(|_| QueueBusy)
    }
}

/// Accounts whose throttling was last reported (logged and audited), and for which delay
/// period. A throttled account refuses every attempt of a period; one report per period says
/// so, so a flood of refused guesses cannot flood the audit log.
#[derive(Debug, Default)]
pub(crate) struct ThrottleReports {
    /// The period last reported per account, and when it ends.
    reported: Mutex<HashMap<String, (Period, OffsetDateTime)>>,
}

/// One delay period of a throttled account: it starts at each admitted failure (which also
/// changes the count) and lasts the delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Period {
    failures: u32,
    last_failure: OffsetDateTime,
}

impl Period {
    /// The period a throttled attempt falls in, if the pressure throttles at all.
    pub(crate) fn of(pressure: &LoginPressure) -> Option<Self> {
        Some(Self {
            failures: pressure.account_failures,
            last_failure: pressure.last_failure?,
        })
    }
}

impl ThrottleReports {
    /// Whether a throttled attempt for `username` in `period` (ending at `ends`) is the first
    /// of its period here, and so is to be reported; `now` prunes ended periods.
    pub(crate) fn first_of(
        &self,
        username: &str,
        period: Period,
        ends: OffsetDateTime,
        now: OffsetDateTime,
    ) -> bool {
        let mut reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
        if reported.len() >= QUEUE_PRUNE_AT {
            reported.retain(|_, (_, until)| *until > now);
        }
        match reported.get(username) {
            Some((last, _)) if *last == period => false,
            _ => {
                reported.insert(username.to_owned(), (period, ends));
                true
            }
        }
    }
}

/// The delay of an account whose spread failures just reached the limit.
pub(crate) const FIRST_DELAY: Duration = Duration::from_secs(1);

/// The longest delay between two attempts of a throttled account.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(30);

/// How long an address that logged in to an account stays exempt from its throttling.
pub(crate) const KNOWN_ADDRESS_DAYS: i64 = 30;

/// What becomes of a login attempt before its password is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Check the password.
    Admit,
    /// This address failed `lockout_attempts` times: refused for `lockout_minutes`.
    Locked,
    /// The account is being guessed at from many addresses: refused for this long.
    Throttled {
        /// Until the next attempt is admitted.
        wait: Duration,
        /// The current delay between attempts.
        delay: Duration,
    },
}

/// The verdict for an attempt at `now`, given what the window's attempts say.
pub(crate) fn verdict(pressure: &LoginPressure, attempts: u32, now: OffsetDateTime) -> Verdict {
    if pressure.address_failures >= attempts {
        return Verdict::Locked;
    }
    if pressure.known_address
        || pressure.failing_addresses < 2
        || pressure.account_failures < attempts
    {
        return Verdict::Admit;
    }
    let Some(last) = pressure.last_failure else {
        return Verdict::Admit;
    };
    let delay = delay(pressure.account_failures - attempts);
    let since = Duration::try_from(now - last).unwrap_or(Duration::ZERO);
    match delay.checked_sub(since) {
        Some(wait) if !wait.is_zero() => Verdict::Throttled { wait, delay },
        _ => Verdict::Admit,
    }
}

/// [`FIRST_DELAY`] doubled `further` times, at most [`MAX_DELAY`].
fn delay(further: u32) -> Duration {
    FIRST_DELAY
        .checked_mul(1 << further.min(16))
        .map_or(MAX_DELAY, |d| d.min(MAX_DELAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_attempt_per_account_at_a_time() {
        let queue = Arc::new(AccountQueue::default());
        let first = queue.enter("alice", QUEUE_DEADLINE).await.unwrap();
        // Another account is not held up.
        let bob = queue.enter("bob", QUEUE_DEADLINE).await.unwrap();
        drop(bob);
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { drop(queue.enter("alice", QUEUE_DEADLINE).await.unwrap()) }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "a second attempt for alice waits for the first"
        );
        drop(first);
        waiting.await.unwrap_or_else(|e| panic!("{e}"));
        // Entries nobody waits on are pruned once there are many.
        for i in 0..QUEUE_PRUNE_AT + 1 {
            drop(queue.enter(&format!("user{i}"), QUEUE_DEADLINE).await);
        }
        let tracked = queue
            .accounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        assert!(tracked < 10, "{tracked} entries kept");
    }

    #[tokio::test]
    async fn the_wait_for_a_turn_has_a_deadline() {
        let queue = AccountQueue::default();
        let _held = queue.enter("alice", QUEUE_DEADLINE).await.unwrap();
        assert_eq!(
            queue.enter("alice", Duration::from_millis(50)).await.err(),
            Some(QueueBusy)
        );
    }

    #[test]
    fn a_throttle_is_reported_once_per_period() {
        let reports = ThrottleReports::default();
        let period = |failures, last| {
            Period::of(&spread(failures, 3, last)).unwrap_or_else(|| panic!("a period"))
        };
        assert!(reports.first_of("alice", period(5, 100), at(101), at(100)));
        assert!(!reports.first_of("alice", period(5, 100), at(101), at(100)));
        // Another account has its own periods.
        assert!(reports.first_of("bob", period(5, 100), at(101), at(100)));
        // An admitted failure starts a new period, even within the same second.
        assert!(reports.first_of("alice", period(6, 100), at(102), at(100)));
        assert!(!reports.first_of("alice", period(6, 100), at(102), at(101)));
        assert!(reports.first_of("alice", period(7, 102), at(106), at(102)));
        // Ended periods are forgotten once there are many.
        for i in 0..QUEUE_PRUNE_AT + 1 {
            reports.first_of(&format!("user{i}"), period(5, 100), at(101), at(100));
        }
        reports.first_of("carol", period(5, 200), at(201), at(200));
        let tracked = reports
            .reported
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        assert!(tracked < 10, "{tracked} entries kept");
    }

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(seconds)
    }

    fn spread(failures: u32, addresses: u32, last: i64) -> LoginPressure {
        LoginPressure {
            address_failures: 1,
            account_failures: failures,
            failing_addresses: addresses,
            last_failure: Some(at(last)),
            known_address: false,
        }
    }

    #[test]
    fn an_address_locks_itself_out() {
        let mut pressure = spread(5, 1, 100);
        pressure.address_failures = 5;
        assert_eq!(verdict(&pressure, 5, at(100)), Verdict::Locked);
        // Even from an address that logged in before: the lock is the address's own doing.
        pressure.known_address = true;
        assert_eq!(verdict(&pressure, 5, at(100)), Verdict::Locked);
        pressure.address_failures = 4;
        assert_eq!(verdict(&pressure, 5, at(100)), Verdict::Admit);
    }

    #[test]
    fn failures_from_one_address_or_below_the_limit_do_not_throttle() {
        assert_eq!(verdict(&spread(5, 1, 100), 5, at(100)), Verdict::Admit);
        assert_eq!(verdict(&spread(4, 4, 100), 5, at(100)), Verdict::Admit);
        assert_eq!(
            verdict(&LoginPressure::default(), 5, at(100)),
            Verdict::Admit
        );
    }

    #[test]
    fn spread_failures_are_admitted_once_per_growing_delay() {
        let throttled = |failures, now| verdict(&spread(failures, 3, 100), 5, at(now));
        assert_eq!(
            throttled(5, 100),
            Verdict::Throttled {
                wait: Duration::from_secs(1),
                delay: Duration::from_secs(1)
            }
        );
        assert_eq!(throttled(5, 101), Verdict::Admit);
        assert_eq!(
            throttled(7, 101),
            Verdict::Throttled {
                wait: Duration::from_secs(3),
                delay: Duration::from_secs(4)
            }
        );
        assert_eq!(throttled(7, 104), Verdict::Admit);
        for failures in [10, 11, 50, u32::MAX] {
            assert_eq!(
                throttled(failures, 100),
                Verdict::Throttled {
                    wait: MAX_DELAY,
                    delay: MAX_DELAY
                },
                "{failures}"
            );
        }
        assert_eq!(throttled(50, 130), Verdict::Admit);
    }

    #[test]
    fn a_known_address_is_never_throttled() {
        let mut pressure = spread(20, 6, 100);
        pressure.known_address = true;
        assert_eq!(verdict(&pressure, 5, at(100)), Verdict::Admit);
    }
}
