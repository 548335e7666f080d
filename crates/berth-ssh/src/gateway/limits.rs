//! Connections at once, in all and per address (an IPv6 address counts as its /64, which one
//! client usually has whole).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// The address a connection counts against.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    per_address: HashMap<IpAddr, u32>,
}

/// Counts open connections against the limits.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionLimits {
    max_total: u32,
    max_per_address: u32,
    counts: Arc<Mutex<Counts>>,
}

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OverLimit {
    Total,
    Address,
}

/// One counted connection; dropping it uncounts it.
#[derive(Debug)]
pub(crate) struct Slot {
    key: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl ConnectionLimits {
    pub(crate) fn new(max_total: u32, max_per_address: u32) -> Self {
        Self {
            max_total,
            max_per_address,
            counts: Arc::default(),
        }
    }

    pub(crate) fn enter(&self, ip: IpAddr) -> Result<Slot, OverLimit> {
        let key = address_key(ip);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.total >= self.max_total {
            return Err(OverLimit::Total);
        }
        let here = counts.per_address.entry(key).or_default();
        if *here >= self.max_per_address {
            return Err(OverLimit::Address);
        }
        *here += 1;
        counts.total += 1;
        Ok(Slot {
            key,
            counts: Arc::clone(&self.counts),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(here) = counts.per_address.get_mut(&self.key) {
            *here = here.saturating_sub(1);
            if *here == 0 {
                counts.per_address.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_address_and_in_all() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let b_same_64: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        let first = limits.enter(a).unwrap();
        let _second = limits.enter(a).unwrap();
        assert_eq!(limits.enter(a).unwrap_err(), OverLimit::Address);
        drop(first);
        let _third = limits.enter(a).unwrap();
        let _v6 = limits.enter(b).unwrap();
        assert_eq!(limits.enter(b_same_64).unwrap_err(), OverLimit::Total);
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped), a);
        assert_eq!(address_key(b_same_64), address_key(b));
    }
}
