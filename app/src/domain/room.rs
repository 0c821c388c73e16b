//! Room names and topics.

use super::text::{is_invisible_format, reorders_text};
use super::text_newtype;
use crate::error::AppError;

pub const ROOM_NAME_MAX: usize = 64;
pub const ROOM_TOPIC_MAX: usize = 256;

/// 1-64 characters without control characters, inner white space collapsed. Direct rooms have no
/// name of their own ([`RoomName::direct`]): people see the other person's name instead.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomName(String);
text_newtype!(RoomName);

impl RoomName {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty()
            || name.chars().count() > ROOM_NAME_MAX
            || name
                .chars()
                .any(|c| c.is_control() || is_invisible_format(c))
        {
            return Err(AppError::invalid(
                "name",
                format!("A room name has 1 to {ROOM_NAME_MAX} characters."),
            ));
        }
        Ok(Self(name))
    }

    /// The (empty) name of a direct-message room.
    pub fn direct() -> Self {
        Self(String::new())
    }
}

/// At most 256 characters, trimmed; line breaks allowed, other control characters not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RoomTopic(String);
text_newtype!(RoomTopic);

impl RoomTopic {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let topic = raw.trim();
        if topic.chars().count() > ROOM_TOPIC_MAX
            || topic
                .chars()
                .any(|c| (c.is_control() && c != '\n') || reorders_text(c))
        {
            return Err(AppError::invalid(
                "topic",
                format!("A topic has at most {ROOM_TOPIC_MAX} characters."),
            ));
        }
        Ok(Self(topic.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_and_topics_are_tidied_and_bounded() {
        assert_eq!(
            RoomName::parse("  general   chat ").unwrap(),
            "general chat"
        );
        assert!(RoomName::parse(" ").is_err());
        assert!(RoomName::parse(&"n".repeat(65)).is_err());
        assert_eq!(
            RoomTopic::parse(" plans\nand more ").unwrap(),
            "plans\nand more"
        );
        assert!(RoomTopic::parse(&"t".repeat(257)).is_err());
        assert!(RoomTopic::parse("bell\u{7}").is_err());
    }
}
