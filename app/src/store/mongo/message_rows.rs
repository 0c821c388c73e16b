//! The message document: a message with its reactions, edit history and thread (a reply's root, or a
//! root's summary). How replies only in a thread are stored is in `threads`.

use super::rows::{parse_id, seq_from_db, seq_to_db, unique_ids, Row};
use crate::files::FileView;
use crate::model::{FileId, MessageId, RoomId, Timestamp, UserId};
use crate::store::{
    EditRecord, MessageRecord, ReactionRecord, StoreError, StoreResult, ThreadLink, ThreadSummary,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub(super) struct MessageRow {
    #[serde(rename = "_id")]
    pub(super) id: String,
    pub(super) room_id: String,
    pub(super) seq: i64,
    /// Absent (read as 0) in documents written before revisions existed; the unique (room, rev)
    /// index only covers documents that have one.
    #[serde(default)]
    pub(super) rev: i64,
    /// Every revision the message ever took (see `messages`), absent before revisions existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) revs: Vec<i64>,
    pub(super) author_id: String,
    pub(super) body: String,
    pub(super) nonce: String,
    pub(super) created_at: i64,
    pub(super) edited_at: Option<i64>,
    pub(super) deleted_at: Option<i64>,
    #[serde(default)]
    pub(super) reactions: Vec<ReactionDoc>,
    #[serde(default)]
    pub(super) edits: Vec<EditDoc>,
    /// User ids, each once.
    #[serde(default)]
    pub(super) mentions: Vec<String>,
    /// On replies: the root's id, and (see `threads`) whether it is in the room too and the revision
    /// it was created at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) thread: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) in_room: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(super) at_rev: i64,
    /// On roots with replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) replies: Option<RepliesDoc>,
    /// What search finds it by (`domain::index_terms`; none once deleted), under the (room, terms,
    /// created at) index. Absent in documents from before search: `search::backfill` adds it.
    #[serde(default)]
    pub(super) terms: Vec<String>,
    /// The files it carries, as shown. Always written (an update sets the whole row: a deletion
    /// must clear it).
    #[serde(default)]
    pub(super) files: Vec<FileDoc>,
}

/// A file as a message shows it (`FileView`).
#[derive(Serialize, Deserialize)]
pub(super) struct FileDoc {
    id: String,
    name: String,
    content_type: String,
    size: i64,
    dimensions: Option<(u32, u32)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alt: Option<String>,
}

impl FileDoc {
    pub(super) fn of(f: &FileView) -> Self {
        Self {
            id: f.id.to_string(),
            name: f.name.clone(),
            content_type: f.content_type.clone(),
            size: i64::try_from(f.size).unwrap_or(i64::MAX),
            dimensions: f.dimensions,
            alt: f.alt.clone(),
        }
    }

    fn into_view(self) -> StoreResult<FileView> {
        Ok(FileView {
            id: parse_id::<FileId>(&self.id, "attached file id")?,
            name: self.name,
            content_type: self.content_type,
            size: u64::try_from(self.size)
                .map_err(|_| StoreError::Corrupt("attached file size".into()))?,
            dimensions: self.dimensions,
            alt: self.alt,
        })
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize)]
pub(super) struct ReactionDoc {
    pub(super) emoji: String,
    pub(super) users: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct EditDoc {
    pub(super) body: String,
    pub(super) replaced_at: i64,
}

impl MessageRow {
    pub(super) fn of(m: &MessageRecord) -> Self {
        Self {
            id: m.id.to_string(),
            room_id: m.room_id.to_string(),
            seq: stored_seq(m),
            rev: seq_to_db(m.rev),
            revs: Vec::new(),
            author_id: m.author_id.to_string(),
            body: m.body.clone(),
            nonce: m.nonce.clone(),
            created_at: m.created_at.millis(),
            edited_at: m.edited_at.map(Timestamp::millis),
            deleted_at: m.deleted_at.map(Timestamp::millis),
            reactions: m
                .reactions
                .iter()
                .map(|r| ReactionDoc {
                    emoji: r.emoji.clone(),
                    users: r.users.iter().map(ToString::to_string).collect(),
                })
                .collect(),
            edits: m
                .edits
                .iter()
                .map(|e| EditDoc {
                    body: e.body.clone(),
                    replaced_at: e.replaced_at.millis(),
                })
                .collect(),
            mentions: unique_ids(&m.mentions),
            thread: m.thread.map(|t| t.root.to_string()),
            in_room: m.thread.is_some_and(|t| t.in_room),
            at_rev: m.thread.map_or(0, |t| seq_to_db(t.at_rev)),
            replies: m.replies.as_ref().map(RepliesDoc::of),
            terms: if m.deleted_at.is_some() {
                Vec::new()
            } else {
                crate::domain::index_terms(&m.body)
            },
            files: m.files.iter().map(FileDoc::of).collect(),
        }
    }
}

impl Row for MessageRow {
    type Record = MessageRecord;
    const WHAT: &'static str = "message";
    fn into_record(self) -> StoreResult<MessageRecord> {
        let thread = self.thread_link()?;
        Ok(MessageRecord {
            id: parse_id::<MessageId>(&self.id, "message id")?,
            room_id: parse_id::<RoomId>(&self.room_id, "message room id")?,
            seq: if thread.is_some_and(|t| !t.in_room) {
                0
            } else {
                seq_from_db(self.seq)?
            },
            rev: seq_from_db(self.rev)?,
            author_id: parse_id::<UserId>(&self.author_id, "message author id")?,
            body: self.body,
            nonce: self.nonce,
            created_at: Timestamp(self.created_at),
            edited_at: self.edited_at.map(Timestamp),
            deleted_at: self.deleted_at.map(Timestamp),
            reactions: self
                .reactions
                .into_iter()
                .map(|r| {
                    let users = r
                        .users
                        .iter()
                        .map(|u| parse_id::<UserId>(u, "reaction user id"))
                        .collect::<StoreResult<_>>()?;
                    Ok(ReactionRecord {
                        emoji: r.emoji,
                        users,
                    })
                })
                .collect::<StoreResult<_>>()?,
            edits: self
                .edits
                .into_iter()
                .map(|e| EditRecord {
                    body: e.body,
                    replaced_at: Timestamp(e.replaced_at),
                })
                .collect(),
            mentions: self
                .mentions
                .iter()
                .map(|u| parse_id::<UserId>(u, "mentioned user id"))
                .collect::<StoreResult<_>>()?,
            thread,
            replies: self.replies.map(|r| r.into_summary()).transpose()?,
            files: self
                .files
                .into_iter()
                .map(FileDoc::into_view)
                .collect::<StoreResult<_>>()?,
        })
    }
}

/// A root's `ThreadSummary`.
#[derive(Serialize, Deserialize)]
pub(super) struct RepliesDoc {
    count: i64,
    last_reply_at: i64,
    repliers: Vec<String>,
}

impl RepliesDoc {
    pub(super) fn of(s: &ThreadSummary) -> Self {
        Self {
            count: seq_to_db(s.count),
            last_reply_at: s.last_reply_at.millis(),
            repliers: s.repliers.iter().map(ToString::to_string).collect(),
        }
    }

    pub(super) fn into_summary(self) -> StoreResult<ThreadSummary> {
        Ok(ThreadSummary {
            count: seq_from_db(self.count)?,
            last_reply_at: Timestamp(self.last_reply_at),
            repliers: self
                .repliers
                .iter()
                .map(|u| parse_id::<UserId>(u, "replier id"))
                .collect::<StoreResult<_>>()?,
        })
    }
}

/// The `seq` a message is stored under (see the module docs).
pub(super) fn stored_seq(m: &MessageRecord) -> i64 {
    match m.thread {
        Some(t) if !t.in_room => -seq_to_db(t.at_rev),
        _ => seq_to_db(m.seq),
    }
}

impl MessageRow {
    pub(super) fn thread_link(&self) -> StoreResult<Option<ThreadLink>> {
        let Some(root) = &self.thread else {
            return Ok(None);
        };
        Ok(Some(ThreadLink {
            root: parse_id::<MessageId>(root, "thread root id")?,
            in_room: self.in_room,
            at_rev: seq_from_db(self.at_rev)?,
        }))
    }
}
