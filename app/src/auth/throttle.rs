//! Brute-force protection for password checks. A key (an account on one device, an account from
//! strangers' addresses, one address) gets a number of free failures, then has to wait between
//! further attempts, twice as long after each failure, up to a cap: growing delays, not a wall.
//!
//! An attempt is *reserved* before the password is hashed and counts while it runs, so a burst of
//! parallel attempts gets exactly as many real checks as the schedule allows, not one per request.
//! In memory, per instance.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures older than this (and no lockout running) are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Above this many tracked keys, forgotten ones are swept out (bounded memory).
const SWEEP_ABOVE: usize = 10_000;

/// How many failures are free, and how the wait grows after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub free: u32,
    pub first_wait: Duration,
    pub max_wait: Duration,
}

impl Schedule {
    /// The wait that failure number `failures` (counting from 1) starts: none within the free ones,
    /// then `first_wait`, doubling with each further failure, at most `max_wait`.
    pub fn wait_after(&self, failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(self.free)?.checked_sub(1)?;
        let doubled = self.first_wait.saturating_mul(1u32 << over.min(20));
        Some(doubled.min(self.max_wait))
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// Attempts reserved and not yet finished.
    in_flight: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

impl Entry {
    fn forgotten(&self, now: Instant) -> bool {
        self.in_flight == 0
            && now.duration_since(self.last_failure) >= FORGET_AFTER
            && self.locked_until.is_none_or(|until| until <= now)
    }
}

/// Counts failed attempts per key and makes keys wait on a growing schedule.
pub struct LoginThrottle {
    schedule: Schedule,
    entries: Mutex<HashMap<String, Entry>>,
}

/// One reserved attempt. Report how it went with [`Attempt::failed`] or [`Attempt::succeeded`];
/// dropping it unreported (the store failed, the request was cancelled) just gives the place back.
#[must_use = "report the attempt's outcome"]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    key: String,
    open: bool,
}

impl LoginThrottle {
    pub fn new(schedule: Schedule) -> Self {
        Self {
            schedule,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves one attempt for `key`, or `Err(seconds)` to wait: while a wait runs, and while the
    /// failures so far plus the attempts in flight already reach the next wait (within the free
    /// failures, as many run at once as are left; after them, one at a time).
    pub fn reserve(&self, key: &str, now: Instant) -> Result<Attempt<'_>, u64> {
        let mut entries = self.lock();
        if entries.len() > SWEEP_ABOVE {
            entries.retain(|_, e| !e.forgotten(now));
        }
        let entry = entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            in_flight: 0,
            last_failure: now,
            locked_until: None,
        });
        if entry.forgotten(now) {
            entry.failures = 0;
        }
        if let Some(until) = entry.locked_until.filter(|until| *until > now) {
            return Err((until - now).as_secs().max(1));
        }
        let room = if entry.failures < self.schedule.free {
            self.schedule.free + 1 - entry.failures
        } else {
            1
        };
        if entry.in_flight >= room {
            // Its outcome decides whether a wait starts: try again once it is known.
            return Err(1);
        }
        entry.in_flight += 1;
        Ok(Attempt {
            throttle: self,
            key: key.to_owned(),
            open: true,
        })
    }

    fn finish(&self, key: &str, failed: Option<Instant>) {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(key) else {
            return;
        };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        match failed {
            Some(now) => {
                entry.failures += 1;
                entry.last_failure = now;
                if let Some(wait) = self.schedule.wait_after(entry.failures) {
                    entry.locked_until = Some(now + wait);
                }
            }
            None if entry.in_flight == 0 => {
                entries.remove(key);
            }
            None => {
                entry.failures = 0;
                entry.locked_until = None;
            }
        }
    }
}

impl Attempt<'_> {
    pub fn failed(mut self, now: Instant) {
        self.open = false;
        self.throttle.finish(&self.key, Some(now));
    }

    /// The key starts afresh.
    pub fn succeeded(mut self) {
        self.open = false;
        self.throttle.finish(&self.key, None);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.open {
            let mut entries = self.throttle.lock();
            if let Some(entry) = entries.get_mut(&self.key) {
                entry.in_flight = entry.in_flight.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: Schedule = Schedule {
        free: 2,
        first_wait: Duration::from_secs(2),
        max_wait: Duration::from_secs(60),
    };

    #[test]
    fn waits_double_after_the_free_failures_up_to_the_cap() {
        assert_eq!(SCHEDULE.wait_after(1), None);
        assert_eq!(SCHEDULE.wait_after(2), None);
        assert_eq!(SCHEDULE.wait_after(3), Some(Duration::from_secs(2)));
        assert_eq!(SCHEDULE.wait_after(4), Some(Duration::from_secs(4)));
        assert_eq!(SCHEDULE.wait_after(6), Some(Duration::from_secs(16)));
        assert_eq!(SCHEDULE.wait_after(9), Some(Duration::from_secs(60)));
        assert_eq!(SCHEDULE.wait_after(u32::MAX), Some(Duration::from_secs(60)));
    }

    #[test]
    fn parallel_attempts_get_only_the_checks_the_schedule_allows() {
        let throttle = LoginThrottle::new(SCHEDULE);
        let t0 = Instant::now();
        // 60 at once: the two free failures plus the one that starts the first wait.
        let attempts: Vec<_> = (0..60)
            .filter_map(|_| throttle.reserve("ana", t0).ok())
            .collect();
        assert_eq!(attempts.len(), 3);
        for attempt in attempts {
            attempt.failed(t0);
        }
        assert_eq!(throttle.reserve("ana", t0).err(), Some(2));
        // After the wait, one attempt at a time.
        let t1 = t0 + Duration::from_secs(2);
        let one = throttle.reserve("ana", t1).unwrap();
        assert!(
            throttle.reserve("ana", t1).is_err(),
            "one at a time after the free ones"
        );
        one.failed(t1);
        assert_eq!(
            throttle.reserve("ana", t1).err(),
            Some(4),
            "the wait doubled"
        );
        assert!(throttle.reserve("ben", t1).is_ok(), "keys are separate");
    }

    #[test]
    fn success_and_time_forget_failures_and_a_dropped_attempt_gives_its_place_back() {
        let throttle = LoginThrottle::new(SCHEDULE);
        let t0 = Instant::now();
        throttle.reserve("ana", t0).unwrap().failed(t0);
        throttle.reserve("ana", t0).unwrap().failed(t0);
        throttle.reserve("ana", t0).unwrap().succeeded();
        let again: Vec<_> = (0..5)
            .filter_map(|_| throttle.reserve("ana", t0).ok())
            .collect();
        assert_eq!(again.len(), 3, "a success starts afresh");
        drop(again);
        assert!(
            throttle.reserve("ana", t0).is_ok(),
            "unreported attempts count for nothing"
        );
        // Failures an hour apart do not add up.
        let later = t0 + FORGET_AFTER;
        throttle.reserve("ben", t0).unwrap().failed(t0);
        throttle.reserve("ben", t0).unwrap().failed(t0);
        let fresh: Vec<_> = (0..5)
            .filter_map(|_| throttle.reserve("ben", later).ok())
            .collect();
        assert_eq!(fresh.len(), 3);
    }
}
