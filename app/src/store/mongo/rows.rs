//! The documents' shapes (ids are uuid strings in `_id`, times i64 milliseconds), how each becomes a
//! record of the storage interface, and the helpers that read them.

// Rows hold what was parsed when it was written (see `crate::domain`).
#![allow(clippy::disallowed_methods)]

use super::errors::OrUnavailable;
use crate::domain::{DisplayName, RoomName, RoomTopic, Username};
use crate::model::{
    AuditId, FileId, MemberRole, Role, RoomId, RoomKind, SessionId, Timestamp, UserId,
};
use crate::store::{
    clamp_limit, AuditEntry, InvitationRecord, MembershipRecord, Page, ReadMarker, RoomRecord,
    SessionRecord, StoreError, StoreResult, UserRecord,
};
use futures::TryStreamExt;
use mongodb::bson::{self, DateTime, Document};
use mongodb::error::Error as MongoError;
use mongodb::{Collection, Cursor};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// The TTL monitor never removes a session sooner than this after its last write, so callers that write
/// historical timestamps (imports, tests) are not raced by it; queries rely on `expires_at` anyway.
const TTL_FLOOR_MILLIS: i64 = 60 * 60 * 1000;

/// A stored document's shape, and how it becomes a record of the storage interface.
pub(super) trait Row: DeserializeOwned {
    type Record;
    const WHAT: &'static str;
    fn into_record(self) -> StoreResult<Self::Record>;
}

pub(super) fn decode<R: Row>(doc: Document) -> StoreResult<R::Record> {
    bson::from_document::<R>(doc)
        .map_err(|e| StoreError::Corrupt(format!("{}: {e}", R::WHAT)))?
        .into_record()
}

pub(super) fn encode<T: Serialize>(row: &T, what: &str) -> StoreResult<Document> {
    bson::to_document(row).map_err(|e| StoreError::Corrupt(format!("encoding {what}: {e}")))
}

pub(super) fn decode_found<R: Row>(
    found: Result<Option<Document>, MongoError>,
) -> StoreResult<Option<R::Record>> {
    found.or_unavailable(R::WHAT)?.map(decode::<R>).transpose()
}

pub(super) async fn collect<R: Row>(
    cursor: Result<Cursor<Document>, MongoError>,
) -> StoreResult<Vec<R::Record>> {
    let docs: Vec<Document> = cursor
        .or_unavailable(R::WHAT)?
        .try_collect()
        .await
        .or_unavailable(R::WHAT)?;
    docs.into_iter().map(decode::<R>).collect()
}

/// One page of `filter` in `sort` order, plus the total number of matches.
pub(super) async fn page<R: Row>(
    collection: &Collection<Document>,
    filter: Document,
    sort: Document,
    offset: u64,
    limit: u32,
) -> StoreResult<Page<R::Record>> {
    let total = collection
        .count_documents(filter.clone())
        .await
        .or_unavailable(R::WHAT)?;
    let items = collect::<R>(
        collection
            .find(filter)
            .sort(sort)
            .skip(offset)
            .limit(i64::from(clamp_limit(limit)))
            .await,
    )
    .await?;
    Ok(Page { items, total })
}

pub(super) fn parse_id<I: FromStr>(raw: &str, what: &str) -> StoreResult<I> {
    raw.parse()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not a valid id: {raw:?}")))
}

pub(super) fn seq_to_db(seq: u64) -> i64 {
    // Beyond i64::MAX no real sequence exists, so saturating keeps comparisons right.
    i64::try_from(seq).unwrap_or(i64::MAX)
}

pub(super) fn seq_from_db(seq: i64) -> StoreResult<u64> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative sequence {seq}")))
}

/// When the TTL monitor may drop a session (or spent token) that expires at `expires_at`.
pub(super) fn purge_at(expires_at: Timestamp) -> DateTime {
    let floor = Timestamp::now().plus_millis(TTL_FLOOR_MILLIS);
    DateTime::from_millis(expires_at.max(floor).millis())
}

#[derive(Serialize, Deserialize)]
pub(super) struct UserRow {
    #[serde(rename = "_id")]
    pub(super) id: String,
    pub(super) username: String,
    pub(super) username_key: String,
    /// The look-alike skeleton of the username (`domain::confusable`).
    #[serde(default)]
    pub(super) username_skeleton: String,
    pub(super) display_name: String,
    pub(super) display_key: String,
    pub(super) password_hash: String,
    pub(super) role: Role,
    pub(super) disabled: bool,
    pub(super) must_change_password: bool,
    pub(super) created_at: i64,
    pub(super) last_seen_at: Option<i64>,
    #[serde(default)]
    pub(super) totp_secret: Option<String>,
    #[serde(default)]
    pub(super) totp_pending: Option<String>,
    #[serde(default)]
    pub(super) totp_last_step: i64,
    #[serde(default)]
    pub(super) recovery_hashes: Vec<String>,
    #[serde(default)]
    pub(super) avatar: Option<String>,
}

impl UserRow {
    pub(super) fn from_record(user: &UserRecord) -> Self {
        UserRow {
            id: user.id.to_string(),
            username: user.username.as_str().to_owned(),
            username_key: user.username.key(),
            username_skeleton: crate::domain::confusable::skeleton(user.username.as_str()),
            display_name: user.display_name.as_str().to_owned(),
            display_key: user.display_name.as_str().to_lowercase(),
            password_hash: user.password_hash.clone(),
            role: user.role,
            disabled: user.disabled,
            must_change_password: user.must_change_password,
            created_at: user.created_at.millis(),
            last_seen_at: user.last_seen_at.map(Timestamp::millis),
            totp_secret: user.totp_secret.clone(),
            totp_pending: user.totp_pending.clone(),
            totp_last_step: seq_to_db(user.totp_last_step),
            recovery_hashes: user.recovery_hashes.clone(),
            avatar: user.avatar.map(|a| a.to_string()),
        }
    }
}

impl Row for UserRow {
    type Record = UserRecord;
    const WHAT: &'static str = "user";
    fn into_record(self) -> StoreResult<UserRecord> {
        Ok(UserRecord {
            id: parse_id::<UserId>(&self.id, "user id")?,
            username: Username::from_stored(self.username),
            display_name: DisplayName::from_stored(self.display_name),
            password_hash: self.password_hash,
            role: self.role,
            disabled: self.disabled,
            must_change_password: self.must_change_password,
            created_at: Timestamp(self.created_at),
            last_seen_at: self.last_seen_at.map(Timestamp),
            totp_secret: self.totp_secret,
            totp_pending: self.totp_pending,
            totp_last_step: seq_from_db(self.totp_last_step)?,
            recovery_hashes: self.recovery_hashes,
            avatar: self
                .avatar
                .as_deref()
                .map(|a| parse_id::<FileId>(a, "user avatar id"))
                .transpose()?,
        })
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct SessionRow {
    #[serde(rename = "_id")]
    pub(super) id: String,
    pub(super) user_id: String,
    pub(super) refresh_hash: String,
    pub(super) created_at: i64,
    pub(super) last_used_at: i64,
    pub(super) expires_at: i64,
    /// TTL field (BSON date); see [`purge_at`].
    pub(super) purge_at: DateTime,
    pub(super) revoked_at: Option<i64>,
    #[serde(default)]
    pub(super) grace_claimed: bool,
    pub(super) user_agent: String,
    pub(super) ip: String,
}

impl SessionRow {
    pub(super) fn from_record(session: &SessionRecord) -> Self {
        SessionRow {
            id: session.id.to_string(),
            user_id: session.user_id.to_string(),
            refresh_hash: session.refresh_hash.clone(),
            created_at: session.created_at.millis(),
            last_used_at: session.last_used_at.millis(),
            expires_at: session.expires_at.millis(),
            purge_at: purge_at(session.expires_at),
            revoked_at: session.revoked_at.map(Timestamp::millis),
            grace_claimed: session.grace_claimed,
            user_agent: session.user_agent.clone(),
            ip: session.ip.clone(),
        }
    }
}

impl Row for SessionRow {
    type Record = SessionRecord;
    const WHAT: &'static str = "session";
    fn into_record(self) -> StoreResult<SessionRecord> {
        Ok(SessionRecord {
            id: parse_id::<SessionId>(&self.id, "session id")?,
            user_id: parse_id::<UserId>(&self.user_id, "session user id")?,
            refresh_hash: self.refresh_hash,
            created_at: Timestamp(self.created_at),
            last_used_at: Timestamp(self.last_used_at),
            expires_at: Timestamp(self.expires_at),
            revoked_at: self.revoked_at.map(Timestamp),
            grace_claimed: self.grace_claimed,
            user_agent: self.user_agent,
            ip: self.ip,
        })
    }
}

/// A spent refresh hash (`_id`) and the session it belonged to.
#[derive(Deserialize)]
pub(super) struct SpentTokenRow {
    pub(super) session_id: String,
}

impl Row for SpentTokenRow {
    type Record = SessionId;
    const WHAT: &'static str = "spent refresh token";
    fn into_record(self) -> StoreResult<SessionId> {
        parse_id(&self.session_id, "spent token session id")
    }
}

/// Just the `_id` of a document, for projections.
#[derive(Deserialize)]
pub(super) struct IdRow {
    #[serde(rename = "_id")]
    pub(super) id: String,
}

impl Row for IdRow {
    type Record = String;
    const WHAT: &'static str = "document id";
    fn into_record(self) -> StoreResult<String> {
        Ok(self.id)
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct RoomRow {
    #[serde(rename = "_id")]
    pub(super) id: String,
    pub(super) kind: RoomKind,
    pub(super) name: String,
    pub(super) name_key: String,
    pub(super) topic: String,
    pub(super) created_by: String,
    pub(super) created_at: i64,
    pub(super) archived: bool,
    // Absent rather than null for non-direct rooms, so the partial unique index ignores them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) direct_key: Option<String>,
}

impl RoomRow {
    pub(super) fn from_record(room: &RoomRecord) -> Self {
        RoomRow {
            id: room.id.to_string(),
            kind: room.kind,
            name: room.name.as_str().to_owned(),
            name_key: room.name.as_str().to_lowercase(),
            topic: room.topic.as_str().to_owned(),
            created_by: room.created_by.to_string(),
            created_at: room.created_at.millis(),
            archived: room.archived,
            direct_key: room.direct_key.clone(),
        }
    }
}

impl Row for RoomRow {
    type Record = RoomRecord;
    const WHAT: &'static str = "room";
    fn into_record(self) -> StoreResult<RoomRecord> {
        Ok(RoomRecord {
            id: parse_id::<RoomId>(&self.id, "room id")?,
            kind: self.kind,
            name: RoomName::from_stored(self.name),
            topic: RoomTopic::from_stored(self.topic),
            created_by: parse_id::<UserId>(&self.created_by, "room creator id")?,
            created_at: Timestamp(self.created_at),
            archived: self.archived,
            direct_key: self.direct_key,
        })
    }
}

/// Memberships keep MongoDB's generated `_id`; the pair is unique through its own index.
#[derive(Serialize, Deserialize)]
pub(super) struct MembershipRow {
    pub(super) room_id: String,
    pub(super) user_id: String,
    pub(super) role: MemberRole,
    pub(super) joined_at: i64,
}

impl MembershipRow {
    pub(super) fn from_record(member: &MembershipRecord) -> Self {
        MembershipRow {
            room_id: member.room_id.to_string(),
            user_id: member.user_id.to_string(),
            role: member.role,
            joined_at: member.joined_at.millis(),
        }
    }
}

impl Row for MembershipRow {
    type Record = MembershipRecord;
    const WHAT: &'static str = "membership";
    fn into_record(self) -> StoreResult<MembershipRecord> {
        Ok(MembershipRecord {
            room_id: parse_id::<RoomId>(&self.room_id, "membership room id")?,
            user_id: parse_id::<UserId>(&self.user_id, "membership user id")?,
            role: self.role,
            joined_at: Timestamp(self.joined_at),
        })
    }
}

#[derive(Deserialize)]
pub(super) struct ReadMarkerRow {
    pub(super) room_id: String,
    pub(super) seq: i64,
}

impl Row for ReadMarkerRow {
    type Record = ReadMarker;
    const WHAT: &'static str = "read marker";
    fn into_record(self) -> StoreResult<ReadMarker> {
        Ok(ReadMarker {
            room_id: parse_id::<RoomId>(&self.room_id, "read marker room id")?,
            seq: seq_from_db(self.seq)?,
        })
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct AuditRow {
    #[serde(rename = "_id")]
    pub(super) id: String,
    pub(super) at: i64,
    pub(super) actor_id: Option<String>,
    pub(super) actor_name: String,
    pub(super) actor_key: String,
    pub(super) action: String,
    pub(super) target: String,
    pub(super) ip: String,
    pub(super) details: String,
}

impl AuditRow {
    pub(super) fn from_record(entry: &AuditEntry) -> Self {
        AuditRow {
            id: entry.id.to_string(),
            at: entry.at.millis(),
            actor_id: entry.actor_id.map(|id| id.to_string()),
            actor_name: entry.actor_name.clone(),
            actor_key: entry.actor_name.to_lowercase(),
            action: entry.action.clone(),
            target: entry.target.clone(),
            ip: entry.ip.clone(),
            details: entry.details.clone(),
        }
    }
}

impl Row for AuditRow {
    type Record = AuditEntry;
    const WHAT: &'static str = "audit entry";
    fn into_record(self) -> StoreResult<AuditEntry> {
        let actor_id = match self.actor_id.as_deref() {
            Some(raw) => Some(parse_id::<UserId>(raw, "audit actor id")?),
            None => None,
        };
        Ok(AuditEntry {
            id: parse_id::<AuditId>(&self.id, "audit id")?,
            at: Timestamp(self.at),
            actor_id,
            actor_name: self.actor_name,
            action: self.action,
            target: self.target,
            ip: self.ip,
            details: self.details,
        })
    }
}

/// Invitations keep MongoDB's generated `_id`; the pair is unique through its own index.
#[derive(Serialize, Deserialize)]
pub(super) struct InvitationRow {
    pub(super) room_id: String,
    pub(super) user_id: String,
    pub(super) invited_by: String,
    pub(super) at: i64,
}

impl InvitationRow {
    pub(super) fn from_record(invitation: &InvitationRecord) -> Self {
        Self {
            room_id: invitation.room_id.to_string(),
            user_id: invitation.user_id.to_string(),
            invited_by: invitation.invited_by.to_string(),
            at: invitation.at.millis(),
        }
    }
}

impl Row for InvitationRow {
    type Record = InvitationRecord;
    const WHAT: &'static str = "invitation";
    fn into_record(self) -> StoreResult<InvitationRecord> {
        Ok(InvitationRecord {
            room_id: parse_id::<RoomId>(&self.room_id, "invitation room id")?,
            user_id: parse_id::<UserId>(&self.user_id, "invitation user id")?,
            invited_by: parse_id::<UserId>(&self.invited_by, "inviter id")?,
            at: Timestamp(self.at),
        })
    }
}

/// User ids as stored, each once, in first-seen order.
pub(super) fn unique_ids(users: &[UserId]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(users.len());
    for user in users {
        let id = user.to_string();
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_sequences_saturate() {
        assert_eq!(seq_to_db(u64::MAX), i64::MAX);
        assert_eq!(seq_to_db(7), 7);
        assert!(seq_from_db(-1).is_err());
    }
}
