//! Data other parts of the server keep in memory, and telling them when it changed. A change made on
//! any instance reaches the caches here at once and those of every other instance through a peer
//! event; a lost bus (events may have been missed) reaches them as "forget everything".
//!
//! Two kinds of cache listen: a whole set read at once (who has a push subscription) compares a
//! generation, which every change moves, with the one it read under; a cache of single records
//! (sessions, accounts) is told which record to forget ([`Forget`]).

use super::{Hub, PeerEvent};
use crate::model::{SessionId, UserId};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// What changed in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cached {
    /// Who has at least one web push subscription (the push planner's first filter).
    PushSubscribers,
    /// One session (revoked, renewed).
    Session(SessionId),
    /// Every session of a person (all revoked at once).
    SessionsOf(UserId),
    /// A person's account (role, disabled, name, picture, password, two-factor state).
    Account(UserId),
}

/// A cache of single records, told what to forget.
pub trait Forget: Send + Sync {
    fn forget(&self, what: Cached);
    fn forget_all(&self);
}

#[derive(Default)]
pub(super) struct Changes {
    push_subscribers: AtomicU64,
    caches: std::sync::RwLock<Vec<Weak<dyn Forget>>>,
}

impl Changes {
    pub(super) fn apply(&self, what: Cached) {
        if what == Cached::PushSubscribers {
            self.push_subscribers.fetch_add(1, Ordering::AcqRel);
        }
        for cache in self.caches() {
            cache.forget(what);
        }
    }

    pub(super) fn apply_all(&self) {
        self.push_subscribers.fetch_add(1, Ordering::AcqRel);
        for cache in self.caches() {
            cache.forget_all();
        }
    }

    fn caches(&self) -> Vec<Arc<dyn Forget>> {
        let caches = self.caches.read().unwrap_or_else(|e| e.into_inner());
        caches.iter().filter_map(Weak::upgrade).collect()
    }
}

impl Hub {
    /// `what` changed in the store (call after the write): caches of it here and on every other
    /// instance read it again.
    pub fn changed(&self, what: Cached) {
        self.changes.apply(what);
        self.tell_peers(PeerEvent::Changed { what });
    }

    /// The generation of the push subscriber set: read it before reading the set, and read the set
    /// again once this moved (a change that lands while it is read then shows at the next look).
    pub fn push_subscribers_generation(&self) -> u64 {
        self.changes.push_subscribers.load(Ordering::Acquire)
    }

    /// Tells `cache` about every change from now on (for as long as it lives).
    pub fn watch(&self, cache: Arc<dyn Forget>) {
        let mut caches = self
            .changes
            .caches
            .write()
            .unwrap_or_else(|e| e.into_inner());
        caches.retain(|c| c.strong_count() > 0);
        caches.push(Arc::downgrade(&cache));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_here_or_on_another_instance_moves_the_generation() {
        let hub = Hub::new(8);
        let before = hub.push_subscribers_generation();
        hub.changed(Cached::PushSubscribers);
        let local = hub.push_subscribers_generation();
        assert_ne!(before, local);
        hub.apply_remote(
            "other",
            PeerEvent::Changed {
                what: Cached::PushSubscribers,
            },
        );
        assert_ne!(local, hub.push_subscribers_generation());
        // Other changes leave it alone.
        let now = hub.push_subscribers_generation();
        hub.changed(Cached::Account(UserId::new()));
        assert_eq!(now, hub.push_subscribers_generation());
    }
}
