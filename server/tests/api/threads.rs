//! Threads over the real server: replies are checked (same room, not a reply, members only), reach
//! everyone live, move the root's summary, and are part of change-synced resume like any change; the
//! people who started, replied to or were mentioned in a thread follow it, with what they read.

use crate::changes::{app_with_people, resume, user_id, Witness};
use crate::helpers::*;
use app::model::MessageId;
use app::protocol::{ErrorCode, RoomCursor};
use std::collections::HashSet;

on_both_drivers!(
    replies_resume_once_in_order_and_followers_count_unread,
    replies_are_checked,
);

async fn followed(browser: &mut Browser) -> Vec<(MessageId, u64, u64)> {
    let list = browser.get("/api/threads/mine").await;
    assert_eq!(list.status, 200, "{list:?}");
    list.body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let root = t["root"]["id"].as_str().unwrap().parse().unwrap();
            let count = t["root"]["replies"]["count"].as_u64().unwrap_or(0);
            (root, count, t["read"].as_u64().unwrap())
        })
        .collect()
}

async fn replies_resume_once_in_order_and_followers_count_unread(kind: StoreKind) {
    let (_app, [mut ana, mut ben, mut carl, mut dora]) =
        app_with_people(kind, ["ana", "ben", "carl", "dora"]).await;
    let room = public_room(&mut ana, &mut [&mut ben, &mut carl, &mut dora]).await;
    let mut a = Witness::join(&ana, room).await;
    let mut c = Witness::join(&carl, room).await;
    let mut b = Witness::join(&ben, room).await;
    let root = a.say_text(room, "root", "lunch plans?").await;
    let before = b.change_of(root.id).await;
    let cursor = RoomCursor {
        room,
        last_seq: before.seq,
        rev: before.rev,
    };
    b.ws.close().await;

    // While Ben is away: two replies only in the thread (one mentions Dora), one also in the room,
    // an edit of a reply.
    let r1 = c.reply(room, root.id, false, "r1", "pizza").await;
    assert_eq!(r1.seq, 0, "not in the room's timeline");
    assert_eq!(r1.thread.unwrap().root, root.id);
    let r2 = a.reply(room, root.id, false, "r2", "@dora, coming?").await;
    let shared = c
        .reply(room, root.id, true, "r3", "see the thread, all")
        .await;
    assert_eq!(
        shared.seq,
        root.seq + 1,
        "a shared reply takes the next place in the room"
    );
    c.change(r1.id, crate::changes::edit(r1.id, "pizza at noon"))
        .await;
    let next = a.say_text(room, "after", "back to the room").await;
    assert_eq!(
        next.seq,
        shared.seq + 1,
        "replies in the thread leave no gap"
    );

    // Everyone online saw every revision once, in order, the root's summary among them.
    let revs: Vec<u64> = a.seen.iter().map(|m| m.rev).collect();
    assert_eq!(revs, (1..=revs.len() as u64).collect::<Vec<_>>());
    let root_now = a
        .seen
        .iter()
        .rev()
        .find(|m| m.id == root.id)
        .cloned()
        .unwrap();
    let summary = root_now.replies.clone().unwrap();
    assert_eq!(summary.count, 3);
    assert_eq!(
        summary.repliers,
        vec![user_id(&mut ana).await, user_id(&mut carl).await],
        "each replier once, latest last"
    );

    // Ben comes back: every change once, in revision order, in its latest state.
    let mut back = WsClient::join(&ben, vec![cursor]).await;
    let (got, (last_seq, rev)) = resume(&mut back, room).await;
    assert_eq!((last_seq, rev), (next.seq, *revs.last().unwrap()));
    let got_revs: Vec<u64> = got.iter().map(|(_, m)| m.rev).collect();
    assert!(got_revs.windows(2).all(|w| w[0] < w[1]), "{got_revs:?}");
    let ids: Vec<MessageId> = got.iter().map(|(_, m)| m.id).collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "once each"
    );
    let expected: HashSet<MessageId> = [root.id, r1.id, r2.id, shared.id, next.id].into();
    assert_eq!(ids.iter().copied().collect::<HashSet<_>>(), expected);
    for (new, m) in &got {
        if m.id == r1.id {
            assert_eq!(m.body, "pizza at noon", "in its latest state");
        }
        if m.id == root.id {
            assert!(!new, "the root was only updated");
            assert_eq!(m.replies.as_ref().unwrap().count, 3);
        } else {
            assert!(new, "replies and the new message come as messages: {m:?}");
        }
    }

    // The thread page has every reply in order.
    let page = ben
        .get(&format!("/api/threads/show?root={}", root.id))
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    let bodies: Vec<&str> = page.body["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["pizza at noon", "@dora, coming?", "see the thread, all"]
    );
    assert_eq!(page.body["following"], false);

    // Followers: Ana started it and wrote the second reply, so one is unread for her; Carl wrote
    // the last; Dora was mentioned in the second, so it and the third are unread; Ben follows nothing.
    assert_eq!(followed(&mut ana).await, vec![(root.id, 3, 2)]);
    assert_eq!(followed(&mut carl).await, vec![(root.id, 3, 3)]);
    assert_eq!(followed(&mut dora).await, vec![(root.id, 3, 1)]);
    assert!(followed(&mut ben).await.is_empty());
    let read = dora
        .post(
            "/api/threads/read",
            &[("root", &root.id.to_string()), ("read", "3")],
        )
        .await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(followed(&mut dora).await, vec![(root.id, 3, 3)]);
    // Following by hand starts with everything read; leaving the room takes it out of the list.
    let follow = ben
        .post(
            "/api/threads/follow",
            &[("root", &root.id.to_string()), ("on", "true")],
        )
        .await;
    assert_eq!(follow.status, 200, "{follow:?}");
    assert_eq!(followed(&mut ben).await, vec![(root.id, 3, 3)]);
    let left = ben
        .post("/api/rooms/leave", &[("room", &room.to_string())])
        .await;
    assert_eq!(left.status, 200, "{left:?}");
    assert!(followed(&mut ben).await.is_empty());
}

async fn replies_are_checked(kind: StoreKind) {
    let (_app, [mut ana, mut ben, mut eve]) = app_with_people(kind, ["ana", "ben", "eve"]).await;
    let room = public_room(&mut ana, &mut [&mut ben]).await;
    let other = public_room(&mut ben, &mut []).await;
    let mut a = Witness::join(&ana, room).await;
    let root = a.say_text(room, "root", "a root").await;
    let first = a.reply(room, root.id, false, "r1", "a reply").await;

    // Threads do not nest; a root belongs to its room; only members reply.
    let nested = send_reply(room, first.id, false, "n1", "deeper");
    assert_eq!(refused(&mut a.ws, nested).await, ErrorCode::Invalid);
    let mut b = WsClient::join(&ben, vec![]).await;
    let elsewhere = send_reply(other, root.id, false, "n2", "wrong room");
    assert_eq!(refused(&mut b, elsewhere).await, ErrorCode::NotFound);
    let mut outsider = WsClient::join(&eve, vec![]).await;
    let stranger = send_reply(room, root.id, false, "n3", "not a member");
    assert_eq!(refused(&mut outsider, stranger).await, ErrorCode::Forbidden);
    // A deleted root takes no new replies.
    a.change(root.id, app::protocol::ClientMsg::Delete { id: root.id })
        .await;
    let late = send_reply(room, root.id, false, "n4", "too late");
    assert_eq!(refused(&mut a.ws, late).await, ErrorCode::Invalid);
    // Nothing refused was stored.
    let page = ana
        .get(&format!("/api/threads/show?root={}", root.id))
        .await;
    assert_eq!(page.body["replies"].as_array().unwrap().len(), 1);
    // Eve may read the public room without joining it: its threads too.
    let public = eve
        .get(&format!("/api/threads/show?root={}", root.id))
        .await;
    assert_eq!(public.status, 200, "{public:?}");
}

/// Sends a command that must be refused; the error's code.
async fn refused(ws: &mut WsClient, command: app::protocol::ClientMsg) -> ErrorCode {
    ws.send(&command).await;
    ws.next_error().await
}
