//! Rooms, messages and the real-time connection.
//!
//! Shared by both sides: the wire types for rooms and members, the HTTP server functions (`api`) and
//! the browser's live state (`live`). Server-only: the rules for rooms (`rooms`) and messages
//! (`messages`), message rendering, the fan-out hub, one websocket connection (`connection`) and the
//! websocket endpoint (`socket`).

pub mod api;
pub mod live;

#[cfg(feature = "ssr")]
pub mod access;
#[cfg(feature = "ssr")]
pub mod connection;
#[cfg(feature = "ssr")]
pub mod hub;
#[cfg(feature = "ssr")]
pub mod messages;
#[cfg(feature = "ssr")]
pub mod render;
#[cfg(feature = "ssr")]
pub mod rooms;
#[cfg(feature = "ssr")]
pub mod socket;

use crate::model::{MemberRole, RoomId, RoomKind, UserId};
use crate::protocol::Presence;
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
    /// Whether the caller is a member.
    pub member: bool,
}

impl RoomSummary {
    pub fn unread(&self) -> u64 {
        self.last_seq.saturating_sub(self.read_seq)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub user: UserId,
    pub username: String,
    pub display_name: String,
    pub role: MemberRole,
    pub presence: Presence,
}

/// Per-user limit on messages (new, edited, deleted): `per_10s` in any ten seconds, refilling steadily.
#[cfg(feature = "ssr")]
pub struct SendLimit(crate::rate_limit::KeyedRateLimit<UserId>);

#[cfg(feature = "ssr")]
impl SendLimit {
    pub fn new(per_10s: u32) -> Self {
        Self(crate::rate_limit::KeyedRateLimit::new(
            per_10s,
            std::time::Duration::from_secs(10),
        ))
    }

    /// Takes one message from the user's budget; `Err(seconds)` until the next one is allowed.
    pub fn check(&self, user: UserId) -> Result<(), u64> {
        self.0.check(&user)
    }
}

/// Everything the room page needs for its first render.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPageData {
    pub room: RoomSummary,
    /// The latest page of history, oldest first.
    pub messages: Vec<crate::protocol::MessageView>,
    pub members: Vec<MemberView>,
}
