//! What keeps this process's writers of one room from needlessly racing each other: a lock per room
//! and hints of the last numbers seen. Correctness never depends on either (the unique indexes decide);
//! they only save wasted attempts.

use crate::model::Timestamp;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Last sequences seen per room, only ever raised. Another instance may have appended since, so a hint is
/// never trusted as the maximum, only used to narrow the query for it. Bounded: when full it starts over,
/// which costs one wider query per room.
#[derive(Default)]
pub(super) struct SeqHints(Mutex<HashMap<String, i64>>);

impl SeqHints {
    const MAX_ROOMS: usize = 100_000;

    pub(super) fn get(&self, room: &str) -> i64 {
        let hints = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        hints.get(room).copied().unwrap_or(0)
    }

    pub(super) fn raise(&self, room: &str, seq: i64) {
        let mut hints = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if hints.len() >= Self::MAX_ROOMS && !hints.contains_key(room) {
            hints.clear();
        }
        let hint = hints.entry(room.to_string()).or_insert(seq);
        *hint = (*hint).max(seq);
    }

    pub(super) fn forget(&self, room: &str) {
        let mut hints = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        hints.remove(room);
    }
}

/// One async lock per room with appends in flight. Correctness never depends on it (the unique
/// (room, seq) index does that, also across processes); it only stops this process's own appenders from
/// racing each other for the same sequence number, where every lost race costs a wasted durable insert.
#[derive(Default)]
pub(super) struct RoomLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl RoomLocks {
    pub(super) async fn lock(&self, room: &str) -> RoomGuard<'_> {
        let lock = {
            let mut rooms = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            rooms.entry(room.to_string()).or_default().clone()
        };
        RoomGuard {
            locks: self,
            room: room.to_string(),
            guard: Some(lock.lock_owned().await),
        }
    }
}

/// Holds a room's append lock; dropping it forgets the room once nobody else waits for it.
pub(super) struct RoomGuard<'a> {
    locks: &'a RoomLocks,
    room: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for RoomGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut rooms = self.locks.0.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the map still holds it: no appender has it or waits for it.
        if rooms
            .get(&self.room)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            rooms.remove(&self.room);
        }
    }
}

/// A small random number in `0..bound`, for backoff jitter (no extra dependency needed).
pub(super) fn jitter(bound: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(Timestamp::now().millis());
    hasher.finish() % bound.max(1)
}
