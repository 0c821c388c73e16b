use super::ordering::*;
use super::*;
use crate::chat::messages;
use crate::domain::{DisplayName, MessageBody, Nonce, RoomName, RoomTopic, Username};
use crate::model::{MemberRole, Role, RoomKind, Timestamp, UserId};
use crate::protocol::{MessageView, RoomCursor};
use crate::state::testing;
use crate::store::{MembershipRecord, NewMessage, RoomRecord, SessionRecord};

#[test]
fn messages_are_delivered_once_in_order_and_gaps_are_found() {
    assert_eq!(classify(4, 5), Next::Deliver);
    assert_eq!(classify(4, 4), Next::Duplicate);
    assert_eq!(classify(4, 2), Next::Duplicate);
    assert_eq!(classify(4, 9), Next::Gap { after: 4 });
    assert_eq!(classify(0, 1), Next::Deliver);
}

#[test]
fn held_messages_come_out_in_order_once_the_gap_fills() {
    let mut held = Held::new(Instant::now());
    held.hold(7, "g");
    held.hold(5, "e");
    // Already delivered by the time it is released:
    held.hold(3, "c");
    // Cursor at 4 (4 just arrived): 5 follows, 6 is still missing.
    assert_eq!(held.take_ready(4), vec![(5, "e")]);
    assert_eq!(held.len(), 1);
    // 6 arrives and is delivered: 7 follows.
    assert_eq!(held.take_ready(6), vec![(7, "g")]);
    assert!(held.is_empty());
}

/// A signed-in member of a fresh room, and the room.
async fn member_of_a_room(state: &AppState) -> (Authenticated, RoomId) {
    let user = UserRecord {
        id: UserId::new(),
        username: Username::parse("ana").unwrap(),
        display_name: DisplayName::parse("Ana", &Username::parse("ana").unwrap()).unwrap(),
        password_hash: String::new(),
        role: Role::User,
        disabled: false,
        must_change_password: false,
        created_at: Timestamp::now(),
        last_seen_at: None,
        totp_secret: None,
        totp_pending: None,
        totp_last_step: 0,
        recovery_hashes: Vec::new(),
        avatar: None,
    };
    state.store.create_user(&user).await.unwrap();
    let session = SessionRecord {
        id: SessionId::new(),
        user_id: user.id,
        refresh_hash: "unused".into(),
        created_at: Timestamp::now(),
        last_used_at: Timestamp::now(),
        expires_at: Timestamp::now().plus_millis(3_600_000),
        revoked_at: None,
        grace_claimed: false,
        user_agent: String::new(),
        ip: String::new(),
    };
    state.store.create_session(&session).await.unwrap();
    let room = RoomRecord {
        id: RoomId::new(),
        kind: RoomKind::Public,
        name: RoomName::parse("Lobby").unwrap(),
        topic: RoomTopic::default(),
        created_by: user.id,
        created_at: Timestamp::now(),
        archived: false,
        direct_key: None,
    };
    let owner = MembershipRecord {
        room_id: room.id,
        user_id: user.id,
        role: MemberRole::Owner,
        joined_at: Timestamp::now(),
    };
    state.store.create_room(&room, &[owner]).await.unwrap();
    (Authenticated { user, session }, room.id)
}

/// Stores a message without announcing it, as if its publisher were slow or lost.
async fn store_quietly(state: &AppState, me: &Authenticated, room: RoomId, n: u64) -> MessageView {
    let appended = state
        .store
        .append_message(&NewMessage {
            room_id: room,
            author_id: me.user.id,
            body: MessageBody::parse(&format!("message {n}")).unwrap(),
            nonce: Nonce::parse(&format!("n{n}")).unwrap(),
            created_at: Timestamp::now(),
            mentions: Vec::new(),
            thread: None,
            files: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(appended.message.seq, n);
    messages::message_view(&appended.message, &messages::Author::of(&me.user))
}

fn announce(state: &AppState, message: MessageView) {
    state
        .hub
        .publish_room(message.room, ServerMsg::Message { message });
}

/// A client of a connection served in its own task: what it is sent, decoded item by item.
struct Client {
    frames: futures::channel::mpsc::UnboundedReceiver<Bytes>,
    items: std::collections::VecDeque<ServerMsg>,
    ended: tokio::task::JoinHandle<Option<CloseReason>>,
}

type Input = futures::channel::mpsc::UnboundedSender<Result<ClientMsg, FrameError>>;

/// A connection that said hello with a cursor at 0 and has read its catch-up up to `synced`.
async fn connected(state: &AppState, me: &Authenticated, room: RoomId) -> (Input, Client) {
    connected_reading(state, me, room, true).await
}

/// The same, for a client that reads batch frames or not.
async fn connected_reading(
    state: &AppState,
    me: &Authenticated,
    room: RoomId,
    batches: bool,
) -> (Input, Client) {
    let (input, commands) = futures::channel::mpsc::unbounded();
    let (output, frames) = futures::channel::mpsc::unbounded::<Bytes>();
    let (state, me) = (state.clone(), me.clone());
    let ended = tokio::spawn(async move {
        match serve(state, me, commands, output).await {
            Ok(ended) => ended.reason,
            Err((error, _)) => panic!("the connection could not start: {error}"),
        }
    });
    let mut out = Client {
        frames,
        items: Default::default(),
        ended,
    };
    input
        .unbounded_send(Ok(ClientMsg::Hello {
            cursors: vec![RoomCursor {
                room,
                last_seq: 0,
                rev: 0,
            }],
            batches,
        }))
        .unwrap();
    loop {
        if let ServerMsg::Synced { .. } = next(&mut out).await {
            assert!(out.items.is_empty());
            return (input, out);
        }
    }
}

/// The next frame as it was written: its tag and its items.
async fn next_frame(out: &mut Client) -> (u8, Vec<ServerMsg>) {
    let frame = tokio::time::timeout(Duration::from_secs(30), out.frames.next())
        .await
        .expect("a frame within 30 s")
        .expect("the connection is open");
    let items = crate::protocol::items(&frame)
        .expect("a readable frame")
        .map(|json| crate::protocol::decode_json(json).expect("a server message"))
        .collect();
    (frame[0], items)
}

async fn next(out: &mut Client) -> ServerMsg {
    loop {
        if let Some(item) = out.items.pop_front() {
            return item;
        }
        let frame = tokio::time::timeout(Duration::from_secs(30), out.frames.next())
            .await
            .expect("a frame within 30 s")
            .expect("the connection is open");
        for json in crate::protocol::items(&frame).expect("a readable frame") {
            out.items
                .push_back(crate::protocol::decode_json(json).expect("a server message"));
        }
    }
}

/// The sequence numbers of the next `n` messages the client receives.
async fn next_messages(out: &mut Client, n: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.len() < n {
        if let ServerMsg::Message { message } = next(out).await {
            seqs.push(message.seq);
        }
    }
    seqs
}

#[tokio::test]
async fn a_gap_that_stays_open_is_filled_from_the_store() {
    let (state, _dir) = testing::state().await;
    let (me, room) = member_of_a_room(&state).await;
    let (_input, mut out) = connected(&state, &me, room).await;
    // 1 is stored but never announced; 2 is announced. The client must still get 1 first.
    store_quietly(&state, &me, room, 1).await;
    let second = store_quietly(&state, &me, room, 2).await;
    announce(&state, second);
    assert_eq!(next_messages(&mut out, 2).await, [1, 2]);
}

#[tokio::test]
async fn messages_announced_out_of_order_are_delivered_in_order_once() {
    let (state, _dir) = testing::state().await;
    let (me, room) = member_of_a_room(&state).await;
    let (input, mut out) = connected(&state, &me, room).await;
    let views: Vec<MessageView> = {
        let mut views = Vec::new();
        for n in 1..=4 {
            views.push(store_quietly(&state, &me, room, n).await);
        }
        views
    };
    // Publishers of one commit batch finish in any order, and one announces twice.
    for i in [2, 0, 3, 1, 1] {
        announce(&state, views[i].clone());
    }
    assert_eq!(next_messages(&mut out, 4).await, [1, 2, 3, 4]);
    // Nothing else follows: the next thing the client hears is the answer to its ping.
    input.unbounded_send(Ok(ClientMsg::Ping)).unwrap();
    assert_eq!(next(&mut out).await, ServerMsg::Pong);
}

#[tokio::test]
async fn a_connection_ends_when_its_session_expires_without_any_command() {
    let (state, _dir) = testing::state().await;
    let (mut me, room) = member_of_a_room(&state).await;
    // A session that runs out in a moment (the store's copy is what the connection re-reads).
    me.session.expires_at = Timestamp::now().plus_millis(1_500);
    me.session.id = SessionId::new();
    me.session.refresh_hash = "another".into();
    state.store.create_session(&me.session).await.unwrap();
    let (_input, out) = connected(&state, &me, room).await;
    let reason = tokio::time::timeout(Duration::from_secs(30), out.ended)
        .await
        .expect("closed within 30 s")
        .unwrap();
    assert_eq!(reason, Some(CloseReason::SignedOut));
}

#[tokio::test]
async fn a_burst_is_one_batch_frame_only_for_a_client_that_reads_them() {
    use crate::protocol::{BATCH_TAG, ITEM_TAG};
    let (state, _dir) = testing::state().await;
    let (me, room) = member_of_a_room(&state).await;
    let (_batched_input, mut batched) = connected_reading(&state, &me, room, true).await;
    let (_plain_input, mut plain) = connected_reading(&state, &me, room, false).await;
    // Five events queued before either connection's task runs (this test's runtime has one thread).
    let typing = |n: u32| ServerMsg::Typing {
        room,
        user: UserId::new(),
        name: format!("typist {n}"),
        active: true,
    };
    for n in 0..5 {
        state.hub.publish_room(room, typing(n));
    }
    let (tag, items) = next_frame(&mut batched).await;
    assert_eq!(
        (tag, items.len()),
        (BATCH_TAG, 5),
        "one frame carries the burst"
    );
    for n in 0..5 {
        let (tag, items) = next_frame(&mut plain).await;
        assert_eq!(tag, ITEM_TAG);
        assert!(
            matches!(&items[..], [ServerMsg::Typing { name, .. }] if *name == format!("typist {n}"))
        );
    }
    // A lone event stays an item frame, batches or not.
    state.hub.publish_room(room, typing(5));
    assert_eq!(next_frame(&mut batched).await.0, ITEM_TAG);
}

#[tokio::test]
async fn sends_are_stored_in_order_and_each_is_acked_once_before_its_own_copy() {
    let (state, _dir) = testing::state().await;
    let (me, room) = member_of_a_room(&state).await;
    let (input, mut out) = connected(&state, &me, room).await;
    let count = 60;
    for n in 0..count {
        input
            .unbounded_send(Ok(ClientMsg::Send {
                room,
                nonce: format!("n{n}"),
                body: format!("message {n}"),
                thread: None,
                also_in_room: false,
                files: Vec::new(),
                alts: Vec::new(),
            }))
            .unwrap();
    }
    // A retried nonce (the client did not see the ack) is answered with the same message.
    input
        .unbounded_send(Ok(ClientMsg::Send {
            room,
            nonce: "n0".into(),
            body: "message 0".into(),
            thread: None,
            also_in_room: false,
            files: Vec::new(),
            alts: Vec::new(),
        }))
        .unwrap();
    let mut acked: HashMap<String, Vec<u64>> = HashMap::new();
    let mut delivered = HashSet::new();
    while delivered.len() < count || acked.values().map(Vec::len).sum::<usize>() < count + 1 {
        match next(&mut out).await {
            ServerMsg::Ack { nonce, seq, .. } => acked.entry(nonce).or_default().push(seq),
            ServerMsg::Message { message } => {
                let n: usize = message.body["message ".len()..].parse().unwrap();
                assert_eq!(message.seq, n as u64 + 1, "stored in the order sent");
                assert_eq!(
                    acked.get(&format!("n{n}")).and_then(|s| s.first()),
                    Some(&message.seq),
                    "the ack comes before the sender's own copy"
                );
                assert!(delivered.insert(message.seq), "each message once");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(acked.len(), count);
    assert_eq!(
        acked["n0"][0], acked["n0"][1],
        "the retry is the same message"
    );
    let mut seqs: Vec<u64> = delivered.into_iter().collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=count as u64).collect::<Vec<_>>());
}
