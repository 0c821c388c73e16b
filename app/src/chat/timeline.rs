//! How a room's messages are laid out: a heading where a new day begins, and consecutive messages of
//! one author within a few minutes grouped under one name, as chat readers expect.

use crate::model::Timestamp;
use crate::protocol::MessageView;

/// Messages of one author closer together than this share one header.
pub const GROUP_GAP_MS: i64 = 5 * 60 * 1000;

/// One message in the list, and what comes before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub message: MessageView,
    /// The first message of a day (by `day_of`): the heading goes above it.
    pub starts_day: bool,
    /// Same author as the message before, same day, within `GROUP_GAP_MS`: no name of its own.
    pub continued: bool,
    /// Messages are missing between this one and the next (the room was opened at an older
    /// message): the reader can load them from here.
    pub gap_after: bool,
}

/// Lays out `messages` (in sequence order); `day_of` says which calendar day a time falls on.
pub fn rows(messages: &[MessageView], day_of: impl Fn(Timestamp) -> i64) -> Vec<Row> {
    let mut previous: Option<&MessageView> = None;
    messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            let day = day_of(message.created_at);
            let starts_day = previous.is_none_or(|p| day_of(p.created_at) != day);
            let continued = !starts_day
                && previous.is_some_and(|p| {
                    p.author == message.author
                        && !p.deleted
                        && !message.deleted
                        && message.created_at.millis() - p.created_at.millis() < GROUP_GAP_MS
                });
            previous = Some(message);
            let gap_after = messages
                .get(i + 1)
                .is_some_and(|next| next.seq > message.seq + 1);
            Row {
                message: message.clone(),
                starts_day,
                continued,
                gap_after,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MessageId, RoomId, UserId};

    const MINUTE: i64 = 60_000;

    fn message(seq: u64, author: u128, at_minutes: i64) -> MessageView {
        MessageView {
            id: MessageId::from_uuid(uuid::Uuid::from_u128(u128::from(seq))),
            room: RoomId::from_uuid(uuid::Uuid::from_u128(9)),
            seq,
            rev: seq,
            author: UserId::from_uuid(uuid::Uuid::from_u128(author)),
            author_name: String::new(),
            author_username: String::new(),
            author_avatar: None,
            body: String::new(),
            html: String::new(),
            created_at: Timestamp(at_minutes * MINUTE),
            edited_at: None,
            deleted: false,
            mentions: Vec::new(),
            reactions: Vec::new(),
            thread: None,
            replies: None,
            files: Vec::new(),
        }
    }

    fn shape(rows: &[Row]) -> Vec<(u64, bool, bool)> {
        rows.iter()
            .map(|r| (r.message.seq, r.starts_day, r.continued))
            .collect()
    }

    #[test]
    fn one_authors_run_is_grouped_until_a_pause_another_author_or_a_new_day() {
        let day = 24 * 60;
        let list = [
            message(1, 1, 10),
            message(2, 1, 12),
            message(3, 1, 12 + 5), // five minutes after the last: a new group
            message(4, 2, 18),
            message(5, 1, 19),
            message(6, 1, day + 1), // the next day
            message(7, 1, day + 2),
        ];
        let rows = rows(&list, |t| t.millis().div_euclid(day * MINUTE));
        assert_eq!(
            shape(&rows),
            [
                (1, true, false),
                (2, false, true),
                (3, false, false),
                (4, false, false),
                (5, false, false),
                (6, true, false),
                (7, false, true),
            ]
        );
    }

    #[test]
    fn the_day_is_whatever_the_reader_calls_a_day() {
        // 23:50 and 00:10 UTC: one day for a reader an hour behind UTC, two for UTC.
        let list = [message(1, 1, 23 * 60 + 50), message(2, 1, 24 * 60 + 10)];
        let day = 24 * 60 * MINUTE;
        let utc = rows(&list, |t| t.millis().div_euclid(day));
        let behind = rows(&list, |t| (t.millis() - 60 * MINUTE).div_euclid(day));
        assert_eq!(shape(&utc), [(1, true, false), (2, true, false)]);
        assert_eq!(shape(&behind), [(1, true, false), (2, false, false)]);
    }

    #[test]
    fn a_hole_in_the_sequence_is_marked_where_it_starts() {
        let list = [message(4, 1, 10), message(5, 1, 11), message(9, 1, 12)];
        let gaps: Vec<bool> = rows(&list, |_| 0).iter().map(|r| r.gap_after).collect();
        assert_eq!(gaps, [false, true, false]);
    }

    #[test]
    fn deleted_messages_keep_their_own_line() {
        let mut gone = message(2, 1, 11);
        gone.deleted = true;
        let rows = rows(&[message(1, 1, 10), gone, message(3, 1, 12)], |_| 0);
        assert_eq!(
            shape(&rows),
            [(1, true, false), (2, false, false), (3, false, false)]
        );
    }
}
