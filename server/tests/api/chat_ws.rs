//! The real-time protocol against the running server, with a real websocket client: ordering and acks,
//! nonce idempotency, resume after a disconnect, limits, authorization, typing and presence.

use crate::helpers::*;
use app::model::RoomId;
use app::protocol::{ClientMsg, CloseReason, ErrorCode, Presence, RoomCursor, ServerMsg};
use futures::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

on_both_drivers!(
    two_users_exchange_messages_in_order_with_acks,
    a_retried_nonce_creates_one_message,
    a_reconnecting_client_receives_exactly_what_it_missed,
    non_members_can_neither_read_nor_post,
    foreign_origins_and_guests_cannot_upgrade,
    the_send_rate_limit_answers_with_an_error_frame,
    oversized_and_malformed_frames_are_refused_and_the_connection_survives,
    typing_and_presence_arrive_and_expire,
    signing_out_elsewhere_closes_the_socket_at_once,
    a_flood_of_5000_sends_is_acked_exactly_once_each,
    a_client_that_stops_reading_is_closed_and_nobody_else_waits,
    batch_frames_go_only_to_clients_that_ask_and_carry_every_item_once,
);

/// A server whose send limit does not get in the way of tests that send a lot.
async fn spawn_chat_app(kind: StoreKind) -> TestApp {
    spawn_app_with(kind, &[("MESSAGES_PER_10S", "1000000".into())]).await
}

/// Ana (owner) and Ben (invited) share a private room.
async fn two_members(app: &TestApp) -> (Browser, Browser, RoomId) {
    let mut ana = Browser::new(app);
    ana.register("ana", GOOD_PASSWORD).await;
    let mut ben = Browser::new(app);
    ben.register("ben", GOOD_PASSWORD).await;
    let room = ana
        .post(
            "/api/rooms/create",
            &[
                ("name", "Plans"),
                ("topic", "Next steps"),
                ("private", "true"),
            ],
        )
        .await;
    assert_eq!(room.status, 200, "{room:?}");
    let room: RoomId = room.body["id"].as_str().unwrap().parse().unwrap();
    let invite = ana
        .post(
            "/api/rooms/invite",
            &[("room", &room.to_string()), ("username", "ben")],
        )
        .await;
    assert_eq!(invite.status, 200, "{invite:?}");
    let mut ben = ben;
    let accepted = ben
        .post(
            "/api/rooms/invitations/accept",
            &[("room", &room.to_string())],
        )
        .await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    (ana, ben, room)
}

async fn next_message(ws: &mut WsClient) -> (u64, String) {
    ws.recv_until(|m| match m {
        ServerMsg::Message { message } => Some((message.seq, message.body.clone())),
        _ => None,
    })
    .await
}

async fn two_users_exchange_messages_in_order_with_acks(kind: StoreKind) {
    let app = spawn_chat_app(kind).await;
    let (ana, ben, room) = two_members(&app).await;
    let mut a = WsClient::join(&ana, vec![]).await;
    let mut b = WsClient::join(&ben, vec![]).await;
    assert_eq!(synced(&mut a, room).await, 0);
    assert_eq!(synced(&mut b, room).await, 0);

    for i in 1..=20 {
        let (who, nonce) = if i % 2 == 0 {
            (&mut b, format!("b{i}"))
        } else {
            (&mut a, format!("a{i}"))
        };
        who.send(&send(room, &nonce, &format!("message {i}"))).await;
        let seq = who
            .recv_until(|m| match m {
                ServerMsg::Ack { nonce: n, seq, .. } if *n == nonce => Some(*seq),
                _ => None,
            })
            .await;
        assert_eq!(seq, i, "acks carry the next sequence");
    }
    for ws in [&mut a, &mut b] {
        for i in 1..=20 {
            assert_eq!(
                next_message(ws).await,
                (i, format!("message {i}")),
                "in order, once"
            );
        }
    }
    // History over HTTP agrees.
    let mut ana = ana;
    let history = ana.get(&format!("/api/rooms/history?room={room}")).await;
    assert_eq!(history.body.as_array().unwrap().len(), 20);
    assert_eq!(history.body[19]["body"], "message 20");
    // Plain text travels without its HTML (clients make the paragraph themselves).
    assert!(history.body[19].get("html").is_none());
    app.stop().await.unwrap();
}

async fn a_retried_nonce_creates_one_message(kind: StoreKind) {
    let app = spawn_chat_app(kind).await;
    let (ana, ben, room) = two_members(&app).await;
    let mut a = WsClient::join(&ana, vec![]).await;
    let mut b = WsClient::join(&ben, vec![]).await;
    synced(&mut a, room).await;
    synced(&mut b, room).await;
    let mut acks = Vec::new();
    for _ in 0..3 {
        a.send(&send(room, "same-nonce", "only once")).await;
        acks.push(
            a.recv_until(|m| match m {
                ServerMsg::Ack { id, seq, .. } => Some((*id, *seq)),
                _ => None,
            })
            .await,
        );
    }
    assert!(
        acks.iter().all(|ack| *ack == acks[0]),
        "the original ack every time"
    );
    assert_eq!(next_message(&mut b).await.0, 1);
    assert!(
        !b.sees_within(Duration::from_millis(500), |m| matches!(
            m,
            ServerMsg::Message { .. }
        ))
        .await,
        "no second message"
    );
    let mut ana = ana;
    let history = ana.get(&format!("/api/rooms/history?room={room}")).await;
    assert_eq!(history.body.as_array().unwrap().len(), 1);
    app.stop().await.unwrap();
}

async fn a_reconnecting_client_receives_exactly_what_it_missed(kind: StoreKind) {
    let app = spawn_chat_app(kind).await;
    let (ana, ben, room) = two_members(&app).await;
    let mut a = WsClient::join(&ana, vec![]).await;
    synced(&mut a, room).await;
    let mut b = WsClient::join(&ben, vec![]).await;
    synced(&mut b, room).await;
    for i in 1..=5 {
        a.send(&send(room, &format!("warm{i}"), &format!("before {i}")))
            .await;
    }
    for i in 1..=5 {
        assert_eq!(next_message(&mut b).await.0, i);
    }
    b.close().await;

    // Ben is away while Ana sends 50 messages.
    for i in 1..=50 {
        a.send(&send(room, &format!("gone{i}"), &format!("missed {i}")))
            .await;
    }
    a.recv_until(|m| matches!(m, ServerMsg::Ack { seq: 55, .. }).then_some(()))
        .await;

    let mut b = WsClient::join(
        &ben,
        vec![RoomCursor {
            room,
            last_seq: 5,
            // Nothing was edited: each message took the next revision as it was sent.
            rev: 5,
        }],
    )
    .await;
    let mut got = Vec::new();
    loop {
        match b.recv().await.expect("open") {
            ServerMsg::Message { message } => got.push((message.seq, message.body)),
            ServerMsg::Synced {
                room: r,
                last_seq,
                rev,
            } if r == room => {
                assert_eq!((last_seq, rev), (55, 55));
                break;
            }
            _ => {}
        }
    }
    let expected: Vec<(u64, String)> = (1..=50).map(|i| (5 + i, format!("missed {i}"))).collect();
    assert_eq!(
        got, expected,
        "exactly the 50 missed messages, in order, once"
    );
    // And live delivery continues after the catch-up, without repeats.
    a.send(&send(room, "after", "live again")).await;
    assert_eq!(next_message(&mut b).await, (56, "live again".to_owned()));
    app.stop().await.unwrap();
}

async fn non_members_can_neither_read_nor_post(kind: StoreKind) {
    let app = spawn_chat_app(kind).await;
    let (ana, _ben, room) = two_members(&app).await;
    let mut a = WsClient::join(&ana, vec![]).await;
    synced(&mut a, room).await;
    a.send(&send(room, "secret", "private words")).await;
    next_message(&mut a).await;

    let mut eve = Browser::new(&app);
    eve.register("eve", GOOD_PASSWORD).await;
    // Over HTTP: the room does not exist as far as Eve can tell.
    for path in ["history", "members"] {
        let answer = eve.get(&format!("/api/rooms/{path}?room={room}")).await;
        assert_eq!(answer.status, 404, "{path}: {answer:?}");
    }
    let join = eve
        .post("/api/rooms/join", &[("room", &room.to_string())])
        .await;
    assert_eq!(join.status, 404);
    // Over the websocket: a cursor for the room replays nothing, and posting is refused.
    let mut e = WsClient::join(
        &eve,
        vec![RoomCursor {
            room,
            last_seq: 0,
            rev: 0,
        }],
    )
    .await;
    e.send(&send(room, "intrude", "hello?")).await;
    let error = e
        .recv_until(|m| match m {
            ServerMsg::Message { .. } => panic!("a non-member received a message"),
            ServerMsg::Error { code, nonce, .. } => Some((*code, nonce.clone())),
            _ => None,
        })
        .await;
    assert_eq!(error, (ErrorCode::Forbidden, Some("intrude".to_owned())));
    assert!(
        !a.sees_within(Duration::from_millis(300), |m| matches!(
            m,
            ServerMsg::Message { .. }
        ))
        .await
    );
    app.stop().await.unwrap();
}

async fn foreign_origins_and_guests_cannot_upgrade(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut ana = Browser::new(&app);
    ana.register("ana", GOOD_PASSWORD).await;
    ana.origin = "https://evil.example".into();
    assert_eq!(WsClient::connect(&ana).await.err(), Some(403));
    let guest = Browser::new(&app);
    assert_eq!(WsClient::connect(&guest).await.err(), Some(401));
    ana.origin = ana.base.clone();
    assert!(WsClient::connect(&ana).await.is_ok());
    app.stop().await.unwrap();
}

async fn the_send_rate_limit_answers_with_an_error_frame(kind: StoreKind) {
    let app = spawn_app_with(kind, &[("MESSAGES_PER_10S", "5".into())]).await;
    let (ana, _ben, room) = two_members(&app).await;
    let mut a = WsClient::join(&ana, vec![]).await;
    synced(&mut a, room).await;
    // Five at once are fine; the budget refills by one every two seconds, so a burst of 30 runs out
    // however slowly this machine sends (unless 30 sends took a minute).
    const BURST: usize = 30;
    for i in 0..BURST {
        a.send(&send(room, &format!("r{i}"), "quick")).await;
    }
    let mut acked = Vec::new();
    let mut limited = Vec::new();
    while acked.len() + limited.len() < BURST {
        match a.recv().await.unwrap() {
            ServerMsg::Ack { nonce, .. } => acked.push(nonce),
            ServerMsg::Error {
                code: ErrorCode::RateLimited,
                nonce,
                retry_after_ms,
                ..
            } => limited.push((nonce.expect("the refusal names its send"), retry_after_ms)),
            _ => {}
        }
    }
    let first: Vec<String> = (0..5).map(|i| format!("r{i}")).collect();
    assert_eq!(acked[..5], first[..], "the first five fit the budget");
    assert!(!limited.is_empty(), "a burst beyond the budget is refused");
    for (nonce, retry) in &limited {
        assert!(!acked.contains(nonce), "{nonce} was refused, not stored");
        assert!(retry.unwrap() >= 1000, "the refusal says when to retry");
    }
    app.stop().await.unwrap();
}

async fn oversized_and_malformed_frames_are_refused_and_the_connection_survives(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let (ana, _ben, room) = two_members(&app).await;
    let mut a = WsClient::join(&ana, vec![]).await;
    synced(&mut a, room).await;

    a.send(&send(room, "big", &"x".repeat(4001))).await;
    let error = a
        .recv_until(|m| match m {
            ServerMsg::Error {
                code,
                nonce,
                message,
                ..
            } => Some((*code, nonce.clone(), message.clone())),
            _ => None,
        })
        .await;
    assert_eq!(
        (error.0, error.1.as_deref()),
        (ErrorCode::Invalid, Some("big"))
    );
    assert!(error.2.contains("4000"), "{}", error.2);

    let mut junk = vec![0u8];
    junk.extend(br#"{"type":"send","room":{"$ne":null}}"#);
    a.send_raw(junk).await;
    a.send_raw(vec![0u8; 1]).await;
    let mut errors = 0;
    while errors < 2 {
        if let ServerMsg::Error {
            code: ErrorCode::Invalid,
            ..
        } = a.recv().await.unwrap()
        {
            errors += 1;
        }
    }
    // Still usable.
    a.send(&send(room, "fine", "a normal message")).await;
    a.recv_until(|m| matches!(m, ServerMsg::Ack { seq: 1, .. }).then_some(()))
        .await;
    app.stop().await.unwrap();
}

/// Before: a 200 KB frame dropped the socket with 1006 and no word why.
#[tokio::test]
async fn a_frame_over_the_limit_closes_with_a_reason_and_the_policy_code() {
    use tokio_tungstenite::tungstenite::{protocol::frame::coding::CloseCode, Message};
    let app = spawn_app(StoreKind::Embedded).await;
    let (ana, _ben, room) = two_members(&app).await;
    let mut a = WsClient::join(&ana, vec![]).await;
    synced(&mut a, room).await;
    let mut huge = vec![0u8];
    huge.extend(serde_json::to_vec(&send(room, "huge", &"x".repeat(200 * 1024))).unwrap());
    a.send_raw(huge).await;
    let closing = a
        .recv_until(|m| match m {
            ServerMsg::Closing { reason } => Some(*reason),
            _ => None,
        })
        .await;
    assert_eq!(closing, CloseReason::FrameTooLarge);
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(30), a.socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| f.code),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no close frame, got {other:?}"),
        }
    };
    assert_eq!(code, Some(CloseCode::Policy));
    app.stop().await.unwrap();
}

async fn typing_and_presence_arrive_and_expire(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let (ana, ben, room) = two_members(&app).await;
    let id_of = |mut who: Browser| async move {
        let id: app::model::UserId = who.me().await.body["id"].as_str().unwrap().parse().unwrap();
        (who, id)
    };
    let (ana, ana_id) = id_of(ana).await;
    let (ben, ben_id) = id_of(ben).await;
    let mut a = WsClient::join(&ana, vec![]).await;
    synced(&mut a, room).await;

    // Ana's client shows the room's members: it watches them (a stranger is left out) and hears
    // their presence now, then their changes.
    let stranger = app::model::UserId::new();
    a.send(&ClientMsg::Watch {
        room,
        users: vec![ben_id, ana_id, stranger],
    })
    .await;
    let now = a
        .recv_until(|m| match m {
            ServerMsg::Presence { changes } => Some(changes.clone()),
            _ => None,
        })
        .await;
    let now: Vec<(app::model::UserId, Presence)> =
        now.iter().map(|c| (c.user, c.presence)).collect();
    assert_eq!(
        now,
        [(ben_id, Presence::Offline), (ana_id, Presence::Online)]
    );

    // Watching is for rooms one is in, and for a bounded number of people.
    a.send(&ClientMsg::Watch {
        room: RoomId::new(),
        users: vec![ben_id],
    })
    .await;
    let refused = a.next_error().await;
    assert_eq!(refused, ErrorCode::Forbidden);
    a.send(&ClientMsg::Watch {
        room,
        users: vec![ben_id; app::protocol::MAX_WATCH + 1],
    })
    .await;
    let refused = a.next_error().await;
    assert_eq!(refused, ErrorCode::Invalid);
    // (The refused watches left the first one in place.)

    let mut b = WsClient::join(&ben, vec![]).await;
    synced(&mut b, room).await;
    assert!(
        a.sees_within(Duration::from_secs(10), |m| m.presence_of(ben_id)
            == Some(Presence::Online))
            .await,
        "Ana hears Ben come online"
    );

    b.send(&ClientMsg::Typing { room, active: true }).await;
    let typing = a
        .recv_until(|m| match m {
            ServerMsg::Typing {
                user, name, active, ..
            } => Some((*user, name.clone(), *active)),
            _ => None,
        })
        .await;
    assert_eq!(typing, (ben_id, "ben".to_owned(), true));
    assert!(
        !b.sees_within(Duration::from_millis(300), |m| matches!(
            m,
            ServerMsg::Typing { .. }
        ))
        .await,
        "nobody sees their own typing"
    );

    // Ben watches nobody: Ana going away reaches Ana's watchers only. (Her change is made before
    // Ben's ping is answered, and nothing waits for a window: nobody watches her.)
    a.send(&ClientMsg::Away { away: true }).await;
    a.send(&ClientMsg::Ping).await;
    a.recv_until(|m| matches!(m, ServerMsg::Pong).then_some(()))
        .await;
    b.send(&ClientMsg::Ping).await;
    let heard_of_ana = b
        .recv_until(|m| match m {
            ServerMsg::Pong => Some(false),
            m if m.presence_of(ana_id).is_some() => Some(true),
            _ => None,
        })
        .await;
    assert!(!heard_of_ana, "presence reaches only those who watch");
    a.send(&ClientMsg::Away { away: false }).await;

    // Away, back, and gone: typing stops and presence goes offline when the connection ends.
    b.send(&ClientMsg::Away { away: true }).await;
    assert!(
        a.sees_within(Duration::from_secs(5), |m| m.presence_of(ben_id)
            == Some(Presence::Away))
            .await
    );
    b.close().await;
    let mut stopped = false;
    let mut offline = false;
    while !(stopped && offline) {
        match a.recv().await.unwrap() {
            ServerMsg::Typing {
                user,
                active: false,
                ..
            } if user == ben_id => stopped = true,
            m @ ServerMsg::Presence { .. } => {
                offline |= m.presence_of(ben_id) == Some(Presence::Offline)
            }
            _ => {}
        }
    }
    app.stop().await.unwrap();
}

async fn signing_out_elsewhere_closes_the_socket_at_once(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let (_ana, ben, room) = two_members(&app).await;
    let mut b = WsClient::join(&ben, vec![]).await;
    synced(&mut b, room).await;
    let mut laptop = Browser::new(&app);
    laptop.login("ben", GOOD_PASSWORD).await;
    let revoked = laptop.post("/api/auth/sessions/revoke-others", &[]).await;
    assert_eq!(revoked.body, serde_json::json!(1));
    // The notice was queued before the revocation was answered.
    let closing = b
        .recv_until(|m| match m {
            ServerMsg::Closing { reason } => Some(*reason),
            _ => None,
        })
        .await;
    assert_eq!(closing, CloseReason::SignedOut);
    // Then the socket ends, with nothing after the closing notice.
    loop {
        match b.recv_within(Duration::from_secs(2)).await {
            Ok(None) => break,
            Ok(Some(ServerMsg::Closing { .. })) => panic!("a second closing notice"),
            Ok(Some(ServerMsg::Message { .. })) => panic!("a message after closing"),
            Ok(Some(_)) => {}
            Err(()) => panic!("the socket stays open after closing"),
        }
    }
    app.stop().await.unwrap();
}

async fn a_flood_of_5000_sends_is_acked_exactly_once_each(kind: StoreKind) {
    use futures::{SinkExt, StreamExt};
    let app = spawn_chat_app(kind).await;
    let (ana, _ben, room) = two_members(&app).await;
    let mut a = WsClient::join(&ana, vec![]).await;
    synced(&mut a, room).await;
    const N: usize = 5000;
    let (mut write, mut read) = a.socket.split();
    // A reader that keeps reading, as a browser does, and reports every ack.
    let (acks_tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = read.next().await {
            match decode(message) {
                Some(ServerMsg::Ack { nonce, seq, .. }) => {
                    let _ = acks_tx.send((nonce, seq));
                }
                Some(ServerMsg::Closing { reason }) => {
                    panic!("the server closed the flood: {reason:?}")
                }
                _ => {}
            }
        }
    });
    let mut acked: HashMap<String, u64> = HashMap::new();
    // Like the real client: send everything at once, then re-send what is still unacked after a pause.
    for round in 1..=5 {
        for i in 0..N {
            let nonce = format!("f{i}");
            if !acked.contains_key(&nonce) {
                write
                    .send(frame(&send(room, &nonce, &format!("flood {i}"))))
                    .await
                    .unwrap();
            }
        }
        while let Ok(Some((nonce, seq))) =
            tokio::time::timeout(Duration::from_secs(3), acks.recv()).await
        {
            if let Some(previous) = acked.insert(nonce, seq) {
                assert_eq!(previous, seq, "a re-sent nonce gets its original sequence");
            }
            if acked.len() == N {
                break;
            }
        }
        if acked.len() == N {
            break;
        }
        assert!(
            round < 5,
            "still {} unacked after 5 rounds",
            N - acked.len()
        );
    }
    let mut seqs: Vec<u64> = acked.values().copied().collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=N as u64).collect::<Vec<_>>(),
        "one message per nonce, gap-free"
    );
    reader.abort();
    app.stop().await.unwrap();
}

async fn a_client_that_stops_reading_is_closed_and_nobody_else_waits(kind: StoreKind) {
    use futures::{SinkExt, StreamExt};
    let app = spawn_app_with(
        kind,
        &[
            ("MESSAGES_PER_10S", "1000000".into()),
            ("WS_QUEUE_FRAMES", "64".into()),
            // On a slow store the backlog can take longer to build than the silence limit; this test
            // is about the backlog.
            ("WS_SILENCE_SECS", "3600".into()),
        ],
    )
    .await;
    let (ana, ben, room) = two_members(&app).await;
    let mut cai = Browser::new(&app);
    cai.register("cai", GOOD_PASSWORD).await;
    let mut owner = Browser::new(&app);
    owner.cookies = ana.cookies.clone();
    let invited = owner
        .post(
            "/api/rooms/invite",
            &[("room", &room.to_string()), ("username", "cai")],
        )
        .await;
    assert_eq!(invited.status, 200);
    let accepted = cai
        .post(
            "/api/rooms/invitations/accept",
            &[("room", &room.to_string())],
        )
        .await;
    assert_eq!(accepted.status, 200, "{accepted:?}");

    let mut stalled = WsClient::join(&cai, vec![]).await;
    synced(&mut stalled, room).await;
    let mut b = WsClient::join(&ben, vec![]).await;
    synced(&mut b, room).await;
    let mut a = WsClient::join(&ana, vec![]).await;
    synced(&mut a, room).await;

    // Between the hub and a client there are: the connection's queue (64 here), its outgoing queue (64),
    // the transport's write buffer (1 MiB) and the kernel's socket buffers (a few MB on loopback).
    // 3,000 messages of 4 kB overflow all of that for Cai.
    const N: u64 = 3000;
    let body = "z".repeat(4000);
    let (mut write, mut read) = a.socket.split();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = read.next().await {} });
    // Cai reads nothing but is not silent (that would end the connection for another reason).
    let (mut cai_write, mut cai_read) = stalled.socket.split();
    let cai_pings = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            if cai_write.send(frame(&ClientMsg::Ping)).await.is_err() {
                break;
            }
        }
    });
    // Ben reads as a browser does, while the messages are sent, and gets every one in order; Cai
    // reads nothing.
    let ben_reads = tokio::spawn(async move {
        // On a busy machine this takes longer than the server waits for a silent client: ping.
        let mut pinged = std::time::Instant::now();
        for seq in 1..=N {
            if pinged.elapsed() > Duration::from_secs(10) {
                b.send(&ClientMsg::Ping).await;
                pinged = std::time::Instant::now();
            }
            let got = b
                .recv_until(|m| match m {
                    ServerMsg::Message { message } => Some(message.seq),
                    _ => None,
                })
                .await;
            assert_eq!(got, seq);
        }
    });
    for i in 0..N {
        write
            .send(frame(&send(room, &format!("s{i}"), &body)))
            .await
            .unwrap();
    }
    ben_reads
        .await
        .expect("Ben received every message in order");
    // When Cai finally reads: part of the backlog, then the reason, then the end.
    cai_pings.abort();
    let mut delivered = 0;
    let reason = loop {
        let next = tokio::time::timeout(Duration::from_secs(10), cai_read.next()).await;
        match next {
            Ok(Some(Ok(frame))) => match decode(frame) {
                Some(ServerMsg::Message { .. }) => delivered += 1,
                Some(ServerMsg::Closing { reason }) => break reason,
                _ => {}
            },
            other => panic!("expected a closing notice, got {other:?}"),
        }
    };
    assert_eq!(reason, CloseReason::TooSlow);
    assert!(
        delivered < N,
        "the backlog was cut, not buffered without bound"
    );
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(frame)) = cai_read.next().await {
            assert!(decode(frame).is_none(), "nothing after the closing notice");
        }
    })
    .await;
    assert!(end.is_ok(), "the socket ends after the closing notice");
    drain.abort();
    app.stop().await.unwrap();
}

/// Every item of the frames up to `room`'s `Synced`, with the tag of each frame read.
async fn items_until_synced(ws: &mut WsClient, room: RoomId) -> (Vec<ServerMsg>, Vec<u8>) {
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    let (mut got, mut tags) = (Vec::new(), Vec::new());
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), ws.socket.next())
            .await
            .expect("a frame within 30 s");
        let Some(Ok(WsMessage::Binary(bytes))) = frame else {
            continue;
        };
        tags.push(bytes[0]);
        for json in app::protocol::items(&bytes).expect("a readable frame") {
            let msg: ServerMsg = app::protocol::decode_json(json).expect("a server message");
            let done = matches!(&msg, ServerMsg::Synced { room: r, .. } if *r == room);
            got.push(msg);
            if done {
                return (got, tags);
            }
        }
    }
}

async fn batch_frames_go_only_to_clients_that_ask_and_carry_every_item_once(kind: StoreKind) {
    let app = spawn_chat_app(kind).await;
    let (ana, ben, room) = two_members(&app).await;
    let mut a = WsClient::join(&ana, vec![]).await;
    synced(&mut a, room).await;
    const N: u64 = 300;
    for i in 1..=N {
        a.send(&send(room, &format!("b{i}"), &format!("batched {i}")))
            .await;
    }
    a.recv_until(|m| matches!(m, ServerMsg::Ack { seq, .. } if *seq == N).then_some(()))
        .await;

    // Ben catches up on all of them from the start, once asking for batches and once not.
    let from_start = vec![RoomCursor {
        room,
        last_seq: 0,
        rev: 0,
    }];
    for batches in [true, false] {
        let mut b = WsClient::connect(&ben).await.expect("upgrade accepted");
        b.send(&ClientMsg::Hello {
            cursors: from_start.clone(),
            batches,
        })
        .await;
        let (got, tags) = items_until_synced(&mut b, room).await;
        assert!(matches!(got[0], ServerMsg::Welcome { .. }), "{:?}", got[0]);
        let seqs: Vec<u64> = got
            .iter()
            .filter_map(|m| match m {
                ServerMsg::Message { message } if message.room == room => Some(message.seq),
                _ => None,
            })
            .collect();
        assert_eq!(
            seqs,
            (1..=N).collect::<Vec<_>>(),
            "every message once, in order"
        );
        let batch_frames = tags
            .iter()
            .filter(|t| **t == app::protocol::BATCH_TAG)
            .count();
        assert!(
            tags.iter()
                .all(|t| *t == app::protocol::ITEM_TAG
                    || (batches && *t == app::protocol::BATCH_TAG)),
            "batch frames only when asked: {tags:?}"
        );
        eprintln!(
            "batches {batches}: {} items in {} frames ({batch_frames} batch frames)",
            got.len(),
            tags.len()
        );
    }
    app.stop().await.unwrap();
}
