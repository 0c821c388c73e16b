//! When a client was last heard from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The latest sign of the client: a frame arriving (seen by the reader, while the connection may be
/// busy with earlier ones) or one of its frames being answered (a client waiting for the answers to a
/// long queue of its commands is not silent either).
pub struct Heard {
    start: Instant,
    millis: AtomicU64,
}

impl Heard {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            millis: AtomicU64::new(0),
        }
    }

    pub fn now(&self) {
        let millis = self.start.elapsed().as_millis() as u64;
        self.millis.store(millis, Ordering::Relaxed);
    }

    pub fn elapsed(&self) -> Duration {
        let last = self.millis.load(Ordering::Relaxed);
        self.start
            .elapsed()
            .saturating_sub(Duration::from_millis(last))
    }
}
