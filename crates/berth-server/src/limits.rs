//! Rate limits: in-memory token buckets, one per (limit, caller).
//!
//! A bucket holds a minute's allowance and refills continuously, so a client may burst up to
//! its per-minute rate and then proceeds at rate/60 per second. Authenticated requests are
//! counted per client token or per logged-in user, so many people behind one NAT address do
//! not share a budget; requests without valid credentials, and logins, are counted per
//! address, an IPv6 address with the rest of its /64 ([`AddressBlock`]). Limits are read from main.yaml at every request, so a reload applies at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_types::{ClientId, Username};

use crate::auth::AddressBlock;

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Class {
    /// `security.login_rate_per_minute`, per address.
    Login,
    /// `security.ping_rate_per_minute`, per client.
    Ping,
    /// `security.api_rate_per_minute`, per client, user or address.
    Api,
}

/// Whose budget a request spends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Address(AddressBlock),
    User(Username),
    Client(ClientId),
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    capacity: f64,
    updated: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let rate = self.capacity / 60.0;
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(self.capacity);
        self.updated = now;
    }
}

/// Beyond this many buckets, full ones are dropped at once rather than at the next prune.
const PRUNE_ABOVE: usize = 100_000;

/// Every bucket.
#[derive(Debug, Default)]
pub(crate) struct RateLimits {
    buckets: Mutex<HashMap<(Class, Key), Bucket>>,
}

impl RateLimits {
    /// Spends one request of `key`'s `class` budget of `per_minute`; `Err` says how long until
    /// the next request would be allowed.
    pub(crate) fn take(&self, class: Class, key: Key, per_minute: u32) -> Result<(), Duration> {
        self.take_at(class, key, per_minute, Instant::now())
    }

    fn take_at(
        &self,
        class: Class,
        key: Key,
        per_minute: u32,
        now: Instant,
    ) -> Result<(), Duration> {
        let capacity = f64::from(per_minute.max(1));
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            prune(&mut buckets, now);
        }
        let bucket = buckets.entry((class, key)).or_insert(Bucket {
            tokens: capacity,
            capacity,
            updated: now,
        });
        // A changed limit applies at once.
        bucket.capacity = capacity;
        bucket.refill(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) * 60.0 / capacity,
            ))
        }
    }

    /// Forgets full buckets: a caller that comes back gets a full one anyway.
    pub(crate) fn prune(&self) {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        prune(&mut buckets, Instant::now());
    }
}

fn prune(buckets: &mut HashMap<(Class, Key), Bucket>, now: Instant) {
    buckets.retain(|_, bucket| {
        bucket.refill(now);
        bucket.tokens < bucket.capacity
    });
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn ip(last: u8) -> Key {
        Key::Address(AddressBlock::of(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))))
    }

    #[test]
    fn the_addresses_of_an_ipv6_64_share_a_budget() {
        let limits = RateLimits::default();
        let start = Instant::now();
        let v6 = |t: &str| Key::Address(AddressBlock::of(t.parse().unwrap()));
        for last in 1..=3 {
            let key = v6(&format!("2001:db8:1:2::{last}"));
            assert!(limits.take_at(Class::Login, key, 3, start).is_ok());
        }
        assert!(
            limits
                .take_at(Class::Login, v6("2001:db8:1:2:ffff::1"), 3, start)
                .is_err()
        );
        assert!(
            limits
                .take_at(Class::Login, v6("2001:db8:1:3::1"), 3, start)
                .is_ok(),
            "the next /64 is another client"
        );
    }

    #[test]
    fn a_burst_of_a_minute_then_the_rate() {
        let limits = RateLimits::default();
        let start = Instant::now();
        for _ in 0..60 {
            assert!(limits.take_at(Class::Api, ip(1), 60, start).is_ok());
        }
        let wait = limits.take_at(Class::Api, ip(1), 60, start).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Other keys and classes have their own budget.
        assert!(limits.take_at(Class::Api, ip(2), 60, start).is_ok());
        assert!(limits.take_at(Class::Ping, ip(1), 60, start).is_ok());
        // One second later, one more request.
        let later = start + Duration::from_secs(1);
        assert!(limits.take_at(Class::Api, ip(1), 60, later).is_ok());
        assert!(limits.take_at(Class::Api, ip(1), 60, later).is_err());
    }

    #[test]
    fn full_buckets_are_pruned() {
        let limits = RateLimits::default();
        limits.take(Class::Login, ip(1), 600).unwrap();
        limits.take(Class::Login, ip(2), 1).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        limits.prune();
        let left: Vec<Key> = limits
            .buckets
            .lock()
            .unwrap()
            .keys()
            .map(|(_, k)| k.clone())
            .collect();
        assert_eq!(left, vec![ip(2)]);
    }
}
