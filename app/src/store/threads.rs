//! Who follows which thread, and how far they have read it. People who started a thread, replied to
//! it or were mentioned in it follow it: its new replies are unread for them until they open it.

use super::StoreResult;
use crate::model::{MessageId, RoomId, Timestamp, UserId};
use async_trait::async_trait;

/// The most threads one person's list holds (the most recently followed are kept).
pub const MAX_FOLLOWED_THREADS: usize = 500;

/// One followed thread: its root, the room it is in, and how many of its replies the follower read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadFollow {
    pub root: MessageId,
    pub room: RoomId,
    pub read: u64,
    pub followed_at: Timestamp,
}

#[async_trait]
pub trait ThreadStore: Send + Sync {
    /// Starts following (idempotent: following again keeps what was read). `read` is where reading
    /// starts for a new follower, e.g. the replies there already are when they wrote the latest.
    async fn follow_thread(
        &self,
        user: UserId,
        root: MessageId,
        room: RoomId,
        read: u64,
        at: Timestamp,
    ) -> StoreResult<()>;
    async fn unfollow_thread(&self, user: UserId, root: MessageId) -> StoreResult<()>;
    /// The threads `user` follows, most recently followed first (at most `MAX_FOLLOWED_THREADS`).
    async fn followed_threads(&self, user: UserId) -> StoreResult<Vec<ThreadFollow>>;
    async fn thread_follow(
        &self,
        user: UserId,
        root: MessageId,
    ) -> StoreResult<Option<ThreadFollow>>;
    /// Moves a follower's read count forward to `read` (never back); nothing for non-followers.
    async fn mark_thread_read(&self, user: UserId, root: MessageId, read: u64) -> StoreResult<()>;
}
