//! Sessions (refresh-token families), and the refresh-token hashes they rotated away from. Both expire
//! by TTL index; queries rely on `expires_at` and never on the TTL monitor's timing.

use super::errors::OrUnavailable;
use super::rows::{collect, decode_found, encode, purge_at, IdRow, SessionRow, SpentTokenRow};
use super::MongoStore;
use crate::model::{SessionId, Timestamp, UserId};
use crate::store::{RefreshLookup, SessionRecord, SessionStore, StoreError, StoreResult};
use async_trait::async_trait;
use mongodb::bson::{doc, Bson};

/// Purge deletes in batches so one `$in` list stays small.
const PURGE_BATCH: usize = 500;

#[async_trait]
impl SessionStore for MongoStore {
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let doc = encode(&SessionRow::from_record(session), "session")?;
        self.sessions
            .insert_one(doc)
            .await
            .or_duplicate("creating session", |_| "session")?;
        Ok(())
    }

    async fn session_by_id(&self, id: SessionId) -> StoreResult<Option<SessionRecord>> {
        decode_found::<SessionRow>(self.sessions.find_one(doc! { "_id": id.to_string() }).await)
    }

    async fn find_refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshLookup>> {
        let current = self
            .sessions
            .find_one(doc! { "refresh_hash": token_hash })
            .await;
        if let Some(session) = decode_found::<SessionRow>(current)? {
            return Ok(Some(RefreshLookup::Current(session)));
        }
        let spent = self.spent_tokens.find_one(doc! { "_id": token_hash }).await;
        let Some(session_id) = decode_found::<SpentTokenRow>(spent)? else {
            return Ok(None);
        };
        Ok(self
            .session_by_id(session_id)
            .await?
            .map(RefreshLookup::Spent))
    }

    async fn rotate_refresh(
        &self,
        id: SessionId,
        old_hash: &str,
        new_hash: &str,
        used_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<bool> {
        let purge = purge_at(expires_at);
        // Spent first, then swapped: in between, the old token still reads as current (and a racing
        // rotation of it fails cleanly); the other order would leave a moment where it is neither.
        // Keyed by the hash itself: an upsert makes recording the same spent hash twice harmless.
        self.spent_tokens
            .update_one(
                doc! { "_id": old_hash },
                doc! { "$set": { "session_id": id.to_string(), "purge_at": purge } },
            )
            .upsert(true)
            .await
            .or_unavailable("recording spent refresh token")?;
        let swapped = self
            .sessions
            .update_one(
                doc! { "_id": id.to_string(), "refresh_hash": old_hash, "revoked_at": Bson::Null },
                doc! { "$set": {
                    "refresh_hash": new_hash,
                    "last_used_at": used_at.millis(),
                    "expires_at": expires_at.millis(),
                    "purge_at": purge,
                    "grace_claimed": false,
                } },
            )
            .await
            .or_duplicate("rotating refresh token", |_| "session")?;
        Ok(swapped.matched_count > 0)
    }

    async fn claim_reuse_grace(&self, id: SessionId, successor_hash: &str) -> StoreResult<bool> {
        let claimed = self
            .sessions
            .update_one(
                doc! {
                    "_id": id.to_string(),
                    "refresh_hash": successor_hash,
                    "revoked_at": Bson::Null,
                    "grace_claimed": { "$ne": true },
                },
                doc! { "$set": { "grace_claimed": true } },
            )
            .await
            .or_unavailable("claiming the refresh grace")?;
        Ok(claimed.modified_count > 0)
    }

    async fn revoke_session(&self, id: SessionId, at: Timestamp) -> StoreResult<()> {
        let id = id.to_string();
        let revoked = self
            .sessions
            .update_one(
                doc! { "_id": &id, "revoked_at": Bson::Null },
                doc! { "$set": { "revoked_at": at.millis() } },
            )
            .await
            .or_unavailable("revoking session")?;
        // Nothing matched: either already revoked (keep the first time) or missing.
        if revoked.matched_count == 0
            && self
                .sessions
                .find_one(doc! { "_id": &id })
                .await
                .or_unavailable("finding session")?
                .is_none()
        {
            return Err(StoreError::NotFound("session"));
        }
        Ok(())
    }

    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        at: Timestamp,
    ) -> StoreResult<u64> {
        let mut filter = doc! {
            "user_id": user_id.to_string(),
            "revoked_at": Bson::Null,
        };
        if let Some(keep) = except {
            filter.insert("_id", doc! { "$ne": keep.to_string() });
        }
        let revoked = self
            .sessions
            .update_many(filter, doc! { "$set": { "revoked_at": at.millis() } })
            .await
            .or_unavailable("revoking user sessions")?;
        Ok(revoked.modified_count)
    }

    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<SessionRecord>> {
        let filter = doc! {
            "user_id": user_id.to_string(),
            "revoked_at": Bson::Null,
            "expires_at": { "$gt": now.millis() },
        };
        collect::<SessionRow>(
            self.sessions
                .find(filter)
                .sort(doc! { "last_used_at": -1, "_id": -1 })
                .await,
        )
        .await
    }

    async fn purge_expired_sessions(&self, before: Timestamp) -> StoreResult<u64> {
        let expired = doc! { "expires_at": { "$lt": before.millis() } };
        let ids = collect::<IdRow>(
            self.sessions
                .find(expired.clone())
                .projection(doc! { "_id": 1 })
                .await,
        )
        .await?;
        let mut deleted = 0;
        for batch in ids.chunks(PURGE_BATCH) {
            let mut filter = expired.clone();
            filter.insert("_id", doc! { "$in": batch });
            deleted += self
                .sessions
                .delete_many(filter)
                .await
                .or_unavailable("purging sessions")?
                .deleted_count;
            self.spent_tokens
                .delete_many(doc! { "session_id": { "$in": batch } })
                .await
                .or_unavailable("purging spent refresh tokens")?;
        }
        Ok(deleted)
    }
}
