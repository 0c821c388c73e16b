//! The on-disk layout: redb tables, and the JSON rows stored in them. Rows are private to this driver
//! and convert to and from the storage interface's records at the edge.

// Rows hold what was parsed when it was written (see `crate::domain`).
#![allow(clippy::disallowed_methods)]

use crate::domain::{DisplayName, RoomName, RoomTopic, Username};
use crate::model::{
    AuditId, FileId, MemberRole, MessageId, Role, RoomId, RoomKind, SessionId, Timestamp, UserId,
};
use crate::store::{
    AuditEntry, EditRecord, InvitationRecord, MembershipRecord, MessageRecord, ReactionRecord,
    RoomRecord, SessionRecord, ThreadLink, ThreadSummary, UserRecord,
};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};

// Tables. `&[u8]` values are JSON rows.
pub(super) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
pub(super) const USERNAMES: TableDefinition<&str, &str> = TableDefinition::new("usernames");
/// (look-alike skeleton of the username, user id).
pub(super) const USERNAME_SKELETONS: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("username_skeletons");
pub(super) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
pub(super) const REFRESH_CURRENT: TableDefinition<&str, &str> =
    TableDefinition::new("refresh_current");
pub(super) const REFRESH_SPENT: TableDefinition<&str, &str> = TableDefinition::new("refresh_spent");
pub(super) const USER_SESSIONS: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("user_sessions");
pub(super) const ROOMS: TableDefinition<&str, &[u8]> = TableDefinition::new("rooms");
pub(super) const ROOM_NAMES: TableDefinition<(&str, &str), ()> = TableDefinition::new("room_names");
pub(super) const DIRECT_ROOMS: TableDefinition<&str, &str> = TableDefinition::new("direct_rooms");
pub(super) const MEMBERS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("members");
pub(super) const USER_ROOMS: TableDefinition<(&str, &str), ()> = TableDefinition::new("user_rooms");
/// (room, user) -> an invitation row; and (user, room) for the invitee's list.
pub(super) const INVITATIONS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("invitations");
pub(super) const USER_INVITATIONS: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("user_invitations");
pub(super) const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
pub(super) const MESSAGE_IDS: TableDefinition<&str, (&str, u64)> =
    TableDefinition::new("message_ids");
pub(super) const MESSAGE_TIMES: TableDefinition<(i64, &str), ()> =
    TableDefinition::new("message_times");
pub(super) const NONCES: TableDefinition<(&str, &str, &str), u64> = TableDefinition::new("nonces");
pub(super) const ROOM_SEQ: TableDefinition<&str, u64> = TableDefinition::new("room_seq");
/// Each room's latest revision (see `store::messages`).
pub(super) const ROOM_REV: TableDefinition<&str, u64> = TableDefinition::new("room_rev");
/// (room, revision) -> the sequence of the message whose last change took that revision: the change
/// feed. A message changed again moves to its new revision.
pub(super) const MESSAGE_REVS: TableDefinition<(&str, u64), u64> =
    TableDefinition::new("message_revs");
/// (user, created_at, message id) -> (room, seq): the messages that mention someone, by time.
pub(super) const MENTIONS: TableDefinition<(&str, i64, &str), (&str, u64)> =
    TableDefinition::new("mentions");
/// (user, room, seq): the same, by room, for counting unread mentions.
pub(super) const ROOM_MENTIONS: TableDefinition<(&str, &str, u64), ()> =
    TableDefinition::new("room_mentions");
/// The change feed of replies only in a thread (which live under their root, not the room):
/// (room, rev) -> (root, reply rev), beside `MESSAGE_REVS` for the rest.
pub(super) const REPLY_REVS: TableDefinition<(&str, u64), (&str, u64)> =
    TableDefinition::new("reply_revs");
/// Every reply by thread, in creation order: (root, reply rev) -> where the reply is stored.
pub(super) const THREAD_REPLIES: TableDefinition<(&str, u64), (&str, u64)> =
    TableDefinition::new("thread_replies");
/// Files (see `files`): id -> JSON `FileRow`; blob SHA-256 -> how many records point at it; owner ->
/// bytes their files take; (created at, id) of files not attached yet; (message, file) carried.
pub(super) const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files");
pub(super) const BLOB_REFS: TableDefinition<&str, u64> = TableDefinition::new("blob_refs");
pub(super) const FILE_USAGE: TableDefinition<&str, u64> = TableDefinition::new("file_usage");
pub(super) const PENDING_FILES: TableDefinition<(i64, &str), ()> =
    TableDefinition::new("pending_files");
pub(super) const MESSAGE_FILES: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("message_files");
/// The search index (see `search`): (room, term, created at, message id).
pub(super) const SEARCH_TERMS: TableDefinition<(&str, &str, i64, &str), ()> =
    TableDefinition::new("search_index");
/// (user, root) -> JSON `ThreadFollowRow`.
pub(super) const THREAD_FOLLOWS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("thread_follows");
/// Push subscriptions by endpoint, and the endpoints of each person and each session.
pub(super) const PUSH_SUBSCRIPTIONS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("push_subscriptions");
pub(super) const USER_PUSH: TableDefinition<(&str, &str), ()> = TableDefinition::new("user_push");
pub(super) const SESSION_PUSH: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("session_push");
pub(super) const READ_MARKERS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("read_markers");
/// (user, room) -> what the user hears about the room, when not the default.
pub(super) const NOTIFY_LEVELS: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("notify_levels");
pub(super) const AUDIT: TableDefinition<(i64, &str), &[u8]> = TableDefinition::new("audit");

#[derive(Serialize, Deserialize)]
pub(super) struct UserRow {
    pub(super) id: UserId,
    pub(super) username: String,
    pub(super) display_name: String,
    pub(super) password_hash: String,
    pub(super) role: Role,
    pub(super) disabled: bool,
    #[serde(default)]
    pub(super) must_change_password: bool,
    pub(super) created_at: Timestamp,
    pub(super) last_seen_at: Option<Timestamp>,
    #[serde(default)]
    pub(super) totp_secret: Option<String>,
    #[serde(default)]
    pub(super) totp_pending: Option<String>,
    #[serde(default)]
    pub(super) totp_last_step: u64,
    #[serde(default)]
    pub(super) recovery_hashes: Vec<String>,
    #[serde(default)]
    pub(super) avatar: Option<FileId>,
}

impl From<&UserRecord> for UserRow {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id,
            username: u.username.as_str().to_owned(),
            display_name: u.display_name.as_str().to_owned(),
            password_hash: u.password_hash.clone(),
            role: u.role,
            disabled: u.disabled,
            must_change_password: u.must_change_password,
            created_at: u.created_at,
            last_seen_at: u.last_seen_at,
            totp_secret: u.totp_secret.clone(),
            totp_pending: u.totp_pending.clone(),
            totp_last_step: u.totp_last_step,
            recovery_hashes: u.recovery_hashes.clone(),
            avatar: u.avatar,
        }
    }
}

impl From<UserRow> for UserRecord {
    fn from(u: UserRow) -> Self {
        Self {
            id: u.id,
            username: Username::from_stored(u.username),
            display_name: DisplayName::from_stored(u.display_name),
            password_hash: u.password_hash,
            role: u.role,
            disabled: u.disabled,
            must_change_password: u.must_change_password,
            created_at: u.created_at,
            last_seen_at: u.last_seen_at,
            totp_secret: u.totp_secret,
            totp_pending: u.totp_pending,
            totp_last_step: u.totp_last_step,
            recovery_hashes: u.recovery_hashes,
            avatar: u.avatar,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct SessionRow {
    pub(super) id: SessionId,
    pub(super) user_id: UserId,
    pub(super) refresh_hash: String,
    pub(super) created_at: Timestamp,
    pub(super) last_used_at: Timestamp,
    pub(super) expires_at: Timestamp,
    pub(super) revoked_at: Option<Timestamp>,
    #[serde(default)]
    pub(super) grace_claimed: bool,
    pub(super) user_agent: String,
    pub(super) ip: String,
}

impl From<&SessionRecord> for SessionRow {
    fn from(s: &SessionRecord) -> Self {
        Self {
            id: s.id,
            user_id: s.user_id,
            refresh_hash: s.refresh_hash.clone(),
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            revoked_at: s.revoked_at,
            grace_claimed: s.grace_claimed,
            user_agent: s.user_agent.clone(),
            ip: s.ip.clone(),
        }
    }
}

impl From<SessionRow> for SessionRecord {
    fn from(s: SessionRow) -> Self {
        Self {
            id: s.id,
            user_id: s.user_id,
            refresh_hash: s.refresh_hash,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            revoked_at: s.revoked_at,
            grace_claimed: s.grace_claimed,
            user_agent: s.user_agent,
            ip: s.ip,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct RoomRow {
    pub(super) id: RoomId,
    pub(super) kind: RoomKind,
    pub(super) name: String,
    pub(super) topic: String,
    pub(super) created_by: UserId,
    pub(super) created_at: Timestamp,
    pub(super) archived: bool,
    pub(super) direct_key: Option<String>,
}

impl From<&RoomRecord> for RoomRow {
    fn from(r: &RoomRecord) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            name: r.name.as_str().to_owned(),
            topic: r.topic.as_str().to_owned(),
            created_by: r.created_by,
            created_at: r.created_at,
            archived: r.archived,
            direct_key: r.direct_key.clone(),
        }
    }
}

impl From<RoomRow> for RoomRecord {
    fn from(r: RoomRow) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            name: RoomName::from_stored(r.name),
            topic: RoomTopic::from_stored(r.topic),
            created_by: r.created_by,
            created_at: r.created_at,
            archived: r.archived,
            direct_key: r.direct_key,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct MemberRow {
    pub(super) room_id: RoomId,
    pub(super) user_id: UserId,
    pub(super) role: MemberRole,
    pub(super) joined_at: Timestamp,
}

impl From<&MembershipRecord> for MemberRow {
    fn from(m: &MembershipRecord) -> Self {
        Self {
            room_id: m.room_id,
            user_id: m.user_id,
            role: m.role,
            joined_at: m.joined_at,
        }
    }
}

impl From<MemberRow> for MembershipRecord {
    fn from(m: MemberRow) -> Self {
        Self {
            room_id: m.room_id,
            user_id: m.user_id,
            role: m.role,
            joined_at: m.joined_at,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct MessageRow {
    pub(super) id: MessageId,
    pub(super) room_id: RoomId,
    pub(super) seq: u64,
    /// 0 in rows written before revisions existed.
    #[serde(default)]
    pub(super) rev: u64,
    pub(super) author_id: UserId,
    pub(super) body: String,
    pub(super) nonce: String,
    pub(super) created_at: Timestamp,
    pub(super) edited_at: Option<Timestamp>,
    pub(super) deleted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) reactions: Vec<(String, Vec<UserId>)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) edits: Vec<(String, Timestamp)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) mentions: Vec<UserId>,
    /// (root, in the room too, reply rev) on replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) thread: Option<(MessageId, bool, u64)>,
    /// (count, last reply, repliers) on roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) replies: Option<(u64, Timestamp, Vec<UserId>)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) files: Vec<crate::files::FileView>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct ThreadFollowRow {
    pub(super) room: RoomId,
    pub(super) read: u64,
    pub(super) followed_at: Timestamp,
}

impl From<&MessageRecord> for MessageRow {
    fn from(m: &MessageRecord) -> Self {
        Self {
            id: m.id,
            room_id: m.room_id,
            seq: m.seq,
            rev: m.rev,
            author_id: m.author_id,
            body: m.body.clone(),
            nonce: m.nonce.clone(),
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted_at: m.deleted_at,
            reactions: m
                .reactions
                .iter()
                .map(|r| (r.emoji.clone(), r.users.clone()))
                .collect(),
            edits: m
                .edits
                .iter()
                .map(|e| (e.body.clone(), e.replaced_at))
                .collect(),
            mentions: m.mentions.clone(),
            thread: m.thread.map(|t| (t.root, t.in_room, t.at_rev)),
            replies: m
                .replies
                .as_ref()
                .map(|r| (r.count, r.last_reply_at, r.repliers.clone())),
            files: m.files.clone(),
        }
    }
}

impl From<MessageRow> for MessageRecord {
    fn from(m: MessageRow) -> Self {
        Self {
            id: m.id,
            room_id: m.room_id,
            seq: m.seq,
            rev: m.rev,
            author_id: m.author_id,
            body: m.body,
            nonce: m.nonce,
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted_at: m.deleted_at,
            reactions: m
                .reactions
                .into_iter()
                .map(|(emoji, users)| ReactionRecord { emoji, users })
                .collect(),
            edits: m
                .edits
                .into_iter()
                .map(|(body, replaced_at)| EditRecord { body, replaced_at })
                .collect(),
            mentions: m.mentions,
            thread: m.thread.map(|(root, in_room, at_rev)| ThreadLink {
                root,
                in_room,
                at_rev,
            }),
            replies: m
                .replies
                .map(|(count, last_reply_at, repliers)| ThreadSummary {
                    count,
                    last_reply_at,
                    repliers,
                }),
            files: m.files,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct AuditRow {
    pub(super) id: AuditId,
    pub(super) at: Timestamp,
    pub(super) actor_id: Option<UserId>,
    pub(super) actor_name: String,
    pub(super) action: String,
    pub(super) target: String,
    pub(super) ip: String,
    pub(super) details: String,
}

impl From<&AuditEntry> for AuditRow {
    fn from(a: &AuditEntry) -> Self {
        Self {
            id: a.id,
            at: a.at,
            actor_id: a.actor_id,
            actor_name: a.actor_name.clone(),
            action: a.action.clone(),
            target: a.target.clone(),
            ip: a.ip.clone(),
            details: a.details.clone(),
        }
    }
}

impl From<AuditRow> for AuditEntry {
    fn from(a: AuditRow) -> Self {
        Self {
            id: a.id,
            at: a.at,
            actor_id: a.actor_id,
            actor_name: a.actor_name,
            action: a.action,
            target: a.target,
            ip: a.ip,
            details: a.details,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct InvitationRow {
    pub(super) room_id: RoomId,
    pub(super) user_id: UserId,
    pub(super) invited_by: UserId,
    pub(super) at: Timestamp,
}

impl From<&InvitationRecord> for InvitationRow {
    fn from(i: &InvitationRecord) -> Self {
        Self {
            room_id: i.room_id,
            user_id: i.user_id,
            invited_by: i.invited_by,
            at: i.at,
        }
    }
}

impl From<InvitationRow> for InvitationRecord {
    fn from(i: InvitationRow) -> Self {
        Self {
            room_id: i.room_id,
            user_id: i.user_id,
            invited_by: i.invited_by,
            at: i.at,
        }
    }
}
