//! Keeping one connection's commands in proportion: a token bucket for the commands that have no
//! budget of their own, coalescing for typing and away toggles (however fast a client flips them, the
//! room hears a change at most every so often, and always the final state), and strikes that end a
//! connection which keeps flooding after being refused.

use std::time::{Duration, Instant};

/// A small token bucket: `burst` at once, refilling at `per_sec`. Inline in every connection, so kept
/// to a few words.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f32,
    last: Instant,
    burst: f32,
    per_sec: f32,
}

impl Bucket {
    pub fn new(burst: u32, per_sec: u32, now: Instant) -> Self {
        Self {
            tokens: burst as f32,
            last: now,
            burst: burst as f32,
            per_sec: per_sec as f32,
        }
    }

    /// Takes one token; `Err(wait)` until the next one.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f32();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f32((1.0 - self.tokens) / self.per_sec))
        }
    }
}

/// The latest state of something others see (typing in a room, away), published at most once per
/// `gap`; a change that comes sooner waits, and only the last one waiting is published. The same state
/// is repeated at most once per `refresh` (typing notices expire on the other side without one).
#[derive(Debug, Clone, Copy)]
pub struct Latest<T> {
    published: Option<T>,
    at: Option<Instant>,
    waiting: Option<T>,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Self {
            published: None,
            at: None,
            waiting: None,
        }
    }
}

impl<T: Copy + PartialEq> Latest<T> {
    /// What to publish now for a new `value`, if anything.
    pub fn offer(&mut self, value: T, now: Instant, gap: Duration, refresh: Duration) -> Option<T> {
        let since = self.at.map(|at| now.saturating_duration_since(at));
        if self.published == Some(value) && since.is_some_and(|s| s < refresh) {
            // Nothing new; and a change still waiting is overtaken by this one.
            self.waiting = None;
            return None;
        }
        if since.is_some_and(|s| s < gap) {
            self.waiting = Some(value);
            return None;
        }
        self.publish(value, now)
    }

    /// When the waiting change may go out.
    pub fn due(&self, gap: Duration) -> Option<Instant> {
        self.waiting.and(self.at.map(|at| at + gap))
    }

    /// The waiting change, once it is due.
    pub fn flush(&mut self, now: Instant, gap: Duration) -> Option<T> {
        match (self.waiting, self.due(gap)) {
            (Some(value), Some(due)) if due <= now => {
                self.waiting = None;
                if self.published == Some(value) {
                    return None;
                }
                self.publish(value, now)
            }
            _ => None,
        }
    }

    /// What was last published.
    pub fn published(&self) -> Option<T> {
        self.published
    }

    fn publish(&mut self, value: T, now: Instant) -> Option<T> {
        self.published = Some(value);
        self.at = Some(now);
        self.waiting = None;
        Some(value)
    }
}

/// Refusals within a window; too many, and the connection is closed.
#[derive(Debug, Clone, Copy)]
pub struct Strikes {
    count: u32,
    since: Instant,
}

impl Strikes {
    /// Refusals tolerated within `WINDOW` before the connection counts as flooding.
    pub const LIMIT: u32 = 50;
    pub const WINDOW: Duration = Duration::from_secs(10);

    pub fn new(now: Instant) -> Self {
        Self {
            count: 0,
            since: now,
        }
    }

    /// Records one refusal; `true` once the connection has earned being closed.
    pub fn strike(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.since) > Self::WINDOW {
            self.count = 0;
            self.since = now;
        }
        self.count += 1;
        self.count > Self::LIMIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GAP: Duration = Duration::from_millis(500);
    const REFRESH: Duration = Duration::from_secs(3);

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(3, 2, t0);
        assert!((0..3).all(|_| bucket.take(t0).is_ok()));
        let wait = bucket.take(t0).unwrap_err();
        assert!(wait <= Duration::from_millis(500) && wait > Duration::ZERO);
        assert!(bucket.take(t0 + Duration::from_millis(500)).is_ok());
        assert!(bucket.take(t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn a_toggle_flood_becomes_a_few_changes_ending_in_the_final_state() {
        let t0 = Instant::now();
        let mut typing = Latest::default();
        let mut published = Vec::new();
        // 50,000 toggles within three seconds.
        for i in 0..50_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 60);
            let active = i % 2 == 0;
            published.extend(typing.offer(active, now, GAP, REFRESH));
            published.extend(typing.flush(now, GAP));
        }
        // The last toggle (false) is still waiting; its time comes.
        let end = t0 + Duration::from_secs(4);
        published.extend(typing.flush(end, GAP));
        assert!(
            published.len() <= 8,
            "{} changes published",
            published.len()
        );
        assert_eq!(
            published.last(),
            Some(&false),
            "the room ends with the final state"
        );
        assert_eq!(typing.published(), Some(false));
    }

    #[test]
    fn repeating_the_same_state_is_a_refresh_at_most_every_few_seconds() {
        let t0 = Instant::now();
        let mut typing = Latest::default();
        assert_eq!(typing.offer(true, t0, GAP, REFRESH), Some(true));
        assert_eq!(
            typing.offer(true, t0 + Duration::from_secs(1), GAP, REFRESH),
            None
        );
        assert_eq!(
            typing.offer(true, t0 + Duration::from_secs(4), GAP, REFRESH),
            Some(true)
        );
        // Stopping right after is a change: it waits for the gap, then goes out.
        let stop = t0 + Duration::from_millis(4100);
        assert_eq!(typing.offer(false, stop, GAP, REFRESH), None);
        assert_eq!(typing.due(GAP), Some(t0 + Duration::from_secs(4) + GAP));
        assert_eq!(
            typing.flush(t0 + Duration::from_millis(4600), GAP),
            Some(false)
        );
    }

    #[test]
    fn strikes_add_up_within_the_window_only() {
        let t0 = Instant::now();
        let mut strikes = Strikes::new(t0);
        assert!((0..Strikes::LIMIT).all(|_| !strikes.strike(t0)));
        assert!(strikes.strike(t0));
        let later = t0 + Strikes::WINDOW + Duration::from_secs(1);
        assert!(!strikes.strike(later), "a new window starts afresh");
    }
}
