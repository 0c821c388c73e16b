//! Regression tests of the security findings: each one did what its comment says before the fix.
//! (Metrics labels: health.rs; the login throttle and the refresh grace: auth.rs.)

use crate::helpers::*;
use app::model::RoomId;
use app::protocol::{ClientMsg, CloseReason, ErrorCode, ServerMsg};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_drivers!(
    a_flood_of_typing_and_away_toggles_reaches_others_as_a_few_changes,
    edit_floods_share_the_message_budget,
    a_connection_that_keeps_flooding_is_closed,
    revoking_one_session_closes_its_socket_at_once,
    a_temporary_password_allows_only_changing_it,
    display_names_cannot_pass_for_someone_else,
    messages_show_the_authors_username_and_refuse_direction_overrides,
    room_changes_are_rate_limited_and_invitations_need_consent,
);

/// Ana and Ben in a public room of Ana's, both signed in.
async fn room_for_two(app: &TestApp) -> (Browser, Browser, RoomId) {
    let mut ana = Browser::new(app);
    assert_eq!(ana.register("ana", GOOD_PASSWORD).await.status, 200);
    let mut ben = Browser::new(app);
    assert_eq!(ben.register("ben", GOOD_PASSWORD).await.status, 200);
    let room = ana
        .post(
            "/api/rooms/create",
            &[("name", "Lobby"), ("topic", ""), ("private", "false")],
        )
        .await;
    assert_eq!(room.status, 200, "{room:?}");
    let id = room.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        ben.post("/api/rooms/join", &[("room", &id)]).await.status,
        200
    );
    (ana, ben, id.parse().unwrap())
}

/// Before: 50,000 alternating typing notices in 3 s reached the other member 50,000 times (and a
/// slow reader was closed as too slow); the same for away toggles.
async fn a_flood_of_typing_and_away_toggles_reaches_others_as_a_few_changes(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let (mut ana, ben, room) = room_for_two(&app).await;
    let ana_id: app::model::UserId = ana.me().await.body["id"].as_str().unwrap().parse().unwrap();
    let mut b = WsClient::join(&ben, vec![]).await;
    synced(&mut b, room).await;
    // Ben's client shows Ana (not connected yet).
    b.send(&ClientMsg::Watch {
        room,
        users: vec![ana_id],
    })
    .await;
    assert_eq!(
        b.recv_until(|m| m.presence_of(ana_id)).await,
        app::protocol::Presence::Offline
    );
    let mut a = WsClient::join(&ana, vec![]).await;
    synced(&mut a, room).await;
    for i in 0..5_000 {
        let on = i % 2 == 0;
        a.send(&ClientMsg::Typing { room, active: on }).await;
        a.send(&ClientMsg::Away { away: on }).await;
    }
    // Ana's connection is refused, then closed for flooding.
    let reason = a
        .recv_until(|m| match m {
            ServerMsg::Closing { reason } => Some(*reason),
            _ => None,
        })
        .await;
    assert_eq!(reason, CloseReason::Flooding);
    // Ben hears a few changes, then Ana going offline, and is never closed himself.
    let (mut typing, mut presence) = (0, 0);
    loop {
        match b.recv().await.expect("Ben's socket is open") {
            ServerMsg::Typing { .. } => typing += 1,
            m @ ServerMsg::Presence { .. } => {
                if m.presence_of(ana_id) == Some(app::protocol::Presence::Offline) {
                    break;
                }
                presence += 1;
            }
            ServerMsg::Closing { reason } => panic!("Ben was closed: {reason:?}"),
            _ => {}
        }
    }
    assert!(typing <= 50, "{typing} typing notices reached Ben");
    assert!(presence <= 20, "{presence} presence changes reached Ben");
    app.stop().await.unwrap();
}

/// Before: 2,000 edits of one message were 2,000 durable writes and room-wide broadcasts.
async fn edit_floods_share_the_message_budget(kind: StoreKind) {
    let app = spawn_app_with(kind, &[("MESSAGES_PER_10S", "10".into())]).await;
    let (ana, _ben, room) = room_for_two(&app).await;
    let mut a = WsClient::join(&ana, vec![]).await;
    synced(&mut a, room).await;
    a.send(&send(room, "first", "version 0")).await;
    let id = a
        .recv_until(|m| match m {
            ServerMsg::Ack { id, .. } => Some(*id),
            _ => None,
        })
        .await;
    for i in 1..=200 {
        a.send(&ClientMsg::Edit {
            id,
            body: format!("version {i}"),
        })
        .await;
    }
    let (mut applied, mut refused) = (0, 0);
    while applied + refused < 200 {
        match a.recv().await.expect("open") {
            ServerMsg::Updated { .. } => applied += 1,
            ServerMsg::Error {
                code: ErrorCode::RateLimited,
                retry_after_ms,
                ..
            } => {
                assert!(retry_after_ms.unwrap() >= 1000);
                refused += 1;
            }
            _ => {}
        }
    }
    // The budget is 10 messages in 10 s (the first send took one), refilling by one a second.
    assert!(applied < 40, "{applied} edits applied");
    assert!(refused > 160, "{refused} refused");
    app.stop().await.unwrap();
}

/// Before: nothing limited pings, hellos or read markers, and refusals cost a flooder nothing.
async fn a_connection_that_keeps_flooding_is_closed(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let (ana, _ben, room) = room_for_two(&app).await;
    let mut a = WsClient::join(&ana, vec![]).await;
    synced(&mut a, room).await;
    // Pings: each one is answered at once, so the budget runs out however slow the store is today
    // (read markers, each a store write, refill the bucket while they are slowly written).
    for _ in 0..2_000 {
        a.send(&ClientMsg::Ping).await;
    }
    let reason = loop {
        match a.recv_within(Duration::from_secs(120)).await {
            Ok(Some(ServerMsg::Closing { reason })) => break reason,
            Ok(Some(_)) => continue,
            other => panic!("the connection ended without a closing notice: {other:?}"),
        }
    };
    assert_eq!(reason, CloseReason::Flooding);
    app.stop().await.unwrap();
}

/// Before: a silent socket of a revoked session stayed open (79 s, 32 messages): only
/// "sign out all other sessions" closed sockets.
async fn revoking_one_session_closes_its_socket_at_once(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let (mut ana, _ben, room) = room_for_two(&app).await;
    let mut phone = Browser::new(&app);
    assert_eq!(phone.login("ana", GOOD_PASSWORD).await.status, 200);
    let mut socket = WsClient::join(&phone, vec![]).await;
    synced(&mut socket, room).await;
    let sessions = ana.get("/api/auth/sessions").await;
    let phone_session = sessions
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .expect("the phone's session is listed")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = ana
        .post("/api/auth/sessions/revoke", &[("id", &phone_session)])
        .await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    // The notice was queued before the revocation was answered; nothing else comes after it.
    let reason = socket
        .recv_until(|m| match m {
            ServerMsg::Closing { reason } => Some(*reason),
            _ => None,
        })
        .await;
    assert_eq!(reason, CloseReason::SignedOut);
    loop {
        match socket.recv_within(Duration::from_secs(60)).await {
            Ok(None) => break,
            Ok(Some(ServerMsg::Message { .. } | ServerMsg::Closing { .. })) => {
                panic!("a message or a second notice after closing")
            }
            Ok(Some(_)) => {}
            Err(()) => panic!("the socket stays open after closing"),
        }
    }
    app.stop().await.unwrap();
}

/// Before: with a temporary password set by an admin, the rooms API, the websocket and sending all
/// worked; only page loads were sent to the password form.
async fn a_temporary_password_allows_only_changing_it(kind: StoreKind) {
    let app = spawn_app_with(
        kind,
        &[
            ("ADMIN_USERNAME", "root_admin".into()),
            ("ADMIN_PASSWORD", GOOD_PASSWORD.into()),
        ],
    )
    .await;
    let mut root = Browser::new(&app);
    assert_eq!(root.login("root_admin", GOOD_PASSWORD).await.status, 200);
    let mut ben = Browser::new(&app);
    assert_eq!(ben.register("ben", GOOD_PASSWORD).await.status, 200);
    let users = root.get("/api/admin/users?search=ben&offset=0").await;
    let ben_id = users.body["items"][0]["id"].as_str().unwrap().to_owned();
    let reset = root
        .post("/api/admin/users/reset-password", &[("user", &ben_id)])
        .await;
    let temporary = reset.body.as_str().unwrap().to_owned();

    let mut again = Browser::new(&app);
    assert_eq!(again.login("ben", &temporary).await.status, 200);
    let refused = serde_json::json!({ "kind": "password_change_required" });
    let rooms = again.get("/api/rooms/mine").await;
    assert_eq!((rooms.status, rooms.body), (403, refused.clone()));
    let created = again
        .post(
            "/api/rooms/create",
            &[("name", "Mine"), ("topic", ""), ("private", "false")],
        )
        .await;
    assert_eq!((created.status, created.body), (403, refused.clone()));
    assert_eq!(
        WsClient::connect(&again).await.err(),
        Some(403),
        "no live connection"
    );
    // Who they are, and the password change, still work; afterwards, everything does.
    let me = again.me().await;
    assert_eq!(me.body["must_change_password"], true);
    let changed = again
        .post(
            "/api/account/password",
            &[
                ("current_password", &temporary),
                ("new_password", "quartz-meadow-lantern-57"),
            ],
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(again.get("/api/rooms/mine").await.status, 200);
    assert!(WsClient::connect(&again).await.is_ok());
    app.stop().await.unwrap();
}

/// Before: display names `root_admin`, `\u{202E}nimda_toor`, `root\u{200B}_admin` and homoglyphs
/// were accepted next to the real `root_admin`.
async fn display_names_cannot_pass_for_someone_else(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut admin = Browser::new(&app);
    assert_eq!(
        admin.register("root_admin", GOOD_PASSWORD).await.status,
        200
    );
    let mut mallory = Browser::new(&app);
    assert_eq!(mallory.register("mallory", GOOD_PASSWORD).await.status, 200);
    for disguise in [
        "root_admin",
        "Root_Admin",
        "\u{202E}nimda_toor",
        "root\u{200B}_admin",
        "r\u{043E}\u{043E}t_\u{0430}dmin",
    ] {
        let answer = mallory
            .post("/api/account/profile", &[("display_name", disguise)])
            .await;
        assert_eq!(answer.status, 400, "{disguise:?}: {answer:?}");
        assert_eq!(answer.body["field"], "display_name");
    }
    // At registration too.
    let mut eve = Browser::new(&app);
    let registered = eve
        .post(
            "/api/auth/register",
            &[
                ("username", "eve"),
                ("display_name", "root_admin"),
                ("password", GOOD_PASSWORD),
            ],
        )
        .await;
    assert_eq!(registered.status, 400, "{registered:?}");
    // An ordinary name, and one's own username, are fine.
    let fine = mallory
        .post("/api/account/profile", &[("display_name", "Mallory M.")])
        .await;
    assert_eq!(fine.status, 200, "{fine:?}");
    let own = admin
        .post("/api/account/profile", &[("display_name", "Root_Admin")])
        .await;
    assert_eq!(own.status, 200, "{own:?}");
    app.stop().await.unwrap();
}

async fn messages_show_the_authors_username_and_refuse_direction_overrides(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let (ana, ben, room) = room_for_two(&app).await;
    let mut a = WsClient::join(&ana, vec![]).await;
    synced(&mut a, room).await;
    let mut b = WsClient::join(&ben, vec![]).await;
    synced(&mut b, room).await;
    a.send(&send(room, "n1", "pay \u{202E}gnp.exe")).await;
    let refused = a
        .recv_until(|m| match m {
            ServerMsg::Error { code, nonce, .. } if nonce.as_deref() == Some("n1") => Some(*code),
            _ => None,
        })
        .await;
    assert_eq!(refused, ErrorCode::Invalid);
    a.send(&send(room, "n2", "hello")).await;
    let (name, username) = b
        .recv_until(|m| match m {
            ServerMsg::Message { message } => {
                Some((message.author_name.clone(), message.author_username.clone()))
            }
            _ => None,
        })
        .await;
    assert_eq!((name.as_str(), username.as_str()), ("ana", "ana"));
    app.stop().await.unwrap();
}

/// Before: rooms, invitations and direct messages had no rate limit, and an invitation made the
/// invitee a member at once (a victim could be added to thousands of rooms).
async fn room_changes_are_rate_limited_and_invitations_need_consent(kind: StoreKind) {
    let app = spawn_app_with(kind, &[("ROOM_ACTIONS_PER_10_MIN", "5".into())]).await;
    let (mut ana, mut ben, _) = room_for_two(&app).await;
    let mut made = Vec::new();
    let mut refused = 0;
    for i in 0..10 {
        let room = ana
            .post(
                "/api/rooms/create",
                &[
                    ("name", &format!("Room {i}")),
                    ("topic", ""),
                    ("private", "true"),
                ],
            )
            .await;
        match room.status {
            200 => made.push(room.body["id"].as_str().unwrap().to_owned()),
            429 => refused += 1,
            other => panic!("{other}: {room:?}"),
        }
    }
    // The first room of room_for_two took one action.
    assert_eq!((made.len(), refused), (4, 6));
    // Inviting Ben is an action too (the budget is used up) ...
    let invited = ana
        .post(
            "/api/rooms/invite",
            &[("room", &made[0]), ("username", "ben")],
        )
        .await;
    assert_eq!(invited.status, 429, "{invited:?}");
    // ... and with budget, an invitation makes nobody a member until they accept.
    let mut cai = Browser::new(&app);
    assert_eq!(cai.register("cai", GOOD_PASSWORD).await.status, 200);
    let room = cai
        .post(
            "/api/rooms/create",
            &[("name", "Cai's"), ("topic", ""), ("private", "true")],
        )
        .await;
    let room_id = room.body["id"].as_str().unwrap().to_owned();
    let invited = cai
        .post(
            "/api/rooms/invite",
            &[("room", &room_id), ("username", "ben")],
        )
        .await;
    assert_eq!(invited.status, 200, "{invited:?}");
    assert_eq!(
        ben.get(&format!("/api/rooms/history?room={room_id}"))
            .await
            .status,
        404,
        "not a member yet: the private room is invisible"
    );
    let open = ben.get("/api/rooms/invitations").await;
    assert_eq!(open.body.as_array().unwrap().len(), 1, "{open:?}");
    assert_eq!(open.body[0]["room"]["name"], "Cai's");
    let declined = ben
        .post("/api/rooms/invitations/decline", &[("room", &room_id)])
        .await;
    assert_eq!(declined.status, 200);
    let accept_after_decline = ben
        .post("/api/rooms/invitations/accept", &[("room", &room_id)])
        .await;
    assert_eq!(accept_after_decline.status, 404, "{accept_after_decline:?}");
    assert_eq!(
        ben.get("/api/rooms/invitations").await.body,
        Value::Array(vec![])
    );
    app.stop().await.unwrap();
}

/// Before: 300 connections that sent half a request line were held for a minute and more (axum's
/// serve ran hyper without a timer).
#[tokio::test]
async fn a_client_that_sends_half_a_request_is_cut_off() {
    let app = spawn_app_with(
        StoreKind::Embedded,
        &[("HEADER_READ_TIMEOUT_SECS", "1".into())],
    )
    .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET / HT").await.unwrap();
    let mut buf = [0u8; 512];
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the half-sent request was cut off by the server"
    );
    app.stop().await.unwrap();
}

/// Before: one address could hold any number of connections open.
#[tokio::test]
async fn one_address_has_a_connection_cap() {
    let app = spawn_app_with(
        StoreKind::Embedded,
        &[
            // Idle connections are kept (keep-alive) for as long as this test needs them.
            ("HEADER_READ_TIMEOUT_SECS", "300".into()),
            ("CONNECTIONS_PER_ADDRESS", "4".into()),
        ],
    )
    .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut buf = [0u8; 512];
    // Four open connections are allowed; the fifth is refused at once.
    let mut open = Vec::new();
    for _ in 0..4 {
        let mut c = tokio::net::TcpStream::connect(&address).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let n = c.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        open.push(c);
    }
    let mut fifth = tokio::net::TcpStream::connect(&address).await.unwrap();
    let _ = fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let answer = tokio::time::timeout(Duration::from_secs(30), fifth.read(&mut buf))
        .await
        .expect("the refusal comes without waiting for a timeout");
    assert!(
        matches!(answer, Ok(0) | Err(_)),
        "the fifth connection is refused"
    );
    // Once one closes, its place is free again.
    drop(open.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut again = tokio::net::TcpStream::connect(&address).await.unwrap();
        let _ = again
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        if matches!(again.read(&mut buf).await, Ok(n) if n > 0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(open);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn one_person_and_one_address_have_a_websocket_cap() {
    let app = spawn_app_with(
        StoreKind::Embedded,
        &[
            ("WEBSOCKETS_PER_USER", "2".into()),
            ("WEBSOCKETS_PER_ADDRESS", "3".into()),
        ],
    )
    .await;
    let mut ana = Browser::new(&app);
    ana.register("ana", GOOD_PASSWORD).await;
    let first = WsClient::connect(&ana).await.unwrap();
    let _second = WsClient::connect(&ana).await.unwrap();
    assert_eq!(
        WsClient::connect(&ana).await.err(),
        Some(429),
        "a third for Ana"
    );
    let mut ben = Browser::new(&app);
    ben.register("ben", GOOD_PASSWORD).await;
    let _b1 = WsClient::connect(&ben).await.unwrap();
    assert_eq!(
        WsClient::connect(&ben).await.err(),
        Some(429),
        "the address is full"
    );
    // A closed socket gives its place back.
    first.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match WsClient::connect(&ben).await {
            Ok(_) => break,
            Err(429) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(status) => panic!("still refused: {status}"),
        }
    }
    app.stop().await.unwrap();
}

/// Before: 83 malformed inputs answered `500 {"kind":"transport"}`, and a chunked body over the
/// limit 500 instead of 413.
#[tokio::test]
async fn bad_input_is_a_client_error_in_the_api_shape() {
    let app = spawn_app_with(StoreKind::Embedded, &[("MAX_BODY_BYTES", "4096".into())]).await;
    let mut ana = Browser::new(&app);
    ana.register("ana", GOOD_PASSWORD).await;
    let cases: [(&str, &str); 7] = [
        ("/api/auth/login", "password%5B%24ne%5D=x&username=ana"),
        ("/api/auth/login", "username[]=a&username[]=b&password=x"),
        ("/api/rooms/join", "room=not-a-uuid"),
        (
            "/api/rooms/read",
            "room=0190a0f5-7c1e-7d3a-9b1e-3f2a4c5d6e7f&seq=-4",
        ),
        ("/api/auth/register", "%%%"),
        ("/api/admin/users/disable", "user=x&disabled=maybe"),
        ("/api/rooms/create", "name=x&private=yes"),
    ];
    for (path, body) in cases {
        let answer = app
            .client
            .post(app.url(path))
            .header("origin", &app.address)
            .header("cookie", ana.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let json: Value = answer.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 400, "{path} {body}: {json}");
        assert_eq!(json["kind"], "invalid", "{path} {body}: {json}");
    }
    // A JSON body where a form is expected.
    let answer = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body(r#"{"username":{"$ne":1}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    // Too large, with and without a length given.
    let big = "username=".to_owned() + &"a".repeat(10_000);
    let answer = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 413);
    let chunks = futures::stream::iter(
        big.into_bytes()
            .chunks(1000)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let answer = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 413);
    let json: Value = answer.json().await.unwrap();
    assert_eq!(json["kind"], "payload_too_large");
    app.stop().await.unwrap();
}

/// Before: registration ran the password-strength check (on the blocking pool) before the
/// per-address limit, so a refused registration still cost a zxcvbn run.
#[tokio::test]
async fn the_registration_limit_comes_before_the_password_check() {
    let app = spawn_app_with(
        StoreKind::Embedded,
        &[("REGISTRATIONS_PER_IP_PER_HOUR", "1".into())],
    )
    .await;
    let mut first = Browser::new(&app);
    assert_eq!(first.register("ana", GOOD_PASSWORD).await.status, 200);
    let mut second = Browser::new(&app);
    let weak = second.register("ben", "password1").await;
    assert_eq!(
        weak.status, 429,
        "refused by the limit, not the password: {weak:?}"
    );
    app.stop().await.unwrap();
}

/// Under https the session cookies carry the `__Host-` prefix, and unprefixed ones (which another
/// host could set) are ignored.
#[tokio::test]
async fn cookies_are_host_only_under_https() {
    let app = spawn_app_with(
        StoreKind::Embedded,
        &[("PUBLIC_ORIGIN", "https://chat.example.com".into())],
    )
    .await;
    let mut ana = Browser::new(&app);
    ana.origin = "https://chat.example.com".into();
    let registered = ana.register("ana", GOOD_PASSWORD).await;
    assert_eq!(registered.status, 200, "{registered:?}");
    for cookie in &registered.set_cookies {
        assert!(cookie.starts_with("__Host-"), "{cookie}");
        assert!(
            cookie.contains("Secure") && cookie.contains("Path=/"),
            "{cookie}"
        );
    }
    assert_eq!(ana.me().await.body["username"], "ana");
    let mut planted = Browser::new(&app);
    planted.cookies.insert(
        "mlchat_access".into(),
        ana.cookie("__Host-mlchat_access").unwrap(),
    );
    assert_eq!(
        planted.me().await.body,
        Value::Null,
        "an unprefixed cookie counts for nothing"
    );
    app.stop().await.unwrap();
}
