//! Domain types shared by the server and the browser. No storage-driver types live here.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUID v7), so ids sort roughly by creation time.
            #[cfg(feature = "ssr")]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        #[cfg(feature = "ssr")]
        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// Identifies a user account.
    UserId
);
id_type!(
    /// Identifies a login session, which is also its refresh-token family.
    SessionId
);
id_type!(
    /// Identifies a room (public, private or direct).
    RoomId
);
id_type!(
    /// Identifies a chat message.
    MessageId
);
id_type!(
    /// Identifies an audit-log entry.
    AuditId
);
id_type!(
    /// Identifies an uploaded file (an attachment or a profile picture).
    FileId
);

/// Milliseconds since the Unix epoch (UTC). One plain integer so both drivers and the wire agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    #[cfg(feature = "ssr")]
    pub fn now() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(since_epoch.as_millis() as i64)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// `2026-11-26T09:05:00Z`, for `<time datetime>`.
    pub fn iso(self) -> String {
        let secs = self.0.div_euclid(1000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    /// `2026-11-26 09:05 UTC`: the same text on the server and in the browser, so hydration matches.
    pub fn format_utc(self) -> String {
        let secs = self.0.div_euclid(1000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
            rem / 3600,
            rem % 3600 / 60
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The inverse of `civil_from_days`.
#[cfg(test)]
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What a user may do across the whole instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// The three kinds of room. Direct rooms hold exactly two members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    Public,
    Private,
    Direct,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Public => "public",
            RoomKind::Private => "private",
            RoomKind::Direct => "direct",
        }
    }
}

/// A member's standing inside one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Owner,
    Member,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Owner => "owner",
            MemberRole::Member => "member",
        }
    }
}

/// What one person hears about one room: every message, only mentions of them, or nothing (muted:
/// no unread badge either; mentions still show on the Mentions view).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyLevel {
    #[default]
    All,
    Mentions,
    Nothing,
}

impl NotifyLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyLevel::All => "all",
            NotifyLevel::Mentions => "mentions",
            NotifyLevel::Nothing => "nothing",
        }
    }

    /// The stored or submitted form; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::All, Self::Mentions, Self::Nothing]
            .into_iter()
            .find(|l| l.as_str() == raw)
    }

    /// Whether a new message (`mentions_me` or not) calls for a desktop notification.
    pub fn notifies(self, mentions_me: bool) -> bool {
        match self {
            NotifyLevel::All => true,
            NotifyLevel::Mentions => mentions_me,
            NotifyLevel::Nothing => false,
        }
    }

    /// Whether unread messages are counted on the room's badge.
    pub fn shows_unread(self) -> bool {
        self != NotifyLevel::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_levels_decide_what_reaches_the_reader() {
        for level in [
            NotifyLevel::All,
            NotifyLevel::Mentions,
            NotifyLevel::Nothing,
        ] {
            assert_eq!(NotifyLevel::parse(level.as_str()), Some(level));
        }
        assert_eq!(NotifyLevel::parse("loud"), None);
        assert!(NotifyLevel::All.notifies(false));
        assert!(!NotifyLevel::Mentions.notifies(false));
        assert!(NotifyLevel::Mentions.notifies(true));
        assert!(!NotifyLevel::Nothing.notifies(true));
        assert!(!NotifyLevel::Nothing.shows_unread());
        assert!(NotifyLevel::Mentions.shows_unread());
    }

    #[test]
    fn ids_round_trip_through_their_text_form() {
        let raw = Uuid::parse_str("0190a0f5-7c1e-7d3a-9b1e-3f2a4c5d6e7f").unwrap();
        let id = RoomId::from_uuid(raw);
        let text = id.to_string();
        assert_eq!(text, "0190a0f5-7c1e-7d3a-9b1e-3f2a4c5d6e7f");
        assert_eq!(text.parse::<RoomId>().unwrap(), id);
        assert!("not-a-uuid".parse::<RoomId>().is_err());
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let raw = Uuid::parse_str("0190a0f5-7c1e-7d3a-9b1e-3f2a4c5d6e7f").unwrap();
        let json = serde_json::to_string(&UserId::from_uuid(raw)).unwrap();
        assert_eq!(json, "\"0190a0f5-7c1e-7d3a-9b1e-3f2a4c5d6e7f\"");
    }

    #[test]
    fn enums_use_lowercase_names_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&RoomKind::Direct).unwrap(),
            "\"direct\""
        );
        assert_eq!(serde_json::to_string(&Role::Admin).unwrap(), "\"admin\"");
        assert_eq!(RoomKind::Private.as_str(), "private");
    }

    #[test]
    fn timestamps_format_as_utc_dates() {
        assert_eq!(Timestamp(0).format_utc(), "1970-01-01 00:00 UTC");
        assert_eq!(
            Timestamp(1_795_654_980_000).format_utc(),
            "2026-11-26 01:03 UTC"
        );
        assert_eq!(
            Timestamp(951_782_400_000).format_utc(),
            "2000-02-29 00:00 UTC"
        );
    }

    #[test]
    fn timestamps_add_without_overflow() {
        assert_eq!(Timestamp(5).plus_millis(10), Timestamp(15));
        assert_eq!(Timestamp(i64::MAX).plus_millis(1), Timestamp(i64::MAX));
    }
}
