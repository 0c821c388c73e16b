//! Property tests over everything that reads untrusted input: the websocket frame decoder, every
//! server function's argument decoder, the markdown renderer and its sanitiser, and the
//! `X-Forwarded-For` walk. Each target feeds its real code generated input (arbitrary bytes and
//! strings, and mixes of the tokens that matter to it) and checks a property; a panic anywhere fails
//! the test with the (shrunk) input.
//!
//! `FUZZ_CASES` sets the cases per target (2,000 by default, the short run in the test command). The
//! long run and its figures are in the README (`cargo test --release -p server --test api fuzz::`).

use app::error::AppError;
use app::protocol::{decode_item, encode_item, ClientMsg, RoomCursor};
use axum::body::Body;
use leptos::server_fn::codec::{Encoding, FromReq, GetUrl, PostUrl};
use leptos::server_fn::ServerFn;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

fn runner() -> TestRunner {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    TestRunner::new(Config {
        cases,
        // A failure is reported with its input; nothing is written into the source tree.
        failure_persistence: None,
        ..Config::default()
    })
}

/// Runs `check` on `cases` inputs and reports how many times the code under test ran.
fn fuzz<S: Strategy>(
    target: &str,
    strategy: S,
    check: impl Fn(S::Value) -> Result<u64, TestCaseError>,
) {
    let executions = AtomicU64::new(0);
    let result = runner().run(&strategy, |input| {
        executions.fetch_add(check(input)?, Ordering::Relaxed);
        Ok(())
    });
    let executions = executions.load(Ordering::Relaxed);
    if let Err(failure) = result {
        panic!("fuzz {target}: {failure} (after {executions} executions)");
    }
    eprintln!("fuzz {target}: {executions} executions, 0 panics, every property held");
}

/// Strings built from `tokens` that matter to a parser, with arbitrary text mixed in.
fn pieces(tokens: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => proptest::sample::select(tokens).prop_map(str::to_owned),
        1 => any::<String>(),
        1 => any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..max).prop_map(|parts| parts.concat())
}

// ---------------------------------------------------------------------------------------------
// The websocket frame decoder.

const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "\"type\"",
    "\"send\"",
    "\"hello\"",
    "\"edit\"",
    "\"delete\"",
    "\"typing\"",
    "\"read\"",
    "\"away\"",
    "\"ping\"",
    "\"room\"",
    "\"nonce\"",
    "\"body\"",
    "\"id\"",
    "\"seq\"",
    "\"cursors\"",
    "\"last_seq\"",
    "\"rev\"",
    "\"emoji\"",
    "\"react\"",
    "\"active\"",
    "\"00000000-0000-0000-0000-000000000000\"",
    "\"0195f0a0-7c1d-7000-8000-00000000beef\"",
    "\"not-a-uuid\"",
    "0",
    "-1",
    "1e309",
    "18446744073709551616",
    "1.5",
    "true",
    "false",
    "null",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "{\"a\":{\"a\":{\"a\":{\"a\":",
    " ",
    "\n",
];

fn uuid_from(bits: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(bits)
}

/// Well-formed commands of every kind.
fn client_msg() -> impl Strategy<Value = ClientMsg> {
    let room = any::<u128>().prop_map(|b| uuid_from(b).to_string().parse().unwrap());
    let message = any::<u128>().prop_map(|b| uuid_from(b).to_string().parse().unwrap());
    prop_oneof![
        (
            proptest::collection::vec((room.clone(), any::<u64>(), any::<u64>()), 0..4),
            any::<bool>()
        )
            .prop_map(|(cursors, batches)| {
                ClientMsg::Hello {
                    batches,
                    cursors: cursors
                        .into_iter()
                        .map(|(room, last_seq, rev)| RoomCursor {
                            room,
                            last_seq,
                            rev,
                        })
                        .collect(),
                }
            }),
        (
            room.clone(),
            any::<String>(),
            any::<String>(),
            proptest::option::of(message.clone()),
            any::<bool>(),
            proptest::collection::vec(any::<u128>(), 0..3),
            proptest::collection::vec(any::<String>(), 0..3),
        )
            .prop_map(|(room, nonce, body, thread, also_in_room, files, alts)| {
                ClientMsg::Send {
                    room,
                    nonce,
                    body,
                    thread,
                    also_in_room,
                    files: files
                        .into_iter()
                        .map(|f| app::model::FileId::from_uuid(uuid::Uuid::from_u128(f)))
                        .collect(),
                    alts,
                }
            }),
        (message.clone(), any::<String>()).prop_map(|(id, body)| ClientMsg::Edit { id, body }),
        message.clone().prop_map(|id| ClientMsg::Delete { id }),
        (message, any::<String>(), any::<bool>()).prop_map(|(id, emoji, on)| ClientMsg::React {
            id,
            emoji,
            on
        }),
        (room.clone(), any::<bool>()).prop_map(|(room, active)| ClientMsg::Typing { room, active }),
        (room.clone(), any::<u64>()).prop_map(|(room, seq)| ClientMsg::Read { room, seq }),
        any::<bool>().prop_map(|away| ClientMsg::Away { away }),
        (room, proptest::collection::vec(any::<u128>(), 0..4)).prop_map(|(room, users)| {
            ClientMsg::Watch {
                room,
                users: users
                    .into_iter()
                    .map(|u| app::model::UserId::from_uuid(uuid_from(u)))
                    .collect(),
            }
        }),
        Just(ClientMsg::Ping),
    ]
}

/// A frame as an attacker might send it: random bytes, JSON-looking token soup, or a real command
/// with bytes flipped, cut off or inserted.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    let edits = proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..6);
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (any::<u8>(), pieces(JSON_TOKENS, 48)).prop_map(|(tag, json)| {
            let mut frame = vec![if tag < 200 { 0 } else { tag }];
            frame.extend_from_slice(json.as_bytes());
            frame
        }),
        (client_msg(), edits).prop_map(|(msg, edits)| {
            let mut frame = encode_item(&msg);
            for (at, byte, how) in edits {
                let at = at % (frame.len() + 1);
                match how {
                    0 if at < frame.len() => frame[at] = byte,
                    1 => frame.truncate(at),
                    _ => frame.insert(at, byte),
                }
            }
            frame
        }),
    ]
}

#[test]
fn websocket_frames() {
    fuzz("websocket frame decoder", frame(), |bytes| {
        // Whatever it decodes to, the same command encodes and decodes to itself again.
        if let Ok(msg) = decode_item::<ClientMsg>(&bytes) {
            let again = decode_item::<ClientMsg>(&encode_item(&msg));
            prop_assert_eq!(again, Ok(msg));
        }
        Ok(1)
    });
    fuzz("websocket commands round trip", client_msg(), |msg| {
        prop_assert_eq!(decode_item::<ClientMsg>(&encode_item(&msg)), Ok(msg));
        Ok(1)
    });
}

/// What the connection does with a decoded command's text: the same parsers, for any text.
#[test]
fn command_text() {
    fuzz("message, name and nonce parsers", any::<String>(), |text| {
        let _ = app::domain::MessageBody::parse(&text);
        let _ = app::domain::Nonce::parse(&text);
        let _ = app::domain::RoomName::parse(&text);
        let _ = app::domain::RoomTopic::parse(&text);
        if let Ok(username) = app::domain::Username::parse(&text) {
            let _ = app::domain::DisplayName::parse(&text, &username);
        }
        Ok(6)
    });
}

// ---------------------------------------------------------------------------------------------
// Every server function's argument decoder.

/// One server function's decoder, run as the server runs it on a request.
struct Decoder {
    path: &'static str,
    method: http::Method,
    decode: fn(http::Request<Body>) -> Result<(), AppError>,
}

fn run_decoder<T, Enc>(request: http::Request<Body>) -> Result<(), AppError>
where
    T: FromReq<Enc, http::Request<Body>, AppError>,
{
    futures::executor::block_on(T::from_req(request)).map(|_| ())
}

macro_rules! decoders {
    ($($args:ty : $encoding:ty),* $(,)?) => {
        vec![$(Decoder {
            path: <$args as ServerFn>::PATH,
            method: <$encoding as Encoding>::METHOD,
            decode: run_decoder::<$args, $encoding>,
        }),*]
    };
}

fn all_decoders() -> Vec<Decoder> {
    use app::admin::api::*;
    use app::auth::api::*;
    use app::chat::api::*;
    use app::push::api::*;
    decoders![
        Register: PostUrl, Login: PostUrl, LoginWithCode: PostUrl, Logout: PostUrl,
        RefreshSession: PostUrl, GetCurrentUser: GetUrl, ListSessions: GetUrl,
        RevokeSession: PostUrl, RevokeOtherSessions: PostUrl, UpdateProfile: PostUrl,
        ChangePassword: PostUrl, BeginTwoFactor: PostUrl, ConfirmTwoFactor: PostUrl,
        DisableTwoFactor: PostUrl,
        MyRooms: GetUrl, BrowseRooms: GetUrl, CreateRoom: PostUrl, JoinRoom: PostUrl,
        LeaveRoom: PostUrl, InviteToRoom: PostUrl, OpenDirect: PostUrl, RoomMembers: GetUrl,
        RoomHistory: GetUrl, MarkRead: PostUrl, RoomPage: GetUrl, MyInvitations: GetUrl,
        AcceptInvitation: PostUrl, DeclineInvitation: PostUrl, MessageEdits: GetUrl,
        MyMentions: GetUrl, SetRoomNotify: PostUrl, OpenThread: GetUrl, MyThreads: GetUrl,
        FollowThread: PostUrl, MarkThreadRead: PostUrl, SearchMessages: GetUrl,
        AdminSearchMessages: GetUrl,
        AdminStats: GetUrl, AdminUsers: GetUrl, AdminSetDisabled: PostUrl, AdminSetRole: PostUrl,
        AdminForceLogout: PostUrl, AdminResetPassword: PostUrl, AdminResetTwoFactor: PostUrl,
        AdminRooms: GetUrl, AdminRoomMembers: GetUrl, AdminSetArchived: PostUrl,
        AdminDeleteRoom: PostUrl, AdminDeleteMessage: PostUrl, AdminAudit: GetUrl,
        PushKey: GetUrl, PushSubscribe: PostUrl, PushUnsubscribe: PostUrl,
    ]
}

/// The list above is every server function the app registers, with its method: a new one without
/// a fuzz target fails here.
#[test]
fn every_server_function_is_fuzzed() {
    let registered: BTreeSet<(String, String)> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| (path.to_owned(), method.to_string()))
        .collect();
    let fuzzed: BTreeSet<(String, String)> = all_decoders()
        .iter()
        .map(|d| (d.path.to_owned(), d.method.to_string()))
        .collect();
    assert_eq!(fuzzed, registered);
}

const FORM_KEYS: &[&str] = &[
    "username",
    "display_name",
    "password",
    "current_password",
    "new_password",
    "code",
    "id",
    "room",
    "user",
    "role",
    "disabled",
    "archived",
    "confirm_name",
    "message",
    "search",
    "offset",
    "actor",
    "action",
    "name",
    "topic",
    "private",
    "seq",
    "before",
    "before_at",
    "level",
    "before_id",
    "endpoint",
    "p256dh",
    "auth",
    "root",
    "q",
    "at",
    "after",
    "on",
    "read",
    "limit",
    "username[$ne]",
    "password[$ne]",
    "room[]",
    "user[0]",
    "a[b][c][d][e][f]",
    "",
    "%5B",
    "[",
    "]",
    "%",
];
const FORM_VALUES: &[&str] = &[
    "",
    "0195f0a0-7c1d-7000-8000-00000000beef",
    "00000000-0000-0000-0000-000000000000",
    "not-a-uuid",
    "0",
    "-1",
    "18446744073709551616",
    "1.5",
    "1e3",
    "true",
    "false",
    "on",
    "admin",
    "user",
    "Admin",
    "%",
    "%zz",
    "%00",
    "%F0%9F%98",
    "%ff%fe",
    "+",
    "a%20b",
    "%26",
    "%3D",
    "\u{202e}",
    "\u{200b}",
    "ünïcødé",
];

/// A form or query string: known and odd keys, known and odd values, odd separators, or junk.
fn form() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        5 => proptest::sample::select(FORM_VALUES).prop_map(str::to_owned),
        1 => any::<String>(),
        1 => (1usize..6000).prop_map(|n| "x".repeat(n)),
    ];
    let key = prop_oneof![
        6 => proptest::sample::select(FORM_KEYS).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    let pair = (
        key,
        value,
        proptest::sample::select(&["=", "", "==", "[]="][..]),
    )
        .prop_map(|(k, v, eq)| format!("{k}{eq}{v}"));
    prop_oneof![
        4 => (
            proptest::collection::vec(pair, 0..8),
            proptest::sample::select(&["&", "&&", ";", "&amp;"][..]),
        )
            .prop_map(|(pairs, sep)| pairs.join(sep)),
        1 => any::<String>(),
    ]
}

/// The query string as a client could put it in a request line: bytes an URI may not hold are
/// percent-encoded (the HTTP layer answers 400 to the rest before any decoder runs).
fn as_query(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        if c.is_ascii_graphic() && c != '#' {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[test]
fn server_function_arguments() {
    let decoders = all_decoders();
    fuzz("server function argument decoders", form(), |input| {
        for decoder in &decoders {
            let request = if decoder.method == http::Method::GET {
                let uri = format!("{}?{}", decoder.path, as_query(&input));
                match http::Request::get(uri).body(Body::empty()) {
                    Ok(request) => request,
                    // Not a request the HTTP layer would pass on.
                    Err(_) => continue,
                }
            } else {
                http::Request::post(decoder.path)
                    .header(
                        http::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(Body::from(input.clone()))
                    .unwrap()
            };
            // Bad input is the client's error: a 4xx answer, never a 500.
            if let Err(error) = (decoder.decode)(request) {
                prop_assert!(
                    (400..500).contains(&error.status()),
                    "{} answered {} for {input:?}: {error:?}",
                    decoder.path,
                    error.status()
                );
            }
        }
        Ok(decoders.len() as u64)
    });
}

// ---------------------------------------------------------------------------------------------
// The markdown renderer and sanitiser.

const MARKDOWN_TOKENS: &[&str] = &[
    "<",
    ">",
    "</",
    "/>",
    "<script>",
    "</script>",
    "<style>",
    "<iframe src=",
    "<img src=x onerror=",
    "<svg onload=",
    "<a href=\"",
    "<a href=",
    "\" onclick=\"",
    " onmouseover=",
    "style=",
    "=",
    "\"",
    "'",
    "`",
    "```",
    "``",
    "**",
    "*",
    "_",
    "__",
    "[",
    "]",
    "(",
    ")",
    "](",
    "[x](",
    "<http://",
    "javascript:",
    "JaVaScRiPt:",
    "jav&#x09;ascript:",
    "java\tscript:",
    "&#106;avascript:",
    "vbscript:",
    "data:text/html,",
    "//evil.example",
    "\\\\evil",
    "http://ok.example/",
    "https://ok.example/?a=1&b=2",
    "mailto:a@b.example",
    "&",
    "&amp;",
    "&#",
    "&lt;",
    "\n",
    "\n\n",
    "    ",
    "> ",
    "# ",
    "- ",
    "1. ",
    "!",
    "![a](",
    "<!--",
    "-->",
    "<![CDATA[",
    "\u{0}",
    "\u{202e}",
];

/// Finds what the browser would see as elements and attributes in the sanitiser's output.
struct TagCheck {
    problems: std::cell::RefCell<Vec<String>>,
}

impl html5ever::tokenizer::TokenSink for TagCheck {
    type Handle = ();

    fn process_token(
        &self,
        token: html5ever::tokenizer::Token,
        _line: u64,
    ) -> html5ever::tokenizer::TokenSinkResult<()> {
        use html5ever::tokenizer::{TagKind, Token};
        let Token::TagToken(tag) = token else {
            return html5ever::tokenizer::TokenSinkResult::Continue;
        };
        let mut problems = self.problems.borrow_mut();
        let name = tag.name.to_ascii_lowercase();
        if !matches!(
            &*name,
            "p" | "br" | "strong" | "em" | "code" | "pre" | "a" | "span"
        ) {
            problems.push(format!("element <{name}>"));
        }
        if tag.kind == TagKind::StartTag {
            for attr in &tag.attrs {
                let attr_name = attr.name.local.to_ascii_lowercase();
                // Links keep their address; a span is a mention and nothing else.
                let allowed = (&*name == "a" && matches!(&*attr_name, "href" | "rel" | "target"))
                    || (&*name == "span" && &*attr_name == "class" && &*attr.value == "mention");
                if attr_name.starts_with("on") || !allowed {
                    problems.push(format!("attribute {attr_name} on <{name}>"));
                }
                if &*attr_name == "href" {
                    // As a browser reads the link: absolute, with one of the allowed schemes.
                    match url::Url::parse(&attr.value) {
                        Ok(url) if matches!(url.scheme(), "http" | "https" | "mailto") => {}
                        _ => problems.push(format!("link {:?}", &*attr.value)),
                    }
                }
            }
        }
        html5ever::tokenizer::TokenSinkResult::Continue
    }
}

fn markup_problems(html: &str) -> Vec<String> {
    use html5ever::tokenizer::{BufferQueue, Tokenizer, TokenizerOpts};
    let tokenizer = Tokenizer::new(
        TagCheck {
            problems: Default::default(),
        },
        TokenizerOpts::default(),
    );
    let input = BufferQueue::default();
    input.push_back(html.into());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    tokenizer.sink.problems.take()
}

#[test]
fn the_checker_sees_what_a_browser_would() {
    // The property below is only as good as this check: it must catch each kind of problem.
    assert_eq!(
        markup_problems("<p>hi <a href=\"https://x.example\">x</a></p>"),
        Vec::<String>::new()
    );
    for bad in [
        "<script>alert(1)</script>",
        "<p onclick=\"x\">",
        "<a href=\"javascript:alert(1)\">",
        "<a href=\"//evil.example\">",
        "<iframe>",
        "<style>",
        "<a href=\"jav&#x09;ascript:x\">",
    ] {
        assert!(!markup_problems(bad).is_empty(), "{bad}");
    }
}

#[test]
fn markdown_is_sanitised() {
    let input = prop_oneof![3 => pieces(MARKDOWN_TOKENS, 40), 1 => any::<String>()];
    fuzz("markdown renderer and sanitiser", input, |body| {
        let html = app::chat::render::message_html(&body);
        let problems = markup_problems(&html);
        prop_assert!(problems.is_empty(), "{body:?} -> {html:?}: {problems:?}");
        Ok(1)
    });
}

// ---------------------------------------------------------------------------------------------
// The X-Forwarded-For walk.

const ADDRESSES: &[&str] = &[
    "10.0.0.1",
    "10.9.9.9",
    "192.168.1.5",
    "203.0.113.7",
    "198.51.100.2",
    "::1",
    "2001:db8::1",
    "2001:db8:1:2::3",
    "::ffff:10.0.0.2",
    "::ffff:203.0.113.9",
    "fe80::1%eth0",
    "[::1]:80",
    "203.0.113.7:8080",
    "unknown",
    "",
    " ",
    "1.2.3",
    "999.1.1.1",
    "_hidden",
    "0.0.0.0",
];

fn xff_header() -> impl Strategy<Value = String> {
    let hop = prop_oneof![
        6 => proptest::sample::select(ADDRESSES).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    (
        proptest::collection::vec(hop, 0..8),
        proptest::sample::select(&[",", ", ", " ,", ",,"][..]),
    )
        .prop_map(|(hops, sep)| hops.join(sep))
}

#[test]
fn forwarded_for_chains() {
    let trusted = server::client_ip::TrustedProxies::parse("10.0.0.0/8, ::1").unwrap();
    let peers: Vec<IpAddr> = ["10.0.0.3", "::1", "203.0.113.50", "::ffff:10.1.1.1"]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    let strategy = (
        proptest::sample::select(peers),
        proptest::collection::vec(xff_header(), 0..3),
    );
    fuzz("X-Forwarded-For parser", strategy, |(peer, headers)| {
        let mut map = http::HeaderMap::new();
        for value in &headers {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                map.append("x-forwarded-for", value);
            }
        }
        let client = trusted.client_ip(peer, &map);
        if !trusted.trusts(peer) {
            prop_assert_eq!(client, peer);
            return Ok(1);
        }
        // The hops a proxy chain vouches for: read from the right up to the first unreadable one.
        let readable: Vec<IpAddr> = map
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map_while(|hop| hop.parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .collect();
        // The client is the nearest untrusted hop; only if there is none, the last readable one
        // (or the peer). Hops further left, which anyone can write, never win over it.
        match readable.iter().position(|ip| !trusted.trusts(*ip)) {
            Some(nearest) => prop_assert_eq!(client, readable[nearest], "{:?}", readable),
            None => prop_assert_eq!(
                client,
                readable.last().copied().unwrap_or(peer.to_canonical()),
                "{:?}",
                readable
            ),
        }
        Ok(1)
    });
}
