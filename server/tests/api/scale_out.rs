//! Several server processes on one MongoDB: events, typing and presence cross instances; concurrent
//! writers on two instances get gap-free sequences; killing an instance loses no acknowledged message;
//! a broken change stream resumes without losing events.

use crate::helpers::*;
use app::model::RoomId;
use app::protocol::{ClientMsg, CloseReason, Presence, RoomCursor, ServerMsg};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Two instances on one fresh database.
async fn two_instances(label: &str) -> (ServerProcess, ServerProcess) {
    let uri = mongodb_uri();
    let database = fresh_database(label);
    let a = ServerProcess::start(&uri, &database).await;
    let b = ServerProcess::start(&uri, &database).await;
    (a, b)
}

async fn signed_up(process: &ServerProcess, username: &str) -> Browser {
    let mut browser = Browser::at(process);
    let answer = browser.register(username, GOOD_PASSWORD).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    browser
}

/// Reads messages of `room` until `count` arrived; fails on a duplicate or out-of-order one.
async fn read_in_order(ws: &mut WsClient, room: RoomId, after: u64, count: u64) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut last = after;
    while last < after + count {
        let (seq, body) = ws
            .recv_until(|m| match m {
                ServerMsg::Message { message } if message.room == room => {
                    Some((message.seq, message.body.clone()))
                }
                _ => None,
            })
            .await;
        assert_eq!(seq, last + 1, "in order, each once");
        last = seq;
        bodies.push(body);
    }
    bodies
}

#[tokio::test]
async fn two_instances_share_messages_typing_and_presence() {
    let (a, b) = two_instances("cross").await;
    let mut ana = signed_up(&a, "ana").await;
    let mut ben = signed_up(&b, "ben").await;
    let room = public_room(&mut ana, &mut [&mut ben]).await;

    let mut on_a = WsClient::join(&ana, vec![]).await;
    let mut on_b = WsClient::join(&ben, vec![]).await;
    synced(&mut on_a, room).await;
    synced(&mut on_b, room).await;

    // Presence crosses: Ben's instance knows Ana (connected to A) is online.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let members = ben.get(&format!("/api/rooms/members?room={room}")).await;
        let ana_there = members
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["username"] == "ana" && m["presence"] == "online");
        if ana_there {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "Ana online on B");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Messages both ways, acked, in order, once.
    for i in 1..=20u64 {
        let (ws, nonce) = if i % 2 == 1 {
            (&mut on_a, format!("a{i}"))
        } else {
            (&mut on_b, format!("b{i}"))
        };
        ws.send(&send(room, &nonce, &format!("message {i}"))).await;
        let seq = ws
            .recv_until(|m| match m {
                ServerMsg::Ack { nonce: n, seq, .. } if *n == nonce => Some(*seq),
                _ => None,
            })
            .await;
        assert_eq!(seq, i);
    }
    let expected: Vec<String> = (1..=20).map(|i| format!("message {i}")).collect();
    assert_eq!(read_in_order(&mut on_a, room, 0, 20).await, expected);
    assert_eq!(read_in_order(&mut on_b, room, 0, 20).await, expected);

    // Typing crosses, and so does going offline.
    on_a.send(&ClientMsg::Typing { room, active: true }).await;
    let typist = on_b
        .recv_until(|m| match m {
            ServerMsg::Typing {
                room: r,
                user,
                active: true,
                ..
            } if *r == room => Some(*user),
            _ => None,
        })
        .await;
    let ana_id = typist;
    // Ben's client shows her: it watches her, and hears her presence now (kept by B from A's
    // announcements), then her changes from A.
    on_b.send(&ClientMsg::Watch {
        room,
        users: vec![ana_id],
    })
    .await;
    assert_eq!(
        on_b.recv_until(|m| m.presence_of(ana_id)).await,
        Presence::Online
    );
    on_a.close().await;
    // What counts is that `offline` follows and stays the final word.
    loop {
        let presence = on_b.recv_until(|m| m.presence_of(ana_id)).await;
        if presence == Presence::Offline {
            break;
        }
    }
    assert!(
        !on_b
            .sees_within(Duration::from_secs(2), |m| m
                .presence_of(ana_id)
                .is_some_and(|p| p != Presence::Offline))
            .await,
        "no other presence for Ana after her offline (a coalesced frame may repeat it)"
    );
    let members = ben.get(&format!("/api/rooms/members?room={room}")).await;
    let ana = members
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == "ana")
        .expect("Ana is a member");
    assert_eq!(ana["presence"], "offline", "B shows Ana offline");
}

#[tokio::test]
async fn concurrent_senders_on_two_instances_get_gap_free_sequences() {
    let (a, b) = two_instances("concurrent").await;
    let mut owner = signed_up(&a, "owner").await;
    let mut senders = Vec::new();
    for i in 0..8 {
        let process = if i < 4 { &a } else { &b };
        senders.push(signed_up(process, &format!("sender{i}")).await);
    }
    let room = {
        let mut refs: Vec<&mut Browser> = senders.iter_mut().collect();
        public_room(&mut owner, &mut refs).await
    };
    let mut reader_a = WsClient::join(&owner, vec![]).await;
    let mut reader_b = WsClient::join(&owner.moved_to(&b), vec![]).await;
    synced(&mut reader_a, room).await;
    synced(&mut reader_b, room).await;

    const EACH: usize = 25;
    let mut tasks = Vec::new();
    for (i, sender) in senders.iter().enumerate() {
        let mut ws = WsClient::join(sender, vec![]).await;
        synced(&mut ws, room).await;
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..EACH {
                let nonce = format!("s{i}-{n}");
                ws.send(&send(room, &nonce, &nonce)).await;
                let seq = ws
                    .recv_until(|m| match m {
                        ServerMsg::Ack {
                            nonce: got, seq, ..
                        } if *got == nonce => Some(*seq),
                        _ => None,
                    })
                    .await;
                acked.push(seq);
            }
            acked
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    seqs.sort_unstable();
    let total = (8 * EACH) as u64;
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "gap-free, each once");
    // Readers on both instances see all of them, in order, once.
    let on_a = read_in_order(&mut reader_a, room, 0, total).await;
    let on_b = read_in_order(&mut reader_b, room, 0, total).await;
    assert_eq!(on_a, on_b);
    assert_eq!(on_a.iter().collect::<HashSet<_>>().len(), total as usize);
}

/// The sequence acknowledged for `nonce`; `None` when the connection ends (or stays silent) first.
async fn ack_of(ws: &mut WsClient, nonce: &str) -> Option<u64> {
    loop {
        match ws.recv_within(Duration::from_secs(5)).await {
            Ok(Some(ServerMsg::Ack {
                nonce: got, seq, ..
            })) if got == nonce => return Some(seq),
            Ok(Some(_)) => continue,
            Ok(None) | Err(()) => return None,
        }
    }
}

#[tokio::test]
async fn killing_an_instance_loses_no_acknowledged_message() {
    let (mut a, b) = two_instances("kill").await;
    let mut owner = signed_up(&b, "owner").await;
    let mut writers = Vec::new();
    for i in 0..3 {
        writers.push(signed_up(&a, &format!("writer{i}")).await);
    }
    let room = {
        let mut refs: Vec<&mut Browser> = writers.iter_mut().collect();
        public_room(&mut owner, &mut refs).await
    };
    const EACH: usize = 40;

    // Writers on A send as fast as acks come back, until A dies under them: it is killed once a few
    // sends are acknowledged and many are still to come.
    const KILL_AFTER: usize = 15;
    let acks_so_far = Arc::new(AtomicUsize::new(0));
    let kill_now = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for (i, writer) in writers.iter().enumerate() {
        let mut ws = WsClient::join(writer, vec![]).await;
        synced(&mut ws, room).await;
        let (acks_so_far, kill_now) = (acks_so_far.clone(), kill_now.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked: HashMap<String, u64> = HashMap::new();
            for n in 0..EACH {
                let nonce = format!("w{i}-{n}");
                ws.send(&send(room, &nonce, &nonce)).await;
                match ack_of(&mut ws, &nonce).await {
                    Some(seq) => {
                        acked.insert(nonce, seq);
                        if acks_so_far.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                            kill_now.notify_one();
                        }
                    }
                    None => break, // the instance died under us
                }
            }
            acked
        }));
    }
    kill_now.notified().await;
    a.kill().await;
    let mut acked_before: HashMap<String, u64> = HashMap::new();
    for task in tasks {
        acked_before.extend(task.await.unwrap());
    }
    assert!(
        (KILL_AFTER..3 * EACH).contains(&acked_before.len()),
        "killed mid-send: {} of {} acknowledged",
        acked_before.len(),
        3 * EACH
    );

    // Everyone reconnects to B and re-sends every nonce (as the browser re-sends unacked ones): the
    // already stored ones are answered with their original sequence, the rest are stored once.
    let mut final_acks: HashMap<String, u64> = HashMap::new();
    for (i, writer) in writers.iter().enumerate() {
        let mut ws = WsClient::join(&writer.moved_to(&b), vec![]).await;
        synced(&mut ws, room).await;
        for n in 0..EACH {
            let nonce = format!("w{i}-{n}");
            ws.send(&send(room, &nonce, &nonce)).await;
            let seq = ws
                .recv_until(|m| match m {
                    ServerMsg::Ack {
                        nonce: got, seq, ..
                    } if *got == nonce => Some(*seq),
                    _ => None,
                })
                .await;
            final_acks.insert(nonce, seq);
        }
    }
    for (nonce, seq) in &acked_before {
        assert_eq!(
            final_acks[nonce], *seq,
            "{nonce} kept its acknowledged sequence"
        );
    }
    let total = (3 * EACH) as u64;
    let mut seqs: Vec<u64> = final_acks.values().copied().collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "one message per nonce, gap-free"
    );
    // A reader resuming from zero on B gets exactly those messages, in order, once.
    let mut reader = WsClient::join(
        &owner,
        vec![RoomCursor {
            room,
            last_seq: 0,
            rev: 0,
        }],
    )
    .await;
    let bodies = read_in_order(&mut reader, room, 0, total).await;
    assert_eq!(bodies.iter().collect::<HashSet<_>>().len(), total as usize);
    assert!(
        !acked_before.is_empty(),
        "some messages were acked before the kill"
    );
}

#[tokio::test]
async fn a_broken_change_stream_resumes_without_losing_events() {
    let uri = mongodb_uri();
    let database = fresh_database("resume");
    let proxy = CuttableProxy::start(mongodb_host_port(&uri)).await;
    let a = ServerProcess::start(&uri, &database).await;
    let b = ServerProcess::start(
        &mongodb_uri_via(&uri, &format!("127.0.0.1:{}", proxy.port)),
        &database,
    )
    .await;
    let mut ana = signed_up(&a, "ana").await;
    let mut ben = signed_up(&b, "ben").await;
    let room = public_room(&mut ana, &mut [&mut ben]).await;
    let mut on_a = WsClient::join(&ana, vec![]).await;
    let mut on_b = WsClient::join(&ben, vec![]).await;
    synced(&mut on_a, room).await;
    synced(&mut on_b, room).await;

    // B loses MongoDB: its change stream breaks and it says it is not ready.
    proxy.cut();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while b.readiness().await != (503, "change stream down".to_owned()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B reports its stream down"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Meanwhile Ana writes ten messages and edits the first.
    let mut first = None;
    for i in 1..=10 {
        let nonce = format!("m{i}");
        on_a.send(&send(room, &nonce, &format!("during the outage {i}")))
            .await;
        let id = on_a
            .recv_until(|m| match m {
                ServerMsg::Ack { nonce: got, id, .. } if *got == nonce => Some(*id),
                _ => None,
            })
            .await;
        first.get_or_insert(id);
    }
    on_a.send(&ClientMsg::Edit {
        id: first.unwrap(),
        body: "edited during the outage".into(),
    })
    .await;
    on_a.recv_until(|m| matches!(m, ServerMsg::Updated { .. }).then_some(()))
        .await;

    // B gets its database back, resumes the stream where it broke, and is ready again.
    proxy.restore();
    b.wait_ready(Duration::from_secs(30)).await;
    let bodies = read_in_order(&mut on_b, room, 0, 10).await;
    let expected: Vec<String> = (1..=10).map(|i| format!("during the outage {i}")).collect();
    assert_eq!(bodies, expected);
    // The edit is no message: only the resumed stream can bring it.
    let edited = on_b
        .recv_until(|m| match m {
            ServerMsg::Updated { message } => Some(message.body.clone()),
            _ => None,
        })
        .await;
    assert_eq!(edited, "edited during the outage");
}

#[tokio::test]
async fn sigterm_sends_clients_to_another_instance_with_nothing_lost() {
    let (mut a, b) = two_instances("drain").await;
    let mut ana = signed_up(&b, "ana").await;
    let mut ben = signed_up(&a, "ben").await;
    let room = public_room(&mut ana, &mut [&mut ben]).await;
    let mut writer = WsClient::join(&ana, vec![]).await;
    let mut reader = WsClient::join(&ben, vec![]).await;
    synced(&mut writer, room).await;
    synced(&mut reader, room).await;
    writer
        .send(&send(room, "before", "before the restart"))
        .await;
    assert_eq!(
        read_in_order(&mut reader, room, 0, 1).await,
        ["before the restart"]
    );

    // A is told to stop: Ben's socket hears why, and A exits cleanly within its grace period.
    let stopping = tokio::spawn(async move {
        let drained = a.terminate(Duration::from_secs(20)).await;
        (a, drained)
    });
    let reason = reader
        .recv_until(|m| match m {
            ServerMsg::Closing { reason } => Some(*reason),
            _ => None,
        })
        .await;
    assert_eq!(reason, CloseReason::ShuttingDown);
    let (_a, drained) = stopping.await.unwrap();
    assert!(drained, "A exited with status 0 after SIGTERM");

    // Meanwhile Ana goes on writing on B; Ben reconnects to B from his cursor and misses nothing.
    for i in 1..=5 {
        writer
            .send(&send(room, &format!("after{i}"), &format!("after {i}")))
            .await;
    }
    let mut reader = WsClient::join(
        &ben.moved_to(&b),
        vec![RoomCursor {
            room,
            last_seq: 1,
            rev: 1,
        }],
    )
    .await;
    let expected: Vec<String> = (1..=5).map(|i| format!("after {i}")).collect();
    assert_eq!(read_in_order(&mut reader, room, 1, 5).await, expected);
}

/// Edits, deletions and reactions made on A while Ben is away reach him once, in order, when he comes
/// back on B (`changes::offline_changes_scenario`).
#[tokio::test]
async fn an_offline_reader_resumes_changes_on_another_instance() {
    let (a, b) = two_instances("changes").await;
    let mut ana = signed_up(&a, "ana").await;
    let mut carl = signed_up(&a, "carl").await;
    let mut ben = signed_up(&a, "ben").await;
    let room = public_room(&mut ana, &mut [&mut ben, &mut carl]).await;
    crate::changes::offline_changes_scenario(&ana, &carl, &ben, &ben.moved_to(&b), room).await;
}

/// Asks `browser` for its account until `done` holds for the answer (status, body); each instance
/// caches sessions and accounts, so a change made on another one shows once its notice arrives.
async fn me_until(
    browser: &mut Browser,
    what: &str,
    done: impl Fn(u16, &serde_json::Value) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let me = browser.me().await;
        if done(me.status, &me.body) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: still {me:?} on the other instance"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_role_change_a_sign_out_and_disabling_reach_the_other_instances_cache() {
    let env = [
        ("MONGODB_URI", mongodb_uri()),
        ("MONGODB_DB", fresh_database("account_cache")),
        ("ADMIN_USERNAME", "root".to_owned()),
        ("ADMIN_PASSWORD", GOOD_PASSWORD.to_owned()),
        // Cached for an hour: only the change notices can make these changes show in time.
        ("ACCOUNT_CACHE_SECS", "3600".to_owned()),
    ];
    let a = ServerProcess::launch(&env, None).await;
    let b = ServerProcess::launch(&env, None).await;
    let mut root = Browser::at(&a);
    assert_eq!(root.login("root", GOOD_PASSWORD).await.status, 200);
    let mut ana = signed_up(&a, "ana").await;
    let mut ben = signed_up(&a, "ben").await;
    let (mut ana_on_b, mut ben_on_b) = (ana.moved_to(&b), ben.moved_to(&b));
    // B has both read (and cached) as they are now.
    assert_eq!(ana_on_b.me().await.body["role"], "user");
    assert_eq!(ben_on_b.me().await.status, 200);
    let id = |b: &serde_json::Value| b["id"].as_str().unwrap().to_owned();
    let (ana_id, ben_id) = (id(&ana.me().await.body), id(&ben.me().await.body));

    let promoted = root
        .post(
            "/api/admin/users/role",
            &[("user", &ana_id), ("role", "admin")],
        )
        .await;
    assert_eq!(promoted.status, 200, "{promoted:?}");
    me_until(&mut ana_on_b, "the promotion", |s, b| {
        s == 200 && b["role"] == "admin"
    })
    .await;
    assert_eq!(ana_on_b.get("/api/admin/stats").await.status, 200);

    assert_eq!(ana.post("/api/auth/logout", &[]).await.status, 200);
    // Signed out: `auth/me` answers as it does for a guest.
    let guest = |s: u16, b: &serde_json::Value| s == 401 || s == 403 || (s == 200 && b.is_null());
    me_until(&mut ana_on_b, "the sign-out", guest).await;

    let disabled = root
        .post(
            "/api/admin/users/disable",
            &[("user", &ben_id), ("disabled", "true")],
        )
        .await;
    assert_eq!(disabled.status, 200, "{disabled:?}");
    me_until(&mut ben_on_b, "disabling", guest).await;
}
