//! Driver errors in the store's terms: undecodable data is `Corrupt`, a duplicate key `Duplicate` (named
//! after the index that clashed), anything else `Unavailable`. The server's raw reply never leaks out.

use crate::store::{StoreError, StoreResult};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};

const DUPLICATE_KEY: i32 = 11000;

pub(super) trait OrUnavailable<T> {
    /// Maps a driver error: undecodable data is `Corrupt`, everything else `Unavailable`.
    fn or_unavailable(self, context: &str) -> StoreResult<T>;
    /// Like `or_unavailable`, but a duplicate key becomes `Duplicate(entity(index name))`.
    fn or_duplicate(self, context: &str, entity: fn(&str) -> &'static str) -> StoreResult<T>;
}

impl<T> OrUnavailable<T> for Result<T, MongoError> {
    fn or_unavailable(self, context: &str) -> StoreResult<T> {
        self.map_err(|e| store_error(context, &e))
    }

    fn or_duplicate(self, context: &str, entity: fn(&str) -> &'static str) -> StoreResult<T> {
        self.map_err(|e| match duplicate_key_message(&e) {
            Some(message) => StoreError::Duplicate(entity(clashing_index(message).unwrap_or(""))),
            None => store_error(context, &e),
        })
    }
}

pub(super) fn store_error(context: &str, err: &MongoError) -> StoreError {
    match err.kind.as_ref() {
        ErrorKind::BsonDeserialization(e) => StoreError::Corrupt(format!("{context}: {e}")),
        _ => StoreError::Unavailable(format!("{context}: {}", describe(err))),
    }
}

/// The error without the raw server reply that `MongoError`'s own Display appends.
pub(super) fn describe(err: &MongoError) -> String {
    err.kind.to_string()
}

/// The server's message when `err` is a duplicate-key (E11000) failure.
pub(super) fn duplicate_key_message(err: &MongoError) -> Option<&str> {
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) if e.code == DUPLICATE_KEY => {
            Some(&e.message)
        }
        ErrorKind::Command(e) if e.code == DUPLICATE_KEY => Some(&e.message),
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()?
            .iter()
            .find(|w| w.code == DUPLICATE_KEY)
            .map(|w| w.message.as_str()),
        _ => None,
    }
}

/// The index named in "E11000 duplicate key error collection: db.c index: NAME dup key: { ... }".
pub(super) fn clashing_index(message: &str) -> Option<&str> {
    message.split_once(" index: ")?.1.split_whitespace().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clashing_index_is_read_from_the_server_message() {
        let message =
            "E11000 duplicate key error collection: chat.messages index: room_seq_unique \
                       dup key: { room_id: \"r\", seq: 1 }";
        assert_eq!(clashing_index(message), Some("room_seq_unique"));
        assert_eq!(clashing_index("E11000 something else"), None);
    }
}
