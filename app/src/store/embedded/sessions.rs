//! Sessions (refresh-token families): the session rows, the current and spent refresh-token hashes,
//! and an index of sessions by user.

use super::rows::*;
use super::{decode, encode, get_row, unavailable, EmbeddedStore, MAX_ID};
use crate::model::{SessionId, Timestamp, UserId};
use crate::store::{RefreshLookup, SessionRecord, SessionStore, StoreError, StoreResult};
use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};

fn load_session<T: ReadableTable<&'static str, &'static [u8]>>(
    sessions: &T,
    id: &str,
) -> StoreResult<Option<SessionRecord>> {
    Ok(get_row::<SessionRow, _>(sessions, id)?.map(Into::into))
}

fn put_session(txn: &WriteTransaction, session: &SessionRecord) -> StoreResult<()> {
    let row = encode(&SessionRow::from(session))?;
    let mut sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
    sessions
        .insert(session.id.to_string().as_str(), row.as_slice())
        .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl SessionStore for EmbeddedStore {
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let session = session.clone();
        self.write(move |txn| {
            let id = session.id.to_string();
            let user = session.user_id.to_string();
            {
                let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
                let current = txn.open_table(REFRESH_CURRENT).map_err(unavailable)?;
                if sessions.get(id.as_str()).map_err(unavailable)?.is_some()
                    || current
                        .get(session.refresh_hash.as_str())
                        .map_err(unavailable)?
                        .is_some()
                {
                    return Err(StoreError::Duplicate("session"));
                }
            }
            put_session(txn, &session)?;
            let mut current = txn.open_table(REFRESH_CURRENT).map_err(unavailable)?;
            current
                .insert(session.refresh_hash.as_str(), id.as_str())
                .map_err(unavailable)?;
            let mut by_user = txn.open_table(USER_SESSIONS).map_err(unavailable)?;
            by_user
                .insert((user.as_str(), id.as_str()), ())
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn session_by_id(&self, id: SessionId) -> StoreResult<Option<SessionRecord>> {
        self.get(move |txn| {
            let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
            load_session(&sessions, &id.to_string())
        })
        .await
    }

    async fn find_refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshLookup>> {
        let hash = token_hash.to_owned();
        self.read(move |txn| {
            let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
            let current = txn.open_table(REFRESH_CURRENT).map_err(unavailable)?;
            if let Some(id) = current.get(hash.as_str()).map_err(unavailable)? {
                return Ok(load_session(&sessions, id.value())?.map(RefreshLookup::Current));
            }
            let spent = txn.open_table(REFRESH_SPENT).map_err(unavailable)?;
            if let Some(id) = spent.get(hash.as_str()).map_err(unavailable)? {
                return Ok(load_session(&sessions, id.value())?.map(RefreshLookup::Spent));
            }
            Ok(None)
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        id: SessionId,
        old_hash: &str,
        new_hash: &str,
        used_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<bool> {
        let (old_hash, new_hash) = (old_hash.to_owned(), new_hash.to_owned());
        self.write(move |txn| {
            let key = id.to_string();
            let session = {
                let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
                load_session(&sessions, &key)?
            };
            let Some(mut session) = session else {
                return Ok(false);
            };
            if session.refresh_hash != old_hash || session.revoked_at.is_some() {
                return Ok(false);
            }
            let mut current = txn.open_table(REFRESH_CURRENT).map_err(unavailable)?;
            if current
                .get(new_hash.as_str())
                .map_err(unavailable)?
                .is_some()
            {
                return Err(StoreError::Duplicate("session"));
            }
            current.remove(old_hash.as_str()).map_err(unavailable)?;
            current
                .insert(new_hash.as_str(), key.as_str())
                .map_err(unavailable)?;
            let mut spent = txn.open_table(REFRESH_SPENT).map_err(unavailable)?;
            spent
                .insert(old_hash.as_str(), key.as_str())
                .map_err(unavailable)?;
            session.refresh_hash = new_hash;
            session.last_used_at = used_at;
            session.expires_at = expires_at;
            session.grace_claimed = false;
            put_session(txn, &session)?;
            Ok(true)
        })
        .await
    }

    async fn claim_reuse_grace(&self, id: SessionId, successor_hash: &str) -> StoreResult<bool> {
        let successor = successor_hash.to_owned();
        self.write(move |txn| {
            let session = {
                let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
                load_session(&sessions, &id.to_string())?
            };
            let Some(mut session) = session else {
                return Ok(false);
            };
            if session.refresh_hash != successor
                || session.revoked_at.is_some()
                || session.grace_claimed
            {
                return Ok(false);
            }
            session.grace_claimed = true;
            put_session(txn, &session)?;
            Ok(true)
        })
        .await
    }

    async fn revoke_session(&self, id: SessionId, at: Timestamp) -> StoreResult<()> {
        self.write(move |txn| {
            let session = {
                let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
                load_session(&sessions, &id.to_string())?
            };
            let mut session = session.ok_or(StoreError::NotFound("session"))?;
            if session.revoked_at.is_none() {
                session.revoked_at = Some(at);
                put_session(txn, &session)?;
            }
            Ok(())
        })
        .await
    }

    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        at: Timestamp,
    ) -> StoreResult<u64> {
        self.write(move |txn| {
            let user = user_id.to_string();
            let mut live = Vec::new();
            {
                let by_user = txn.open_table(USER_SESSIONS).map_err(unavailable)?;
                let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
                for entry in by_user
                    .range((user.as_str(), "")..(user.as_str(), MAX_ID))
                    .map_err(unavailable)?
                {
                    let (key, _) = entry.map_err(unavailable)?;
                    let (_, session_id) = key.value();
                    if let Some(session) = load_session(&sessions, session_id)? {
                        if session.revoked_at.is_none() && Some(session.id) != except {
                            live.push(session);
                        }
                    }
                }
            }
            for session in &mut live {
                session.revoked_at = Some(at);
                put_session(txn, session)?;
            }
            Ok(live.len() as u64)
        })
        .await
    }

    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.read(move |txn| {
            let user = user_id.to_string();
            let by_user = txn.open_table(USER_SESSIONS).map_err(unavailable)?;
            let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
            let mut live = Vec::new();
            for entry in by_user
                .range((user.as_str(), "")..(user.as_str(), MAX_ID))
                .map_err(unavailable)?
            {
                let (key, _) = entry.map_err(unavailable)?;
                if let Some(session) = load_session(&sessions, key.value().1)? {
                    if session.revoked_at.is_none() && session.expires_at > now {
                        live.push(session);
                    }
                }
            }
            live.sort_by(|a, b| b.last_used_at.cmp(&a.last_used_at).then(a.id.cmp(&b.id)));
            Ok(live)
        })
        .await
    }

    async fn purge_expired_sessions(&self, before: Timestamp) -> StoreResult<u64> {
        self.write(move |txn| {
            let mut expired = Vec::new();
            {
                let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
                for entry in sessions.iter().map_err(unavailable)? {
                    let (_, row) = entry.map_err(unavailable)?;
                    let session: SessionRow = decode(row.value())?;
                    if session.expires_at < before {
                        expired.push(SessionRecord::from(session));
                    }
                }
            }
            if expired.is_empty() {
                return Ok(0);
            }
            let ids: std::collections::HashSet<String> =
                expired.iter().map(|s| s.id.to_string()).collect();
            let mut sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
            let mut current = txn.open_table(REFRESH_CURRENT).map_err(unavailable)?;
            let mut by_user = txn.open_table(USER_SESSIONS).map_err(unavailable)?;
            for session in &expired {
                let id = session.id.to_string();
                sessions.remove(id.as_str()).map_err(unavailable)?;
                current
                    .remove(session.refresh_hash.as_str())
                    .map_err(unavailable)?;
                by_user
                    .remove((session.user_id.to_string().as_str(), id.as_str()))
                    .map_err(unavailable)?;
            }
            let mut spent = txn.open_table(REFRESH_SPENT).map_err(unavailable)?;
            spent
                .retain(|_, session_id| !ids.contains(session_id))
                .map_err(unavailable)?;
            Ok(expired.len() as u64)
        })
        .await
    }
}
