//! Users: one JSON row per user, and a username index keyed by the case-folded name.

use super::rows::*;
use super::{contains_ci, decode, encode, get_row, paginate, unavailable, EmbeddedStore};
use crate::model::{Role, UserId};
use crate::store::{
    username_key, Page, StoreError, StoreResult, UserPatch, UserQuery, UserRecord, UserStats,
    UserStore,
};
use async_trait::async_trait;
use redb::ReadableTable;

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
