//! Messages in the store's terms: records, the history and change-feed queries, and the rules for
//! changing a message after it was sent, which both drivers apply the same way (`MessageChange::apply`).
//!
//! Every change to a room's content (a new message, an edit, a deletion, a reaction) takes the room's
//! next *revision*, gap-free from 1, and the changed message records it as its `rev`. A reader that has
//! applied every revision up to R is missing exactly the messages whose `rev > R`, each in its latest
//! state: that is the change feed a reconnecting client resumes from.

use super::{StoreError, StoreResult};
use crate::domain::{Emoji, MessageBody, Nonce};
use crate::files::FileView;
use crate::model::{MessageId, RoomId, Timestamp, UserId};
use async_trait::async_trait;

/// Distinct emoji one message may carry.
pub const MAX_REACTIONS_PER_MESSAGE: usize = 20;
/// Earlier versions of a message kept for its edit history (the oldest are dropped first).
pub const MAX_EDITS_KEPT: usize = 20;
/// The most recent distinct repliers a thread's root names.
pub const MAX_REPLIERS_SHOWN: usize = 10;

/// Where a reply sits: the root message it answers, whether it is also in the room's timeline, and
/// the room revision it was created at (replies are ordered by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadLink {
    pub root: MessageId,
    /// Also posted to the room: then it has a place in the room's sequence too. A reply only in the
    /// thread has `seq` 0: the room's sequence counts its timeline, and threads do not move it.
    pub in_room: bool,
    pub at_rev: u64,
}

/// What a thread's root shows: how many replies it has (deleted ones included: they keep their
/// place), when the last came, and who replied most recently (each once, latest last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSummary {
    pub count: u64,
    pub last_reply_at: Timestamp,
    pub repliers: Vec<UserId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub room_id: RoomId,
    pub author_id: UserId,
    pub body: MessageBody,
    /// Chosen by the client; the same (room, author, nonce) never makes a second message.
    pub nonce: Nonce,
    pub created_at: Timestamp,
    /// The members it mentions (resolved by the caller; `@room` is every member).
    pub mentions: Vec<UserId>,
    /// A reply to this root (which must be in the same room and not a reply itself), and whether it
    /// is also posted to the room's timeline.
    pub thread: Option<(MessageId, bool)>,
    /// The files it carries (checked by the caller, attached after the message is stored).
    pub files: Vec<FileView>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub id: MessageId,
    pub room_id: RoomId,
    /// Per-room, gap-free, starting at 1.
    pub seq: u64,
    /// The room revision of this message's last change (see the module docs). Messages stored before
    /// revisions existed read as 0: older than any cursor.
    pub rev: u64,
    pub author_id: UserId,
    pub body: String,
    pub nonce: String,
    pub created_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    /// Deleted messages keep their place in the sequence as tombstones, with the body cleared.
    pub deleted_at: Option<Timestamp>,
    /// In the order each emoji was first added.
    pub reactions: Vec<ReactionRecord>,
    /// Earlier bodies, oldest first (at most `MAX_EDITS_KEPT`; cleared with the body on deletion).
    pub edits: Vec<EditRecord>,
    /// The members it mentions, each once (see `NewMessage::mentions`).
    pub mentions: Vec<UserId>,
    /// Set on replies.
    pub thread: Option<ThreadLink>,
    /// Set on a root once it has replies.
    pub replies: Option<ThreadSummary>,
    /// The files it carries, as shown (cleared on deletion, when the files themselves go).
    pub files: Vec<FileView>,
}

impl MessageRecord {
    /// A reply that is only in its thread (no place in the room's sequence).
    pub fn thread_only(&self) -> bool {
        self.thread.is_some_and(|t| !t.in_room)
    }
}

/// One emoji on a message and who added it, in the order they did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionRecord {
    pub emoji: String,
    pub users: Vec<UserId>,
}

/// A body the message had before an edit, and when it was replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditRecord {
    pub body: String,
    pub replaced_at: Timestamp,
}

/// A change to a message that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageChange {
    /// New words, and the members they mention.
    Edit {
        body: MessageBody,
        at: Timestamp,
        mentions: Vec<UserId>,
    },
    /// Turns the message into a tombstone: body, edit history and reactions cleared, sequence kept.
    Delete { at: Timestamp },
    /// Adds (`on`) or removes the user's `emoji`. Each user adds an emoji once.
    React {
        user: UserId,
        emoji: Emoji,
        on: bool,
    },
    /// The root got a reply from `user` at `at`, making `count` replies as counted after it was
    /// stored. Counts only grow (replies are never removed), so the larger count wins whatever order
    /// concurrent replies apply theirs in.
    Replied {
        user: UserId,
        at: Timestamp,
        count: u64,
    },
}

/// What a change did: the message as stored afterwards, and whether it changed (then it has a new
/// `rev`; otherwise no revision was taken).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub message: MessageRecord,
    pub changed: bool,
}

impl MessageChange {
    /// Applies the change to `message` (all but its `rev`, which the driver assigns); whether it changed
    /// anything. Editing or reacting to a deleted message is `NotFound`; a new emoji beyond
    /// `MAX_REACTIONS_PER_MESSAGE` is `Limit`.
    pub fn apply(&self, message: &mut MessageRecord) -> StoreResult<bool> {
        let deleted = message.deleted_at.is_some();
        match self {
            MessageChange::Edit { .. } | MessageChange::React { .. } if deleted => {
                Err(StoreError::NotFound("message"))
            }
            MessageChange::Edit { body, at, mentions } => {
                if message.body == body.as_str() {
                    return Ok(false);
                }
                message.mentions.clone_from(mentions);
                let previous = std::mem::replace(&mut message.body, body.as_str().to_owned());
                message.edits.push(EditRecord {
                    body: previous,
                    replaced_at: *at,
                });
                let excess = message.edits.len().saturating_sub(MAX_EDITS_KEPT);
                message.edits.drain(..excess);
                message.edited_at = Some(*at);
                Ok(true)
            }
            MessageChange::Replied { user, at, count } => {
                let summary = message.replies.get_or_insert_with(|| ThreadSummary {
                    count: 0,
                    last_reply_at: *at,
                    repliers: Vec::new(),
                });
                let before = summary.clone();
                summary.count = summary.count.max(*count);
                summary.last_reply_at = summary.last_reply_at.max(*at);
                summary.repliers.retain(|u| u != user);
                summary.repliers.push(*user);
                let excess = summary.repliers.len().saturating_sub(MAX_REPLIERS_SHOWN);
                summary.repliers.drain(..excess);
                Ok(*summary != before)
            }
            MessageChange::Delete { .. } if deleted => Ok(false),
            MessageChange::Delete { at } => {
                message.body.clear();
                message.edits.clear();
                message.reactions.clear();
                message.mentions.clear();
                message.files.clear();
                message.deleted_at = Some(*at);
                Ok(true)
            }
            MessageChange::React { user, emoji, on } => {
                let slot = message
                    .reactions
                    .iter()
                    .position(|r| r.emoji == emoji.as_str());
                match (slot, *on) {
                    (Some(i), true) => {
                        let users = &mut message.reactions[i].users;
                        if users.contains(user) {
                            return Ok(false);
                        }
                        users.push(*user);
                        Ok(true)
                    }
                    (None, true) => {
                        if message.reactions.len() >= MAX_REACTIONS_PER_MESSAGE {
                            return Err(StoreError::Limit(
                                "A message has at most 20 different reactions.",
                            ));
                        }
                        message.reactions.push(ReactionRecord {
                            emoji: emoji.as_str().to_owned(),
                            users: vec![*user],
                        });
                        Ok(true)
                    }
                    (Some(i), false) => {
                        let users = &mut message.reactions[i].users;
                        let before = users.len();
                        users.retain(|u| u != user);
                        if users.len() == before {
                            return Ok(false);
                        }
                        if users.is_empty() {
                            message.reactions.remove(i);
                        }
                        Ok(true)
                    }
                    (None, false) => Ok(false),
                }
            }
        }
    }
}

/// Where a room is: its newest message and its latest revision, read together (every message up to
/// `last_seq` was created at a revision up to `rev`, every later one after it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomPosition {
    pub last_seq: u64,
    pub rev: u64,
}

/// Where a page of mentions ends: the last message's time and id (pages are newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MentionCursor {
    pub created_at: Timestamp,
    pub id: MessageId,
}

/// The outcome of an append: the stored message, and whether this call created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub message: MessageRecord,
    pub created: bool,
}

/// Which slice of a room's history to read. Results are always in ascending sequence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only messages with `seq < before`; the newest of them.
    pub before: Option<u64>,
    /// Only messages with `seq > after`; the oldest of them (when `before` is unset).
    pub after: Option<u64>,
    pub limit: u32,
}

impl HistoryQuery {
    pub fn latest(limit: u32) -> Self {
        Self {
            before: None,
            after: None,
            limit,
        }
    }
    pub fn before(seq: u64, limit: u32) -> Self {
        Self {
            before: Some(seq),
            after: None,
            limit,
        }
    }
    pub fn after(seq: u64, limit: u32) -> Self {
        Self {
            before: None,
            after: Some(seq),
            limit,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageStats {
    pub total: u64,
    pub since: u64,
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Persists the message under the room's next sequence number and next revision, atomically and
    /// durably. Appending the same (room, author, nonce) again returns the original with
    /// `created: false`.
    async fn append_message(&self, message: &NewMessage) -> StoreResult<Appended>;
    async fn message_by_id(&self, id: MessageId) -> StoreResult<Option<MessageRecord>>;
    /// A page of history; see [`HistoryQuery`]. `limit` is clamped into `1..=MAX_PAGE_SIZE`.
    async fn history(&self, room: RoomId, query: HistoryQuery) -> StoreResult<Vec<MessageRecord>>;
    /// Applies the change atomically and durably; when it changes the message, under the room's next
    /// revision. `NotFound("message")` when there is no such message.
    async fn change_message(&self, id: MessageId, change: &MessageChange) -> StoreResult<Changed>;
    /// The room's messages changed after revision `after` (created, edited, deleted, reacted to), each
    /// once in its latest state, by ascending `rev`; at most `limit` (clamped like history pages).
    async fn changes(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>>;
    /// The room's latest revision, 0 before its first change.
    async fn room_revision(&self, room: RoomId) -> StoreResult<u64>;
    /// The room's newest sequence and latest revision, consistent with each other.
    async fn room_position(&self, room: RoomId) -> StoreResult<RoomPosition>;
    /// The highest sequence in the room, 0 when empty.
    async fn last_seq(&self, room: RoomId) -> StoreResult<u64>;
    /// Total messages, and those created at or after `since`.
    async fn message_stats(&self, since: Timestamp) -> StoreResult<MessageStats>;
    /// Messages that mention `user`, newest first, before `before` (exclusive) when given; at most
    /// `limit` (clamped like history pages). Deleted messages mention no one.
    async fn mentions_of(
        &self,
        user: UserId,
        before: Option<MentionCursor>,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>>;
    /// How many messages in `room` after sequence `after` mention `user` (replies only in a thread
    /// are not in the room's sequence and not counted).
    async fn count_mentions(&self, user: UserId, room: RoomId, after: u64) -> StoreResult<u64>;
    /// The replies to `root` (in the thread only or also in the room), oldest first: the newest
    /// `limit` created before revision `before` when given, else the newest `limit`.
    async fn thread_replies(
        &self,
        root: MessageId,
        before: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>>;
    /// How many replies `root` has, deleted ones included.
    async fn count_replies(&self, root: MessageId) -> StoreResult<u64>;

    async fn edit_message(
        &self,
        id: MessageId,
        body: &MessageBody,
        at: Timestamp,
    ) -> StoreResult<MessageRecord> {
        let change = MessageChange::Edit {
            body: body.clone(),
            at,
            mentions: Vec::new(),
        };
        Ok(self.change_message(id, &change).await?.message)
    }

    async fn delete_message(&self, id: MessageId, at: Timestamp) -> StoreResult<MessageRecord> {
        let change = MessageChange::Delete { at };
        Ok(self.change_message(id, &change).await?.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> MessageRecord {
        MessageRecord {
            id: MessageId::new(),
            room_id: RoomId::new(),
            seq: 1,
            rev: 1,
            author_id: UserId::new(),
            body: "first".into(),
            nonce: "n".into(),
            created_at: Timestamp(1),
            edited_at: None,
            deleted_at: None,
            reactions: Vec::new(),
            edits: Vec::new(),
            mentions: Vec::new(),
            thread: None,
            replies: None,
            files: Vec::new(),
        }
    }

    fn react(user: UserId, emoji: &str, on: bool) -> MessageChange {
        MessageChange::React {
            user,
            emoji: Emoji::parse(emoji).unwrap(),
            on,
        }
    }

    #[test]
    fn edits_keep_the_bodies_they_replace_and_a_same_body_edit_changes_nothing() {
        let mut m = message();
        let edit = |body: &str, at| MessageChange::Edit {
            body: MessageBody::parse(body).unwrap(),
            at: Timestamp(at),
            mentions: Vec::new(),
        };
        assert!(edit("second", 5).apply(&mut m).unwrap());
        assert!(!edit("second", 6).apply(&mut m).unwrap());
        assert_eq!(m.body, "second");
        assert_eq!(m.edited_at, Some(Timestamp(5)));
        assert_eq!(
            m.edits,
            vec![EditRecord {
                body: "first".into(),
                replaced_at: Timestamp(5)
            }]
        );
        for i in 0..30 {
            edit(&format!("v{i}"), 10 + i).apply(&mut m).unwrap();
        }
        assert_eq!(m.edits.len(), MAX_EDITS_KEPT);
        assert_eq!(m.edits.last().unwrap().body, "v28");
    }

    #[test]
    fn reactions_count_each_person_once_and_vanish_with_their_last_person() {
        let (ana, ben) = (UserId::new(), UserId::new());
        let mut m = message();
        assert!(react(ana, "👍", true).apply(&mut m).unwrap());
        assert!(!react(ana, "👍", true).apply(&mut m).unwrap());
        assert!(react(ben, "👍", true).apply(&mut m).unwrap());
        assert!(react(ben, "🎉", true).apply(&mut m).unwrap());
        assert_eq!(m.reactions[0].users, vec![ana, ben]);
        assert!(react(ana, "👍", false).apply(&mut m).unwrap());
        assert!(!react(ana, "👍", false).apply(&mut m).unwrap());
        assert!(react(ben, "👍", false).apply(&mut m).unwrap());
        let emoji: Vec<_> = m.reactions.iter().map(|r| r.emoji.as_str()).collect();
        assert_eq!(emoji, ["🎉"]);
    }

    #[test]
    fn a_message_takes_a_bounded_number_of_distinct_emoji() {
        let user = UserId::new();
        let mut m = message();
        let catalogue = crate::domain::COMMON_EMOJI;
        for (emoji, _, _) in catalogue.iter().take(MAX_REACTIONS_PER_MESSAGE) {
            assert!(react(user, emoji, true).apply(&mut m).unwrap());
        }
        let one_more = catalogue[MAX_REACTIONS_PER_MESSAGE].0;
        assert!(matches!(
            react(user, one_more, true).apply(&mut m),
            Err(StoreError::Limit(_))
        ));
        // Joining an emoji that is there already is still fine.
        assert!(react(UserId::new(), catalogue[0].0, true)
            .apply(&mut m)
            .unwrap());
    }

    #[test]
    fn a_root_counts_its_replies_by_the_largest_count_and_names_recent_repliers_once() {
        let (ana, ben) = (UserId::new(), UserId::new());
        let mut root = message();
        let replied = |user, at, count| MessageChange::Replied {
            user,
            at: Timestamp(at),
            count,
        };
        assert!(replied(ana, 10, 1).apply(&mut root).unwrap());
        // Two replies raced: the one counted later (2) applied first.
        assert!(replied(ben, 12, 2).apply(&mut root).unwrap());
        assert!(replied(ana, 11, 1).apply(&mut root).unwrap());
        let summary = root.replies.clone().unwrap();
        assert_eq!(summary.count, 2);
        assert_eq!(summary.last_reply_at, Timestamp(12));
        assert_eq!(summary.repliers, vec![ben, ana]);
        // The same again changes nothing.
        assert!(!replied(ana, 11, 1).apply(&mut root).unwrap());
        for _ in 0..MAX_REPLIERS_SHOWN + 5 {
            replied(UserId::new(), 20, 3).apply(&mut root).unwrap();
        }
        assert_eq!(root.replies.unwrap().repliers.len(), MAX_REPLIERS_SHOWN);
    }

    #[test]
    fn deleting_clears_content_and_nothing_may_change_a_tombstone() {
        let mut m = message();
        react(UserId::new(), "👍", true).apply(&mut m).unwrap();
        assert!(MessageChange::Delete { at: Timestamp(9) }
            .apply(&mut m)
            .unwrap());
        assert!(m.body.is_empty() && m.reactions.is_empty() && m.edits.is_empty());
        assert!(!MessageChange::Delete { at: Timestamp(10) }
            .apply(&mut m)
            .unwrap());
        assert_eq!(m.deleted_at, Some(Timestamp(9)));
        assert_eq!(
            react(UserId::new(), "👍", true).apply(&mut m),
            Err(StoreError::NotFound("message"))
        );
    }
}
