//! Brute-force protection for logins: growing lockouts per account and per IP. In memory, per
//! instance: a lockout costs an attacker time on every instance they reach, and a restart does not
//! let them through faster than the schedule allows anywhere else.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Above this many tracked keys, forgotten ones are swept out on the next failure (bounded memory).
const SWEEP_ABOVE: usize = 10_000;

/// The lockout that starts with failure number `failures`, when the first `free` failures cost nothing:
/// 1 minute, then 5 minutes, then 15 minutes, then 1 hour for every further failure.
pub fn lockout_for(failures: u32, free: u32) -> Option<Duration> {
    let minutes = match failures.checked_sub(free)? {
        0 => return None,
        1 => 1,
        2 => 5,
        3 => 15,
        _ => 60,
    };
    Some(Duration::from_secs(minutes * 60))
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

/// Counts consecutive failed logins per key and locks the key out on a growing schedule.
pub struct LoginThrottle {
    free: u32,
    entries: Mutex<HashMap<String, Entry>>,
}

impl LoginThrottle {
    /// `free`: failures allowed before the first lockout.
    pub fn new(free: u32) -> Self {
        Self {
            free,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds)` while the key is locked out.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key).and_then(|e| e.locked_until) {
            Some(until) if until > now => Err((until - now).as_secs().max(1)),
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, key: &str, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > SWEEP_ABOVE {
            entries.retain(|_, e| {
                now.duration_since(e.last_failure) < FORGET_AFTER
                    || e.locked_until.is_some_and(|until| until > now)
            });
        }
        let entry = entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            last_failure: now,
            locked_until: None,
        });
        if now.duration_since(entry.last_failure) >= FORGET_AFTER
            && entry.locked_until.is_none_or(|until| until <= now)
        {
            entry.failures = 0;
        }
        entry.failures += 1;
        entry.last_failure = now;
        if let Some(lock) = lockout_for(entry.failures, self.free) {
            entry.locked_until = Some(now + lock);
        }
    }

    pub fn record_success(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_grow_after_the_free_attempts() {
        assert_eq!(lockout_for(1, 2), None);
        assert_eq!(lockout_for(2, 2), None);
        assert_eq!(lockout_for(3, 2), Some(Duration::from_secs(60)));
        assert_eq!(lockout_for(4, 2), Some(Duration::from_secs(300)));
        assert_eq!(lockout_for(5, 2), Some(Duration::from_secs(900)));
        assert_eq!(lockout_for(6, 2), Some(Duration::from_secs(3600)));
        assert_eq!(lockout_for(60, 2), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn a_key_is_locked_after_repeated_failures_and_released_later() {
        let throttle = LoginThrottle::new(2);
        let t0 = Instant::now();
        throttle.record_failure("ana", t0);
        throttle.record_failure("ana", t0);
        assert_eq!(throttle.check("ana", t0), Ok(()));
        throttle.record_failure("ana", t0);
        assert_eq!(throttle.check("ana", t0), Err(60));
        assert_eq!(throttle.check("ben", t0), Ok(()));
        assert_eq!(throttle.check("ana", t0 + Duration::from_secs(61)), Ok(()));
        // The next failure locks for longer.
        let t1 = t0 + Duration::from_secs(61);
        throttle.record_failure("ana", t1);
        assert_eq!(throttle.check("ana", t1), Err(300));
    }

    #[test]
    fn success_and_time_forget_failures() {
        let throttle = LoginThrottle::new(2);
        let t0 = Instant::now();
        throttle.record_failure("ana", t0);
        throttle.record_failure("ana", t0);
        throttle.record_success("ana");
        throttle.record_failure("ana", t0);
        assert_eq!(throttle.check("ana", t0), Ok(()));
        // Two failures an hour apart do not add up.
        throttle.record_failure("ana", t0 + FORGET_AFTER);
        throttle.record_failure("ana", t0 + FORGET_AFTER);
        assert_eq!(throttle.check("ana", t0 + FORGET_AFTER), Ok(()));
    }
}
