//! Users: `username_key` (unique) and `display_key` hold the case-folded names for lookups and search.

use super::errors::OrUnavailable;
use super::indexes::USERNAME_INDEX;
use super::query::contains_any;
use super::rows::{collect, decode_found, encode, page, seq_to_db, UserRow};
use super::MongoStore;
use crate::model::{Role, UserId};
use crate::store::{
    username_key, Page, StoreError, StoreResult, UserPatch, UserQuery, UserRecord, UserStats,
    UserStore,
};
use async_trait::async_trait;
use mongodb::bson::{doc, Document};
use mongodb::options::ReturnDocument;

#[async_trait]
impl UserStore for MongoStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let doc = encode(&UserRow::from_record(user), "user")?;
        self.users
            .insert_one(doc)
            .await
            .or_duplicate("creating user", |index| {
                if index == USERNAME_INDEX {
                    "username"
                } else {
                    "user"
                }
            })?;
        Ok(())
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        decode_found::<UserRow>(self.users.find_one(doc! { "_id": id.to_string() }).await)
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let filter = doc! { "username_key": username_key(username) };
        decode_found::<UserRow>(self.users.find_one(filter).await)
    }

    async fn use_totp_step(&self, id: UserId, step: u64) -> StoreResult<bool> {
        let step = seq_to_db(step);
        let used = self
            .users
            .update_one(
                doc! {
                    "_id": id.to_string(),
                    "$or": [
                        { "totp_last_step": { "$lt": step } },
                        { "totp_last_step": { "$exists": false } },
                    ],
                },
                doc! { "$set": { "totp_last_step": step } },
            )
            .await
            .or_unavailable("recording a used code")?;
        Ok(used.modified_count > 0)
    }

    async fn use_recovery_code(&self, id: UserId, hash: &str) -> StoreResult<bool> {
        let used = self
            .users
            .update_one(
                doc! { "_id": id.to_string(), "recovery_hashes": hash },
                doc! { "$pull": { "recovery_hashes": hash } },
            )
            .await
            .or_unavailable("using a recovery code")?;
        Ok(used.modified_count > 0)
    }

    async fn users_named_like(&self, skeleton: &str) -> StoreResult<Vec<UserRecord>> {
        collect::<UserRow>(
            self.users
                .find(doc! { "username_skeleton": skeleton })
                .limit(100)
                .await,
        )
        .await
    }

    async fn update_user(&self, id: UserId, patch: &UserPatch) -> StoreResult<UserRecord> {
        let mut set = Document::new();
        if let Some(name) = &patch.display_name {
            set.insert("display_name", name.as_str());
            set.insert("display_key", name.as_str().to_lowercase());
        }
        if let Some(hash) = &patch.password_hash {
            set.insert("password_hash", hash.as_str());
        }
        if let Some(role) = patch.role {
            set.insert("role", role.as_str());
        }
        if let Some(disabled) = patch.disabled {
            set.insert("disabled", disabled);
        }
        if let Some(must) = patch.must_change_password {
            set.insert("must_change_password", must);
        }
        if let Some(seen) = patch.last_seen_at {
            set.insert("last_seen_at", seen.millis());
        }
        if let Some(secret) = &patch.totp_secret {
            set.insert("totp_secret", secret.as_deref());
            set.insert("totp_last_step", 0i64);
        }
        if let Some(pending) = &patch.totp_pending {
            set.insert("totp_pending", pending.as_deref());
        }
        if let Some(hashes) = &patch.recovery_hashes {
            set.insert("recovery_hashes", hashes.clone());
        }
        let filter = doc! { "_id": id.to_string() };
        let found = if set.is_empty() {
            // MongoDB rejects an empty $set; an empty patch is just a read.
            self.users.find_one(filter).await
        } else {
            self.users
                .find_one_and_update(filter, doc! { "$set": set })
                .return_document(ReturnDocument::After)
                .await
        };
        decode_found::<UserRow>(found)?.ok_or(StoreError::NotFound("user"))
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<Page<UserRecord>> {
        let filter = match &query.search {
            Some(text) => contains_any(&["username_key", "display_key"], text),
            None => Document::new(),
        };
        page::<UserRow>(
            &self.users,
            filter,
            doc! { "username_key": 1, "_id": 1 },
            query.offset,
            query.limit,
        )
        .await
    }

    async fn user_stats(&self) -> StoreResult<UserStats> {
        let count = |filter: Document| async {
            self.users
                .count_documents(filter)
                .await
                .or_unavailable("counting users")
        };
        Ok(UserStats {
            total: count(Document::new()).await?,
            disabled: count(doc! { "disabled": true }).await?,
            admins: count(doc! { "role": Role::Admin.as_str(), "disabled": false }).await?,
        })
    }
}

impl MongoStore {
    /// Gives users stored before the skeleton field existed their skeleton (a no-op once done).
    pub(super) async fn index_skeletons(&self) -> StoreResult<()> {
        #[derive(serde::Deserialize)]
        struct NameRow {
            #[serde(rename = "_id")]
            id: String,
            username: String,
        }
        let missing = doc! { "username_skeleton": { "$exists": false } };
        let mut cursor = self
            .users
            .clone_with_type::<NameRow>()
            .find(missing)
            .projection(doc! { "_id": 1, "username": 1 })
            .await
            .or_unavailable("finding users without a skeleton")?;
        use futures::TryStreamExt;
        while let Some(row) = cursor
            .try_next()
            .await
            .or_unavailable("reading users without a skeleton")?
        {
            let skeleton = crate::domain::confusable::skeleton(&row.username);
            self.users
                .update_one(
                    doc! { "_id": &row.id },
                    doc! { "$set": { "username_skeleton": skeleton } },
                )
                .await
                .or_unavailable("storing a username skeleton")?;
        }
        Ok(())
    }
}
