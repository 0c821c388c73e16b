//! Messages: rows keyed by (room, sequence), with indexes by id, by time, by client nonce and by
//! revision (the change feed), and the per-room sequence and revision counters that the single writer
//! makes gap-free. A reply only in its thread has no place in the room's sequence: it is keyed by
//! (root, the revision it was created at) instead, and its feed entries are kept in `REPLY_REVS`.

use super::rows::*;
use super::{decode, encode, unavailable, EmbeddedStore, MAX_ID};
use crate::model::{MessageId, RoomId, Timestamp, UserId};
use crate::store::{
    clamp_limit, Appended, Changed, HistoryQuery, MentionCursor, MessageChange, MessageRecord,
    MessageStats, MessageStore, NewMessage, RoomPosition, StoreError, StoreResult, ThreadLink,
};
use async_trait::async_trait;
use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

fn load_message_at<T: ReadableTable<(&'static str, u64), &'static [u8]>>(
    messages: &T,
    room: &str,
    seq: u64,
) -> StoreResult<Option<MessageRecord>> {
    match messages.get((room, seq)).map_err(unavailable)? {
        Some(row) => Ok(Some(decode::<MessageRow>(row.value())?.into())),
        None => Ok(None),
    }
}

/// Loads a message through the id index, with its location for rewriting it.
fn locate_message(txn: &WriteTransaction, id: MessageId) -> StoreResult<MessageRecord> {
    let location = {
        let by_id = txn.open_table(MESSAGE_IDS).map_err(unavailable)?;
        let found = by_id.get(id.to_string().as_str()).map_err(unavailable)?;
        found.map(|g| {
            let (room, seq) = g.value();
            (room.to_owned(), seq)
        })
    };
    let (room, seq) = location.ok_or(StoreError::NotFound("message"))?;
    let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
    load_message_at(&messages, &room, seq)?
        .ok_or_else(|| StoreError::Corrupt("message id index points nowhere".into()))
}

/// Where a message is stored in `MESSAGES`: under its room and sequence, or, for a reply only in its
/// thread, under its root and the revision it was created at.
pub(super) fn place(message: &MessageRecord) -> (String, u64) {
    match message.thread {
        Some(t) if !t.in_room => (t.root.to_string(), t.at_rev),
        _ => (message.room_id.to_string(), message.seq),
    }
}

fn put_message(txn: &WriteTransaction, message: &MessageRecord) -> StoreResult<()> {
    let row = encode(&MessageRow::from(message))?;
    let (lane, key) = place(message);
    let mut messages = txn.open_table(MESSAGES).map_err(unavailable)?;
    messages
        .insert((lane.as_str(), key), row.as_slice())
        .map_err(unavailable)?;
    Ok(())
}

/// Adds the message to the mention indexes of everyone it mentions (the per-room one counts the
/// room's sequence, so replies only in a thread stay out of it).
fn index_mentions(txn: &WriteTransaction, message: &MessageRecord) -> StoreResult<()> {
    if message.mentions.is_empty() {
        return Ok(());
    }
    let (room, id) = (message.room_id.to_string(), message.id.to_string());
    let (lane, key) = place(message);
    let mut by_time = txn.open_table(MENTIONS).map_err(unavailable)?;
    let mut by_room = txn.open_table(ROOM_MENTIONS).map_err(unavailable)?;
    for user in &message.mentions {
        let user = user.to_string();
        by_time
            .insert(
                (user.as_str(), message.created_at.0, id.as_str()),
                (lane.as_str(), key),
            )
            .map_err(unavailable)?;
        if !message.thread_only() {
            by_room
                .insert((user.as_str(), room.as_str(), message.seq), ())
                .map_err(unavailable)?;
        }
    }
    Ok(())
}

/// Takes a message (`id`, created at `at`, in `room`) out of the mention indexes of `users`. The
/// sequence comes from the time index's value.
pub(super) fn unindex_mentions(
    txn: &WriteTransaction,
    users: &[UserId],
    at: i64,
    id: &str,
    room: &str,
) -> StoreResult<()> {
    let mut by_time = txn.open_table(MENTIONS).map_err(unavailable)?;
    let mut by_room = txn.open_table(ROOM_MENTIONS).map_err(unavailable)?;
    for user in users {
        let user = user.to_string();
        let removed = by_time
            .remove((user.as_str(), at, id))
            .map_err(unavailable)?
            .and_then(|g| {
                let (lane, seq) = g.value();
                (lane == room).then_some(seq)
            });
        if let Some(seq) = removed {
            by_room
                .remove((user.as_str(), room, seq))
                .map_err(unavailable)?;
        }
    }
    Ok(())
}

/// Takes the room's next revision.
fn next_revision(txn: &WriteTransaction, room: &str) -> StoreResult<u64> {
    let mut revs = txn.open_table(ROOM_REV).map_err(unavailable)?;
    let rev = revs
        .get(room)
        .map_err(unavailable)?
        .map_or(0, |g| g.value())
        + 1;
    revs.insert(room, rev).map_err(unavailable)?;
    Ok(rev)
}

/// Moves a message in the room's change feed from its previous revision (`from`, 0 when it had none)
/// to `rev`; `place` is where it is stored.
fn move_in_feed(
    txn: &WriteTransaction,
    room: &str,
    from: u64,
    rev: u64,
    (lane, key): (&str, u64),
) -> StoreResult<()> {
    let mut feed = txn.open_table(MESSAGE_REVS).map_err(unavailable)?;
    let mut replies = txn.open_table(REPLY_REVS).map_err(unavailable)?;
    if from > 0 {
        feed.remove((room, from)).map_err(unavailable)?;
        replies.remove((room, from)).map_err(unavailable)?;
    }
    if lane == room {
        feed.insert((room, rev), key).map_err(unavailable)?;
    } else {
        replies
            .insert((room, rev), (lane, key))
            .map_err(unavailable)?;
    }
    Ok(())
}

#[async_trait]
impl MessageStore for EmbeddedStore {
    async fn append_message(&self, message: &NewMessage) -> StoreResult<Appended> {
        let new = message.clone();
        self.write(move |txn| {
            let room = new.room_id.to_string();
            let author = new.author_id.to_string();
            let thread_only = matches!(new.thread, Some((_, false)));
            // Replies only in a thread are numbered and deduplicated under their root.
            let lane = match new.thread {
                Some((root, false)) => root.to_string(),
                _ => room.clone(),
            };
            let mut nonces = txn.open_table(NONCES).map_err(unavailable)?;
            let existing = nonces
                .get((lane.as_str(), author.as_str(), new.nonce.as_str()))
                .map_err(unavailable)?
                .map(|g| g.value());
            if let Some(key) = existing {
                let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
                let message = load_message_at(&messages, &lane, key)?
                    .ok_or_else(|| StoreError::Corrupt("nonce index points nowhere".into()))?;
                return Ok(Appended {
                    message,
                    created: false,
                });
            }
            let mut seqs = txn.open_table(ROOM_SEQ).map_err(unavailable)?;
            let seq = if thread_only {
                0
            } else {
                seqs.get(room.as_str())
                    .map_err(unavailable)?
                    .map_or(0, |g| g.value())
                    + 1
            };
            let rev = next_revision(txn, &room)?;
            let key = if thread_only { rev } else { seq };
            move_in_feed(txn, &room, 0, rev, (&lane, key))?;
            let message = MessageRecord {
                id: MessageId::new(),
                room_id: new.room_id,
                seq,
                rev,
                author_id: new.author_id,
                body: new.body.into_string(),
                nonce: new.nonce.into_string(),
                created_at: new.created_at,
                edited_at: None,
                deleted_at: None,
                reactions: Vec::new(),
                edits: Vec::new(),
                mentions: dedup(new.mentions.clone()),
                thread: new.thread.map(|(root, in_room)| ThreadLink {
                    root,
                    in_room,
                    at_rev: rev,
                }),
                replies: None,
                files: new.files.clone(),
            };
            let row = encode(&MessageRow::from(&message))?;
            let id = message.id.to_string();
            if !thread_only {
                seqs.insert(room.as_str(), seq).map_err(unavailable)?;
            }
            nonces
                .insert(
                    (lane.as_str(), author.as_str(), message.nonce.as_str()),
                    key,
                )
                .map_err(unavailable)?;
            let mut messages = txn.open_table(MESSAGES).map_err(unavailable)?;
            messages
                .insert((lane.as_str(), key), row.as_slice())
                .map_err(unavailable)?;
            let mut by_id = txn.open_table(MESSAGE_IDS).map_err(unavailable)?;
            by_id
                .insert(id.as_str(), (lane.as_str(), key))
                .map_err(unavailable)?;
            if let Some((root, _)) = new.thread {
                let mut threads = txn.open_table(THREAD_REPLIES).map_err(unavailable)?;
                threads
                    .insert((root.to_string().as_str(), rev), (lane.as_str(), key))
                    .map_err(unavailable)?;
            }
            let mut by_time = txn.open_table(MESSAGE_TIMES).map_err(unavailable)?;
            by_time
                .insert((message.created_at.0, id.as_str()), ())
                .map_err(unavailable)?;
            index_mentions(txn, &message)?;
            super::search::index_message(txn, &message)?;
            Ok(Appended {
                message,
                created: true,
            })
        })
        .await
    }

    async fn message_by_id(&self, id: MessageId) -> StoreResult<Option<MessageRecord>> {
        self.get(move |txn| {
            let by_id = txn.open_table(MESSAGE_IDS).map_err(unavailable)?;
            let Some(location) = by_id.get(id.to_string().as_str()).map_err(unavailable)? else {
                return Ok(None);
            };
            let (room, seq) = location.value();
            let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
            load_message_at(&messages, room, seq)
        })
        .await
    }

    async fn history(&self, room: RoomId, query: HistoryQuery) -> StoreResult<Vec<MessageRecord>> {
        self.read(move |txn| {
            let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
            let room = room.to_string();
            let r = room.as_str();
            let limit = clamp_limit(query.limit) as usize;
            // Exclusive bounds as an inclusive seq range.
            let low = query.after.map_or(0, |a| a.saturating_add(1));
            let high = match query.before {
                Some(0) => return Ok(Vec::new()),
                Some(b) => b - 1,
                None => u64::MAX,
            };
            if low > high {
                return Ok(Vec::new());
            }
            let range = messages.range((r, low)..=(r, high)).map_err(unavailable)?;
            // With `after` set read forward from it; otherwise take the newest `limit`.
            let rows: Vec<_> = if query.after.is_some() {
                range.take(limit).collect()
            } else {
                let mut newest: Vec<_> = range.rev().take(limit).collect();
                newest.reverse();
                newest
            };
            rows.into_iter()
                .map(|entry| {
                    let (_, row) = entry.map_err(unavailable)?;
                    Ok(decode::<MessageRow>(row.value())?.into())
                })
                .collect()
        })
        .await
    }

    async fn change_message(&self, id: MessageId, change: &MessageChange) -> StoreResult<Changed> {
        let change = change.clone();
        self.write(move |txn| {
            let mut message = locate_message(txn, id)?;
            let mentioned_before = message.mentions.clone();
            let body_before = message.body.clone();
            if !change.apply(&mut message)? {
                return Ok(Changed {
                    message,
                    changed: false,
                });
            }
            let room = message.room_id.to_string();
            message.mentions = dedup(std::mem::take(&mut message.mentions));
            if message.mentions != mentioned_before {
                let id = message.id.to_string();
                unindex_mentions(txn, &mentioned_before, message.created_at.0, &id, &room)?;
                index_mentions(txn, &message)?;
            }
            if message.body != body_before || message.deleted_at.is_some() {
                let id = message.id.to_string();
                let at = message.created_at;
                super::search::unindex_message(txn, &room, (at, &id), &body_before)?;
                super::search::index_message(txn, &message)?;
            }
            let rev = next_revision(txn, &room)?;
            let (lane, key) = place(&message);
            move_in_feed(txn, &room, message.rev, rev, (&lane, key))?;
            message.rev = rev;
            put_message(txn, &message)?;
            Ok(Changed {
                message,
                changed: true,
            })
        })
        .await
    }

    async fn changes(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        self.read(move |txn| {
            let feed = txn.open_table(MESSAGE_REVS).map_err(unavailable)?;
            let reply_feed = txn.open_table(REPLY_REVS).map_err(unavailable)?;
            let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
            let room = room.to_string();
            let r = room.as_str();
            let limit = clamp_limit(limit) as usize;
            let range = (r, after.saturating_add(1))..=(r, u64::MAX);
            // The two feeds merged by revision: (rev, lane, key).
            let mut places: Vec<(u64, String, u64)> = Vec::new();
            for entry in feed.range(range.clone()).map_err(unavailable)?.take(limit) {
                let (k, seq) = entry.map_err(unavailable)?;
                places.push((k.value().1, room.clone(), seq.value()));
            }
            for entry in reply_feed.range(range).map_err(unavailable)?.take(limit) {
                let (k, place) = entry.map_err(unavailable)?;
                let (root, key) = place.value();
                places.push((k.value().1, root.to_owned(), key));
            }
            places.sort_unstable_by_key(|p| p.0);
            places.truncate(limit);
            places
                .into_iter()
                .map(|(_, lane, key)| {
                    load_message_at(&messages, &lane, key)?
                        .ok_or_else(|| StoreError::Corrupt("change feed points nowhere".into()))
                })
                .collect()
        })
        .await
    }

    async fn room_revision(&self, room: RoomId) -> StoreResult<u64> {
        self.get(move |txn| {
            let revs = txn.open_table(ROOM_REV).map_err(unavailable)?;
            Ok(revs
                .get(room.to_string().as_str())
                .map_err(unavailable)?
                .map_or(0, |g| g.value()))
        })
        .await
    }

    async fn room_position(&self, room: RoomId) -> StoreResult<RoomPosition> {
        self.get(move |txn| {
            let room = room.to_string();
            let counter = |table| -> StoreResult<u64> {
                let table = txn.open_table(table).map_err(unavailable)?;
                let value = table.get(room.as_str()).map_err(unavailable)?;
                Ok(value.map_or(0, |g| g.value()))
            };
            Ok(RoomPosition {
                last_seq: counter(ROOM_SEQ)?,
                rev: counter(ROOM_REV)?,
            })
        })
        .await
    }

    async fn mentions_of(
        &self,
        user: UserId,
        before: Option<MentionCursor>,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        self.read(move |txn| {
            let by_time = txn.open_table(MENTIONS).map_err(unavailable)?;
            let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
            let user = user.to_string();
            let u = user.as_str();
            let before_id = before.map(|c| c.id.to_string());
            let high = match (&before, &before_id) {
                (Some(c), Some(id)) => (u, c.created_at.0, id.as_str()),
                _ => (u, i64::MAX, MAX_ID),
            };
            let mut out = Vec::new();
            for entry in by_time
                .range((u, i64::MIN, "")..high)
                .map_err(unavailable)?
                .rev()
                .take(clamp_limit(limit) as usize)
            {
                let (_, place) = entry.map_err(unavailable)?;
                let (room, seq) = place.value();
                let message = load_message_at(&messages, room, seq)?
                    .ok_or_else(|| StoreError::Corrupt("mention index points nowhere".into()))?;
                out.push(message);
            }
            Ok(out)
        })
        .await
    }

    async fn count_mentions(&self, user: UserId, room: RoomId, after: u64) -> StoreResult<u64> {
        self.get(move |txn| {
            let by_room = txn.open_table(ROOM_MENTIONS).map_err(unavailable)?;
            let (user, room) = (user.to_string(), room.to_string());
            let (u, r) = (user.as_str(), room.as_str());
            let range = by_room
                .range((u, r, after.saturating_add(1))..=(u, r, u64::MAX))
                .map_err(unavailable)?;
            Ok(range.count() as u64)
        })
        .await
    }

    async fn thread_replies(
        &self,
        root: MessageId,
        before: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        self.read(move |txn| {
            let threads = txn.open_table(THREAD_REPLIES).map_err(unavailable)?;
            let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
            let root = root.to_string();
            let r = root.as_str();
            let high = match before {
                Some(0) => return Ok(Vec::new()),
                Some(b) => b - 1,
                None => u64::MAX,
            };
            let mut out = Vec::new();
            for entry in threads
                .range((r, 0)..=(r, high))
                .map_err(unavailable)?
                .rev()
                .take(clamp_limit(limit) as usize)
            {
                let (_, place) = entry.map_err(unavailable)?;
                let (lane, key) = place.value();
                let message = load_message_at(&messages, lane, key)?
                    .ok_or_else(|| StoreError::Corrupt("thread index points nowhere".into()))?;
                out.push(message);
            }
            out.reverse();
            Ok(out)
        })
        .await
    }

    async fn count_replies(&self, root: MessageId) -> StoreResult<u64> {
        self.get(move |txn| {
            let threads = txn.open_table(THREAD_REPLIES).map_err(unavailable)?;
            let root = root.to_string();
            let r = root.as_str();
            Ok(threads
                .range((r, 0)..=(r, u64::MAX))
                .map_err(unavailable)?
                .count() as u64)
        })
        .await
    }

    async fn last_seq(&self, room: RoomId) -> StoreResult<u64> {
        self.get(move |txn| {
            let seqs = txn.open_table(ROOM_SEQ).map_err(unavailable)?;
            Ok(seqs
                .get(room.to_string().as_str())
                .map_err(unavailable)?
                .map_or(0, |g| g.value()))
        })
        .await
    }

    async fn message_stats(&self, since: Timestamp) -> StoreResult<MessageStats> {
        self.read(move |txn| {
            let by_time = txn.open_table(MESSAGE_TIMES).map_err(unavailable)?;
            let total = by_time.len().map_err(unavailable)?;
            let recent = by_time.range((since.0, "")..).map_err(unavailable)?.count() as u64;
            Ok(MessageStats {
                total,
                since: recent,
            })
        })
        .await
    }
}

/// Each user once, in first-seen order.
fn dedup(mut users: Vec<UserId>) -> Vec<UserId> {
    let mut seen = std::collections::HashSet::new();
    users.retain(|u| seen.insert(*u));
    users
}
