//! Messages: rows keyed by (room, sequence), with indexes by id, by time and by client nonce, and the
//! per-room sequence counter that the single writer makes gap-free.

use super::rows::*;
use super::{decode, encode, unavailable, EmbeddedStore};
use crate::domain::MessageBody;
use crate::model::{MessageId, RoomId, Timestamp};
use crate::store::{
    clamp_limit, Appended, HistoryQuery, MessageRecord, MessageStats, MessageStore, NewMessage,
    StoreError, StoreResult,
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

fn put_message(txn: &WriteTransaction, message: &MessageRecord) -> StoreResult<()> {
    let row = encode(&MessageRow::from(message))?;
    let room = message.room_id.to_string();
    let mut messages = txn.open_table(MESSAGES).map_err(unavailable)?;
    messages
        .insert((room.as_str(), message.seq), row.as_slice())
        .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl MessageStore for EmbeddedStore {
    async fn append_message(&self, message: &NewMessage) -> StoreResult<Appended> {
        let new = message.clone();
        self.write(move |txn| {
            let room = new.room_id.to_string();
            let author = new.author_id.to_string();
            let mut nonces = txn.open_table(NONCES).map_err(unavailable)?;
            let existing = nonces
                .get((room.as_str(), author.as_str(), new.nonce.as_str()))
                .map_err(unavailable)?
                .map(|g| g.value());
            if let Some(seq) = existing {
                let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
                let message = load_message_at(&messages, &room, seq)?
                    .ok_or_else(|| StoreError::Corrupt("nonce index points nowhere".into()))?;
                return Ok(Appended {
                    message,
                    created: false,
                });
            }
            let mut seqs = txn.open_table(ROOM_SEQ).map_err(unavailable)?;
            let seq = seqs
                .get(room.as_str())
                .map_err(unavailable)?
                .map_or(0, |g| g.value())
                + 1;
            let message = MessageRecord {
                id: MessageId::new(),
                room_id: new.room_id,
                seq,
                author_id: new.author_id,
                body: new.body.into_string(),
                nonce: new.nonce.into_string(),
                created_at: new.created_at,
                edited_at: None,
                deleted_at: None,
            };
            let row = encode(&MessageRow::from(&message))?;
            let id = message.id.to_string();
            seqs.insert(room.as_str(), seq).map_err(unavailable)?;
            nonces
                .insert(
                    (room.as_str(), author.as_str(), message.nonce.as_str()),
                    seq,
                )
                .map_err(unavailable)?;
            let mut messages = txn.open_table(MESSAGES).map_err(unavailable)?;
            messages
                .insert((room.as_str(), seq), row.as_slice())
                .map_err(unavailable)?;
            let mut by_id = txn.open_table(MESSAGE_IDS).map_err(unavailable)?;
            by_id
                .insert(id.as_str(), (room.as_str(), seq))
                .map_err(unavailable)?;
            let mut by_time = txn.open_table(MESSAGE_TIMES).map_err(unavailable)?;
            by_time
                .insert((message.created_at.0, id.as_str()), ())
                .map_err(unavailable)?;
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

    async fn edit_message(
        &self,
        id: MessageId,
        body: &MessageBody,
        at: Timestamp,
    ) -> StoreResult<MessageRecord> {
        let body = body.clone();
        self.write(move |txn| {
            let mut message = locate_message(txn, id)?;
            message.body = body.into_string();
            message.edited_at = Some(at);
            put_message(txn, &message)?;
            Ok(message)
        })
        .await
    }

    async fn delete_message(&self, id: MessageId, at: Timestamp) -> StoreResult<MessageRecord> {
        self.write(move |txn| {
            let mut message = locate_message(txn, id)?;
            message.body.clear();
            if message.deleted_at.is_none() {
                message.deleted_at = Some(at);
            }
            put_message(txn, &message)?;
            Ok(message)
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
