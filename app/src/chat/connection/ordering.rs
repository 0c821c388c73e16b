//! Delivering a room's messages exactly once and in sequence order, whatever order they are announced
//! in: what to do with each, and the messages held behind a gap until it fills.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a gap in a room's sequence may stay open before the missing messages are read from the store.
pub const GAP_WAIT: Duration = Duration::from_millis(500);

/// What to do with a message event, given the last sequence delivered in its room.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Deliver,
    Duplicate,
    /// Messages `after + 1 .. seq` were missed: read them from the store first.
    Gap {
        after: u64,
    },
}

pub fn classify(last_delivered: u64, seq: u64) -> Next {
    if seq <= last_delivered {
        Next::Duplicate
    } else if seq == last_delivered + 1 {
        Next::Deliver
    } else {
        Next::Gap {
            after: last_delivered,
        }
    }
}

/// One room's messages that arrived ahead of a missing one. Publishers finish in any order (a batch of
/// messages committed together is announced by as many tasks), so a gap usually fills from the hub
/// within moments; only a gap that stays open longer than `GAP_WAIT` is read from the store.
#[derive(Debug)]
pub struct Held<T> {
    items: BTreeMap<u64, T>,
    /// When the oldest still-open gap was seen.
    since: Instant,
}

impl<T> Held<T> {
    pub fn new(now: Instant) -> Self {
        Self {
            items: BTreeMap::new(),
            since: now,
        }
    }

    pub fn hold(&mut self, seq: u64, item: T) {
        self.items.insert(seq, item);
    }

    /// Everything that now follows `last` without a gap, in order; drops what `last` already covers.
    pub fn take_ready(&mut self, mut last: u64) -> Vec<(u64, T)> {
        self.items = self.items.split_off(&(last + 1));
        let mut ready = Vec::new();
        while let Some(entry) = self.items.first_entry() {
            if *entry.key() != last + 1 {
                break;
            }
            last += 1;
            ready.push((last, entry.remove()));
        }
        ready
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// When the store should be asked instead of waiting any longer.
    pub fn deadline(&self) -> Instant {
        self.since + GAP_WAIT
    }
}
