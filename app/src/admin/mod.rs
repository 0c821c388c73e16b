//! The admin panel's data: what the `/admin` pages show, and the server functions that change users,
//! rooms and messages on an admin's behalf. Every function checks the caller's role in the store on the
//! server (`actor`), and every change writes exactly one audit entry (`audit`). Server-only: the
//! dashboard, users, rooms and moderation rules, and the first admins (`bootstrap`).

pub mod api;

#[cfg(feature = "ssr")]
pub mod actor;
#[cfg(feature = "ssr")]
pub mod audit;
#[cfg(feature = "ssr")]
pub mod bootstrap;
#[cfg(feature = "ssr")]
pub mod dashboard;
#[cfg(feature = "ssr")]
pub mod rooms;
#[cfg(feature = "ssr")]
pub mod users;

use crate::model::{AuditId, Role, RoomId, RoomKind, Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// Rows per page in the admin tables.
pub const TABLE_PAGE: u32 = 25;

/// Every kind of audited action: its stable machine name (stored with the entry) and the words the
/// audit viewer shows for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    Disable,
    Enable,
    Promote,
    Demote,
    ForceLogout,
    ResetPassword,
    ResetTwoFactor,
    CreateAdmin,
    Archive,
    Unarchive,
    DeleteRoom,
    DeleteMessage,
    SearchMessages,
}

impl AuditAction {
    pub const ALL: [AuditAction; 13] = [
        Self::Disable,
        Self::Enable,
        Self::Promote,
        Self::Demote,
        Self::ForceLogout,
        Self::ResetPassword,
        Self::ResetTwoFactor,
        Self::CreateAdmin,
        Self::Archive,
        Self::Unarchive,
        Self::DeleteRoom,
        Self::DeleteMessage,
        Self::SearchMessages,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "user.disable",
            Self::Enable => "user.enable",
            Self::Promote => "user.promote",
            Self::Demote => "user.demote",
            Self::ForceLogout => "user.force_logout",
            Self::ResetPassword => "user.reset_password",
            Self::ResetTwoFactor => "user.reset_two_factor",
            Self::CreateAdmin => "user.create_admin",
            Self::Archive => "room.archive",
            Self::Unarchive => "room.unarchive",
            Self::DeleteRoom => "room.delete",
            Self::DeleteMessage => "message.delete",
            Self::SearchMessages => "message.search",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Disable => "Disable user",
            Self::Enable => "Enable user",
            Self::Promote => "Promote to admin",
            Self::Demote => "Demote to user",
            Self::ForceLogout => "Force logout",
            Self::ResetPassword => "Reset password",
            Self::ResetTwoFactor => "Reset two-factor sign-in",
            Self::CreateAdmin => "Create admin",
            Self::Archive => "Archive room",
            Self::Unarchive => "Unarchive room",
            Self::DeleteRoom => "Delete room",
            Self::DeleteMessage => "Delete message",
            Self::SearchMessages => "Search all messages",
        }
    }

    /// The action with this machine name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardStats {
    pub users_total: u64,
    pub users_disabled: u64,
    pub admins: u64,
    pub rooms: u64,
    pub messages_total: u64,
    pub messages_24h: u64,
    /// Websocket connections open on this instance now.
    pub sockets_open: u64,
    /// Distinct users with an open connection on this instance now.
    pub users_online: u64,
    /// `"embedded"` or `"mongodb"`.
    pub driver: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUserRow {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub must_change_password: bool,
    /// Whether the account signs in with a code from an authenticator app too.
    pub two_factor: bool,
    pub created_at: Timestamp,
    pub last_seen_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRoomRow {
    pub id: RoomId,
    pub name: String,
    pub kind: RoomKind,
    pub archived: bool,
    pub members: u64,
    pub messages: u64,
    /// When the newest message was sent (the creation time for an empty room).
    pub last_activity: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: AuditId,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ip: String,
    pub details: String,
}

/// One page of an admin table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TablePage<T> {
    pub items: Vec<T>,
    /// Matches in all pages.
    pub total: u64,
    pub offset: u64,
}

impl<T> TablePage<T> {
    /// "26–50 of 73", or "No matches".
    pub fn range_label(&self) -> String {
        if self.items.is_empty() {
            return "No matches".to_owned();
        }
        let first = self.offset + 1;
        let last = self.offset + self.items.len() as u64;
        format!("{first}–{last} of {}", self.total)
    }

    pub fn has_next(&self) -> bool {
        self.offset + (self.items.len() as u64) < self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_labels_count_from_one() {
        let page = TablePage {
            items: vec![1, 2, 3],
            total: 28,
            offset: 25,
        };
        assert_eq!(page.range_label(), "26–28 of 28");
        assert!(!page.has_next());
        let first = TablePage {
            items: vec![0; 25],
            total: 28,
            offset: 0,
        };
        assert!(first.has_next());
        let empty = TablePage::<u8> {
            items: vec![],
            total: 0,
            offset: 0,
        };
        assert_eq!(empty.range_label(), "No matches");
    }
}
