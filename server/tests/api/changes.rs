//! Change-synced resume: a reader that is offline while messages are edited, deleted and reacted to
//! (new ones sent and edited, replies written in threads) gets each changed message exactly once when
//! it comes back, in its latest state and in revision order, then live changes from there. Meanwhile
//! someone who stayed online saw every revision live, one after another. The same across two
//! instances in `scale_out::an_offline_reader_resumes_changes_on_another_instance`.

use crate::helpers::*;
use app::model::{MessageId, RoomId};
use app::protocol::{ClientMsg, MessageView, RoomCursor, ServerMsg};
use std::collections::{HashMap, HashSet};

on_both_drivers!(
    an_offline_reader_gets_every_change_once_in_order,
    reactions_are_validated_bounded_and_only_for_members,
    mentions_reach_members_and_the_mentions_view,
);

/// Someone online in the room, keeping every content change they are shown, in arrival order.
pub struct Witness {
    pub ws: WsClient,
    pub seen: Vec<MessageView>,
}

impl Witness {
    pub async fn join(browser: &Browser, room: RoomId) -> Self {
        let mut ws = WsClient::join(browser, vec![]).await;
        synced(&mut ws, room).await;
        Self {
            ws,
            seen: Vec::new(),
        }
    }

    /// Reads on until the change of message `id` (new or changed), keeping every change on the
    /// way; returns it.
    pub async fn change_of(&mut self, id: MessageId) -> MessageView {
        loop {
            if let Some(message) = self.next_change(None).await {
                if message.id == id {
                    return message;
                }
            }
        }
    }

    /// The next frame: a change (kept, and returned), or the id of the ack for `nonce`, or `None`.
    async fn next_change(
        &mut self,
        ack_of: Option<(&str, &mut Option<MessageId>)>,
    ) -> Option<MessageView> {
        match self.ws.recv().await.expect("the socket stays open") {
            ServerMsg::Message { message } | ServerMsg::Updated { message } => {
                self.seen.push(message.clone());
                Some(message)
            }
            ServerMsg::Ack { nonce, id, .. } => {
                if let Some((wanted, slot)) = ack_of {
                    if wanted == nonce {
                        *slot = Some(id);
                    }
                }
                None
            }
            _ => None,
        }
    }

    /// Sends a message and waits for it to come back; its view.
    pub async fn say(&mut self, room: RoomId, nonce: &str) -> MessageView {
        self.say_text(room, nonce, &format!("said {nonce}")).await
    }

    /// Sends `body` under `nonce` and waits for it to come back; its view.
    pub async fn say_text(&mut self, room: RoomId, nonce: &str, body: &str) -> MessageView {
        self.send_and_wait(&send(room, nonce, body), nonce).await
    }

    /// Replies in `root`'s thread (and the room, with `also_in_room`) and waits for it to come back.
    pub async fn reply(
        &mut self,
        room: RoomId,
        root: MessageId,
        also_in_room: bool,
        nonce: &str,
        body: &str,
    ) -> MessageView {
        let command = send_reply(room, root, also_in_room, nonce, body);
        self.send_and_wait(&command, nonce).await
    }

    /// Sends a `Send` command under `nonce` and waits for the message to come back; its view.
    pub async fn send_and_wait(&mut self, command: &ClientMsg, nonce: &str) -> MessageView {
        self.ws.send(command).await;
        let mut acked = None;
        while acked.is_none() {
            self.next_change(Some((nonce, &mut acked))).await;
        }
        self.change_of(acked.unwrap()).await
    }

    /// Sends a change command and waits for the room to be told about it.
    pub async fn change(&mut self, id: MessageId, command: ClientMsg) -> MessageView {
        self.ws.send(&command).await;
        self.change_of(id).await
    }
}

pub fn react(id: MessageId, emoji: &str, on: bool) -> ClientMsg {
    ClientMsg::React {
        id,
        emoji: emoji.into(),
        on,
    }
}

pub fn edit(id: MessageId, body: &str) -> ClientMsg {
    ClientMsg::Edit {
        id,
        body: body.into(),
    }
}

/// What the reader was sent on resuming, up to its `Synced`: (new message?, view), and the synced
/// (last_seq, rev).
pub async fn resume(ws: &mut WsClient, room: RoomId) -> (Vec<(bool, MessageView)>, (u64, u64)) {
    let mut got = Vec::new();
    loop {
        match ws.recv().await.expect("the socket stays open") {
            ServerMsg::Message { message } if message.room == room => got.push((true, message)),
            ServerMsg::Updated { message } if message.room == room => got.push((false, message)),
            ServerMsg::Synced {
                room: r,
                last_seq,
                rev,
            } if r == room => return (got, (last_seq, rev)),
            _ => {}
        }
    }
}

/// The scenario, with the writers on one server and the reader coming back through `reader_back`
/// (the same server, or another instance on the same database).
pub async fn offline_changes_scenario(
    ana: &Browser,
    carl: &Browser,
    reader: &Browser,
    reader_back: &Browser,
    room: RoomId,
) {
    let mut a = Witness::join(ana, room).await;
    let mut c = Witness::join(carl, room).await;
    let mut b = Witness::join(reader, room).await;
    let mut ids = Vec::new();
    for i in 1..=5 {
        let said = a.say(room, &format!("m{i}")).await;
        ids.push(said.id);
    }
    let last = b.change_of(ids[4]).await;
    let cursor = RoomCursor {
        room,
        last_seq: last.seq,
        rev: last.rev,
    };
    b.ws.close().await;

    // While the reader is away.
    a.change(ids[1], edit(ids[1], "two, edited")).await;
    a.change(ids[2], ClientMsg::Delete { id: ids[2] }).await;
    a.change(ids[3], react(ids[3], "👍", true)).await;
    c.change(ids[3], react(ids[3], "🎉", true)).await;
    let sixth = a.say(room, "m6").await;
    a.change(sixth.id, edit(sixth.id, "six, edited")).await;
    a.change(ids[0], react(ids[0], "👀", true)).await;
    a.change(ids[0], react(ids[0], "👀", false)).await;
    // Replies in a thread, only there and also in the room; the root's summary moves with each.
    let in_thread = a.reply(room, ids[3], false, "t1", "a reply").await;
    let shared = a.reply(room, ids[3], true, "t2", "shared too").await;
    a.change(in_thread.id, edit(in_thread.id, "a reply, edited"))
        .await;

    // Everyone online saw every revision, one after the other.
    let revs: Vec<u64> = a.seen.iter().map(|m| m.rev).collect();
    assert_eq!(
        revs,
        (1..=revs.len() as u64).collect::<Vec<_>>(),
        "live, each revision once and in order"
    );
    let final_state: HashMap<MessageId, MessageView> =
        a.seen.iter().map(|m| (m.id, m.clone())).collect();
    let room_rev = *revs.last().unwrap();

    let mut back = WsClient::join(reader_back, vec![cursor]).await;
    let (got, synced_at) = resume(&mut back, room).await;
    assert_eq!(
        synced_at,
        (shared.seq, room_rev),
        "synced at the room's position"
    );
    let got_revs: Vec<u64> = got.iter().map(|(_, m)| m.rev).collect();
    assert!(
        got_revs.windows(2).all(|w| w[0] < w[1]),
        "in revision order: {got_revs:?}"
    );
    let got_ids: Vec<MessageId> = got.iter().map(|(_, m)| m.id).collect();
    assert_eq!(
        got_ids.iter().collect::<HashSet<_>>().len(),
        got_ids.len(),
        "each changed message once"
    );
    let mut expected: Vec<&MessageView> = final_state
        .values()
        .filter(|m| m.rev > cursor.rev)
        .collect();
    expected.sort_by_key(|m| m.rev);
    assert_eq!(
        got.iter().map(|(_, m)| m).collect::<Vec<_>>(),
        expected,
        "every message changed while away, in its latest state"
    );
    let changed: HashSet<MessageId> = [
        ids[0],
        ids[1],
        ids[2],
        ids[3],
        sixth.id,
        in_thread.id,
        shared.id,
    ]
    .into();
    assert_eq!(got_ids.iter().copied().collect::<HashSet<_>>(), changed);
    for (new, m) in &got {
        assert_eq!(
            *new,
            [sixth.id, in_thread.id, shared.id].contains(&m.id),
            "only the sixth and the replies are new to the reader"
        );
    }
    let by_id: HashMap<MessageId, &MessageView> = got.iter().map(|(_, m)| (m.id, m)).collect();
    assert_eq!(by_id[&ids[1]].body, "two, edited");
    assert!(by_id[&ids[2]].deleted && by_id[&ids[2]].body.is_empty());
    let emoji: Vec<&str> = by_id[&ids[3]]
        .reactions
        .iter()
        .map(|r| r.emoji.as_str())
        .collect();
    assert_eq!(emoji, ["👍", "🎉"]);
    assert_eq!(by_id[&sixth.id].body, "six, edited");
    assert!(by_id[&ids[0]].reactions.is_empty());
    assert_eq!(by_id[&in_thread.id].body, "a reply, edited");
    assert_eq!(by_id[&in_thread.id].seq, 0, "outside the timeline");
    assert_eq!(by_id[&ids[3]].replies.as_ref().unwrap().count, 2);

    // And live from there: the next change is the next revision.
    let edited = a.change(ids[4], edit(ids[4], "five, edited")).await;
    let mut reader = Witness {
        ws: back,
        seen: Vec::new(),
    };
    let live = reader.change_of(ids[4]).await;
    assert_eq!(live, edited);
    assert_eq!(live.rev, room_rev + 1);
    assert_eq!(
        reader.seen.len(),
        1,
        "nothing else arrived: {:?}",
        reader.seen
    );
}

/// A server whose send budget does not get in the way, and people registered on it by name.
pub async fn app_with_people<const N: usize>(
    kind: StoreKind,
    names: [&str; N],
) -> (TestApp, [Browser; N]) {
    let app = spawn_app_with(kind, &[("MESSAGES_PER_10S", "1000".into())]).await;
    let mut people = Vec::with_capacity(N);
    for name in names {
        let mut browser = Browser::new(&app);
        browser.register(name, GOOD_PASSWORD).await;
        people.push(browser);
    }
    let people: [Browser; N] = people.try_into().unwrap_or_else(|_| unreachable!());
    (app, people)
}

async fn an_offline_reader_gets_every_change_once_in_order(kind: StoreKind) {
    let (app, [mut ana, mut ben, mut carl]) = app_with_people(kind, ["ana", "ben", "carl"]).await;
    let room = public_room(&mut ana, &mut [&mut ben, &mut carl]).await;
    offline_changes_scenario(&ana, &carl, &ben, &ben, room).await;

    // The room page says which revision its messages are at: the latest.
    let page = ben.get(&format!("/api/rooms/page?room={room}")).await;
    assert_eq!(page.status, 200, "{page:?}");
    let newest_rev = page.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["rev"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(page.body["rev"].as_u64(), Some(newest_rev));
    app.stop().await.unwrap();
}

async fn reactions_are_validated_bounded_and_only_for_members(kind: StoreKind) {
    let (app, [mut ana, eve]) = app_with_people(kind, ["ana", "eve"]).await;
    let room = public_room(&mut ana, &mut []).await;
    let mut a = Witness::join(&ana, room).await;
    let message = a.say(room, "target").await;

    for bad in ["", "x", "<img src=x>", "👍👍👍👍👍👍👍👍👍"] {
        a.ws.send(&react(message.id, bad, true)).await;
        assert_eq!(
            a.ws.next_error().await,
            app::protocol::ErrorCode::Invalid,
            "{bad:?}"
        );
    }
    // Up to the bound of distinct emoji, then refused; the message keeps what it had.
    let catalogue = app::domain::COMMON_EMOJI;
    for (emoji, _, _) in catalogue.iter().take(app::store::MAX_REACTIONS_PER_MESSAGE) {
        a.change(message.id, react(message.id, emoji, true)).await;
    }
    a.ws.send(&react(
        message.id,
        catalogue[app::store::MAX_REACTIONS_PER_MESSAGE].0,
        true,
    ))
    .await;
    assert_eq!(a.ws.next_error().await, app::protocol::ErrorCode::Invalid);
    // Someone outside the room cannot react, nor learn anything about the message.
    let mut e = WsClient::join(&eve, vec![]).await;
    e.send(&react(message.id, "👍", true)).await;
    assert_eq!(e.next_error().await, app::protocol::ErrorCode::Forbidden);
    let stored = a.change(message.id, react(message.id, "👍", false)).await;
    assert_eq!(
        stored.reactions.len(),
        app::store::MAX_REACTIONS_PER_MESSAGE - 1
    );
    assert!(stored.reactions.iter().all(|r| r.users.len() == 1));
    app.stop().await.unwrap();
}

async fn mentions_reach_members_and_the_mentions_view(kind: StoreKind) {
    let (app, [mut ana, mut ben, mut carl, mut eve]) =
        app_with_people(kind, ["ana", "ben", "carl", "eve"]).await;
    let room = public_room(&mut ana, &mut [&mut ben, &mut carl]).await;
    let mut a = Witness::join(&ana, room).await;

    // Named members are mentioned; someone outside the room and the author are not.
    let said = a
        .say_text(room, "n1", "@Ben and @eve, over to you (@ana)")
        .await;
    assert_eq!(said.mentions, vec![user_id(&mut ben).await]);
    assert!(
        said.html.contains(r#"<span class="mention">@Ben</span>"#),
        "{}",
        said.html
    );
    let everyone = a.say_text(room, "n2", "lunch, @room?").await;
    let mut expected = vec![user_id(&mut ben).await, user_id(&mut carl).await];
    let mut got = everyone.mentions.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "@room is every member but the author");

    // Ben's view lists both, newest first, unread; his room list counts them.
    let view = ben.get("/api/mentions").await;
    assert_eq!(view.status, 200, "{view:?}");
    let items = view.body.as_array().unwrap();
    let bodies: Vec<&str> = items
        .iter()
        .map(|m| m["message"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["lunch, @room?", "@Ben and @eve, over to you (@ana)"]
    );
    assert!(items
        .iter()
        .all(|m| m["unread"] == true && m["room_name"] == "Shared"));
    let mine = ben.get("/api/rooms/mine").await;
    assert_eq!(mine.body[0]["mentions"], 2, "{:?}", mine.body);
    assert!(mentions_view(&mut eve).await.is_empty());

    // Read, they are no longer unread; after leaving the room they are gone from the view.
    let read = ben
        .post(
            "/api/rooms/read",
            &[("room", &room.to_string()), ("seq", "2")],
        )
        .await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(ben.get("/api/rooms/mine").await.body[0]["mentions"], 0);
    assert!(mentions_view(&mut ben)
        .await
        .iter()
        .all(|m| m["unread"] == false));
    let left = ben
        .post("/api/rooms/leave", &[("room", &room.to_string())])
        .await;
    assert_eq!(left.status, 200, "{left:?}");
    assert!(mentions_view(&mut ben).await.is_empty());
    app.stop().await.unwrap();
}

/// The first page of the signed-in user's Mentions view.
async fn mentions_view(browser: &mut Browser) -> Vec<serde_json::Value> {
    let view = browser.get("/api/mentions").await;
    assert_eq!(view.status, 200, "{view:?}");
    view.body.as_array().unwrap().clone()
}

/// The signed-in user's id (`/api/auth/me`).
pub async fn user_id(browser: &mut Browser) -> app::model::UserId {
    let me = browser.get("/api/auth/me").await;
    me.body["id"].as_str().unwrap().parse().unwrap()
}
