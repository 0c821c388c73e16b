//! Characters that make text look like something else: direction controls that reorder what follows
//! them, and invisible formatting characters that hide inside a name.

/// Bidirectional embeddings, overrides and isolates: they reorder the text around them, so
/// `\u{202E}nimda_toor` shows as "root_admin".
pub fn reorders_text(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Invisible formatting characters (Unicode's format category, as far as names are concerned):
/// the direction controls and marks, zero-width spaces and joiners, the soft hyphen, the word
/// joiner and invisible operators, the byte-order mark, interlinear annotation marks.
pub fn is_invisible_format(c: char) -> bool {
    reorders_text(c)
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2060}'..='\u{2064}'
                | '\u{206A}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// `text` for a URL (a query value, a path part): unreserved ASCII kept, every other byte `%XX`.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_controls_and_invisible_characters_are_recognised() {
        assert!("\u{202E}nimda_toor".chars().any(reorders_text));
        assert!("root\u{200B}_admin".chars().any(is_invisible_format));
        assert!(!"root\u{200B}_admin".chars().any(reorders_text));
        assert!(!"Zoë 🚀 مرحبا".chars().any(is_invisible_format));
    }
}
