//! `@username` and `@room` in message text: what a message mentions, found the same way by the
//! server (who is notified) and the browser (the composer's suggestions).

use super::{USERNAME_MAX, USERNAME_MIN};

/// Notifies every member of the room.
pub const ROOM_MENTION: &str = "room";

/// What a message's text mentions: usernames (lower-cased, each once, in order) and whether `@room`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mentions {
    pub usernames: Vec<String>,
    pub room: bool,
}

fn username_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The `@…` tokens of `text`, each with the byte range of its name (after the `@`). A token starts
/// after the text's start or a character that cannot be in a username (so `ana@example.com` is no
/// mention).
pub fn mention_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut previous: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let starts = c == '@' && previous.is_none_or(|p| !username_char(p) && p != '@');
        previous = Some(c);
        if !starts {
            continue;
        }
        let from = i + 1;
        let mut to = from;
        while let Some(&(j, n)) = chars.peek() {
            if !username_char(n) {
                break;
            }
            to = j + n.len_utf8();
            previous = Some(n);
            chars.next();
        }
        let len = to - from;
        if (USERNAME_MIN..=USERNAME_MAX).contains(&len) || &text[from..to] == ROOM_MENTION {
            spans.push((from, to));
        }
    }
    spans
}

/// What `text` mentions.
pub fn mentions(text: &str) -> Mentions {
    let mut found = Mentions::default();
    for (from, to) in mention_spans(text) {
        let name = text[from..to].to_lowercase();
        if name == ROOM_MENTION {
            found.room = true;
        } else if !found.usernames.contains(&name) {
            found.usernames.push(name);
        }
    }
    found
}

/// While typing: the partial `@name` that ends at `cursor` (a byte offset), as (start of the `@`,
/// the letters typed so far).
pub fn mention_at(text: &str, cursor: usize) -> Option<(usize, &str)> {
    let before = text.get(..cursor)?;
    let at = before.rfind('@')?;
    let typed = &before[at + 1..];
    let starts = before[..at]
        .chars()
        .next_back()
        .is_none_or(|p| !username_char(p));
    (starts && typed.chars().all(username_char) && typed.len() <= USERNAME_MAX)
        .then_some((at, typed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_room_are_found_once_each() {
        let found = mentions("hi @Ana and @ben_2, @ana again; @room!");
        assert_eq!(found.usernames, ["ana", "ben_2"]);
        assert!(found.room);
        assert_eq!(mentions("no one here").usernames, Vec::<String>::new());
    }

    #[test]
    fn addresses_and_short_or_long_names_are_no_mentions() {
        assert_eq!(
            mentions("mail ana@example.com").usernames,
            Vec::<String>::new()
        );
        assert_eq!(mentions("@ab is too short").usernames, Vec::<String>::new());
        let long = format!("@{}", "x".repeat(USERNAME_MAX + 1));
        assert_eq!(mentions(&long).usernames, Vec::<String>::new());
        assert_eq!(mentions("@@ana").usernames, Vec::<String>::new());
        assert_eq!(mentions("(@ana)").usernames, ["ana"]);
        assert!(!mentions("@roomy").room);
    }

    #[test]
    fn the_name_being_typed_is_found_at_the_cursor() {
        let text = "hello @an";
        assert_eq!(mention_at(text, text.len()), Some((6, "an")));
        assert_eq!(mention_at("hello @", 7), Some((6, "")));
        assert_eq!(mention_at("mail ana@ex", 11), None);
        assert_eq!(mention_at("@ana done", 9), None);
        assert_eq!(mention_at("é @a", "é @a".len()), Some((3, "a")));
    }
}
