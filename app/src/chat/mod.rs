//! Rooms, messages and the real-time connection.
//!
//! Shared by both sides: the wire types for rooms and members, the HTTP server functions (`api`) and
//! the browser's live state (`live`). Server-only: the rules for rooms (`rooms`) and messages
//! (`messages`), message rendering, the fan-out hub, one websocket connection (`connection`) and the
//! websocket endpoint (`socket`) with its caps (`socket_limits`).

pub mod api;
pub mod live;
pub mod timeline;

#[cfg(feature = "ssr")]
pub mod access;
#[cfg(feature = "ssr")]
pub mod connection;
#[cfg(feature = "ssr")]
pub mod default_room;
#[cfg(feature = "ssr")]
pub mod hub;
#[cfg(feature = "ssr")]
pub mod mentions;
#[cfg(feature = "ssr")]
pub mod messages;
#[cfg(feature = "ssr")]
pub mod render;
#[cfg(feature = "ssr")]
pub mod rooms;
#[cfg(feature = "ssr")]
pub mod search;
#[cfg(feature = "ssr")]
pub mod socket;
#[cfg(feature = "ssr")]
pub mod socket_limits;
#[cfg(feature = "ssr")]
pub mod threads;

#[cfg(feature = "ssr")]
use crate::model::UserId;
use crate::model::{RoomId, RoomKind};
pub use crate::protocol::MemberView;
use serde::{Deserialize, Serialize};

/// A room in the sidebar or the room browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    pub id: RoomId,
    pub kind: RoomKind,
    /// For direct messages, the other person's display name.
    pub name: String,
    pub topic: String,
    /// The newest message's sequence number (0 when empty).
    pub last_seq: u64,
    /// The caller's read marker; unread = `last_seq - read_seq`.
    pub read_seq: u64,
    /// Messages after the read marker that mention the caller.
    #[serde(default)]
    pub mentions: u64,
    /// What the caller hears about this room.
    #[serde(default)]
    pub notify: crate::model::NotifyLevel,
    /// Whether the caller is a member.
    pub member: bool,
}

impl RoomSummary {
    pub fn unread(&self) -> u64 {
        self.last_seq.saturating_sub(self.read_seq)
    }
}

/// Per-person budgets for what reaches other people, in memory per instance: messages (new, edited
/// or deleted: `MESSAGES_PER_10S`), typing notices, presence changes, and room changes (creating rooms,
/// inviting, opening direct messages: `ROOM_ACTIONS_PER_10_MIN`).
#[cfg(feature = "ssr")]
pub struct ChatLimits {
    messages: crate::rate_limit::KeyedRateLimit<UserId>,
    typing: crate::rate_limit::KeyedRateLimit<UserId>,
    presence: crate::rate_limit::KeyedRateLimit<UserId>,
    room_actions: crate::rate_limit::KeyedRateLimit<UserId>,
    searches: crate::rate_limit::KeyedRateLimit<UserId>,
}

#[cfg(feature = "ssr")]
impl ChatLimits {
    /// Searches one person may run in ten seconds (the search box asks as they type).
    pub const SEARCHES_PER_10S: u32 = 30;
    /// Typing notices one person may send in ten seconds (all rooms, all connections together).
    pub const TYPING_PER_10S: u32 = 40;
    /// Away/back changes one person may send in ten seconds.
    pub const PRESENCE_PER_10S: u32 = 10;

    pub fn new(messages_per_10s: u32, room_actions_per_10_min: u32) -> Self {
        use crate::rate_limit::KeyedRateLimit;
        use std::time::Duration;
        let ten_secs = Duration::from_secs(10);
        Self {
            messages: KeyedRateLimit::new(messages_per_10s, ten_secs),
            typing: KeyedRateLimit::new(Self::TYPING_PER_10S, ten_secs),
            presence: KeyedRateLimit::new(Self::PRESENCE_PER_10S, ten_secs),
            room_actions: KeyedRateLimit::new(room_actions_per_10_min, Duration::from_secs(600)),
            searches: KeyedRateLimit::new(Self::SEARCHES_PER_10S, ten_secs),
        }
    }

    /// Takes one message from the person's budget (sends, edits and deletions share it).
    pub fn message(&self, user: UserId) -> Result<(), crate::error::AppError> {
        self.messages
            .check(&user)
            .map_err(|retry_after_secs| crate::error::AppError::RateLimited { retry_after_secs })
    }

    pub fn typing(&self, user: UserId) -> Result<(), crate::error::AppError> {
        Self::refuse(self.typing.check(&user))
    }

    pub fn presence(&self, user: UserId) -> Result<(), crate::error::AppError> {
        Self::refuse(self.presence.check(&user))
    }

    pub fn room_action(&self, user: UserId) -> Result<(), crate::error::AppError> {
        Self::refuse(self.room_actions.check(&user))
    }

    pub fn search(&self, user: UserId) -> Result<(), crate::error::AppError> {
        Self::refuse(self.searches.check(&user))
    }

    fn refuse(checked: Result<(), u64>) -> Result<(), crate::error::AppError> {
        checked.map_err(|retry_after_secs| crate::error::AppError::TooManyAttempts {
            retry_after_secs,
        })
    }
}

/// An open invitation to a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationView {
    pub room: RoomSummary,
    pub invited_by: MemberView,
    pub invitee: MemberView,
    pub at: crate::model::Timestamp,
}

/// Results per page of a search.
pub const SEARCH_PAGE: usize = 20;

/// A message found by a search, with its room's name for the reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub message: crate::protocol::MessageView,
    pub room_name: String,
}

/// Mentions per page of the Mentions view.
pub const MENTIONS_PAGE: usize = 50;

/// A message that mentions the reader, for the Mentions view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MentionView {
    pub message: crate::protocol::MessageView,
    /// The room's name as the reader sees it (the other person, for a direct message).
    pub room_name: String,
    /// After the reader's read marker in that room.
    pub unread: bool,
}

/// A thread for its panel: the root, a page of replies (oldest first), whether the reader follows
/// it, and whether older replies remain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadPage {
    pub root: crate::protocol::MessageView,
    pub replies: Vec<crate::protocol::MessageView>,
    pub following: bool,
    pub more: bool,
}

/// A thread the reader follows, for the Threads view: its root, the room's name for them, and how
/// many replies they have read (the root says how many there are).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowedThread {
    pub root: crate::protocol::MessageView,
    pub room_name: String,
    pub read: u64,
}

impl FollowedThread {
    pub fn unread(&self) -> u64 {
        let count = self.root.replies.as_ref().map_or(0, |r| r.count);
        count.saturating_sub(self.read)
    }
}

/// An earlier version of an edited message: its words, and when they were replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditView {
    pub body: String,
    pub replaced_at: crate::model::Timestamp,
}

/// Everything the room page needs for its first render.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPageData {
    pub room: RoomSummary,
    /// The room's revision when the page was read: the messages reflect every change up to it.
    pub rev: u64,
    /// The latest page of history, oldest first; or, opened at a message, the messages around it.
    pub messages: Vec<crate::protocol::MessageView>,
    pub members: Vec<MemberView>,
}
