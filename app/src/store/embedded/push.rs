//! Push subscriptions: the rows by endpoint, and the endpoints of each person and each session.

use super::rows::*;
use super::{decode, encode, unavailable, EmbeddedStore};
use crate::model::{SessionId, Timestamp, UserId};
use crate::store::{PushStore, PushSubscriptionRecord, StoreError, StoreResult};
use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

/// Above every endpoint in a range over (owner, endpoint) keys.
const LAST: &str = "\u{10FFFF}";

#[derive(Serialize, Deserialize)]
struct PushRow {
    user_id: UserId,
    session_id: SessionId,
    p256dh: Vec<u8>,
    auth: Vec<u8>,
    created_at: Timestamp,
}

fn record(endpoint: &str, row: PushRow) -> PushSubscriptionRecord {
    PushSubscriptionRecord {
        endpoint: endpoint.to_owned(),
        user_id: row.user_id,
        session_id: row.session_id,
        p256dh: row.p256dh,
        auth: row.auth,
        created_at: row.created_at,
    }
}

/// Removes one subscription and its index entries; `false` if there was none.
fn remove(txn: &WriteTransaction, endpoint: &str) -> StoreResult<bool> {
    let mut subscriptions = txn.open_table(PUSH_SUBSCRIPTIONS).map_err(unavailable)?;
    let Some(old) = subscriptions.remove(endpoint).map_err(unavailable)? else {
        return Ok(false);
    };
    let old: PushRow = decode(old.value())?;
    let (user, session) = (old.user_id.to_string(), old.session_id.to_string());
    let mut by_user = txn.open_table(USER_PUSH).map_err(unavailable)?;
    by_user
        .remove((user.as_str(), endpoint))
        .map_err(unavailable)?;
    let mut by_session = txn.open_table(SESSION_PUSH).map_err(unavailable)?;
    by_session
        .remove((session.as_str(), endpoint))
        .map_err(unavailable)?;
    Ok(true)
}

#[async_trait]
impl PushStore for EmbeddedStore {
    async fn save_push_subscription(
        &self,
        subscription: &PushSubscriptionRecord,
        max_per_user: usize,
    ) -> StoreResult<()> {
        let subscription = subscription.clone();
        self.write(move |txn| {
            let endpoint = subscription.endpoint.as_str();
            let user = subscription.user_id.to_string();
            {
                let by_user = txn.open_table(USER_PUSH).map_err(unavailable)?;
                let mut others = 0;
                for entry in by_user
                    .range((user.as_str(), "")..(user.as_str(), LAST))
                    .map_err(unavailable)?
                {
                    let (key, _) = entry.map_err(unavailable)?;
                    if key.value().1 != endpoint {
                        others += 1;
                    }
                }
                if others >= max_per_user {
                    return Err(StoreError::Limit(
                        "This account has push notifications on too many devices already.",
                    ));
                }
            }
            remove(txn, endpoint)?;
            let row = encode(&PushRow {
                user_id: subscription.user_id,
                session_id: subscription.session_id,
                p256dh: subscription.p256dh.clone(),
                auth: subscription.auth.clone(),
                created_at: subscription.created_at,
            })?;
            let session = subscription.session_id.to_string();
            let mut subscriptions = txn.open_table(PUSH_SUBSCRIPTIONS).map_err(unavailable)?;
            subscriptions
                .insert(endpoint, row.as_slice())
                .map_err(unavailable)?;
            let mut by_user = txn.open_table(USER_PUSH).map_err(unavailable)?;
            by_user
                .insert((user.as_str(), endpoint), ())
                .map_err(unavailable)?;
            let mut by_session = txn.open_table(SESSION_PUSH).map_err(unavailable)?;
            by_session
                .insert((session.as_str(), endpoint), ())
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn push_subscriptions_of(
        &self,
        user: UserId,
    ) -> StoreResult<Vec<PushSubscriptionRecord>> {
        self.get(move |txn| {
            let user = user.to_string();
            let by_user = txn.open_table(USER_PUSH).map_err(unavailable)?;
            let subscriptions = txn.open_table(PUSH_SUBSCRIPTIONS).map_err(unavailable)?;
            let mut found = Vec::new();
            for entry in by_user
                .range((user.as_str(), "")..(user.as_str(), LAST))
                .map_err(unavailable)?
            {
                let (key, _) = entry.map_err(unavailable)?;
                let endpoint = key.value().1;
                let row = subscriptions
                    .get(endpoint)
                    .map_err(unavailable)?
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "push subscription {endpoint:?} is indexed but missing"
                        ))
                    })?;
                found.push(record(endpoint, decode(row.value())?));
            }
            found.sort_by_key(|s| s.created_at);
            Ok(found)
        })
        .await
    }

    async fn push_subscribers(&self) -> StoreResult<Vec<UserId>> {
        self.get(move |txn| {
            let by_user = txn.open_table(USER_PUSH).map_err(unavailable)?;
            let mut users: Vec<UserId> = Vec::new();
            // Keys are ordered by person: each one's entries are next to each other.
            let mut last = String::new();
            for entry in by_user.iter().map_err(unavailable)? {
                let (key, _) = entry.map_err(unavailable)?;
                let user = key.value().0;
                if user != last {
                    users.push(user.parse().map_err(|_| {
                        StoreError::Corrupt(format!("push subscriber {user:?} is not a user id"))
                    })?);
                    last = user.to_owned();
                }
            }
            Ok(users)
        })
        .await
    }

    async fn delete_push_subscription(&self, endpoint: &str) -> StoreResult<bool> {
        let endpoint = endpoint.to_owned();
        self.write(move |txn| remove(txn, &endpoint)).await
    }

    async fn delete_push_subscriptions_of_session(&self, session: SessionId) -> StoreResult<u64> {
        self.write(move |txn| {
            let session = session.to_string();
            let endpoints: Vec<String> = {
                let by_session = txn.open_table(SESSION_PUSH).map_err(unavailable)?;
                let mut endpoints = Vec::new();
                for entry in by_session
                    .range((session.as_str(), "")..(session.as_str(), LAST))
                    .map_err(unavailable)?
                {
                    let (key, _) = entry.map_err(unavailable)?;
                    endpoints.push(key.value().1.to_owned());
                }
                endpoints
            };
            let mut removed = 0;
            for endpoint in endpoints {
                removed += u64::from(remove(txn, &endpoint)?);
            }
            Ok(removed)
        })
        .await
    }
}
