//! The `/api/ws` wire format: binary frames of one tag byte (`0`) and the JSON of one protocol item,
//! or (`1`, as loadgen asks for in its `hello`) several items in one frame.
//!
//! Rare frames are encoded and decoded with the app's own `ClientMsg` / `ServerMsg`. The hot ones (our
//! `send`, and the server's `message` and `ack`) go through a hand-written encoder and a borrowing
//! decoder that skips fields we do not need; tests check both against the app's types.

use app::model::RoomId;
use app::protocol::{ClientMsg, ServerMsg};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use std::io::Write;

/// Tag byte of a frame carrying one JSON item.
pub const ITEM: u8 = 0;

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

/// The (sender, n, send time) a body carries, if it is one of ours.
pub fn parse_body(body: &str) -> Option<(u32, u64, u64)> {
    let mut parts = body.split(' ');
    if parts.next()? != "lg" {
        return None;
    }
    let sender = parts.next()?.parse().ok()?;
    let n = parts.next()?.parse().ok()?;
    let sent_ns = parts.next()?.parse().ok()?;
    Some((sender, n, sent_ns))
}

/// The nonce of message `n` of connection `conn`: `<conn>-<n>` (letters, digits and `-`, short).
pub fn write_nonce(out: &mut Vec<u8>, conn: u32, n: u64) {
    write!(out, "{conn}-{n}").expect("writing to a Vec");
}

/// The `n` of a nonce made by `write_nonce`.
pub fn nonce_number(nonce: &str) -> Option<u64> {
    nonce.rsplit_once('-')?.1.parse().ok()
}

/// One `send` frame, written directly (one allocation): same JSON as `ClientMsg::Send`. `room` is the
/// room id already formatted (36 characters).
pub fn encode_send(room: &str, conn: u32, n: u64, sent_ns: u64, min_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(120 + min_len);
    out.push(ITEM);
    out.extend_from_slice(br#"{"type":"send","room":""#);
    out.extend_from_slice(room.as_bytes());
    out.extend_from_slice(br#"","nonce":""#);
    write_nonce(&mut out, conn, n);
    out.extend_from_slice(br#"","body":""#);
    write_body(&mut out, conn, n, sent_ns, min_len);
    out.extend_from_slice(br#""}"#);
    out
}

/// A server frame, decoded only as far as loadgen needs. Borrowing: no allocation for `ack` or
/// `message` frames whose strings need no unescaping.
#[derive(Debug, Deserialize)]
pub struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// `message`'s payload (a message view), or `error`'s text.
    #[serde(default, borrow)]
    pub message: Option<MessageField<'a>>,
    #[serde(default, borrow)]
    pub nonce: Option<Cow<'a, str>>,
    #[serde(default)]
    pub room: Option<RoomId>,
    #[serde(default)]
    pub seq: Option<u64>,
}

/// The fields of a delivered message that loadgen checks.
#[derive(Debug, Deserialize)]
pub struct MessageLite<'a> {
    pub room: RoomId,
    pub seq: u64,
    #[serde(borrow)]
    pub body: Cow<'a, str>,
}

/// `message` is an object in `message` frames and a string in `error` frames.
#[derive(Debug)]
pub enum MessageField<'a> {
    View(MessageLite<'a>),
    Text,
}

impl<'de: 'a, 'a> Deserialize<'de> for MessageField<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Field;
        impl<'de> Visitor<'de> for Field {
            type Value = MessageField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a message object or an error text")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(MessageField::Text)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                MessageLite::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(MessageField::View)
            }
        }
        deserializer.deserialize_any(Field)
    }
}

/// What one binary frame from the server holds.
pub enum Frame<'a> {
    /// A fast-path item (`message`, `ack`, `pong`, `presence`, `typing`, ...).
    Lite(Incoming<'a>),
    /// Anything else, fully decoded (`welcome`, `synced`, `error`, `closing`, ...).
    Full(Box<ServerMsg>),
}

/// The items of one server frame (one, or several in a batch frame), each decoded.
pub fn decode(frame: &[u8]) -> Result<impl Iterator<Item = Result<Frame<'_>, String>>, String> {
    let items = app::protocol::items(frame).map_err(|e| format!("an unreadable frame: {e}"))?;
    Ok(items.map(decode_item))
}

fn decode_item(json: &[u8]) -> Result<Frame<'_>, String> {
    let lite: Incoming = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    match &*lite.kind {
        "message" | "ack" | "pong" | "presence" | "typing" | "read" | "updated" => {
            Ok(Frame::Lite(lite))
        }
        _ => serde_json::from_slice(json)
            .map(|m| Frame::Full(Box::new(m)))
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::{MessageId, Timestamp, UserId};
    use app::protocol::{CloseReason, ErrorCode, MessageView};

    fn room() -> RoomId {
        RoomId::from_uuid(uuid::Uuid::from_u128(
            0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
        ))
    }

    #[test]
    fn bodies_carry_their_send_time() {
        let mut body = Vec::new();
        write_body(&mut body, 7, 42, 1_764_000_000_123_456_789, 0);
        let text = String::from_utf8(body).unwrap();
        assert_eq!(text, "lg 7 42 1764000000123456789");
        assert_eq!(parse_body(&text), Some((7, 42, 1_764_000_000_123_456_789)));

        let mut padded = Vec::new();
        write_body(&mut padded, 7, 42, 99, 100);
        let padded = String::from_utf8(padded).unwrap();
        assert_eq!(padded.len(), 100);
        assert!(padded.starts_with("lg 7 42 99 xxx"));
        assert_eq!(parse_body(&padded), Some((7, 42, 99)));

        for foreign in [
            "", "hello", "lg", "lg 1 2", "lg a 2 3", "lg 1 2 x", "LG 1 2 3",
        ] {
            assert_eq!(parse_body(foreign), None, "{foreign:?}");
        }
    }

    #[test]
    fn send_frames_match_the_apps_encoding() {
        let frame = encode_send(&room().to_string(), 3, 17, 123, 60);
        assert_eq!(frame[0], ITEM);
        let mut body = Vec::new();
        write_body(&mut body, 3, 17, 123, 60);
        let expected = ClientMsg::Send {
            room: room(),
            nonce: "3-17".into(),
            body: String::from_utf8(body).unwrap(),
            thread: None,
            also_in_room: false,
            files: Vec::new(),
            alts: Vec::new(),
        };
        assert_eq!(frame, encode(&expected));
        assert_eq!(
            serde_json::from_slice::<ClientMsg>(&frame[1..]).unwrap(),
            expected
        );
        assert_eq!(nonce_number("3-17"), Some(17));
        assert_eq!(nonce_number("nope"), None);
    }

    fn server_frame(msg: &ServerMsg) -> Vec<u8> {
        let mut out = vec![ITEM];
        serde_json::to_writer(&mut out, msg).unwrap();
        out
    }

    /// The only item of an item frame.
    fn decode_one(frame: &[u8]) -> Result<Frame<'_>, String> {
        let mut items = decode(frame)?;
        let item = items.next().expect("one item");
        assert!(items.next().is_none());
        item
    }

    #[test]
    fn batch_frames_give_their_items_in_order() {
        let frames = [
            server_frame(&ServerMsg::Pong),
            server_frame(&ServerMsg::Closing {
                reason: CloseReason::TooSlow,
            }),
        ];
        let batch = app::protocol::encode_batch(&frames);
        let kinds: Vec<String> = decode(&batch)
            .unwrap()
            .map(|item| match item.unwrap() {
                Frame::Lite(lite) => lite.kind.into_owned(),
                Frame::Full(msg) => format!("full {msg:?}"),
            })
            .collect();
        assert_eq!(kinds, ["pong", "full Closing { reason: TooSlow }"]);
        assert!(decode(&batch[..batch.len() - 2]).is_err(), "a cut batch");
    }

    #[test]
    fn hot_frames_decode_like_the_apps_types() {
        let view = MessageView {
            id: MessageId::from_uuid(uuid::Uuid::from_u128(5)),
            room: room(),
            seq: 12,
            rev: 12,
            author: UserId::from_uuid(uuid::Uuid::from_u128(6)),
            author_name: "Ana \"the tester\"".into(),
            author_username: "ana".into(),
            author_avatar: None,
            body: "lg 1 2 3".into(),
            html: "<p>lg 1 2 3</p>".into(),
            created_at: Timestamp(1),
            edited_at: None,
            deleted: false,
            mentions: Vec::new(),
            reactions: Vec::new(),
            thread: None,
            replies: None,
            files: Vec::new(),
        };
        let bytes = server_frame(&ServerMsg::Message { message: view });
        let Ok(Frame::Lite(lite)) = decode_one(&bytes) else {
            panic!("a lite frame")
        };
        assert_eq!(lite.kind, "message");
        let Some(MessageField::View(m)) = lite.message else {
            panic!("a message view")
        };
        assert_eq!((m.room, m.seq, &*m.body), (room(), 12, "lg 1 2 3"));
        assert!(matches!(m.body, Cow::Borrowed(_)), "no allocation");

        let bytes = server_frame(&ServerMsg::Ack {
            nonce: "3-17".into(),
            room: room(),
            id: MessageId::from_uuid(uuid::Uuid::from_u128(9)),
            seq: 4,
        });
        let Ok(Frame::Lite(ack)) = decode_one(&bytes) else {
            panic!("a lite frame")
        };
        assert_eq!(
            (&*ack.kind, ack.nonce.as_deref(), ack.room, ack.seq),
            ("ack", Some("3-17"), Some(room()), Some(4))
        );

        let error = ServerMsg::Error {
            code: ErrorCode::RateLimited,
            message: "You are sending messages too fast.".into(),
            nonce: Some("3-18".into()),
            retry_after_ms: Some(1000),
        };
        match decode_one(&server_frame(&error)) {
            Ok(Frame::Full(msg)) => assert_eq!(*msg, error),
            _ => panic!("errors are decoded fully"),
        }
        let closing = ServerMsg::Closing {
            reason: CloseReason::TooSlow,
        };
        assert!(matches!(decode_one(&server_frame(&closing)), Ok(Frame::Full(m)) if *m == closing));
        assert!(decode(b"\x07oops").is_err());
        assert!(decode(b"").is_err());
        assert!(decode_one(b"\x00{}").is_err());
    }
}
