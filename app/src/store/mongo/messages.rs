//! Messages, with gap-free per-room sequences and revisions and no counter document, correct across any
//! number of instances:
//!
//! - a new message is inserted under `max(seq) + 1`; the unique (room, seq) index lets exactly one
//!   concurrent writer (of any process) have each number, the others re-read and retry, so a number is
//!   only ever consumed by a write that succeeded;
//! - revisions work the same way, with one twist: a changed message moves to a new revision, and the
//!   one it leaves must never be handed out again (readers have seen it). So each message keeps every
//!   revision it ever took in `revs`, under a unique multikey (room, revs) index, and `rev` is the last;
//! - a change is a compare-and-set on the message's `rev`: read it, apply the rule, write it back under
//!   the next revision only if nobody changed it meanwhile. One document, one atomic write: nothing is
//!   left half-done or locked when a process dies.

use super::contention::jitter;
use super::errors::{clashing_index, duplicate_key_message, store_error, OrUnavailable};
use super::indexes::{REV_INDEX, SEQ_INDEX};
use super::message_rows::{FileDoc, MessageRow};
use super::rows::{collect, decode_found, encode, seq_from_db, seq_to_db, unique_ids, Row};
use super::MongoStore;
use crate::model::{MessageId, RoomId, Timestamp, UserId};
use crate::store::{
    clamp_limit, Appended, Changed, HistoryQuery, MentionCursor, MessageChange, MessageRecord,
    MessageStats, MessageStore, NewMessage, RoomPosition, StoreError, StoreResult,
};
use async_trait::async_trait;
use mongodb::bson::{doc, Document};
use std::time::Duration;

/// Bounded retries when concurrent writers race for the same number or message.
const ATTEMPTS: u32 = 1_000;

/// The two numbers a room's messages carry, each decided by a unique index.
#[derive(Clone, Copy)]
pub(super) enum Counter {
    Seq,
    Rev,
}

impl Counter {
    fn field(self) -> &'static str {
        match self {
            Counter::Seq => "seq",
            Counter::Rev => "rev",
        }
    }
}

#[async_trait]
impl MessageStore for MongoStore {
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
        // A reply only in its thread takes no place in the room's sequence (see `threads`).
        let thread_only = matches!(message.thread, Some((_, false)));
        // Holding the room lock, this process's own hints are usually exact: try the next numbers
        // straight away and only ask the server once a clash shows another instance got there first.
        let mut seq = if thread_only {
            0
        } else {
            self.next(Counter::Seq, &room).await?
        };
        let mut rev = self.next(Counter::Rev, &room).await?;
        for attempt in 0..ATTEMPTS {
            backoff(attempt).await;
            let row = MessageRow {
                id: MessageId::new().to_string(),
                room_id: room.clone(),
                seq: if thread_only { -rev } else { seq },
                rev,
                revs: vec![rev],
                author_id: author.clone(),
                body: message.body.as_str().to_owned(),
                nonce: message.nonce.as_str().to_owned(),
                created_at: message.created_at.millis(),
                edited_at: None,
                deleted_at: None,
                reactions: Vec::new(),
                edits: Vec::new(),
                mentions: unique_ids(&message.mentions),
                thread: message.thread.map(|(root, _)| root.to_string()),
                in_room: message.thread.is_some_and(|(_, in_room)| in_room),
                at_rev: if message.thread.is_some() { rev } else { 0 },
                replies: None,
                terms: crate::domain::index_terms(message.body.as_str()),
                files: message.files.iter().map(FileDoc::of).collect(),
            };
            let doc = encode(&row, "message")?;
            let err = match self.messages_durable.insert_one(doc).await {
                Ok(_) => {
                    if !thread_only {
                        self.seq_hints.raise(&room, row.seq);
                    }
                    self.rev_hints.raise(&room, row.rev);
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
            match clashing_index(clash) {
                // A reply only in its thread is stored under its revision: another writer has it.
                Some(SEQ_INDEX) if thread_only => {
                    rev = self.max_of(Counter::Rev, &room).await? + 1;
                }
                Some(SEQ_INDEX) => seq = self.max_of(Counter::Seq, &room).await? + 1,
                Some(REV_INDEX) => rev = self.max_of(Counter::Rev, &room).await? + 1,
                // The nonce index (or a clash we cannot name): a concurrent call with this nonce
                // may have won.
                _ => {
                    if let Some(existing) = self.message_by_nonce(&by_nonce).await? {
                        return Ok(Appended {
                            message: existing,
                            created: false,
                        });
                    }
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "appending message: no free sequence after {ATTEMPTS} attempts"
        )))
    }

    async fn message_by_id(&self, id: MessageId) -> StoreResult<Option<MessageRecord>> {
        decode_found::<MessageRow>(self.messages.find_one(doc! { "_id": id.to_string() }).await)
    }

    async fn history(&self, room: RoomId, query: HistoryQuery) -> StoreResult<Vec<MessageRecord>> {
        let mut filter = doc! { "room_id": room.to_string() };
        // Replies only in a thread are stored at negative numbers (see `threads`).
        let mut range = doc! { "$gt": seq_to_db(query.after.unwrap_or(0)) };
        if let Some(before) = query.before {
            range.insert("$lt", seq_to_db(before));
        }
        filter.insert("seq", range);
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

    async fn change_message(&self, id: MessageId, change: &MessageChange) -> StoreResult<Changed> {
        let Some(mut message) = self.message_by_id(id).await? else {
            return Err(StoreError::NotFound("message"));
        };
        let room = message.room_id.to_string();
        let _room_lock = self.append_locks.lock(&room).await;
        let mut rev = self.next(Counter::Rev, &room).await?;
        for attempt in 0..ATTEMPTS {
            backoff(attempt).await;
            if attempt > 0 {
                message = self
                    .message_by_id(id)
                    .await?
                    .ok_or(StoreError::NotFound("message"))?;
            }
            let read_at = message.rev;
            if !change.apply(&mut message)? {
                return Ok(Changed {
                    message,
                    changed: false,
                });
            }
            // Past the message's own revisions too: the unique index only keeps *other* messages
            // from holding the same one.
            rev = rev.max(seq_to_db(read_at) + 1);
            message.rev = seq_from_db(rev)?;
            // Documents from before revisions have none (read as 0).
            let unchanged = if read_at == 0 {
                doc! { "_id": id.to_string(), "rev": { "$exists": false } }
            } else {
                doc! { "_id": id.to_string(), "rev": seq_to_db(read_at) }
            };
            let mut set = encode(&MessageRow::of(&message), "message")?;
            for kept in ["_id", "revs"] {
                set.remove(kept);
            }
            let update = doc! { "$set": set, "$push": { "revs": rev } };
            match self.messages_durable.update_one(unchanged, update).await {
                Ok(done) if done.matched_count == 1 => {
                    self.rev_hints.raise(&room, rev);
                    return Ok(Changed {
                        message,
                        changed: true,
                    });
                }
                // Changed by someone else since it was read: read it again (same number).
                Ok(_) => continue,
                Err(err) => match duplicate_key_message(&err).map(clashing_index) {
                    // Another writer has that revision, or had it.
                    Some(Some(REV_INDEX)) => rev = self.max_of(Counter::Rev, &room).await? + 1,
                    _ => return Err(store_error("changing message", &err)),
                },
            }
        }
        Err(StoreError::Unavailable(format!(
            "changing message: no free revision after {ATTEMPTS} attempts"
        )))
    }

    async fn changes(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        collect::<MessageRow>(
            self.messages
                .find(doc! { "room_id": room.to_string(), "rev": { "$gt": seq_to_db(after) } })
                .sort(doc! { "rev": 1 })
                .limit(i64::from(clamp_limit(limit)))
                .await,
        )
        .await
    }

    async fn room_revision(&self, room: RoomId) -> StoreResult<u64> {
        seq_from_db(self.max_of(Counter::Rev, &room.to_string()).await?)
    }

    /// Without a snapshot across the two maxima, the sequence is read on both sides of the revision:
    /// when it did not move, no message was appended in between, so the pair is consistent. A room
    /// busy enough to keep moving gets the revision read first, which can only make the reader
    /// receive a message it already counted (never miss one).
    async fn room_position(&self, room: RoomId) -> StoreResult<RoomPosition> {
        const ATTEMPTS: u32 = 5;
        let room = room.to_string();
        for _ in 0..ATTEMPTS {
            let before = self.max_of(Counter::Seq, &room).await?;
            let rev = self.max_of(Counter::Rev, &room).await?;
            let after = self.max_of(Counter::Seq, &room).await?;
            if before == after {
                return Ok(RoomPosition {
                    last_seq: seq_from_db(after)?,
                    rev: seq_from_db(rev)?,
                });
            }
        }
        let rev = self.max_of(Counter::Rev, &room).await?;
        let last_seq = self.max_of(Counter::Seq, &room).await?;
        Ok(RoomPosition {
            last_seq: seq_from_db(last_seq)?,
            rev: seq_from_db(rev)?,
        })
    }

    async fn mentions_of(
        &self,
        user: UserId,
        before: Option<MentionCursor>,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        let mut filter = doc! { "mentions": user.to_string() };
        if let Some(c) = before {
            let at = c.created_at.millis();
            filter.insert(
                "$or",
                vec![
                    doc! { "created_at": { "$lt": at } },
                    doc! { "created_at": at, "_id": { "$lt": c.id.to_string() } },
                ],
            );
        }
        collect::<MessageRow>(
            self.messages
                .find(filter)
                .sort(doc! { "created_at": -1, "_id": -1 })
                .limit(i64::from(clamp_limit(limit)))
                .await,
        )
        .await
    }

    async fn count_mentions(&self, user: UserId, room: RoomId, after: u64) -> StoreResult<u64> {
        self.messages
            .count_documents(doc! {
                "mentions": user.to_string(),
                "room_id": room.to_string(),
                "seq": { "$gt": seq_to_db(after) },
            })
            .await
            .or_unavailable("counting mentions")
    }

    async fn thread_replies(
        &self,
        root: MessageId,
        before: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        let mut filter = doc! { "thread": root.to_string() };
        if let Some(before) = before {
            filter.insert("at_rev", doc! { "$lt": seq_to_db(before) });
        }
        let mut replies = collect::<MessageRow>(
            self.messages
                .find(filter)
                .sort(doc! { "at_rev": -1 })
                .limit(i64::from(clamp_limit(limit)))
                .await,
        )
        .await?;
        replies.reverse();
        Ok(replies)
    }

    async fn count_replies(&self, root: MessageId) -> StoreResult<u64> {
        self.messages
            .count_documents(doc! { "thread": root.to_string() })
            .await
            .or_unavailable("counting replies")
    }

    async fn last_seq(&self, room: RoomId) -> StoreResult<u64> {
        seq_from_db(self.max_of(Counter::Seq, &room.to_string()).await?)
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
    pub(super) async fn message_by_nonce(
        &self,
        filter: &Document,
    ) -> StoreResult<Option<MessageRecord>> {
        decode_found::<MessageRow>(self.messages.find_one(filter.clone()).await)
    }

    /// The next number of `counter` to try in `room`: right after this process's hint (usually exact
    /// while it holds the room's lock), or after the stored maximum when it has none.
    async fn next(&self, counter: Counter, room: &str) -> StoreResult<i64> {
        match self.hints(counter).get(room) {
            0 => Ok(self.max_of(counter, room).await? + 1),
            hint => Ok(hint + 1),
        }
    }

    fn hints(&self, counter: Counter) -> &super::contention::SeqHints {
        match counter {
            Counter::Seq => &self.seq_hints,
            Counter::Rev => &self.rev_hints,
        }
    }

    /// The room's highest sequence or revision as stored (0 when empty).
    ///
    /// Both only grow (deleted messages keep their sequence; a changed message moves to a higher
    /// revision), so a hint seen earlier is a lower bound and the query only has to look at values
    /// `>= hint`: one index step on MongoDB, and a small range scan instead of a sort of the whole
    /// room on servers with weaker planners.
    pub(super) async fn max_of(&self, counter: Counter, room: &str) -> StoreResult<i64> {
        let field = counter.field();
        let hints = self.hints(counter);
        let hint = hints.get(room);
        let last = self
            .messages
            .find_one(doc! { "room_id": room, field: { "$gte": hint } })
            .sort(doc! { field: -1 })
            .projection(doc! { field: 1 })
            .await
            .or_unavailable("reading the room's last numbers")?;
        match last {
            // Nothing at or above the hint: the room is empty, or it was deleted and the hint is void.
            None => {
                hints.forget(room);
                Ok(0)
            }
            Some(doc) => {
                let last = doc
                    .get_i64(field)
                    .map_err(|e| StoreError::Corrupt(format!("message {field}: {e}")))?;
                hints.raise(room, last);
                Ok(last)
            }
        }
    }
}

/// After a few lost races, a short random pause before the next attempt.
async fn backoff(attempt: u32) {
    if attempt >= 3 {
        let spread = 2 + u64::from(attempt.min(20));
        tokio::time::sleep(Duration::from_millis(jitter(spread))).await;
    }
}
