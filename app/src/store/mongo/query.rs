//! Filters built from user text: always literals or escaped regexes, never operators.

use mongodb::bson::{doc, Document};

/// Escapes regex metacharacters so user text matches only itself.
fn escape_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            // Written as an escape so no raw control byte (e.g. NUL) reaches the server's pattern.
            // Control characters are all below U+0100, so two hex digits (PCRE and others agree).
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
            continue;
        }
        if "\\^$.|?*+()[]{}-/#".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A case-insensitive substring match over lowercased key fields.
pub(super) fn contains_any(fields: &[&str], text: &str) -> Document {
    let pattern = escape_regex(&text.to_lowercase());
    let alternatives: Vec<Document> = fields
        .iter()
        .map(|field| doc! { *field: { "$regex": pattern.as_str(), "$options": "" } })
        .collect();
    doc! { "$or": alternatives }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_metacharacters_match_only_themselves() {
        assert_eq!(escape_regex("a.b*c"), r"a\.b\*c");
        assert_eq!(escape_regex("(x|y)$"), r"\(x\|y\)\$");
        assert_eq!(escape_regex("plain"), "plain");
        assert_eq!(escape_regex("a\0b"), r"a\x00b");
    }

    #[test]
    fn search_text_is_a_literal_not_an_operator() {
        let filter = contains_any(&["username_key"], "{\"$ne\": 1}");
        let alternatives = filter.get_array("$or").unwrap();
        let first = alternatives[0].as_document().unwrap();
        let regex = first.get_document("username_key").unwrap();
        assert_eq!(regex.get_str("$regex").unwrap(), r#"\{"\$ne": 1\}"#);
    }
}
