//! Message search, the part both stores share: which words a message is found by, and what a query
//! means. Words are runs of letters and digits, lower-cased with accents taken off ("Café" is found
//! by "cafe"), so search ignores case and accents in every language the normaliser decomposes. A
//! query needs every word (AND); its last word also matches as a prefix (as people type); quoted
//! phrases must appear as written (in words); filters narrow it: `in:#room`, `from:@user`,
//! `before:2026-12-01`, `after:2026-11-01`, `has:link`.

use crate::model::Timestamp;

/// The longest query accepted.
pub const MAX_QUERY_CHARS: usize = 200;
/// Words (and phrase words) one query may hold.
pub const MAX_QUERY_WORDS: usize = 8;
/// A prefix shorter than this matches too much to be useful: it is left out until typed further.
pub const MIN_PREFIX_CHARS: usize = 2;
/// Longer words are indexed (and searched) by their first this many characters.
pub const MAX_WORD_CHARS: usize = 40;
/// Distinct words indexed per message.
pub const MAX_TERMS_PER_MESSAGE: usize = 300;
/// The index term a message with a link carries, so `has:link` is a term like any other (it cannot
/// clash with a word: words have no `:`).
pub const LINK_TERM: &str = "has:link";

/// `text` lower-cased, accents removed: its compatibility decomposition (NFKD) without the marks.
#[cfg(not(all(feature = "hydrate", target_arch = "wasm32")))]
pub fn normalize(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// `text` lower-cased, accents removed, in the browser (which only marks the words a search found):
/// the same steps with the browser's own Unicode tables (`String.prototype.normalize("NFKD")`, then
/// every `\p{Mark}` removed), so the WebAssembly need not carry the ~120 KB of decomposition tables.
#[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
pub fn normalize(text: &str) -> String {
    let decomposed = js_sys::JsString::from(text).normalize("NFKD");
    let marks = js_sys::RegExp::new("\\p{M}", "gu");
    String::from(decomposed.replace_by_pattern(&marks, ""))
        .chars()
        .flat_map(char::to_lowercase)
        .collect()
}

/// The words of `text`, normalised, in order (repeats kept: phrases need them).
pub fn words(text: &str) -> Vec<String> {
    normalize(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_WORD_CHARS).collect())
        .collect()
}

fn has_link(text: &str) -> bool {
    let lower = text.to_lowercase();
    lower.contains("http://") || lower.contains("https://")
}

/// What the index holds for a message body: its distinct words, and `LINK_TERM` when it links.
pub fn index_terms(body: &str) -> Vec<String> {
    let mut terms = words(body);
    terms.sort_unstable();
    terms.dedup();
    terms.truncate(MAX_TERMS_PER_MESSAGE);
    if has_link(body) {
        terms.push(LINK_TERM.to_owned());
    }
    terms
}

/// A parsed query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Index terms every result has (words, phrase words, `LINK_TERM`), each once.
    pub terms: Vec<String>,
    /// The last word as typed: some word of a result starts with it.
    pub prefix: Option<String>,
    /// Word sequences a result contains in order.
    pub phrases: Vec<Vec<String>>,
    /// `in:#name`: a room name (as typed, without `#`).
    pub room: Option<String>,
    /// `from:@username` (without `@`).
    pub from: Option<String>,
    /// `after:` and `before:` dates as a time range, `after <= created_at < before` (UTC days).
    pub after: Option<Timestamp>,
    pub before: Option<Timestamp>,
}

/// Why a query cannot run, in words for the person typing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

impl SearchQuery {
    pub fn parse(input: &str) -> Result<Self, QueryError> {
        if input.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError(format!(
                "A search is at most {MAX_QUERY_CHARS} characters."
            )));
        }
        let mut query = SearchQuery::default();
        let mut bare: Vec<String> = Vec::new();
        for (quoted, piece) in pieces(input) {
            if quoted {
                let phrase = words(&piece);
                match phrase.len() {
                    0 => {}
                    1 => bare.extend(phrase),
                    _ => {
                        query.terms.extend(phrase.iter().cloned());
                        query.phrases.push(phrase);
                    }
                }
                continue;
            }
            if let Some((key, value)) = piece.split_once(':') {
                if query.filter(key, value)? {
                    continue;
                }
            }
            bare.extend(words(&piece));
        }
        // The last bare word is still being typed: it matches as a prefix (when long enough to
        // mean something), the rest exactly.
        let typing = !input.ends_with(char::is_whitespace) && !input.ends_with('"');
        if typing {
            if let Some(last) = bare.pop() {
                if last.chars().count() >= MIN_PREFIX_CHARS {
                    query.prefix = Some(last);
                } else if bare.is_empty() && query.terms.is_empty() {
                    // Nothing else to go on: a one-letter search is a whole word.
                    bare.push(last);
                }
            }
        }
        query.terms.extend(bare);
        let mut seen = std::collections::HashSet::new();
        query.terms.retain(|t| seen.insert(t.clone()));
        let count = query.terms.len() + usize::from(query.prefix.is_some());
        if count > MAX_QUERY_WORDS {
            return Err(QueryError(format!(
                "A search has at most {MAX_QUERY_WORDS} words."
            )));
        }
        if count == 0 {
            return Err(QueryError("Type a word to search for.".to_owned()));
        }
        Ok(query)
    }

    /// Applies `key:value` if it is a filter; whether it was.
    fn filter(&mut self, key: &str, value: &str) -> Result<bool, QueryError> {
        match key.to_lowercase().as_str() {
            "in" => self.room = Some(value.trim_start_matches('#').to_owned()),
            "from" => self.from = Some(value.trim_start_matches('@').to_lowercase()),
            "before" => self.before = Some(day_start(value)?),
            "after" => self.after = Some(day_start(value)?),
            "has" if value.eq_ignore_ascii_case("link") => self.terms.push(LINK_TERM.to_owned()),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether `body` satisfies the words, prefix and phrases (the stores find candidates by terms;
    /// this is the exact rule, the same for both).
    pub fn matches(&self, body: &str) -> bool {
        let found = words(body);
        let linked = has_link(body);
        let has_term = |t: &String| {
            if t == LINK_TERM {
                linked
            } else {
                found.iter().any(|w| w == t)
            }
        };
        self.terms.iter().all(has_term)
            && self
                .prefix
                .as_ref()
                .is_none_or(|p| found.iter().any(|w| w.starts_with(p.as_str())))
            && self
                .phrases
                .iter()
                .all(|p| found.windows(p.len()).any(|w| w == p.as_slice()))
    }

    /// The words to highlight in a result: every word and phrase word, and the prefix.
    pub fn highlights(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .terms
            .iter()
            .filter(|t| *t != LINK_TERM)
            .cloned()
            .collect();
        out.extend(self.prefix.clone());
        out
    }
}

/// The query split into quoted phrases and whitespace-separated pieces.
fn pieces(input: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('"') {
            let end = after.find('"').unwrap_or(after.len());
            out.push((true, after[..end].to_owned()));
            rest = after.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(['"', ' ', '\t', '\n']).unwrap_or(rest.len());
            if end > 0 {
                out.push((false, rest[..end].to_owned()));
            }
            rest = rest[end..].trim_start_matches([' ', '\t', '\n']);
        }
    }
    out
}

/// `YYYY-MM-DD` as the start of that day (UTC).
fn day_start(text: &str) -> Result<Timestamp, QueryError> {
    let bad = || QueryError(format!("{text:?} is not a date like 2026-12-01."));
    let mut parts = text.splitn(3, '-');
    let mut number = |len: usize| -> Result<i64, QueryError> {
        let part = parts.next().filter(|p| p.len() == len).ok_or_else(bad)?;
        part.parse::<i64>().map_err(|_| bad())
    };
    let (year, month, day) = (number(4)?, number(2)?, number(2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    Ok(Timestamp(days_from_civil(year, month, day) * 86_400_000))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_ignore_case_and_accents_in_many_scripts() {
        assert_eq!(
            words("Café CRÈME, naïve—Zoë!"),
            ["cafe", "creme", "naive", "zoe"]
        );
        // ß has no decomposition and stays; Greek loses its tonos.
        assert_eq!(words("Straße Ελλάδα"), ["straße", "ελλαδα"]);
        assert_eq!(
            index_terms("b a b https://x.example"),
            ["a", "b", "example", "https", "x", LINK_TERM]
        );
    }

    #[test]
    fn a_query_needs_every_word_and_the_last_one_as_a_prefix_while_typing() {
        let q = SearchQuery::parse("Lunch Pla").unwrap();
        assert_eq!(q.terms, ["lunch"]);
        assert_eq!(q.prefix.as_deref(), Some("pla"));
        assert!(q.matches("Lunch plans for Friday"));
        assert!(!q.matches("lunch at noon"));
        assert!(!q.matches("plans only"));
        // Finished typing (a space after): whole words only.
        let done = SearchQuery::parse("lunch plans ").unwrap();
        assert_eq!((done.terms.len(), done.prefix.clone()), (2, None));
        assert!(!done.matches("lunch planning"));
    }

    #[test]
    fn phrases_filters_and_errors() {
        let q = SearchQuery::parse(
            r#""release notes" in:#general from:@Ana has:link after:2026-11-30 before:2026-12-01 "#,
        )
        .unwrap();
        assert_eq!(q.phrases, [vec!["release".to_owned(), "notes".to_owned()]]);
        assert_eq!(q.room.as_deref(), Some("general"));
        assert_eq!(q.from.as_deref(), Some("ana"));
        assert!(q.terms.contains(&LINK_TERM.to_owned()));
        assert_eq!(q.after, Some(Timestamp(1_795_996_800_000)));
        assert_eq!(q.before, Some(Timestamp(1_796_083_200_000)));
        assert!(q.matches("the Release Notes: https://x.example"));
        assert!(!q.matches("notes on the release https://x.example"));
        assert!(!q.matches("the release notes, no link"));
        assert!(SearchQuery::parse("   ").is_err());
        assert!(SearchQuery::parse("before:yesterday lunch").is_err());
        let many: String = (0..=MAX_QUERY_WORDS).map(|i| format!("w{i} ")).collect();
        assert!(SearchQuery::parse(&many).is_err());
        assert!(SearchQuery::parse(&"x".repeat(MAX_QUERY_CHARS + 1)).is_err());
        // An unknown filter is a word.
        assert_eq!(
            SearchQuery::parse("ratio:16 ").unwrap().terms,
            ["ratio", "16"]
        );
    }

    #[test]
    fn a_one_letter_search_is_a_word_and_a_one_letter_prefix_waits() {
        assert_eq!(SearchQuery::parse("x").unwrap().terms, ["x"]);
        let q = SearchQuery::parse("lunch p").unwrap();
        assert_eq!((q.terms, q.prefix), (vec!["lunch".to_owned()], None));
    }
}
