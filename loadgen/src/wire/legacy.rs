//! The decoder loadgen used before the scanner: serde with borrowing structs that skip the fields
//! loadgen does not need. Kept only so `loadgen read-bench --path old` can measure the old receive
//! path (tokio-tungstenite + this) against the new one on the same machine and day.

use app::model::RoomId;
use app::protocol::ServerMsg;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

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

    const ITEM: u8 = 0;

    fn room() -> RoomId {
        RoomId::from_uuid(uuid::Uuid::from_u128(
            0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
        ))
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
