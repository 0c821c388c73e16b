//! Reaction emoji: what a reaction may be, and the catalogue the picker offers (names for its search;
//! no external emoji CDN or font).

use super::text_newtype;
use crate::error::AppError;

/// One emoji, possibly with modifiers (skin tone, variation selector, zero-width joiners): at most 32
/// bytes, only characters from the emoji blocks and their modifiers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Emoji(String);
text_newtype!(Emoji);

const MAX_EMOJI_BYTES: usize = 32;

/// Pictographic characters: the blocks emoji come from.
fn pictographic(c: char) -> bool {
    matches!(c as u32,
        0x00A9 | 0x00AE | 0x203C | 0x2049 | 0x2122 | 0x2139 | 0x3030 | 0x303D | 0x3297 | 0x3299
        | 0x2194..=0x21FF | 0x2300..=0x23FF | 0x24C2 | 0x25A0..=0x25FF | 0x2600..=0x27BF
        | 0x2934 | 0x2935 | 0x2B00..=0x2BFF | 0x1F000..=0x1FAFF)
}

/// Characters that only modify or join pictographs: ZWJ, variation selectors, the keycap mark, tags.
fn modifier(c: char) -> bool {
    matches!(
        c as u32,
        0x200D | 0xFE0E | 0xFE0F | 0x20E3 | 0xE0020..=0xE007F
    )
}

impl Emoji {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let keycap_base = |c: char| c.is_ascii_digit() || c == '#' || c == '*';
        let ok = !raw.is_empty()
            && raw.len() <= MAX_EMOJI_BYTES
            && raw.chars().any(|c| pictographic(c) || c == '\u{20E3}')
            && raw
                .chars()
                .all(|c| pictographic(c) || modifier(c) || keycap_base(c));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(AppError::invalid("emoji", "That is not an emoji."))
        }
    }
}

/// The emoji the picker offers: (emoji, its name, more words its search matches).
pub const COMMON_EMOJI: &[(&str, &str, &str)] = &[
    ("👍", "thumbs up", "yes like agree +1"),
    ("👎", "thumbs down", "no dislike -1"),
    ("❤️", "red heart", "love"),
    ("😂", "face with tears of joy", "laugh lol"),
    ("🎉", "party popper", "celebrate tada"),
    ("😮", "face with open mouth", "wow surprised"),
    ("😢", "crying face", "sad tear"),
    ("🙏", "folded hands", "please thanks pray"),
    ("👀", "eyes", "looking watching"),
    ("🔥", "fire", "hot lit"),
    ("✅", "check mark", "done yes"),
    ("❌", "cross mark", "no wrong"),
    ("🚀", "rocket", "ship launch"),
    ("💯", "hundred points", "perfect"),
    ("😀", "grinning face", "smile happy"),
    ("😄", "grinning face with smiling eyes", "happy"),
    ("😊", "smiling face with smiling eyes", "blush"),
    ("😉", "winking face", "wink"),
    ("😍", "smiling face with heart eyes", "love"),
    ("🤔", "thinking face", "hmm"),
    ("😅", "grinning face with sweat", "relief"),
    ("🙂", "slightly smiling face", ""),
    ("🙃", "upside down face", ""),
    ("😎", "smiling face with sunglasses", "cool"),
    ("😴", "sleeping face", "tired zzz"),
    ("🤯", "exploding head", "mind blown"),
    ("😬", "grimacing face", "awkward"),
    ("😡", "pouting face", "angry"),
    ("🥳", "partying face", "celebrate"),
    ("🤝", "handshake", "deal agree"),
    ("👏", "clapping hands", "applause bravo"),
    ("🙌", "raising hands", "hooray"),
    ("💪", "flexed biceps", "strong"),
    ("👋", "waving hand", "hello bye"),
    ("🤷", "person shrugging", "shrug dunno"),
    ("🤦", "person facepalming", "facepalm"),
    ("👌", "ok hand", "okay"),
    ("✌️", "victory hand", "peace"),
    ("🤞", "crossed fingers", "luck hope"),
    ("☕", "hot beverage", "coffee tea"),
    ("🍕", "pizza", "food"),
    ("🍰", "shortcake", "cake birthday"),
    ("🎂", "birthday cake", ""),
    ("🎁", "wrapped gift", "present"),
    ("⭐", "star", "favourite"),
    ("✨", "sparkles", "shiny new"),
    ("💡", "light bulb", "idea"),
    ("📌", "pushpin", "pin"),
    ("📎", "paperclip", "attach"),
    ("📝", "memo", "note write"),
    ("📅", "calendar", "date"),
    ("⏰", "alarm clock", "time"),
    ("⚠️", "warning", "caution"),
    ("🐛", "bug", "insect"),
    ("🛠️", "hammer and wrench", "tools fix"),
    ("💬", "speech balloon", "comment chat"),
    ("❓", "question mark", ""),
    ("❗", "exclamation mark", ""),
    ("➕", "plus", "add"),
    ("🟢", "green circle", "online go"),
    ("🔴", "red circle", "stop"),
    ("🌈", "rainbow", ""),
    ("☀️", "sun", "sunny"),
    ("🌧️", "cloud with rain", "rainy"),
    ("🐶", "dog face", "puppy"),
    ("🐱", "cat face", "kitten"),
    ("🦀", "crab", "rust ferris"),
    ("🍺", "beer mug", "cheers"),
    ("🏆", "trophy", "win award"),
    ("🎯", "direct hit", "bullseye target"),
];

/// The catalogue's emoji whose name has every word of `query` (any case), in catalogue order.
pub fn search_emoji(query: &str) -> Vec<&'static str> {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    COMMON_EMOJI
        .iter()
        .filter(|(_, name, more)| {
            words.iter().all(|w| {
                name.split(' ')
                    .chain(more.split(' '))
                    .any(|word| word.starts_with(w.as_str()))
            })
        })
        .map(|(emoji, _, _)| *emoji)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_emoji_is_a_valid_reaction_and_each_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for (emoji, _, _) in COMMON_EMOJI {
            assert!(Emoji::parse(emoji).is_ok(), "{emoji}");
            assert!(seen.insert(*emoji), "{emoji} twice");
        }
    }

    #[test]
    fn reactions_are_emoji_and_nothing_else() {
        for ok in ["👍🏽", "👩‍💻", "1️⃣", "🏳️‍🌈"] {
            assert!(Emoji::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "👍 ",
            "<b>",
            "1",
            "👍👍👍👍👍👍👍👍👍",
            "\u{202E}👍",
        ] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn search_matches_word_prefixes() {
        assert_eq!(search_emoji("thumbs up"), ["👍"]);
        assert!(search_emoji("heart").contains(&"❤️"));
        assert!(search_emoji("PARTY").contains(&"🎉"));
        assert!(search_emoji("zebra crossing").is_empty());
        assert_eq!(search_emoji("").len(), COMMON_EMOJI.len());
    }
}
