//! Threads on MongoDB. A reply is a message document with `thread` (its root's id), `in_room` and
//! `at_rev` (the revision it was created at, which orders a thread). A reply only in its thread has
//! no place in the room's sequence; it is stored with `seq = -at_rev` so the unique (room, seq) index
//! still holds (revisions are unique in a room, and negative numbers never meet the timeline's), and
//! timeline queries only look at `seq > 0`. Followers are `thread_follows` documents, `_id`
//! "user:root", with `room_id` so deleting a room removes them.

use super::errors::{duplicate_key_message, store_error, OrUnavailable};
use super::rows::{collect, parse_id, seq_from_db, seq_to_db, Row};
use super::MongoStore;
use crate::model::{MessageId, RoomId, Timestamp, UserId};
use crate::store::{StoreResult, ThreadFollow, ThreadStore, MAX_FOLLOWED_THREADS};
use async_trait::async_trait;
use mongodb::bson::doc;
use serde::Deserialize;

#[derive(Deserialize)]
struct ThreadFollowRow {
    root_id: String,
    room_id: String,
    read: i64,
    followed_at: i64,
}

impl Row for ThreadFollowRow {
    type Record = ThreadFollow;
    const WHAT: &'static str = "thread follow";
    fn into_record(self) -> StoreResult<ThreadFollow> {
        Ok(ThreadFollow {
            root: parse_id(&self.root_id, "followed root id")?,
            room: parse_id::<RoomId>(&self.room_id, "followed room id")?,
            read: seq_from_db(self.read)?,
            followed_at: Timestamp(self.followed_at),
        })
    }
}

fn follow_id(user: UserId, root: MessageId) -> String {
    format!("{user}:{root}")
}

#[async_trait]
impl ThreadStore for MongoStore {
    async fn follow_thread(
        &self,
        user: UserId,
        root: MessageId,
        room: RoomId,
        read: u64,
        at: Timestamp,
    ) -> StoreResult<()> {
        let insert = doc! {
            "user_id": user.to_string(),
            "root_id": root.to_string(),
            "room_id": room.to_string(),
            "read": seq_to_db(read),
            "followed_at": at.millis(),
        };
        let done = self
            .thread_follows
            .update_one(
                doc! { "_id": follow_id(user, root) },
                doc! { "$setOnInsert": insert },
            )
            .upsert(true)
            .await;
        match done {
            Ok(_) => Ok(()),
            // Two first follows raced: the other one inserted it.
            Err(err) if duplicate_key_message(&err).is_some() => Ok(()),
            Err(err) => Err(store_error("following a thread", &err)),
        }
    }

    async fn unfollow_thread(&self, user: UserId, root: MessageId) -> StoreResult<()> {
        self.thread_follows
            .delete_one(doc! { "_id": follow_id(user, root) })
            .await
            .or_unavailable("unfollowing a thread")?;
        Ok(())
    }

    async fn followed_threads(&self, user: UserId) -> StoreResult<Vec<ThreadFollow>> {
        collect::<ThreadFollowRow>(
            self.thread_follows
                .find(doc! { "user_id": user.to_string() })
                .sort(doc! { "followed_at": -1, "root_id": -1 })
                .limit(MAX_FOLLOWED_THREADS as i64)
                .await,
        )
        .await
    }

    async fn thread_follow(
        &self,
        user: UserId,
        root: MessageId,
    ) -> StoreResult<Option<ThreadFollow>> {
        super::rows::decode_found::<ThreadFollowRow>(
            self.thread_follows
                .find_one(doc! { "_id": follow_id(user, root) })
                .await,
        )
    }

    async fn mark_thread_read(&self, user: UserId, root: MessageId, read: u64) -> StoreResult<()> {
        self.thread_follows
            .update_one(
                doc! { "_id": follow_id(user, root) },
                doc! { "$max": { "read": seq_to_db(read) } },
            )
            .await
            .or_unavailable("marking a thread read")?;
        Ok(())
    }
}
