//! Web push subscriptions: where a browser asked to be woken for a person's notifications. Each is
//! keyed by its endpoint (one per browser and site) and belongs to the session that made it, so signing
//! out of that session takes it away.

use super::StoreResult;
use crate::model::{SessionId, Timestamp, UserId};
use async_trait::async_trait;

/// One browser's push subscription, as `PushManager.subscribe` gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscriptionRecord {
    /// The push service's URL for this browser (checked: https to a public host).
    pub endpoint: String,
    pub user_id: UserId,
    pub session_id: SessionId,
    /// The browser's P-256 public key, uncompressed (65 bytes).
    pub p256dh: Vec<u8>,
    /// The browser's authentication secret (16 bytes).
    pub auth: Vec<u8>,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait PushStore: Send + Sync {
    /// Stores a subscription, replacing one with the same endpoint (the browser subscribed again,
    /// perhaps for another person). `Limit` when the person already has `max_per_user` others.
    async fn save_push_subscription(
        &self,
        subscription: &PushSubscriptionRecord,
        max_per_user: usize,
    ) -> StoreResult<()>;

    /// Every subscription of `user`, oldest first.
    async fn push_subscriptions_of(&self, user: UserId)
        -> StoreResult<Vec<PushSubscriptionRecord>>;

    /// Everyone with at least one subscription, each once (the push planner's first filter: few
    /// people subscribe compared with how many messages are sent).
    async fn push_subscribers(&self) -> StoreResult<Vec<UserId>>;

    /// Removes the subscription with this endpoint; `true` if there was one.
    async fn delete_push_subscription(&self, endpoint: &str) -> StoreResult<bool>;

    /// Removes every subscription the session made (it was signed out or revoked); answers how many.
    async fn delete_push_subscriptions_of_session(&self, session: SessionId) -> StoreResult<u64>;
}
