//! Push subscriptions on MongoDB: `push_subscriptions`, one document per endpoint (`_id`), indexed by
//! person and by session. Keys are stored base64url-encoded.

use super::errors::OrUnavailable;
use super::rows::{collect, parse_id, Row};
use super::MongoStore;
use crate::model::{SessionId, Timestamp, UserId};
use crate::store::{PushStore, PushSubscriptionRecord, StoreError, StoreResult};
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::TryStreamExt;
use mongodb::bson::doc;
use serde::Deserialize;

#[derive(Deserialize)]
struct PushRow {
    #[serde(rename = "_id")]
    endpoint: String,
    user_id: String,
    session_id: String,
    p256dh: String,
    auth: String,
    created_at: i64,
}

impl Row for PushRow {
    type Record = PushSubscriptionRecord;
    const WHAT: &'static str = "push subscription";
    fn into_record(self) -> StoreResult<PushSubscriptionRecord> {
        let bytes = |text: &str, what: &str| {
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|e| StoreError::Corrupt(format!("push subscription {what}: {e}")))
        };
        Ok(PushSubscriptionRecord {
            user_id: parse_id(&self.user_id, "push subscription user id")?,
            session_id: parse_id(&self.session_id, "push subscription session id")?,
            p256dh: bytes(&self.p256dh, "p256dh")?,
            auth: bytes(&self.auth, "auth")?,
            created_at: Timestamp(self.created_at),
            endpoint: self.endpoint,
        })
    }
}

#[async_trait]
impl PushStore for MongoStore {
    async fn save_push_subscription(
        &self,
        subscription: &PushSubscriptionRecord,
        max_per_user: usize,
    ) -> StoreResult<()> {
        let user = subscription.user_id.to_string();
        // Two subscriptions saved at once may both pass this count: the bound is loose by the
        // number of devices subscribing in the same instant, which is enough to keep it bounded.
        let others = self
            .push_subscriptions
            .count_documents(doc! { "user_id": &user, "_id": { "$ne": &subscription.endpoint } })
            .await
            .or_unavailable("counting push subscriptions")?;
        if others >= max_per_user as u64 {
            return Err(StoreError::Limit(
                "This account has push notifications on too many devices already.",
            ));
        }
        let document = doc! {
            "_id": &subscription.endpoint,
            "user_id": user,
            "session_id": subscription.session_id.to_string(),
            "p256dh": URL_SAFE_NO_PAD.encode(&subscription.p256dh),
            "auth": URL_SAFE_NO_PAD.encode(&subscription.auth),
            "created_at": subscription.created_at.0,
        };
        self.push_subscriptions
            .replace_one(doc! { "_id": &subscription.endpoint }, document)
            .upsert(true)
            .await
            .or_unavailable("saving a push subscription")?;
        Ok(())
    }

    async fn push_subscriptions_of(
        &self,
        user: UserId,
    ) -> StoreResult<Vec<PushSubscriptionRecord>> {
        collect::<PushRow>(
            self.push_subscriptions
                .find(doc! { "user_id": user.to_string() })
                .sort(doc! { "created_at": 1 })
                .await,
        )
        .await
    }

    async fn push_subscribers(&self) -> StoreResult<Vec<UserId>> {
        #[derive(Deserialize)]
        struct Owner {
            user_id: String,
        }
        let mut owners = self
            .push_subscriptions
            .clone_with_type::<Owner>()
            .find(doc! {})
            .projection(doc! { "user_id": 1, "_id": 0 })
            .await
            .or_unavailable("listing push subscribers")?;
        let mut users = std::collections::BTreeSet::new();
        while let Some(owner) = owners
            .try_next()
            .await
            .or_unavailable("listing push subscribers")?
        {
            users.insert(parse_id::<UserId>(&owner.user_id, "push subscriber")?);
        }
        Ok(users.into_iter().collect())
    }

    async fn delete_push_subscription(&self, endpoint: &str) -> StoreResult<bool> {
        let deleted = self
            .push_subscriptions
            .delete_one(doc! { "_id": endpoint })
            .await
            .or_unavailable("deleting a push subscription")?;
        Ok(deleted.deleted_count > 0)
    }

    async fn delete_push_subscriptions_of_session(&self, session: SessionId) -> StoreResult<u64> {
        let deleted = self
            .push_subscriptions
            .delete_many(doc! { "session_id": session.to_string() })
            .await
            .or_unavailable("deleting a session's push subscriptions")?;
        Ok(deleted.deleted_count)
    }
}
