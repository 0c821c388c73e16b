//! A token bucket per key (governor): `burst` actions at once, refilling steadily over `period`, and
//! the wait until the next action when a key is over its budget. In memory, per instance. Used for
//! registrations per address and messages per user.

use governor::Quota;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::time::Duration;

/// Above this many tracked keys, keys back at a full budget are swept out (bounded memory).
const SWEEP_ABOVE: usize = 10_000;

pub struct KeyedRateLimit<K: Hash + Eq + Clone> {
    limiter: governor::RateLimiter<
        K,
        governor::state::keyed::DefaultKeyedStateStore<K>,
        governor::clock::DefaultClock,
    >,
}

impl<K: Hash + Eq + Clone> KeyedRateLimit<K> {
    /// `burst` actions at once, refilling to `burst` over `period`.
    pub fn new(burst: u32, period: Duration) -> Self {
        let burst = NonZeroU32::new(burst.max(1)).expect("at least one");
        let quota = Quota::with_period(period / burst.get())
            .expect("a positive period")
            .allow_burst(burst);
        Self {
            limiter: governor::RateLimiter::keyed(quota),
        }
    }

    /// Takes one action from the key's budget; `Err(seconds)` until the next one is allowed.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        if self.limiter.len() > SWEEP_ABOVE {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            wait.as_secs().max(1)
        })
    }
}

/// The key per-address limits count under: the address itself for IPv4, its /64 network for IPv6 (one
/// subscriber usually holds a whole /64, and could otherwise pick a fresh address per attempt).
pub fn address_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
        Ok(ip) => ip.to_canonical().to_string(),
        Err(_) => ip.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_by_their_64_network() {
        assert_eq!(address_key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(
            address_key("2001:db8:1:2:ffff::9"),
            address_key("2001:db8:1:2::1")
        );
        assert_ne!(
            address_key("2001:db8:1:3::1"),
            address_key("2001:db8:1:2::1")
        );
        assert_eq!(address_key("203.0.113.7"), "203.0.113.7");
        assert_eq!(address_key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(address_key("unknown"), "unknown");
    }

    #[test]
    fn each_key_has_its_own_budget_that_refills_over_the_period() {
        let limit = KeyedRateLimit::new(2, Duration::from_secs(60 * 60));
        assert!(limit.check(&"10.0.0.1").is_ok());
        assert!(limit.check(&"10.0.0.1").is_ok());
        let wait = limit.check(&"10.0.0.1").unwrap_err();
        // Two per hour: the next one is due about half an hour after the first.
        assert!(wait > 60 && wait <= 1800, "{wait}");
        assert!(limit.check(&"10.0.0.2").is_ok());
    }
}
