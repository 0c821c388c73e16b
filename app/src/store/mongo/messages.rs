//! Messages, with gap-free per-room sequences decided by the unique (room, seq) index: correct across
//! any number of instances without a counter document.

use super::errors::{clashing_index, duplicate_key_message, store_error, OrUnavailable};
use super::indexes::SEQ_INDEX;
use super::rows::{collect, decode_found, encode, seq_from_db, seq_to_db, MessageRow, Row};
use super::MongoStore;
use crate::domain::MessageBody;
use crate::model::{MessageId, RoomId, Timestamp};
use crate::store::{
    clamp_limit, Appended, HistoryQuery, MessageRecord, MessageStats, MessageStore, NewMessage,
    StoreError, StoreResult,
};
use async_trait::async_trait;
use mongodb::bson::{doc, Document};
use mongodb::options::ReturnDocument;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Bounded retries when concurrent appends race for the same sequence number.
const APPEND_ATTEMPTS: u32 = 1_000;

#[async_trait]
impl MessageStore for MongoStore {
    /// Gap-free sequences without a counter: each attempt inserts `max(seq) + 1`, and the unique
    /// (room, seq) index lets exactly one concurrent writer (of any process) win; the others re-read and
    /// retry. A sequence number is only ever consumed by a successful insert, so none is ever skipped.
    async fn append_message(&self, message: &NewMessage) -> StoreResult<Appended> {
        let room = message.room_id.to_string();
        let author = message.author_id.to_string();
        let by_nonce =
            doc! { "room_id": &room, "author_id": &author, "nonce": message.nonce.as_str() };
        if let Some(existing) = self.message_by_nonce(&by_nonce).await? {
            return Ok(Appended {
                message: existing,
                created: false,
            });
        }
        let _room_lock = self.append_locks.lock(&room).await;
        // Holding the room lock, this process's own hint is usually exact: try the next number straight
        // away and only ask the server once a clash shows another instance got there first.
        let mut next = match self.seq_hints.get(&room) {
            0 => self.max_seq(&room).await? + 1,
            hint => hint + 1,
        };
        for attempt in 0..APPEND_ATTEMPTS {
            if attempt >= 3 {
                let spread = 2 + u64::from(attempt.min(20));
                tokio::time::sleep(Duration::from_millis(jitter(spread))).await;
            }
            let row = MessageRow {
                id: MessageId::new().to_string(),
                room_id: room.clone(),
                seq: next,
                author_id: author.clone(),
                body: message.body.as_str().to_owned(),
                nonce: message.nonce.as_str().to_owned(),
                created_at: message.created_at.millis(),
                edited_at: None,
                deleted_at: None,
            };
            let doc = encode(&row, "message")?;
            let err = match self.messages_durable.insert_one(doc).await {
                Ok(_) => {
                    self.seq_hints.raise(&room, row.seq);
                    return Ok(Appended {
                        message: row.into_record()?,
                        created: true,
                    });
                }
                Err(err) => err,
            };
            let Some(clash) = duplicate_key_message(&err) else {
                return Err(store_error("appending message", &err));
            };
            if clashing_index(clash) == Some(SEQ_INDEX) {
                next = self.max_seq(&room).await? + 1;
                continue;
            }
            // The nonce index (or a clash we cannot name): a concurrent call with this nonce may have won.
            if let Some(existing) = self.message_by_nonce(&by_nonce).await? {
                return Ok(Appended {
                    message: existing,
                    created: false,
                });
            }
        }
        Err(StoreError::Unavailable(format!(
            "appending message: no free sequence after {APPEND_ATTEMPTS} attempts"
        )))
    }

    async fn message_by_id(&self, id: MessageId) -> StoreResult<Option<MessageRecord>> {
        decode_found::<MessageRow>(self.messages.find_one(doc! { "_id": id.to_string() }).await)
    }

    async fn history(&self, room: RoomId, query: HistoryQuery) -> StoreResult<Vec<MessageRecord>> {
        let mut filter = doc! { "room_id": room.to_string() };
        let mut range = Document::new();
        if let Some(before) = query.before {
            range.insert("$lt", seq_to_db(before));
        }
        if let Some(after) = query.after {
            range.insert("$gt", seq_to_db(after));
        }
        if !range.is_empty() {
            filter.insert("seq", range);
        }
        // With `after`, the oldest matches come first; otherwise the newest, read backwards.
        let oldest_first = query.after.is_some();
        let mut messages = collect::<MessageRow>(
            self.messages
                .find(filter)
                .sort(doc! { "seq": if oldest_first { 1 } else { -1 } })
                .limit(i64::from(clamp_limit(query.limit)))
                .await,
        )
        .await?;
        if !oldest_first {
            messages.reverse();
        }
        Ok(messages)
    }

    async fn edit_message(
        &self,
        id: MessageId,
        body: &MessageBody,
        at: Timestamp,
    ) -> StoreResult<MessageRecord> {
        self.update_message(id, doc! { "body": body.as_str(), "edited_at": at.millis() })
            .await
    }

    async fn delete_message(&self, id: MessageId, at: Timestamp) -> StoreResult<MessageRecord> {
        self.update_message(id, doc! { "body": "", "deleted_at": at.millis() })
            .await
    }

    async fn last_seq(&self, room: RoomId) -> StoreResult<u64> {
        seq_from_db(self.max_seq(&room.to_string()).await?)
    }

    async fn message_stats(&self, since: Timestamp) -> StoreResult<MessageStats> {
        let count = |filter: Document| async {
            self.messages
                .count_documents(filter)
                .await
                .or_unavailable("counting messages")
        };
        Ok(MessageStats {
            total: count(Document::new()).await?,
            since: count(doc! { "created_at": { "$gte": since.millis() } }).await?,
        })
    }
}

impl MongoStore {
    pub(super) async fn update_message(
        &self,
        id: MessageId,
        set: Document,
    ) -> StoreResult<MessageRecord> {
        let updated = self
            .messages_durable
            .find_one_and_update(doc! { "_id": id.to_string() }, doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await;
        decode_found::<MessageRow>(updated)?.ok_or(StoreError::NotFound("message"))
    }

    pub(super) async fn message_by_nonce(
        &self,
        filter: &Document,
    ) -> StoreResult<Option<MessageRecord>> {
        decode_found::<MessageRow>(self.messages.find_one(filter.clone()).await)
    }

    /// The room's highest sequence as stored (0 when empty).
    ///
    /// Sequences only grow (deleted messages keep theirs), so a hint seen earlier is a lower bound and
    /// the query only has to look at `seq >= hint`: one index step on MongoDB, and a small range scan
    /// instead of a sort of the whole room on servers with weaker planners.
    pub(super) async fn max_seq(&self, room: &str) -> StoreResult<i64> {
        let hint = self.seq_hints.get(room);
        let last = self
            .messages
            .find_one(doc! { "room_id": room, "seq": { "$gte": hint } })
            .sort(doc! { "seq": -1 })
            .projection(doc! { "seq": 1 })
            .await
            .or_unavailable("reading last sequence")?;
        match last {
            // Nothing at or above the hint: the room is empty, or it was deleted and the hint is void.
            None => {
                self.seq_hints.forget(room);
                Ok(0)
            }
            Some(doc) => {
                let last = doc
                    .get_i64("seq")
                    .map_err(|e| StoreError::Corrupt(format!("message seq: {e}")))?;
                self.seq_hints.raise(room, last);
                Ok(last)
            }
        }
    }
}

/// Last sequences seen per room, only ever raised. Another instance may have appended since, so a hint is
/// never trusted as the maximum, only used to narrow the query for it. Bounded: when full it starts over,
/// which costs one wider query per room.
#[derive(Default)]
pub(super) struct SeqHints(Mutex<HashMap<String, i64>>);

impl SeqHints {
    const MAX_ROOMS: usize = 100_000;

    fn get(&self, room: &str) -> i64 {
        let hints = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        hints.get(room).copied().unwrap_or(0)
    }

    fn raise(&self, room: &str, seq: i64) {
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
    async fn lock(&self, room: &str) -> RoomGuard<'_> {
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
struct RoomGuard<'a> {
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
fn jitter(bound: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(Timestamp::now().millis());
    hasher.finish() % bound.max(1)
}
