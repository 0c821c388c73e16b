//! The scanner's fast path, for items as serde_json writes them: compact (no whitespace between
//! tokens) and without a backslash anywhere. Then no string contains a quote, so one vectorised pass
//! lists every quote and each string is a pair of them: the walk jumps from string to string instead
//! of testing bytes, which is where a byte-by-byte tokenizer spends its time (a mispredicted branch
//! at the end of every short string). Anything else it meets (whitespace, escapes, more than
//! `MAX_QUOTES` quotes, anything malformed) returns `None`, and the general scanner (`scan.rs`)
//! reads the item instead, so this path only has to be right about what it accepts.

use super::scan::{MessageFields, RawStr, Scanned};

/// More quotes than this (about 60 in a plain message item, 388 in a presence item of 48 changes):
/// the general scanner.
const MAX_QUOTES: usize = 1024;
/// Nesting deeper than this inside a skipped value: the general scanner (which refuses it).
const MAX_DEPTH: u32 = 64;

/// The item, if it is compact and escape-free; `None` leaves it to the general scanner.
pub fn scan(json: &[u8]) -> Option<Scanned<'_>> {
    if json.len() > u32::MAX as usize {
        return None;
    }
    QUOTES.with_borrow_mut(|quotes| {
        find_quotes(json, quotes)?;
        walk(json, quotes)
    })
}

/// Lists where the quotes of `s` are; `None` if it has a backslash or too many quotes. (memchr's
/// iterator costs several nanoseconds per match, and an item has about 60 quotes.)
pub(super) fn find_quotes(s: &[u8], quotes: &mut Vec<u32>) -> Option<()> {
    quotes.clear();
    let mut blocks = s.chunks_exact(16);
    let mut base = 0u32;
    for block in &mut blocks {
        let (quote_bits, backslash_bits) = block_masks(block.try_into().expect("16 bytes"));
        if backslash_bits != 0 {
            return None;
        }
        let mut hits = quote_bits;
        while hits != 0 {
            if quotes.len() == MAX_QUOTES {
                return None;
            }
            quotes.push(base + hits.trailing_zeros());
            hits &= hits - 1;
        }
        base += 16;
    }
    for (k, &b) in blocks.remainder().iter().enumerate() {
        match b {
            b'\\' => return None,
            b'"' if quotes.len() == MAX_QUOTES => return None,
            b'"' => quotes.push(base + k as u32),
            _ => {}
        }
    }
    Some(())
}

/// Bit k set where byte k of `block` is a quote, and where it is a backslash: SSE2 compares (part
/// of every x86-64 CPU), 16 bytes at once.
#[cfg(target_arch = "x86_64")]
fn block_masks(block: &[u8; 16]) -> (u32, u32) {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set1_epi8, _mm_set_epi64x};
    let lo = i64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
    let hi = i64::from_le_bytes(block[8..].try_into().expect("8 bytes"));
    // SAFETY: these intrinsics only need SSE2, which every x86-64 CPU has (the target enables it by
    // default); they touch no memory but their arguments.
    let (quotes, backslashes) = unsafe {
        let v = _mm_set_epi64x(hi, lo);
        (
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8))),
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8))),
        )
    };
    (quotes as u32, backslashes as u32)
}

/// The same, a byte at a time, elsewhere.
#[cfg(not(target_arch = "x86_64"))]
fn block_masks(block: &[u8; 16]) -> (u32, u32) {
    block.iter().enumerate().fold((0, 0), |(q, b), (k, &c)| {
        (
            q | u32::from(c == b'"') << k,
            b | u32::from(c == b'\\') << k,
        )
    })
}

thread_local! {
    /// The quote positions of the item being scanned (kept per thread: no allocation per item).
    static QUOTES: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn walk<'a>(json: &'a [u8], quotes: &[u32]) -> Option<Scanned<'a>> {
    let mut w = Walk {
        s: json,
        i: 0,
        quotes,
        q: 0,
    };
    let mut out = Scanned::default();
    w.object(|w, key| {
        match key {
            b"type" => out.kind = Some(w.string()?.raw),
            b"message" if w.at(b'{') => out.message = Some(w.message_fields()?),
            b"nonce" if w.at(b'"') => out.nonce = Some(w.string()?),
            b"room" if w.at(b'"') => out.room = Some(w.string()?),
            b"seq" => out.seq = Some(w.u64()?),
            b"changes" if w.at(b'[') => out.changes = Some(w.count_elements()?),
            _ => w.skip()?,
        }
        Some(())
    })?;
    (w.i == json.len()).then_some(out)
}

struct Walk<'a, 'q> {
    s: &'a [u8],
    i: usize,
    /// Where every quote of `s` is, in order; `q` indexes the next one not yet passed.
    quotes: &'q [u32],
    q: usize,
}

impl<'a> Walk<'a, '_> {
    fn at(&self, b: u8) -> bool {
        self.s.get(self.i) == Some(&b)
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.at(b).then(|| self.i += 1)
    }

    /// The string at the cursor: from its quote to the next one.
    fn string(&mut self) -> Option<RawStr<'a>> {
        let open = *self.quotes.get(self.q)? as usize;
        let close = *self.quotes.get(self.q + 1)? as usize;
        if open != self.i {
            return None;
        }
        self.q += 2;
        self.i = close + 1;
        Some(RawStr {
            raw: &self.s[open + 1..close],
            escaped: false,
        })
    }

    /// `{"key":value,...}`, calling `field` with each key and the cursor on its value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.string()?.raw;
            self.eat(b':')?;
            field(self, key)?;
            match self.s.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn message_fields(&mut self) -> Option<MessageFields<'a>> {
        let mut m = MessageFields::default();
        self.object(|w, key| {
            match key {
                b"room" if w.at(b'"') => m.room = Some(w.string()?),
                b"seq" => m.seq = Some(w.u64()?),
                b"body" if w.at(b'"') => m.body = Some(w.string()?),
                _ => w.skip()?,
            }
            Some(())
        })?;
        Some(m)
    }

    /// A non-negative integer that fits in a u64, nothing else.
    fn u64(&mut self) -> Option<u64> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&d @ b'0'..=b'9') = self.s.get(self.i) {
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        (self.i > start && matches!(self.s.get(self.i), Some(b',' | b'}' | b']'))).then_some(v)
    }

    /// Skips one value.
    fn skip(&mut self) -> Option<()> {
        match *self.s.get(self.i)? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => self.skip_nested(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => {
                while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.s.get(self.i)
                {
                    self.i += 1;
                }
                Some(())
            }
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.s[self.i..]
            .starts_with(word)
            .then(|| self.i += word.len())
    }

    /// Skips an object or array: brackets matched by kind (a stack of bits: 1 for `{`), strings
    /// jumped over; the tokens between them are not checked here.
    fn skip_nested(&mut self) -> Option<()> {
        let mut kinds: u64 = 0;
        let mut depth = 0;
        loop {
            match *self.s.get(self.i)? {
                b'"' => {
                    self.string()?;
                    continue;
                }
                open @ (b'{' | b'[') => {
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    kinds = kinds << 1 | u64::from(open == b'{');
                    depth += 1;
                }
                close @ (b'}' | b']') => {
                    if depth == 0 || (kinds & 1 == 1) != (close == b'}') {
                        return None;
                    }
                    kinds >>= 1;
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return Some(());
                    }
                }
                b' ' | b'\t' | b'\n' | b'\r' => return None,
                _ => {}
            }
            self.i += 1;
        }
    }

    /// An array's elements, counted; each is skipped.
    fn count_elements(&mut self) -> Option<usize> {
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            return Some(0);
        }
        let mut n = 0;
        loop {
            self.skip()?;
            n += 1;
            match self.s.get(self.i)? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(n);
                }
                _ => return None,
            }
        }
    }
}
