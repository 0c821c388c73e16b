use super::*;
use app::files::FileView;
use app::model::{FileId, MemberRole, MessageId, Timestamp, UserId};
use app::protocol::{
    CloseReason, ErrorCode, MemberView, MessageView, Presence, PresenceChange, ReactionView,
    RepliesView, ThreadRef,
};
use serde_json::Value;

fn uuid(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0000_0000_0000_0000 + n)
}

fn room() -> RoomId {
    RoomId::from_uuid(uuid(1))
}

#[test]
fn bodies_carry_their_send_time() {
    let mut body = Vec::new();
    write_body(&mut body, 7, 42, 1_764_000_000_123_456_789, 0);
    assert_eq!(body, b"lg 7 42 1764000000123456789");
    assert_eq!(parse_body(&body), Some((7, 42, 1_764_000_000_123_456_789)));

    let mut padded = Vec::new();
    write_body(&mut padded, 7, 42, 99, 100);
    assert_eq!(padded.len(), 100);
    assert!(padded.starts_with(b"lg 7 42 99 xxx"));
    assert_eq!(parse_body(&padded), Some((7, 42, 99)));

    for foreign in [
        "",
        "hello",
        "lg",
        "lg 1 2",
        "lg a 2 3",
        "lg 1 2 x",
        "LG 1 2 3",
        "lg 1 2 3x",
        "lg  1 2 3",
        "lg 1 2 99999999999999999999",
        "lg 4294967296 2 3",
    ] {
        assert_eq!(parse_body(foreign.as_bytes()), None, "{foreign:?}");
    }
}

#[test]
fn digits_parse_eight_at_a_time_like_one_at_a_time() {
    let mut g = Gen(0x1234_5678_9ABC_DEF1);
    for _ in 0..20_000 {
        let v = match g.below(4) {
            0 => g.below(1000),
            1 => g.next() >> g.below(64),
            2 => u64::MAX - g.below(1000),
            _ => 10u64.pow(g.below(20) as u32),
        };
        let text = v.to_string();
        assert_eq!(parse_digits(text.as_bytes()), Some(v), "{text}");
        let padded = format!("{:0>width$}", v, width = text.len() + g.below(5) as usize);
        assert_eq!(parse_digits(padded.as_bytes()), Some(v), "{padded}");
    }
    for bad in [
        &b""[..],
        b"18446744073709551616",
        b"99999999999999999999",
        b"123456789012345678901",
        b"000000000000000000000123456789012345678901",
        b"12a4",
        b"1234567/",
        b"-1",
        b" 1",
    ] {
        assert_eq!(parse_digits(bad), None, "{bad:?}");
    }
    assert_eq!(parse_digits(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_digits(b"00000000000000000000000001"), Some(1));
}

#[test]
fn digits_are_counted_eight_at_a_time_like_one_at_a_time() {
    // Every byte value next to runs of digits of every length, at every offset.
    for len in 0..30 {
        for stop in 0..=255u8 {
            let mut s = vec![b'7'; len];
            s.push(stop);
            s.extend_from_slice(b"123");
            let naive = s.iter().take_while(|b| b.is_ascii_digit()).count();
            assert_eq!(count_digits(&s), naive, "{len} digits then {stop:#x}");
            assert_eq!(count_digits(&s[..len]), len);
        }
    }
}

#[test]
fn send_frames_match_the_apps_encoding() {
    let mut frame = Vec::new();
    encode_send_into(&mut frame, &room().to_string(), 3, 17, 123, 60);
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
    assert_eq!(nonce_number(b"3-17"), Some(17));
    for bad in [&b"nope"[..], b"3-", b"3-x", b"3-17x", b""] {
        assert_eq!(nonce_number(bad), None, "{bad:?}");
    }
}

#[test]
fn watch_frames_name_their_room_and_at_most_500_users() {
    let room = RoomId::from_uuid(uuid(99));
    let users: Vec<UserId> = (0..3).map(|i| UserId::from_uuid(uuid(i))).collect();
    let frame = encode_watch(room, &users);
    assert_eq!(frame[0], ITEM);
    let json: Value = serde_json::from_slice(&frame[1..]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "type": "watch",
            "room": room.to_string(),
            "users": users.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
        })
    );
    let many: Vec<UserId> = (0..600).map(|i| UserId::from_uuid(uuid(i))).collect();
    let json: Value = serde_json::from_slice(&encode_watch(room, &many)[1..]).unwrap();
    assert_eq!(json["users"].as_array().unwrap().len(), MAX_WATCH);
}

// ------------------------------------------------------------------------------------------------
// The scanner against the app's own encoding.

/// What loadgen should make of an item, owned for comparison.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    Message(RoomId, u64, Vec<u8>),
    Ack(Vec<u8>, RoomId, u64),
    Presence(usize),
    Pong,
    Ignored,
    Full(Box<ServerMsg>),
}

fn want(msg: &ServerMsg) -> Want {
    match msg {
        ServerMsg::Message { message } => {
            Want::Message(message.room, message.seq, message.body.clone().into_bytes())
        }
        ServerMsg::Ack {
            nonce, room, seq, ..
        } => Want::Ack(nonce.clone().into_bytes(), *room, *seq),
        ServerMsg::Presence { changes } => Want::Presence(changes.len()),
        ServerMsg::Pong => Want::Pong,
        ServerMsg::Typing { .. } | ServerMsg::Read { .. } | ServerMsg::Updated { .. } => {
            Want::Ignored
        }
        other => Want::Full(Box::new(other.clone())),
    }
}

fn room_of(r: &Room<'_>) -> RoomId {
    match r {
        Room::Id(id) => *id,
        Room::Text(t) => std::str::from_utf8(t).unwrap().parse().unwrap(),
    }
}

fn got(item: Item<'_>) -> Want {
    match item {
        Item::Message { room, seq, body } => {
            let id = room_of(&room);
            assert!(room.is(id, &id.to_string()));
            assert!(!room.is(RoomId::from_uuid(uuid(999)), &uuid(999).to_string()));
            Want::Message(id, seq, body.into_owned())
        }
        Item::Ack { nonce, room, seq } => Want::Ack(nonce.into_owned(), room_of(&room), seq),
        Item::Presence { changes } => Want::Presence(changes),
        Item::Pong => Want::Pong,
        Item::Ignored => Want::Ignored,
        Item::Full(msg) => Want::Full(msg),
    }
}

fn hot(msg: &ServerMsg) -> bool {
    !matches!(want(msg), Want::Full(_))
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn flip(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
        of[self.below(of.len() as u64) as usize]
    }
}

/// Texts that need every kind of escape, and ones that look like JSON or like our bodies.
const TEXTS: &[&str] = &[
    "lg 1 2 3",
    "lg 12 3456 1764000000123456789 xxxxxxxx",
    "",
    "plain words",
    "quote \" and backslash \\ and slash /",
    "newline\nreturn\rtab\tbell\u{7}nul\u{0}",
    "unicode é ü 漢字 😀 \u{2028}",
    "looks like json: {\"room\":\"x\",\"seq\":1,\"body\":\"lg 1 2 3\"}]}",
    "\\\"\\\\\"",
    "</script><b>&amp;</b>",
    "ends with a backslash \\",
];

fn user(g: &mut Gen) -> UserId {
    UserId::from_uuid(uuid(g.below(1000).into()))
}

fn view(g: &mut Gen) -> MessageView {
    let body = g.pick(TEXTS).to_owned();
    MessageView {
        id: MessageId::from_uuid(uuid(g.next().into())),
        room: RoomId::from_uuid(uuid(g.below(5).into())),
        seq: [0, 1, g.below(1000), g.next() % 1_000_000_000_000][g.below(4) as usize],
        rev: g.next() % 1_000_000,
        author: user(g),
        author_name: g.pick(TEXTS).to_owned(),
        author_username: "lgab12cd-17".into(),
        author_avatar: g.flip().then(|| FileId::from_uuid(uuid(7))),
        html: format!("<p>{body}</p>"),
        body,
        created_at: Timestamp(1_764_000_000_000 + g.below(1_000_000) as i64),
        edited_at: g.flip().then_some(Timestamp(1_764_000_000_500)),
        deleted: g.below(8) == 0,
        mentions: (0..g.below(3)).map(|_| user(g)).collect(),
        reactions: (0..g.below(3))
            .map(|_| ReactionView {
                emoji: g.pick(&["👍", "🎉", "\"", "\\"]).into(),
                users: (0..g.below(4)).map(|_| user(g)).collect(),
            })
            .collect(),
        thread: g.flip().then(|| ThreadRef {
            root: MessageId::from_uuid(uuid(3)),
            in_room: g.flip(),
            at_rev: g.below(100),
        }),
        replies: g.flip().then(|| RepliesView {
            count: g.below(50),
            last_reply_at: Timestamp(1_764_000_000_000),
            repliers: (0..g.below(3)).map(|_| user(g)).collect(),
        }),
        files: (0..g.below(3))
            .map(|_| FileView {
                id: FileId::from_uuid(uuid(g.next().into())),
                name: g.pick(TEXTS).into(),
                content_type: "image/png".into(),
                size: g.below(10_000_000),
                dimensions: g.flip().then_some((640, 480)),
                alt: g.flip().then(|| g.pick(TEXTS).into()),
            })
            .collect(),
    }
}

fn presence(g: &mut Gen) -> Presence {
    match g.below(3) {
        0 => Presence::Online,
        1 => Presence::Away,
        _ => Presence::Offline,
    }
}

/// Every kind of server item, many times over with different contents.
fn corpus() -> Vec<ServerMsg> {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    let mut all = Vec::new();
    for i in 0..300 {
        let r = RoomId::from_uuid(uuid(g.below(5).into()));
        all.push(match i % 17 {
            0..=4 => ServerMsg::Message {
                message: view(&mut g),
            },
            5 => ServerMsg::Updated {
                message: view(&mut g),
            },
            6 => ServerMsg::Ack {
                nonce: g
                    .pick(&["3-17", "0-0", "weird \"nonce\" \\ é", "-", ""])
                    .into(),
                room: r,
                id: MessageId::from_uuid(uuid(9)),
                seq: g.next() % 1_000_000,
            },
            7 => ServerMsg::Presence {
                changes: (0..[0, 1, 2, 48][g.below(4) as usize])
                    .map(|_| PresenceChange {
                        user: user(&mut g),
                        presence: presence(&mut g),
                    })
                    .collect(),
            },
            8 => ServerMsg::Pong,
            9 => ServerMsg::Typing {
                room: r,
                user: user(&mut g),
                name: g.pick(TEXTS).into(),
                active: g.flip(),
            },
            10 => ServerMsg::Read {
                room: r,
                seq: g.below(1000),
            },
            11 => ServerMsg::Welcome {
                user: user(&mut g),
                heartbeat_secs: 20,
            },
            12 => ServerMsg::Synced {
                room: r,
                last_seq: g.below(1000),
                rev: g.below(1000),
            },
            13 => ServerMsg::Error {
                code: ErrorCode::RateLimited,
                message: g.pick(TEXTS).into(),
                nonce: g.flip().then(|| "3-18".into()),
                retry_after_ms: g.flip().then_some(1000),
            },
            14 => ServerMsg::Closing {
                reason: CloseReason::TooSlow,
            },
            15 => ServerMsg::MemberJoined {
                room: r,
                member: MemberView {
                    user: user(&mut g),
                    username: "ana".into(),
                    display_name: g.pick(TEXTS).into(),
                    avatar: None,
                    role: MemberRole::Member,
                    presence: presence(&mut g),
                },
            },
            _ => match g.below(4) {
                0 => ServerMsg::RoomAdded { room: r },
                1 => ServerMsg::RoomRemoved { room: r },
                2 => ServerMsg::InvitationsChanged,
                _ => ServerMsg::MemberLeft {
                    room: r,
                    user: user(&mut g),
                },
            },
        });
    }
    all
}

/// `value` as JSON with every object's keys in reverse order.
fn reversed(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .rev()
                .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), reversed(v)))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(reversed).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// The item as the server is about to encode it: fields with default values left out, new optional
/// fields (some with nested keys named like the ones loadgen reads), unknown top-level keys.
fn future_encoding(value: &Value) -> Value {
    let mut value = value.clone();
    let tricky = serde_json::json!({
        "room": "not-a-room", "seq": 999_999, "body": "lg 9 9 9",
        "list": [[], {}, [{"}": "]"}], "\"\\", -1.5e3, true, false, null],
    });
    if let Some(message) = value.get_mut("message").and_then(Value::as_object_mut) {
        for key in ["edited_at", "deleted", "html"] {
            if message.get(key).is_some_and(|v| v.is_null() || *v == false) || key == "html" {
                message.remove(key);
            }
        }
        message.insert("thread_extra".into(), tricky.clone());
        message.insert("score".into(), serde_json::json!(-0.25));
    }
    if let Some(object) = value.as_object_mut() {
        object.insert("zz_future".into(), serde_json::json!([tricky, "}"]));
        object.insert("a_flag".into(), serde_json::json!(null));
    }
    value
}

/// The ways one item may be written that loadgen must read alike.
fn encodings(msg: &ServerMsg) -> Vec<(&'static str, Vec<u8>)> {
    let compact = serde_json::to_vec(msg).unwrap();
    let value: Value = serde_json::from_slice(&compact).unwrap();
    let future = future_encoding(&value);
    vec![
        ("compact", compact),
        ("pretty", serde_json::to_vec_pretty(msg).unwrap()),
        ("keys reversed", reversed(&value).into_bytes()),
        ("future", serde_json::to_vec(&future).unwrap()),
        ("future reversed", reversed(&future).into_bytes()),
        (
            "padded",
            format!(
                " \n{}\t\r\n ",
                serde_json::to_string_pretty(&future).unwrap()
            )
            .into_bytes(),
        ),
    ]
}

#[test]
fn the_scanner_reads_every_item_like_serde_does() {
    let corpus = corpus();
    let mut scanned = 0;
    for msg in &corpus {
        for (how, json) in encodings(msg) {
            let (item, slow) = decode_item(&json)
                .unwrap_or_else(|e| panic!("{how}: {e}: {}", String::from_utf8_lossy(&json)));
            assert_eq!(
                got(item),
                want(msg),
                "{how}: {}",
                String::from_utf8_lossy(&json)
            );
            // Hot kinds must not need serde: a change in the server's encoding that the scanner
            // does not follow fails here instead of silently slowing loadgen down.
            assert!(
                !slow,
                "{how}: scanned by serde: {}",
                String::from_utf8_lossy(&json)
            );
            scanned += usize::from(hot(msg));
        }
    }
    assert!(scanned > 1000, "the corpus has hot items: {scanned}");
}

#[test]
fn a_cut_item_is_an_error_at_every_length() {
    for msg in corpus().iter().step_by(7) {
        let json = serde_json::to_vec(msg).unwrap();
        for cut in 0..json.len() {
            assert!(
                decode_item(&json[..cut]).is_err(),
                "{}",
                String::from_utf8_lossy(&json[..cut])
            );
            assert!(scan::scan(&json[..cut]).is_err());
        }
    }
}

#[test]
fn odd_but_valid_items_fall_back_to_serde() {
    // An escaped key, a fraction where an integer was expected, a duplicate tag: serde decides.
    let (item, slow) = decode_item(br#"{"typ\u0065":"pong"}"#).unwrap();
    assert_eq!((item, slow), (Item::Pong, true));
    let (item, _) = decode_item(br#"{"type":"p\u006fng"}"#).unwrap();
    assert_eq!(item, Item::Pong);
    let r = room();
    let ack = format!(r#"{{"type":"ack","nonce":"1-2","room":"{r}","id":"{r}","seq":4.0}}"#);
    assert!(
        decode_item(ack.as_bytes()).is_err(),
        "serde refuses 4.0 too"
    );
    let upper = format!(
        r#"{{"type":"ack","nonce":"1-2","room":"{}","id":"{r}","seq":4}}"#,
        r.to_string().to_uppercase()
    );
    let (item, slow) = decode_item(upper.as_bytes()).unwrap();
    assert!(!slow);
    let Item::Ack { room: spelled, .. } = item else {
        panic!("an ack")
    };
    assert!(spelled.is(r, &r.to_string()), "any spelling of the id");
    for garbage in [
        &b""[..],
        b"{}",
        b"[]",
        b"null",
        b"{\"type\":\"message\"}",
        b"{\"type\":\"message\",\"message\":\"text\"}",
        b"{\"type\":\"pong\"} {}",
        b"{\"type\":\"pong\",}",
        b"{\"type\" \"pong\"}",
        b"{\"type\":\"pong\"",
        b"\x00\xff{",
    ] {
        assert!(decode_item(garbage).is_err(), "{garbage:?}");
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = format!(
        r#"{{"type":"pong","x":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(scan::scan(deep.as_bytes()).is_err());
    let fine = format!(
        r#"{{"type":"pong","x":{}{}}}"#,
        "[".repeat(20),
        "]".repeat(20)
    );
    assert_eq!(
        scan::scan(fine.as_bytes()).unwrap().kind,
        Some(&b"pong"[..])
    );
}

#[test]
fn mutated_items_never_panic() {
    let mut g = Gen(0xD1B5_4A32_D192_ED03);
    let corpus = corpus();
    for round in 0..20_000 {
        let msg = &corpus[round % corpus.len()];
        let mut json = serde_json::to_vec(msg).unwrap();
        for _ in 0..=g.below(3) {
            let i = g.below(json.len() as u64) as usize;
            match g.below(3) {
                0 => json[i] = g.next() as u8,
                1 => json[i] = b"\"\\{}[],:0-"[g.below(10) as usize],
                _ => {
                    json.remove(i);
                }
            }
        }
        let _ = decode_item(&json);
    }
}

#[test]
fn the_quote_bitmap_is_exact() {
    let mut bits = Vec::new();
    for len in 0..200 {
        let base: Vec<u8> = (0..len)
            .map(|i| [b'a', 0xC3, 0xA9, b'!', b'#', 0x80, 0xFF, 0x00, b'\x02'][i % 9])
            .collect();
        for at in 0..len {
            let mut s = base.clone();
            s[at] = b'"';
            s[(at * 7 + 3) % len] = b'"';
            assert_eq!(scan_fast::quote_bitmap(&s, &mut bits), Some(()));
            let got: Vec<usize> = (0..bits.len() * 64)
                .filter(|&k| bits[k / 64] >> (k % 64) & 1 == 1)
                .collect();
            let want: Vec<usize> = (0..len).filter(|&k| s[k] == b'"').collect();
            assert_eq!(got, want, "len {len} at {at}");
            s[(at * 5 + 1) % len] = b'\\';
            assert_eq!(scan_fast::quote_bitmap(&s, &mut bits), None, "a backslash");
        }
    }
}

#[test]
fn the_fast_path_takes_compact_items_and_agrees_with_the_general_scanner() {
    let mut fast = 0;
    for msg in corpus() {
        for (how, json) in encodings(&msg) {
            let general = scan::scan_general(&json).unwrap();
            match scan_fast::scan(&json) {
                Some(scanned) => {
                    assert_eq!(
                        scanned,
                        general,
                        "{how}: {}",
                        String::from_utf8_lossy(&json)
                    );
                    fast += 1;
                }
                // Only whitespace between tokens or a backslash sends an item to the general path.
                None => assert!(
                    !how.starts_with("compact")
                        && !how.starts_with("future")
                        && !how.starts_with("keys")
                        || json.contains(&b'\\'),
                    "{how}: {}",
                    String::from_utf8_lossy(&json)
                ),
            }
        }
    }
    assert!(fast > 300, "{fast} items took the fast path");
}
