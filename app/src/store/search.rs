//! Message search in the store's terms. The words a message is found by, and what a query means, are
//! `domain::search`'s; a store finds the messages that have every term (and a word starting with the
//! prefix) in the rooms it is given, newest first. Both drivers keep their index in the same write as
//! the message, so a stored message is always findable and an edited or deleted one never by its old
//! words.

use super::{MentionCursor, StoreResult};
use crate::model::{RoomId, Timestamp, UserId};

/// The most rooms one search covers (a reader in more is searched in their most recent ones).
pub const MAX_SEARCH_ROOMS: usize = 1_000;

/// What to find.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilter {
    /// Only messages in these rooms (the caller decides what the reader may read).
    pub rooms: Vec<RoomId>,
    /// Index terms every result has (`domain::index_terms`).
    pub terms: Vec<String>,
    /// Some index term of every result starts with this (a word: letters and digits only).
    pub prefix: Option<String>,
    pub author: Option<UserId>,
    /// Created at or after.
    pub after: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
    /// Where the previous page ended (pages are newest first by time, then id).
    pub before: Option<MentionCursor>,
}

impl SearchFilter {
    /// Neither terms nor a prefix: a search of nothing, which finds nothing.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty() && self.prefix.is_none()
    }

    /// Whether a message (not deleted) created at `at` with `id` by `author` is inside the filter's
    /// time range, cursor and author.
    pub fn admits(&self, at: Timestamp, id: &str, author: UserId) -> bool {
        self.author.is_none_or(|a| a == author)
            && self.after.is_none_or(|after| at >= after)
            && self.until.is_none_or(|until| at < until)
            && self
                .before
                .is_none_or(|c| (at, id) < (c.created_at, c.id.to_string().as_str()))
    }

    /// Whether `terms` (a message's index terms) have every term and the prefix.
    pub fn has_terms(&self, terms: &[String]) -> bool {
        self.terms.iter().all(|t| terms.contains(t))
            && self
                .prefix
                .as_ref()
                .is_none_or(|p| terms.iter().any(|t| t.starts_with(p.as_str())))
    }
}

#[async_trait::async_trait]
pub trait SearchStore: Send + Sync {
    /// Messages (not deleted) matching `filter`, newest first, at most `limit` (clamped like history
    /// pages). Nothing when the filter has neither terms nor a prefix.
    async fn search_messages(
        &self,
        filter: &SearchFilter,
        limit: u32,
    ) -> StoreResult<Vec<super::MessageRecord>>;
}
