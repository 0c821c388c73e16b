//! A JSON scanner for the items loadgen reads by the million: it finds the few keys loadgen needs at
//! the top level of an item and inside its `message` object, whatever their order and whatever else
//! is there, and skips every other value (strings with escapes, nested objects and arrays) without
//! building anything. Strings are returned as the raw bytes between their quotes; the caller
//! unescapes the rare ones that contain a backslash.
//!
//! It checks the structure (brackets, colons, commas, string ends, nesting depth) so a cut or garbled
//! item is an error, not a misread; it does not check what serde would also refuse inside strings and
//! numbers it only skips. Anything it cannot read is left to the full serde decode.

use memchr::memchr2;
use std::borrow::Cow;

/// Nesting deeper than this is refused (no stack overflow on hostile input).
const MAX_DEPTH: u32 = 64;

/// Why an item was not scanned; the caller falls back to serde, which says more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanError {
    /// Byte offset where scanning stopped.
    pub at: usize,
}

type Result<T> = std::result::Result<T, ScanError>;

/// A JSON string as it appears between its quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawStr<'a> {
    pub raw: &'a [u8],
    /// It contains a backslash: `raw` is not the text itself.
    pub escaped: bool,
}

impl<'a> RawStr<'a> {
    /// The string's bytes (UTF-8 as sent), unescaped if needed; `None` if the escapes are invalid.
    pub fn bytes(&self) -> Option<Cow<'a, [u8]>> {
        if !self.escaped {
            return Some(Cow::Borrowed(self.raw));
        }
        // Rare: let serde_json unescape it (it handles \uXXXX and surrogate pairs).
        let mut quoted = Vec::with_capacity(self.raw.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(self.raw);
        quoted.push(b'"');
        let text: String = serde_json::from_slice(&quoted).ok()?;
        Some(Cow::Owned(text.into_bytes()))
    }
}

/// The keys of a `message` object loadgen checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageFields<'a> {
    pub room: Option<RawStr<'a>>,
    pub seq: Option<u64>,
    pub body: Option<RawStr<'a>>,
}

/// The top-level keys of an item loadgen looks at (each `None` when absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scanned<'a> {
    /// `type`, unescaped (an escaped tag is left to serde).
    pub kind: Option<&'a [u8]>,
    /// `message`, when it is an object (in `error` items it is a string, skipped).
    pub message: Option<MessageFields<'a>>,
    pub nonce: Option<RawStr<'a>>,
    pub room: Option<RawStr<'a>>,
    pub seq: Option<u64>,
    /// How many elements `changes` has, when it is an array.
    pub changes: Option<usize>,
}

/// Scans one item: a JSON object, nothing after it but whitespace. Items as serde_json writes them
/// take the fast path (`scan_fast`); the others are read here.
pub fn scan(json: &[u8]) -> Result<Scanned<'_>> {
    match super::scan_fast::scan(json) {
        Some(scanned) => Ok(scanned),
        None => scan_general(json),
    }
}

/// `scan` without the fast path.
pub fn scan_general(json: &[u8]) -> Result<Scanned<'_>> {
    let mut c = Cursor { s: json, i: 0 };
    let mut out = Scanned::default();
    c.object(0, |c, key| {
        match key {
            b"type" => {
                let s = c.string()?;
                if s.escaped {
                    return Err(c.error());
                }
                out.kind = Some(s.raw);
            }
            b"message" if c.next_is(b'{') => out.message = Some(c.message_fields()?),
            b"nonce" if c.next_is(b'"') => out.nonce = Some(c.string()?),
            b"room" if c.next_is(b'"') => out.room = Some(c.string()?),
            b"seq" => out.seq = Some(c.u64()?),
            b"changes" if c.next_is(b'[') => out.changes = Some(c.array(1)?),
            _ => c.value(1)?,
        }
        Ok(())
    })?;
    c.ws();
    if c.i != json.len() {
        return Err(c.error());
    }
    Ok(out)
}

/// The first `"` or `\\` in `s`. Most strings of an item are short (keys, ids, names), where a
/// word-at-a-time search beats memchr's setup; longer ones (HTML, long bodies) go to memchr.
fn quote_or_backslash(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = ONES * b'"' as u64;
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    /// Bytes searched word by word before handing over to memchr.
    const SHORT: usize = 64;
    let mut i = 0;
    while i + 8 <= s.len().min(SHORT) {
        let word = u64::from_le_bytes(s[i..i + 8].try_into().expect("eight bytes"));
        // A byte equal to the target is zero after the XOR; `(v - 1) & !v` sets its high bit. Bits
        // above a true hit may be false ones, so only the lowest set bit is used.
        let (q, b) = (word ^ QUOTES, word ^ BACKSLASHES);
        let hits = (q.wrapping_sub(ONES) & !q | b.wrapping_sub(ONES) & !b) & HIGHS;
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if s.len() <= SHORT {
        return s[i..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\')
            .map(|k| i + k);
    }
    memchr2(b'"', b'\\', &s[i..]).map(|k| i + k)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn error(&self) -> ScanError {
        ScanError { at: self.i }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// Whether the next value (after whitespace) starts with `b`.
    fn next_is(&mut self, b: u8) -> bool {
        self.ws();
        self.peek() == Some(b)
    }

    fn eat(&mut self, b: u8) -> Result<()> {
        self.ws();
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// A string; the cursor is left after its closing quote.
    fn string(&mut self) -> Result<RawStr<'a>> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            let rest = self.s.get(self.i..).ok_or_else(|| self.error())?;
            let k = quote_or_backslash(rest).ok_or(ScanError { at: self.s.len() })?;
            let at = self.i + k;
            if self.s[at] == b'"' {
                self.i = at + 1;
                return Ok(RawStr {
                    raw: &self.s[start..at],
                    escaped,
                });
            }
            // A backslash: the byte after it is escaped (a quote or backslash too). `\uXXXX`
            // continues with hex digits, which are neither.
            escaped = true;
            self.i = at + 2;
        }
    }

    /// An object, calling `field` with each key and the cursor before its value (which `field`
    /// must consume).
    fn object(
        &mut self,
        depth: u32,
        mut field: impl FnMut(&mut Self, &'a [u8]) -> Result<()>,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.error());
        }
        self.eat(b'{')?;
        if self.next_is(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            if key.escaped {
                // An escaped key may spell one we look for: leave the item to serde.
                return Err(self.error());
            }
            self.eat(b':')?;
            self.ws();
            field(self, key.raw)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.error()),
            }
            self.ws();
        }
    }

    /// An array whose elements are skipped; returns how many there were.
    fn array(&mut self, depth: u32) -> Result<usize> {
        if depth > MAX_DEPTH {
            return Err(self.error());
        }
        self.eat(b'[')?;
        if self.next_is(b']') {
            self.i += 1;
            return Ok(0);
        }
        let mut n = 0;
        loop {
            self.value(depth + 1)?;
            n += 1;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(n);
                }
                _ => return Err(self.error()),
            }
        }
    }

    /// Skips any value.
    fn value(&mut self, depth: u32) -> Result<()> {
        self.ws();
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{') => self.object(depth + 1, |c, _| c.value(depth + 1)),
            Some(b'[') => self.array(depth + 1).map(drop),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.peek() {
                    self.i += 1;
                }
                debug_assert!(self.i > start);
                Ok(())
            }
            _ => Err(self.error()),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// A non-negative integer that fits in a u64 (no fraction or exponent: those go to serde).
    fn u64(&mut self) -> Result<u64> {
        self.ws();
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        match self.peek() {
            Some(b'.' | b'e' | b'E' | b'-' | b'+') => Err(self.error()),
            _ => super::digits_value(&self.s[start..self.i]).ok_or_else(|| self.error()),
        }
    }

    /// The `message` object: its room, seq and body; everything else skipped.
    fn message_fields(&mut self) -> Result<MessageFields<'a>> {
        let mut m = MessageFields::default();
        self.object(1, |c, key| {
            match key {
                b"room" if c.next_is(b'"') => m.room = Some(c.string()?),
                b"seq" => m.seq = Some(c.u64()?),
                b"body" if c.next_is(b'"') => m.body = Some(c.string()?),
                _ => c.value(2)?,
            }
            Ok(())
        })?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::quote_or_backslash;

    #[test]
    fn the_word_search_finds_the_first_quote_or_backslash() {
        let naive = |s: &[u8]| s.iter().position(|&c| c == b'"' || c == b'\\');
        for len in 0..150 {
            // High bytes around (UTF-8), and neighbours of the targets (`!`, `#`, `[`, `]`).
            let base: Vec<u8> = (0..len)
                .map(|i| [b'a', 0xC3, 0xA9, b'!', b'#', b'[', b']', 0x80, 0xFF][i % 9])
                .collect();
            assert_eq!(quote_or_backslash(&base), None, "len {len}");
            for at in 0..len {
                for target in [b'"', b'\\'] {
                    let mut s = base.clone();
                    s[at] = target;
                    if at + 3 < len {
                        s[at + 3] = b'"';
                    }
                    assert_eq!(quote_or_backslash(&s), naive(&s), "len {len} at {at}");
                    assert_eq!(quote_or_backslash(&s), Some(at));
                }
            }
        }
    }
}
