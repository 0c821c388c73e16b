//! Users: one JSON row per user, and a username index keyed by the case-folded name.

use super::rows::*;
use super::{contains_ci, decode, encode, get_row, paginate, unavailable, EmbeddedStore, MAX_ID};
use crate::domain::confusable;
use crate::model::{Role, UserId};
use crate::store::{
    username_key, Page, StoreError, StoreResult, UserPatch, UserQuery, UserRecord, UserStats,
    UserStore,
};
use async_trait::async_trait;
use redb::{Database, ReadableTable, ReadableTableMetadata};

fn load_user<T: ReadableTable<&'static str, &'static [u8]>>(
    users: &T,
    id: &str,
) -> StoreResult<Option<UserRecord>> {
    Ok(get_row::<UserRow, _>(users, id)?.map(Into::into))
}

#[async_trait]
impl UserStore for EmbeddedStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let row = encode(&UserRow::from(user))?;
        let id = user.id.to_string();
        let key = user.username.key();
        let skeleton = confusable::skeleton(user.username.as_str());
        self.write(move |txn| {
            let mut names = txn.open_table(USERNAMES).map_err(unavailable)?;
            if names.get(key.as_str()).map_err(unavailable)?.is_some() {
                return Err(StoreError::Duplicate("username"));
            }
            let mut users = txn.open_table(USERS).map_err(unavailable)?;
            if users.get(id.as_str()).map_err(unavailable)?.is_some() {
                return Err(StoreError::Duplicate("user"));
            }
            names
                .insert(key.as_str(), id.as_str())
                .map_err(unavailable)?;
            let mut skeletons = txn.open_table(USERNAME_SKELETONS).map_err(unavailable)?;
            skeletons
                .insert((skeleton.as_str(), id.as_str()), ())
                .map_err(unavailable)?;
            users
                .insert(id.as_str(), row.as_slice())
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        self.get(move |txn| {
            let users = txn.open_table(USERS).map_err(unavailable)?;
            load_user(&users, &id.to_string())
        })
        .await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let key = username_key(username);
        self.get(move |txn| {
            let names = txn.open_table(USERNAMES).map_err(unavailable)?;
            let Some(id) = names.get(key.as_str()).map_err(unavailable)? else {
                return Ok(None);
            };
            let users = txn.open_table(USERS).map_err(unavailable)?;
            load_user(&users, id.value())
        })
        .await
    }

    async fn use_totp_step(&self, id: UserId, step: u64) -> StoreResult<bool> {
        self.change_user(id, move |user| {
            let fresh = step > user.totp_last_step;
            if fresh {
                user.totp_last_step = step;
            }
            fresh
        })
        .await
    }

    async fn use_recovery_code(&self, id: UserId, hash: &str) -> StoreResult<bool> {
        let hash = hash.to_owned();
        self.change_user(id, move |user| {
            let before = user.recovery_hashes.len();
            user.recovery_hashes.retain(|h| *h != hash);
            user.recovery_hashes.len() < before
        })
        .await
    }

    async fn users_named_like(&self, skeleton: &str) -> StoreResult<Vec<UserRecord>> {
        let skeleton = skeleton.to_owned();
        self.get(move |txn| {
            let skeletons = txn.open_table(USERNAME_SKELETONS).map_err(unavailable)?;
            let users = txn.open_table(USERS).map_err(unavailable)?;
            let mut found = Vec::new();
            for entry in skeletons
                .range((skeleton.as_str(), "")..(skeleton.as_str(), MAX_ID))
                .map_err(unavailable)?
            {
                let (key, _) = entry.map_err(unavailable)?;
                if let Some(user) = load_user(&users, key.value().1)? {
                    found.push(user);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn update_user(&self, id: UserId, patch: &UserPatch) -> StoreResult<UserRecord> {
        let patch = patch.clone();
        self.write(move |txn| {
            let mut users = txn.open_table(USERS).map_err(unavailable)?;
            let key = id.to_string();
            let mut user = load_user(&users, &key)?.ok_or(StoreError::NotFound("user"))?;
            if let Some(v) = patch.display_name {
                user.display_name = v;
            }
            if let Some(v) = patch.password_hash {
                user.password_hash = v;
            }
            if let Some(v) = patch.role {
                user.role = v;
            }
            if let Some(v) = patch.disabled {
                user.disabled = v;
            }
            if let Some(v) = patch.must_change_password {
                user.must_change_password = v;
            }
            if let Some(v) = patch.last_seen_at {
                user.last_seen_at = Some(v);
            }
            if let Some(v) = patch.totp_secret {
                user.totp_secret = v;
                // A new secret (or none) starts its own count of used steps.
                user.totp_last_step = 0;
            }
            if let Some(v) = patch.totp_pending {
                user.totp_pending = v;
            }
            if let Some(v) = patch.recovery_hashes {
                user.recovery_hashes = v;
            }
            let row = encode(&UserRow::from(&user))?;
            users
                .insert(key.as_str(), row.as_slice())
                .map_err(unavailable)?;
            Ok(user)
        })
        .await
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<Page<UserRecord>> {
        let query = query.clone();
        self.read(move |txn| {
            let names = txn.open_table(USERNAMES).map_err(unavailable)?;
            let users = txn.open_table(USERS).map_err(unavailable)?;
            let needle = query.search.as_deref().map(str::to_lowercase);
            let mut matches = Vec::new();
            for entry in names.iter().map_err(unavailable)? {
                let (_, id) = entry.map_err(unavailable)?;
                let user = load_user(&users, id.value())?
                    .ok_or_else(|| StoreError::Corrupt("username index points nowhere".into()))?;
                let keep = needle.as_deref().is_none_or(|n| {
                    contains_ci(user.username.as_str(), n)
                        || contains_ci(user.display_name.as_str(), n)
                });
                if keep {
                    matches.push(user);
                }
            }
            Ok(paginate(matches, query.offset, query.limit))
        })
        .await
    }

    async fn user_stats(&self) -> StoreResult<UserStats> {
        self.read(|txn| {
            let users = txn.open_table(USERS).map_err(unavailable)?;
            let mut stats = UserStats::default();
            for entry in users.iter().map_err(unavailable)? {
                let (_, row) = entry.map_err(unavailable)?;
                let user: UserRow = decode(row.value())?;
                stats.total += 1;
                stats.disabled += u64::from(user.disabled);
                stats.admins += u64::from(user.role == Role::Admin && !user.disabled);
            }
            Ok(stats)
        })
        .await
    }
}

/// Fills the skeleton index for users stored before it existed (once; later users get their entry as
/// they are created).
pub(super) fn index_skeletons(db: &Database) -> StoreResult<()> {
    let txn = db.begin_write().map_err(unavailable)?;
    {
        let users = txn.open_table(USERS).map_err(unavailable)?;
        let mut skeletons = txn.open_table(USERNAME_SKELETONS).map_err(unavailable)?;
        if !skeletons.is_empty().map_err(unavailable)? || users.is_empty().map_err(unavailable)? {
            return Ok(());
        }
        for entry in users.iter().map_err(unavailable)? {
            let (id, row) = entry.map_err(unavailable)?;
            let user: UserRow = decode(row.value())?;
            skeletons
                .insert(
                    (confusable::skeleton(&user.username).as_str(), id.value()),
                    (),
                )
                .map_err(unavailable)?;
        }
    }
    txn.commit().map_err(unavailable)
}

impl EmbeddedStore {
    /// Runs `change` on the user inside one write and stores the result if it says it changed
    /// something (its answer is returned). `false` for a user that does not exist.
    async fn change_user<F>(&self, id: UserId, change: F) -> StoreResult<bool>
    where
        F: FnOnce(&mut UserRecord) -> bool + Send + 'static,
    {
        self.write(move |txn| {
            let mut users = txn.open_table(USERS).map_err(unavailable)?;
            let key = id.to_string();
            let Some(mut user) = load_user(&users, &key)? else {
                return Ok(false);
            };
            let changed = change(&mut user);
            if changed {
                let row = encode(&UserRow::from(&user))?;
                users
                    .insert(key.as_str(), row.as_slice())
                    .map_err(unavailable)?;
            }
            Ok(changed)
        })
        .await
    }
}
