//! The `/api/ws` protocol as loadgen speaks it: frames of one tag byte and JSON (`0`: one item; `1`,
//! as loadgen asks for in its `hello`: several, each `[u32 BE length][JSON]`).
//!
//! Rare client frames are encoded with the app's own `ClientMsg`; the hot one (`send`) and the new
//! `watch` are written directly. Server items are read by a scanner (`scan`) that only looks for the
//! keys loadgen needs; whatever it cannot read, and every kind it does not handle, is decoded in full
//! as the app's `ServerMsg`. Tests check both against the app's types and their serde encoding.

pub mod legacy;
mod scan;
mod scan_fast;

use app::model::{RoomId, UserId};
use app::protocol::{ClientMsg, ServerMsg};
use std::borrow::Cow;
use std::io::Write;

/// Tag byte of a frame carrying one JSON item.
pub const ITEM: u8 = 0;

/// Most users one `watch` may name.
pub const MAX_WATCH: usize = app::protocol::MAX_WATCH;

/// Encodes any client message (used for the rare ones: hello, ping).
pub fn encode(msg: &ClientMsg) -> Vec<u8> {
    let mut out = vec![ITEM];
    serde_json::to_writer(&mut out, msg).expect("client messages serialize");
    out
}

/// Nanoseconds since the Unix epoch: the send time carried in each body, read by every receiver (all in
/// this process, so they share the clock).
pub fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

/// Writes `lg <sender> <n> <unix-nanos>`, padded with ` xxx…` to at least `min_len` characters. Only
/// ASCII letters, digits and spaces: nothing to escape in JSON.
pub fn write_body(out: &mut Vec<u8>, sender: u32, n: u64, sent_ns: u64, min_len: usize) {
    let start = out.len();
    write!(out, "lg {sender} {n} {sent_ns}").expect("writing to a Vec");
    let len = out.len() - start;
    if len < min_len {
        out.push(b' ');
        out.resize(start + min_len, b'x');
    }
}

/// The (sender, n, send time) a body carries, if it is one of ours: `lg`, then three unsigned
/// numbers separated by single spaces, then the end or a space (the padding).
pub fn parse_body(body: &[u8]) -> Option<(u32, u64, u64)> {
    let rest = body.strip_prefix(b"lg ")?;
    let (sender, rest) = leading_number(rest)?;
    let (n, rest) = leading_number(rest.strip_prefix(b" ")?)?;
    let (sent_ns, rest) = leading_number(rest.strip_prefix(b" ")?)?;
    if !matches!(rest.first(), None | Some(b' ')) {
        return None;
    }
    Some((u32::try_from(sender).ok()?, n, sent_ns))
}

/// The decimal number at the start of `s` (at least one digit, no overflow) and what follows it.
fn leading_number(s: &[u8]) -> Option<(u64, &[u8])> {
    let digits = count_digits(s);
    Some((digits_value(&s[..digits])?, &s[digits..]))
}

/// How many ASCII digits `s` starts with, eight bytes at a time: a byte is a digit when its high
/// nibble is 3 and adding 6 to its low nibble does not carry into bit 4 (no carry crosses bytes).
pub(crate) fn count_digits(s: &[u8]) -> usize {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const LOW: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    let mut k = 0;
    while let Some(chunk) = s.get(k..k + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let not_digits = ((w & HIGH) ^ 0x3030_3030_3030_3030)
            | (((w & LOW) + 0x0606_0606_0606_0606) & 0x1010_1010_1010_1010);
        if not_digits != 0 {
            return k + (not_digits.trailing_zeros() / 8) as usize;
        }
        k += 8;
    }
    while k < s.len() && s[k].is_ascii_digit() {
        k += 1;
    }
    k
}

/// The value of a run of ASCII digits (`None` if empty, not all digits, or over `u64::MAX`): the
/// checked form of `digits_value`, for tests.
#[cfg(test)]
pub fn parse_digits(digits: &[u8]) -> Option<u64> {
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits_value(digits)
}

/// The value of a run the caller found to be all ASCII digits (`None` if empty or over
/// `u64::MAX`). Eight digits at a time: a digit-by-digit loop waits on one multiplication per
/// digit, and every delivery carries about 40 digits (sequence number, body numbers, send time).
fn digits_value(digits: &[u8]) -> Option<u64> {
    debug_assert!(digits.iter().all(u8::is_ascii_digit));
    match digits.len() {
        0 => None,
        // Up to 19 digits cannot overflow.
        1..=19 => {
            let mut v: u64 = 0;
            let mut eights = digits.chunks_exact(8);
            for chunk in &mut eights {
                let eight = parse_eight(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
                v = v * 100_000_000 + eight;
            }
            for &d in eights.remainder() {
                v = v * 10 + u64::from(d - b'0');
            }
            Some(v)
        }
        _ => digits.iter().try_fold(0u64, |v, &d| {
            v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        }),
    }
}

/// Eight ASCII digits, the first in the lowest byte, as a number: pairs, then fours, then all
/// eight are combined with three multiplications (as in simdjson).
fn parse_eight(chunk: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let v = chunk - 0x3030_3030_3030_3030;
    let v = v * 10 + (v >> 8);
    ((v & MASK).wrapping_mul(MUL1) + ((v >> 16) & MASK).wrapping_mul(MUL2)) >> 32
}

/// The nonce of message `n` of connection `conn`: `<conn>-<n>` (letters, digits and `-`, short).
pub fn write_nonce(out: &mut Vec<u8>, conn: u32, n: u64) {
    write!(out, "{conn}-{n}").expect("writing to a Vec");
}

/// The `n` of a nonce made by `write_nonce`.
pub fn nonce_number(nonce: &[u8]) -> Option<u64> {
    let dash = memchr::memrchr(b'-', nonce)?;
    match leading_number(&nonce[dash + 1..])? {
        (n, []) => Some(n),
        _ => None,
    }
}

/// One `send` frame's payload, written directly into `out` (cleared first): the same JSON as
/// `ClientMsg::Send`. `room` is the room id already formatted (36 characters).
pub fn encode_send_into(
    out: &mut Vec<u8>,
    room: &str,
    conn: u32,
    n: u64,
    sent_ns: u64,
    min_len: usize,
) {
    out.clear();
    out.push(ITEM);
    out.extend_from_slice(br#"{"type":"send","room":""#);
    out.extend_from_slice(room.as_bytes());
    out.extend_from_slice(br#"","nonce":""#);
    write_nonce(out, conn, n);
    out.extend_from_slice(br#"","body":""#);
    write_body(out, conn, n, sent_ns, min_len);
    out.extend_from_slice(br#""}"#);
}

/// A `watch` of `room`'s members `users` (at most `MAX_WATCH`; the rest are left out), encoded with
/// the app's own type: it is sent once per connection.
pub fn encode_watch(room: RoomId, users: &[UserId]) -> Vec<u8> {
    let users = users[..users.len().min(MAX_WATCH)].to_vec();
    encode(&ClientMsg::Watch { room, users })
}

/// The room an item names: as sent (compared with our room's text first), or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Room<'a> {
    Text(Cow<'a, [u8]>),
    Id(RoomId),
}

impl Room<'_> {
    /// Whether this is `room`, whose canonical text (`RoomId`'s `Display`) is `text`.
    pub fn is(&self, room: RoomId, text: &str) -> bool {
        match self {
            // The server writes ids in the canonical form; any other spelling is parsed.
            Room::Text(t) => {
                **t == *text.as_bytes()
                    || std::str::from_utf8(t)
                        .ok()
                        .and_then(|s| s.parse::<RoomId>().ok())
                        == Some(room)
            }
            Room::Id(id) => *id == room,
        }
    }
}

/// One server item, as far as loadgen reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    Message {
        room: Room<'a>,
        seq: u64,
        body: Cow<'a, [u8]>,
    },
    Ack {
        nonce: Cow<'a, [u8]>,
        room: Room<'a>,
        seq: u64,
    },
    Presence {
        changes: usize,
    },
    Pong,
    /// `typing`, `read`, `updated`: nothing for loadgen to count.
    Ignored,
    /// Every other kind, decoded in full (`welcome`, `synced`, `error`, `closing`, ...).
    Full(Box<ServerMsg>),
}

/// One item's JSON, decoded; `true` with it when the scanner could not read it and serde did (a
/// hot kind there means the server's encoding changed in a way the scanner does not follow).
pub fn decode_item(json: &[u8]) -> Result<(Item<'_>, bool), String> {
    if let Some(item) = scan::scan(json).ok().and_then(hot_item) {
        return Ok((item, false));
    }
    let msg: ServerMsg = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let item = match msg {
        ServerMsg::Message { message } => Item::Message {
            room: Room::Id(message.room),
            seq: message.seq,
            body: Cow::Owned(message.body.into_bytes()),
        },
        ServerMsg::Ack {
            nonce, room, seq, ..
        } => Item::Ack {
            nonce: Cow::Owned(nonce.into_bytes()),
            room: Room::Id(room),
            seq,
        },
        ServerMsg::Presence { changes } => Item::Presence {
            changes: changes.len(),
        },
        ServerMsg::Pong => Item::Pong,
        ServerMsg::Typing { .. } | ServerMsg::Read { .. } | ServerMsg::Updated { .. } => {
            Item::Ignored
        }
        other => return Ok((Item::Full(Box::new(other)), false)),
    };
    Ok((item, true))
}

/// The item the scanner found, if it is a kind loadgen handles and has every key it needs.
fn hot_item(s: scan::Scanned<'_>) -> Option<Item<'_>> {
    fn text(r: scan::RawStr<'_>) -> Option<Cow<'_, [u8]>> {
        r.bytes()
    }
    Some(match s.kind? {
        b"message" => {
            let m = s.message?;
            Item::Message {
                room: Room::Text(text(m.room?)?),
                seq: m.seq?,
                body: text(m.body?)?,
            }
        }
        b"ack" => Item::Ack {
            nonce: text(s.nonce?)?,
            room: Room::Text(text(s.room?)?),
            seq: s.seq?,
        },
        b"presence" => Item::Presence {
            changes: s.changes?,
        },
        b"pong" => Item::Pong,
        b"typing" | b"read" | b"updated" => Item::Ignored,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
