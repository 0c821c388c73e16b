//! The scanner's fast path, for items as serde_json writes them: compact (no whitespace between
//! tokens) and without a backslash anywhere. Then no string contains a quote, so one vectorised pass
//! marks every quote in a bitmap and a string ends at the next marked bit: the walk jumps from
//! string to string instead of testing bytes, which is where a byte-by-byte tokenizer spends its
//! time (a mispredicted branch at the end of every short string). Anything else it meets
//! (whitespace, escapes, anything malformed) returns `None`, and the general scanner (`scan.rs`)
//! reads the item instead, so this path only has to be right about what it accepts.

use super::scan::{MessageFields, RawStr, Scanned};

/// Nesting deeper than this inside a skipped value: the general scanner (which refuses it).
const MAX_DEPTH: u32 = 64;

/// The bytes a JSON number is made of.
const NUMBER_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = b'0';
    while b <= b'9' {
        table[b as usize] = true;
        b += 1;
    }
    table[b'-' as usize] = true;
    table[b'+' as usize] = true;
    table[b'.' as usize] = true;
    table[b'e' as usize] = true;
    table[b'E' as usize] = true;
    table
};

/// The item, if it is compact and escape-free; `None` leaves it to the general scanner.
pub fn scan(json: &[u8]) -> Option<Scanned<'_>> {
    QUOTES.with_borrow_mut(|quotes| {
        quote_bitmap(json, quotes)?;
        walk(json, quotes)
    })
}

thread_local! {
    /// The quote bitmap of the item being scanned (kept per thread: no allocation per item).
    static QUOTES: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Bit k of `bits[k / 64]` set where byte k of `s` is a quote; `None` if `s` has a backslash.
pub(super) fn quote_bitmap(s: &[u8], bits: &mut Vec<u64>) -> Option<()> {
    bits.clear();
    let mut backslashes = 0;
    let mut blocks = s.chunks_exact(64);
    for block in &mut blocks {
        let (quotes, slashes) = block_masks(block.try_into().expect("64 bytes"));
        bits.push(quotes);
        backslashes |= slashes;
    }
    let tail = blocks.remainder();
    let (quotes, slashes) = if s.len() >= 64 {
        // The last 64 bytes of `s`, shifted so that only the tail's bits remain (no copy).
        let (q, b) = block_masks(s[s.len() - 64..].try_into().expect("64 bytes"));
        let shift = 64 - tail.len() as u32;
        (
            q.checked_shr(shift).unwrap_or(0),
            b.checked_shr(shift).unwrap_or(0),
        )
    } else {
        // A short item, padded with bytes that are neither.
        let mut last = [0u8; 64];
        last[..tail.len()].copy_from_slice(tail);
        block_masks(&last)
    };
    bits.push(quotes);
    (backslashes | slashes == 0).then_some(())
}

/// Bit k set where byte k of `block` is a quote, and where it is a backslash: SSE2 compares (part
/// of every x86-64 CPU), 16 bytes at once.
#[cfg(target_arch = "x86_64")]
fn block_masks(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let (mut quotes, mut slashes) = (0u64, 0u64);
    // SAFETY: these intrinsics only need SSE2, which every x86-64 CPU has (the target enables it by
    // default); each load reads 16 bytes inside `block`, unaligned loads being allowed.
    unsafe {
        let (quote, slash) = (_mm_set1_epi8(b'"' as i8), _mm_set1_epi8(b'\\' as i8));
        for k in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k).cast::<__m128i>());
            let q = _mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) as u16;
            let b = _mm_movemask_epi8(_mm_cmpeq_epi8(v, slash)) as u16;
            quotes |= u64::from(q) << (16 * k);
            slashes |= u64::from(b) << (16 * k);
        }
    }
    (quotes, slashes)
}

/// The same, a byte at a time, elsewhere.
#[cfg(not(target_arch = "x86_64"))]
fn block_masks(block: &[u8; 64]) -> (u64, u64) {
    block.iter().enumerate().fold((0, 0), |(q, b), (k, &c)| {
        (
            q | u64::from(c == b'"') << k,
            b | u64::from(c == b'\\') << k,
        )
    })
}

fn walk<'a>(json: &'a [u8], quotes: &[u64]) -> Option<Scanned<'a>> {
    let mut w = Walk {
        s: json,
        i: 0,
        quotes,
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
    /// Where the quotes of `s` are (see `quote_bitmap`).
    quotes: &'q [u64],
}

impl<'a> Walk<'a, '_> {
    #[inline(always)]
    fn at(&self, b: u8) -> bool {
        self.s.get(self.i) == Some(&b)
    }

    #[inline(always)]
    fn eat(&mut self, b: u8) -> Option<()> {
        self.at(b).then(|| self.i += 1)
    }

    /// The string at the cursor: from its quote to the next one.
    #[inline(always)]
    fn string(&mut self) -> Option<RawStr<'a>> {
        if !self.at(b'"') {
            return None;
        }
        let open = self.i;
        let from = open + 1;
        let mut word = from / 64;
        let mut bits = *self.quotes.get(word)? & (!0u64 << (from % 64));
        while bits == 0 {
            word += 1;
            bits = *self.quotes.get(word)?;
        }
        let close = word * 64 + bits.trailing_zeros() as usize;
        self.i = close + 1;
        Some(RawStr {
            raw: self.s.get(from..close)?,
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
        self.i += super::count_digits(&self.s[start..]);
        if !matches!(self.s.get(self.i), Some(b',' | b'}' | b']')) {
            return None;
        }
        super::digits_value(&self.s[start..self.i])
    }

    /// Skips one value.
    #[inline(always)]
    fn skip(&mut self) -> Option<()> {
        match *self.s.get(self.i)? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => self.skip_nested(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => {
                let rest = &self.s[self.i..];
                self.i += rest
                    .iter()
                    .position(|&b| !NUMBER_BYTES[usize::from(b)])
                    .unwrap_or(rest.len());
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
    #[inline(never)]
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
