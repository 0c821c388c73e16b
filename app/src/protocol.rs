//! The real-time protocol spoken over `/api/ws`: one enum per direction, shared by the server, the
//! browser and every other client (load generator, bots, tests). Encoded as JSON with a `type` tag.
//!
//! Wire format: binary websocket frames, each `[tag byte][payload]`; tag `0` (`ITEM_TAG`) carries one
//! JSON-encoded message. A client whose `Hello` asks for `batches` may also get tag `1` (`BATCH_TAG`)
//! frames from the server: several messages in one frame, each as a 4-byte big-endian length and its
//! JSON (fewer frames and writes when a connection has several queued). A frame the server cannot
//! read is answered with an `Error` message and the connection stays open. See the README for a
//! walk-through.

use crate::files::FileView;
use crate::model::{FileId, MemberRole, MessageId, RoomId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// Longest message body, in characters.
pub const MAX_BODY_CHARS: usize = 4000;
/// Longest client nonce, in bytes.
pub const MAX_NONCE_LEN: usize = 64;
/// Most rooms a `Hello` may name.
pub const MAX_CURSORS: usize = 1000;
/// Most people one `Watch` may name.
pub const MAX_WATCH: usize = 500;
/// The client sends `Ping` at least this often; the server closes a connection silent for three times as
/// long.
pub const HEARTBEAT_SECS: u64 = 20;
/// The tag byte in front of a frame with one JSON item.
pub const ITEM_TAG: u8 = 0;
/// The tag byte in front of a frame with several items, each `[u32 big-endian length][JSON]`; only
/// sent to clients that asked for it in `Hello`, never by clients.
pub const BATCH_TAG: u8 = 1;
/// Largest websocket frame (and message) either side accepts: a `Hello` naming `MAX_CURSORS` rooms, or a
/// body of `MAX_BODY_CHARS` characters that all need escaping, fit with room to spare.
pub const MAX_FRAME_BYTES: usize = 128 * 1024;

/// One item as a frame: the tag byte, then its JSON.
pub fn encode_item<T: Serialize>(item: &T) -> Vec<u8> {
    let mut frame = Vec::with_capacity(128);
    frame.push(ITEM_TAG);
    serde_json::to_writer(&mut frame, item).expect("protocol items serialize");
    frame
}

/// Several item frames (from [`encode_item`]) as one batch frame. Without the tag byte, each item is
/// its length and its JSON, so a batch is 3 bytes longer per item than the frames it replaces.
pub fn encode_batch<F: AsRef<[u8]>>(items: &[F]) -> Vec<u8> {
    let size = items.iter().map(|f| f.as_ref().len() + 3).sum::<usize>() + 1;
    let mut frame = Vec::with_capacity(size);
    frame.push(BATCH_TAG);
    for item in items {
        let json = &item.as_ref()[1..];
        let len = u32::try_from(json.len()).expect("an item fits in a frame");
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(json);
    }
    frame
}

/// Bytes a batch frame of these item frames would take: see [`encode_batch`].
pub fn batch_len(item_frames: usize, item_bytes: usize) -> usize {
    1 + item_bytes + 3 * item_frames
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("unknown frame tag {0}")]
    UnknownTag(u8),
    /// The JSON is not a message of this protocol (the parser's words say where and why).
    #[error("{0}")]
    Malformed(String),
    /// Over `MAX_FRAME_BYTES`: the connection is closed (`frame_too_large`), as the rest of such a
    /// frame may not even have been read.
    #[error("a frame of {size} bytes is over the limit of {MAX_FRAME_BYTES}")]
    TooLarge { size: usize },
}

/// The item in a frame, or why it could not be read.
pub fn decode_item<T: serde::de::DeserializeOwned>(frame: &[u8]) -> Result<T, FrameError> {
    match frame.split_first() {
        Some((&ITEM_TAG, json)) => decode_json(json),
        Some((&tag, _)) => Err(FrameError::UnknownTag(tag)),
        None => Err(FrameError::Empty),
    }
}

/// One item's JSON, as [`items`] yields it.
pub fn decode_json<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(json).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// The JSON of each item in a frame, one for an item frame, each in turn for a batch frame; checked
/// whole first, so a batch cut short is refused rather than read in part.
pub fn items(frame: &[u8]) -> Result<Items<'_>, FrameError> {
    match frame.split_first() {
        Some((&ITEM_TAG, json)) => Ok(Items {
            rest: json,
            batch: false,
        }),
        Some((&BATCH_TAG, mut rest)) => {
            let all = rest;
            while !rest.is_empty() {
                rest = next_in_batch(rest)
                    .ok_or_else(|| FrameError::Malformed("a batch cut short".into()))?
                    .1;
            }
            Ok(Items {
                rest: all,
                batch: true,
            })
        }
        Some((&tag, _)) => Err(FrameError::UnknownTag(tag)),
        None => Err(FrameError::Empty),
    }
}

/// The items of one frame: see [`items`].
pub struct Items<'a> {
    rest: &'a [u8],
    batch: bool,
}

impl<'a> Iterator for Items<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        if !self.batch {
            return Some(std::mem::take(&mut self.rest));
        }
        let (json, rest) = next_in_batch(self.rest)?;
        self.rest = rest;
        Some(json)
    }
}

/// The first item of a batch's payload and what follows it, if its length is all there.
fn next_in_batch(payload: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = payload.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// Where a client is in one room: it has every message up to `last_seq`, and has applied every change
/// to the room's content up to revision `rev` (each message change takes the room's next revision; a
/// `MessageView` says which it is at). On resume the server sends the messages changed after `rev`,
/// each once in its latest state and in revision order: as `Message` when its `seq` is past
/// `last_seq`, as `Updated` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCursor {
    pub room: RoomId,
    pub last_seq: u64,
    pub rev: u64,
}

/// Client → server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// First frame after connecting: the rooms the client already has messages for. The server answers
    /// `Welcome`, then for each of the user's rooms the messages after the cursor (or nothing, for rooms
    /// without a cursor: the client loads those over HTTP), then `Synced`, then live events.
    Hello {
        cursors: Vec<RoomCursor>,
        /// The client reads `BATCH_TAG` frames: the server may then put several items in one frame.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        batches: bool,
    },
    /// A new message. `nonce` is chosen by the client and makes retries safe: the same nonce in the same
    /// room never creates a second message, and is answered with the original `Ack`.
    Send {
        room: RoomId,
        nonce: String,
        body: String,
        /// A reply in the thread of this root message (of the same room).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread: Option<MessageId>,
        /// With `thread`: also post the reply to the room's timeline.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        also_in_room: bool,
        /// Files uploaded to the room for this message (`POST /api/files`), in the order shown; the
        /// body may then be empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<FileId>,
        /// The images' alt texts, one per entry of `files` in the same order (missing or empty:
        /// none, the file's name stands for it); at most 500 characters each.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        alts: Vec<String>,
    },
    Edit {
        id: MessageId,
        body: String,
    },
    Delete {
        id: MessageId,
    },
    /// Adds (`on: true`) or removes the sender's reaction `emoji` on a message.
    React {
        id: MessageId,
        emoji: String,
        on: bool,
    },
    /// "I am typing" (`active: true`, repeated every few seconds while typing) or "I stopped".
    Typing {
        room: RoomId,
        active: bool,
    },
    /// The client has shown everything up to `seq` in `room`.
    Read {
        room: RoomId,
        seq: u64,
    },
    /// The person is away from the keyboard (or back).
    Away {
        away: bool,
    },
    /// Follow the presence of `users` (at most `MAX_WATCH`, members of `room`, which the client must be
    /// in): those the client shows, such as the room's member list. Replaces what the connection
    /// watched before (an empty list: nobody). Answered with their presence now (`Presence`), then
    /// their changes. Without a watch a connection hears nobody's presence: in a room of thousands,
    /// nobody is told about everyone.
    Watch {
        room: RoomId,
        users: Vec<UserId>,
    },
    Ping,
}

/// A message as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    pub id: MessageId,
    pub room: RoomId,
    pub seq: u64,
    /// The room revision of the message's last change.
    pub rev: u64,
    pub author: UserId,
    /// The author's display name, and (shown beside it, as display names may look alike) username.
    pub author_name: String,
    pub author_username: String,
    /// The author's profile picture (`/api/files/{id}/thumbnail`); without one, their initials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_avatar: Option<FileId>,
    /// The text as written (empty once deleted).
    pub body: String,
    /// The body rendered from the small markdown subset and sanitised on the server; safe to insert.
    /// Left out (empty) when that is just the body as a plain paragraph ([`plain_html`]), as most
    /// messages are: [`MessageView::body_html`] gives it either way.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub html: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// The members it mentions (named, or all for `@room`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    /// In the order each emoji was first added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<ReactionView>,
    /// On a reply: its thread. A reply only in its thread has `seq` 0 (it is not in the room's
    /// timeline, whose sequence it does not move) but a room revision like any change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<ThreadRef>,
    /// On a root with replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replies: Option<RepliesView>,
    /// The files it carries (none once deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileView>,
}

impl MessageView {
    /// The body as HTML, safe to insert: the server's rendering, or the plain paragraph it left out.
    pub fn body_html(&self) -> std::borrow::Cow<'_, str> {
        if self.html.is_empty() {
            plain_html(&self.body).into()
        } else {
            self.html.as_str().into()
        }
    }

    /// A reply that is only in its thread, not in the room's timeline.
    pub fn thread_only(&self) -> bool {
        self.thread.is_some_and(|t| !t.in_room)
    }
}

/// A body with no markup, as the server's renderer makes it: one paragraph, the text escaped (empty
/// for an empty body). A message whose rendering is exactly this is sent without its `html`.
pub fn plain_html(body: &str) -> String {
    if body.is_empty() {
        return String::new();
    }
    let mut html = String::with_capacity(body.len() + 8);
    html.push_str("<p>");
    for c in body.chars() {
        match c {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '\u{a0}' => html.push_str("&nbsp;"),
            c => html.push(c),
        }
    }
    html.push_str("</p>\n");
    html
}

/// Where a reply belongs: its root, whether it was also posted to the room, and the room revision
/// it was created at (a thread's replies are in that order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadRef {
    pub root: MessageId,
    pub in_room: bool,
    pub at_rev: u64,
}

/// A thread as its root shows it: the number of replies, the last one's time, and the most recent
/// repliers (ids; clients name them from the member list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepliesView {
    pub count: u64,
    pub last_reply_at: Timestamp,
    pub repliers: Vec<UserId>,
}

/// One emoji on a message and who added it (ids; clients name them from the member list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionView {
    pub emoji: String,
    pub users: Vec<UserId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Online,
    Away,
    Offline,
}

/// Why the server refused one command. The connection stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame or its content is not acceptable (empty or too long body, bad nonce, ...).
    Invalid,
    /// Not a member of that room, or not the author of that message.
    Forbidden,
    NotFound,
    /// Too many messages too fast; `retry_after_ms` says when the next one will be accepted.
    RateLimited,
    /// The store is unavailable; retry later.
    Unavailable,
    Internal,
}

/// Why the server is closing the connection. The client reconnects unless told not to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The client did not read fast enough and its queue overflowed: reconnect and resume.
    TooSlow,
    /// The client kept sending commands after being refused for sending too many: reconnect later.
    Flooding,
    /// No frame from the client for too long.
    Silent,
    /// The session was signed out: go to the login page.
    SignedOut,
    /// The account was disabled: go to the login page and say so.
    Disabled,
    /// The server is shutting down: reconnect (to another instance) and resume.
    ShuttingDown,
    /// The server lost track of other instances' events: reconnect and resume from your cursors.
    Resync,
    /// The client sent a frame over `MAX_FRAME_BYTES` (closed with the policy-violation code 1008):
    /// reconnect, without re-sending what was too large.
    FrameTooLarge,
}

/// One person's presence, as `presence` frames carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PresenceChange {
    pub user: UserId,
    pub presence: Presence,
}

/// A member of a room as lists and `member_joined` show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub user: UserId,
    pub username: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<FileId>,
    pub role: MemberRole,
    pub presence: Presence,
}

/// Server → client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Welcome {
        user: UserId,
        heartbeat_secs: u64,
    },
    /// The message with this nonce is stored under `id` and `seq`.
    Ack {
        nonce: String,
        room: RoomId,
        id: MessageId,
        seq: u64,
    },
    /// A new message, delivered exactly once and in sequence order per room.
    Message {
        message: MessageView,
    },
    /// A message changed: edited, deleted (then `deleted` is true and the body empty), reacted to. In
    /// a room's live events `Message` and `Updated` come in revision order, each revision once.
    Updated {
        message: MessageView,
    },
    /// Catch-up for `room` is complete up to message `last_seq` and revision `rev`; live events follow.
    Synced {
        room: RoomId,
        last_seq: u64,
        rev: u64,
    },
    /// The user was added to a room (joined, invited, a new direct message): it is followed from now on.
    RoomAdded {
        room: RoomId,
    },
    /// The user left or was removed from a room.
    RoomRemoved {
        room: RoomId,
    },
    /// The user's open invitations changed (a new one, or one accepted or declined elsewhere).
    InvitationsChanged,
    /// Someone joined a room the user is in.
    MemberJoined {
        room: RoomId,
        member: MemberView,
    },
    /// Someone left a room the user is in.
    MemberLeft {
        room: RoomId,
        user: UserId,
    },
    Typing {
        room: RoomId,
        user: UserId,
        name: String,
        active: bool,
    },
    /// Presence of the people the connection watches (`Watch`): their presence when the watch
    /// starts, then their changes, coalesced (many changes in a short window come as one frame).
    Presence {
        changes: Vec<PresenceChange>,
    },
    /// The user's own read marker moved (possibly from another tab or device).
    Read {
        room: RoomId,
        seq: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
        /// The nonce of the `Send` this answers, if any.
        nonce: Option<String>,
        retry_after_ms: Option<u64>,
    },
    Pong,
    /// Sent last, right before the server ends the connection.
    Closing {
        reason: CloseReason,
    },
}

impl ServerMsg {
    /// The latest presence of `user` this frame carries, if it is a `presence` frame naming them.
    pub fn presence_of(&self, user: UserId) -> Option<Presence> {
        match self {
            ServerMsg::Presence { changes } => changes
                .iter()
                .rev()
                .find(|c| c.user == user)
                .map(|c| c.presence),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_json() {
        let room = RoomId::from_uuid(uuid::Uuid::nil());
        let send = ClientMsg::Send {
            room,
            nonce: "n1".into(),
            body: "hi".into(),
            thread: None,
            also_in_room: false,
            files: Vec::new(),
            alts: Vec::new(),
        };
        let json = serde_json::to_string(&send).unwrap();
        assert_eq!(
            json,
            r#"{"type":"send","room":"00000000-0000-0000-0000-000000000000","nonce":"n1","body":"hi"}"#
        );
        let hello: Result<ClientMsg, _> = serde_json::from_str(
            r#"{"type":"hello","cursors":[{"room":"00000000-0000-0000-0000-000000000000","last_seq":4}]}"#,
        );
        assert!(hello.is_err(), "a cursor says which revision it has");
        assert_eq!(serde_json::from_str::<ClientMsg>(&json).unwrap(), send);
        assert_eq!(
            serde_json::to_string(&ServerMsg::Closing {
                reason: CloseReason::TooSlow
            })
            .unwrap(),
            r#"{"type":"closing","reason":"too_slow"}"#
        );
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"send","room":{"$ne":1}}"#).is_err());
    }

    #[test]
    fn frames_round_trip_and_bad_ones_say_why() {
        let frame = encode_item(&ClientMsg::Ping);
        assert_eq!(frame[0], ITEM_TAG);
        assert_eq!(decode_item::<ClientMsg>(&frame), Ok(ClientMsg::Ping));
        assert_eq!(decode_item::<ClientMsg>(&[]), Err(FrameError::Empty));
        assert_eq!(
            decode_item::<ClientMsg>(&[7, b'{', b'}']),
            Err(FrameError::UnknownTag(7))
        );
        assert!(matches!(
            decode_item::<ClientMsg>(b"\0{\"type\":\"nope\"}"),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn a_batch_carries_its_items_in_order_and_a_cut_one_is_refused() {
        let sent = [
            ServerMsg::Pong,
            ServerMsg::Closing {
                reason: CloseReason::TooSlow,
            },
            ServerMsg::Pong,
        ];
        let frames: Vec<Vec<u8>> = sent.iter().map(encode_item).collect();
        let batch = encode_batch(&frames);
        assert_eq!(batch[0], BATCH_TAG);
        let total: usize = frames.iter().map(Vec::len).sum();
        assert_eq!(batch.len(), batch_len(frames.len(), total));
        let got: Vec<ServerMsg> = items(&batch)
            .unwrap()
            .map(|json| decode_json(json).unwrap())
            .collect();
        assert_eq!(got, sent);

        // An item frame is one item; a batch whose last length runs past its end is refused whole.
        let single: Vec<&[u8]> = items(&frames[0]).unwrap().collect();
        assert_eq!(single, [&frames[0][1..]]);
        assert!(matches!(
            items(&batch[..batch.len() - 1]),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            items(&[BATCH_TAG, 0, 0]),
            Err(FrameError::Malformed(_))
        ));
        assert_eq!(items(&[9]).err(), Some(FrameError::UnknownTag(9)));
        assert_eq!(items(&[]).err(), Some(FrameError::Empty));
        assert_eq!(items(&[BATCH_TAG]).unwrap().count(), 0);
    }

    #[test]
    fn hello_asks_for_batches_only_when_the_client_reads_them() {
        let old = r#"{"type":"hello","cursors":[]}"#;
        assert_eq!(
            serde_json::from_str::<ClientMsg>(old).unwrap(),
            ClientMsg::Hello {
                cursors: vec![],
                batches: false
            }
        );
        let plain = ClientMsg::Hello {
            cursors: vec![],
            batches: false,
        };
        assert_eq!(serde_json::to_string(&plain).unwrap(), old);
        let asking = ClientMsg::Hello {
            cursors: vec![],
            batches: true,
        };
        assert_eq!(
            serde_json::to_string(&asking).unwrap(),
            r#"{"type":"hello","cursors":[],"batches":true}"#
        );
    }
}
