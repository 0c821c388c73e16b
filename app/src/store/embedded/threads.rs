//! Thread followers, keyed by (user, root); and the clean-up of a deleted room's threads.

use super::rows::*;
use super::{decode, encode, parse_id, unavailable, EmbeddedStore, MAX_ID};
use crate::model::{MessageId, RoomId, Timestamp, UserId};
use crate::store::{StoreResult, ThreadFollow, ThreadStore, MAX_FOLLOWED_THREADS};
use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};
use std::collections::HashSet;

#[async_trait]
impl ThreadStore for EmbeddedStore {
    async fn follow_thread(
        &self,
        user: UserId,
        root: MessageId,
        room: RoomId,
        read: u64,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.write(move |txn| {
            let (user, root) = (user.to_string(), root.to_string());
            let mut follows = txn.open_table(THREAD_FOLLOWS).map_err(unavailable)?;
            let key = (user.as_str(), root.as_str());
            if follows.get(key).map_err(unavailable)?.is_some() {
                return Ok(());
            }
            let row = encode(&ThreadFollowRow {
                room,
                read,
                followed_at: at,
            })?;
            follows.insert(key, row.as_slice()).map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn unfollow_thread(&self, user: UserId, root: MessageId) -> StoreResult<()> {
        self.write(move |txn| {
            let (user, root) = (user.to_string(), root.to_string());
            let mut follows = txn.open_table(THREAD_FOLLOWS).map_err(unavailable)?;
            follows
                .remove((user.as_str(), root.as_str()))
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn followed_threads(&self, user: UserId) -> StoreResult<Vec<ThreadFollow>> {
        self.read(move |txn| {
            let follows = txn.open_table(THREAD_FOLLOWS).map_err(unavailable)?;
            let user = user.to_string();
            let u = user.as_str();
            let mut list = Vec::new();
            for entry in follows.range((u, "")..(u, MAX_ID)).map_err(unavailable)? {
                let (key, row) = entry.map_err(unavailable)?;
                let row: ThreadFollowRow = decode(row.value())?;
                list.push(row.into_follow(parse_id(key.value().1)?));
            }
            list.sort_by(|a, b| b.followed_at.cmp(&a.followed_at).then(b.root.cmp(&a.root)));
            list.truncate(MAX_FOLLOWED_THREADS);
            Ok(list)
        })
        .await
    }

    async fn thread_follow(
        &self,
        user: UserId,
        root: MessageId,
    ) -> StoreResult<Option<ThreadFollow>> {
        self.get(move |txn| {
            let follows = txn.open_table(THREAD_FOLLOWS).map_err(unavailable)?;
            let (u, r) = (user.to_string(), root.to_string());
            let Some(row) = follows.get((u.as_str(), r.as_str())).map_err(unavailable)? else {
                return Ok(None);
            };
            let row: ThreadFollowRow = decode(row.value())?;
            Ok(Some(row.into_follow(root)))
        })
        .await
    }

    async fn mark_thread_read(&self, user: UserId, root: MessageId, read: u64) -> StoreResult<()> {
        self.write(move |txn| {
            let (user, root) = (user.to_string(), root.to_string());
            let mut follows = txn.open_table(THREAD_FOLLOWS).map_err(unavailable)?;
            let key = (user.as_str(), root.as_str());
            let found = follows.get(key).map_err(unavailable)?;
            let Some(mut row) = found
                .map(|g| decode::<ThreadFollowRow>(g.value()))
                .transpose()?
            else {
                return Ok(());
            };
            if read > row.read {
                row.read = read;
                let bytes = encode(&row)?;
                follows.insert(key, bytes.as_slice()).map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }
}

/// Removes what a deleted room's threads left outside the room's own ranges: the replies stored under
/// their roots (with their indexes), their nonces, the thread index and the follows of `roots` (the
/// roots of the room's messages; the lanes of replies only in a thread are added here).
pub(super) fn purge_room_threads(
    txn: &WriteTransaction,
    room: &str,
    mut roots: HashSet<String>,
) -> StoreResult<()> {
    let mut places = Vec::new();
    {
        let feed = txn.open_table(REPLY_REVS).map_err(unavailable)?;
        for entry in feed
            .range((room, 0u64)..=(room, u64::MAX))
            .map_err(unavailable)?
        {
            let (_, place) = entry.map_err(unavailable)?;
            let (lane, key) = place.value();
            roots.insert(lane.to_owned());
            places.push((lane.to_owned(), key));
        }
    }
    for (lane, key) in &places {
        let removed = txn
            .open_table(MESSAGES)
            .map_err(unavailable)?
            .remove((lane.as_str(), *key))
            .map_err(unavailable)?
            .map(|row| decode::<MessageRow>(row.value()))
            .transpose()?;
        let Some(reply) = removed else { continue };
        let id = reply.id.to_string();
        super::messages::unindex_mentions(txn, &reply.mentions, reply.created_at.0, &id, room)?;
        txn.open_table(MESSAGE_IDS)
            .map_err(unavailable)?
            .remove(id.as_str())
            .map_err(unavailable)?;
        txn.open_table(MESSAGE_TIMES)
            .map_err(unavailable)?
            .remove((reply.created_at.0, id.as_str()))
            .map_err(unavailable)?;
    }
    txn.open_table(REPLY_REVS)
        .map_err(unavailable)?
        .retain_in((room, 0u64)..=(room, u64::MAX), |_, _| false)
        .map_err(unavailable)?;
    let mut nonces = txn.open_table(NONCES).map_err(unavailable)?;
    let mut threads = txn.open_table(THREAD_REPLIES).map_err(unavailable)?;
    for root in &roots {
        let r = root.as_str();
        nonces
            .retain_in((r, "", "")..(r, MAX_ID, ""), |_, _| false)
            .map_err(unavailable)?;
        threads
            .retain_in((r, 0u64)..=(r, u64::MAX), |_, _| false)
            .map_err(unavailable)?;
    }
    // Follows name their room in the row: a scan (deleting a room is a rare admin action).
    let mut follows = txn.open_table(THREAD_FOLLOWS).map_err(unavailable)?;
    follows
        .retain(|(_, root), row| {
            let in_room = decode::<ThreadFollowRow>(row).is_ok_and(|r| r.room.to_string() == room);
            !(in_room || roots.contains(root))
        })
        .map_err(unavailable)?;
    Ok(())
}

impl ThreadFollowRow {
    fn into_follow(self, root: MessageId) -> ThreadFollow {
        ThreadFollow {
            root,
            room: self.room,
            read: self.read,
            followed_at: self.followed_at,
        }
    }
}
