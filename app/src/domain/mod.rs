//! Parsed inputs: each newtype can only be made by its `parse`, which applies the rule and names the
//! form field an error belongs to, so an unvalidated string cannot reach the store. Shared by the
//! browser (instant hints) and the server (the authority).
//!
//! Values read back from the store were validated when they were written; drivers rebuild them with
//! `from_stored`, which does not check again (the rules may tighten later without making old data
//! unreadable).

mod account;
#[cfg(feature = "ssr")]
pub mod confusable;
mod emoji;
mod mention;
mod message;
mod room;
pub mod search;
pub mod text;

pub use account::{
    check_password_length, DisplayName, Username, DISPLAY_NAME_MAX, PASSWORD_MAX, PASSWORD_MIN,
    USERNAME_MAX, USERNAME_MIN,
};
pub use emoji::{search_emoji, Emoji, COMMON_EMOJI};
pub use mention::{mention_at, mention_spans, mentions, Mentions, ROOM_MENTION};
pub use message::{MessageBody, Nonce};
pub use room::{RoomName, RoomTopic, ROOM_NAME_MAX, ROOM_TOPIC_MAX};
pub use search::{index_terms, SearchQuery};

/// The shared shape of the text newtypes: read access, and the store's way back in.
macro_rules! text_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }

            /// A value the store holds: it passed `parse` when it was written.
            pub fn from_stored(text: String) -> Self {
                Self(text)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}
pub(crate) use text_newtype;
