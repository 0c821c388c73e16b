//! Sessions and accounts as authentication reads them, kept in memory: every authenticated request
//! and every live socket's recheck needs both, and they rarely change (two store reads per request
//! otherwise, two round trips on MongoDB).
//!
//! Whoever changes a session or an account tells the hub (`Hub::changed`), which makes every instance
//! forget it at once (here directly, elsewhere through the peer bus: revocation, disabling and role
//! changes take effect on another instance as soon as its bus delivers the notice). Entries are also
//! read again after a maximum age ([`DEFAULT_MAX_AGE`]), which bounds what a change made outside the server (the admin command
//! line on MongoDB) can leave behind. A read that raced a change is not kept: every forgetting moves an
//! epoch, and a store read taken before the move is returned but not cached.

use crate::chat::hub::{Cached, Forget, Hub};
use crate::model::{SessionId, UserId};
use crate::store::{SessionRecord, UserRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an entry is trusted without a notice, unless configured (`ACCOUNT_CACHE_SECS`).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(10);
/// Entries per map; a full map starts over (cheaper than tracking use, and rare).
const CAPACITY: usize = 100_000;

#[derive(Default)]
struct Entries {
    sessions: HashMap<SessionId, (SessionRecord, Instant)>,
    users: HashMap<UserId, (UserRecord, Instant)>,
    /// Moves whenever something is forgotten.
    epoch: u64,
}

/// The epoch a store read started in: hand it back with what was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(u64);

pub struct AccountCache {
    entries: Mutex<Entries>,
    max_age: Duration,
}

impl AccountCache {
    /// A cache the hub tells about every change to a session or an account, whose entries are read
    /// again after `max_age` (zero: nothing is kept).
    pub fn watching(hub: &Hub, max_age: Duration) -> Arc<Self> {
        let cache = Arc::new(Self {
            entries: Mutex::default(),
            max_age,
        });
        hub.watch(cache.clone());
        cache
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take this before reading from the store.
    pub fn epoch(&self) -> Epoch {
        Epoch(self.lock().epoch)
    }

    pub fn session(&self, id: SessionId) -> Option<SessionRecord> {
        fresh(&self.lock().sessions, &id, self.max_age)
    }

    pub fn user(&self, id: UserId) -> Option<UserRecord> {
        fresh(&self.lock().users, &id, self.max_age)
    }

    /// Keeps `session`, read from the store in `epoch`, unless something was forgotten since.
    pub fn keep_session(&self, epoch: Epoch, session: &SessionRecord) {
        let mut entries = self.lock();
        if entries.epoch == epoch.0 && !self.max_age.is_zero() {
            insert(&mut entries.sessions, session.id, session.clone());
        }
    }

    pub fn keep_user(&self, epoch: Epoch, user: &UserRecord) {
        let mut entries = self.lock();
        if entries.epoch == epoch.0 && !self.max_age.is_zero() {
            insert(&mut entries.users, user.id, user.clone());
        }
    }
}

fn fresh<K: std::hash::Hash + Eq, V: Clone>(
    map: &HashMap<K, (V, Instant)>,
    key: &K,
    max_age: Duration,
) -> Option<V> {
    map.get(key)
        .filter(|(_, at)| at.elapsed() < max_age)
        .map(|(value, _)| value.clone())
}

fn insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, (V, Instant)>, key: K, value: V) {
    if map.len() >= CAPACITY {
        map.clear();
    }
    map.insert(key, (value, Instant::now()));
}

impl Forget for AccountCache {
    fn forget(&self, what: Cached) {
        let mut entries = self.lock();
        entries.epoch += 1;
        match what {
            Cached::Session(id) => {
                entries.sessions.remove(&id);
            }
            Cached::SessionsOf(user) => entries.sessions.retain(|_, (s, _)| s.user_id != user),
            Cached::Account(user) => {
                entries.users.remove(&user);
            }
            Cached::PushSubscribers => {}
        }
    }

    fn forget_all(&self) {
        let mut entries = self.lock();
        entries.epoch += 1;
        entries.sessions.clear();
        entries.users.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;

    fn session(user: UserId) -> SessionRecord {
        SessionRecord {
            id: SessionId::new(),
            user_id: user,
            refresh_hash: "h".into(),
            created_at: Timestamp(0),
            last_used_at: Timestamp(0),
            expires_at: Timestamp(i64::MAX),
            revoked_at: None,
            grace_claimed: false,
            user_agent: String::new(),
            ip: String::new(),
        }
    }

    #[test]
    fn a_change_told_to_the_hub_is_forgotten_and_a_read_that_raced_it_is_not_kept() {
        let hub = Hub::new(8);
        let cache = AccountCache::watching(&hub, Duration::from_secs(3600));
        let (ana, ben) = (UserId::new(), UserId::new());
        let (a1, a2, b1) = (session(ana), session(ana), session(ben));
        for s in [&a1, &a2, &b1] {
            cache.keep_session(cache.epoch(), s);
        }
        assert_eq!(cache.session(a1.id), Some(a1.clone()));

        hub.changed(Cached::Session(a1.id));
        assert_eq!(cache.session(a1.id), None);
        assert_eq!(cache.session(a2.id), Some(a2.clone()));

        // A read that started before a change is returned to its caller but not kept.
        let before = cache.epoch();
        hub.changed(Cached::SessionsOf(ana));
        cache.keep_session(before, &a1);
        assert_eq!(cache.session(a1.id), None);
        assert_eq!(cache.session(a2.id), None, "every session of Ana");
        assert_eq!(cache.session(b1.id), Some(b1.clone()), "Ben's stays");

        // Another instance's notice and a lost bus work the same way.
        hub.apply_remote(
            "other",
            crate::chat::hub::PeerEvent::Changed {
                what: Cached::Session(b1.id),
            },
        );
        assert_eq!(cache.session(b1.id), None);
        cache.keep_session(cache.epoch(), &b1);
        cache.forget_all();
        assert_eq!(cache.session(b1.id), None);
    }

    #[test]
    fn with_no_max_age_nothing_is_kept() {
        let hub = Hub::new(8);
        let cache = AccountCache::watching(&hub, Duration::ZERO);
        let s = session(UserId::new());
        cache.keep_session(cache.epoch(), &s);
        assert_eq!(cache.session(s.id), None);
    }
}
