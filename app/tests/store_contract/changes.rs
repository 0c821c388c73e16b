//! Changes after sending: revisions, the change feed, reactions and edit history.

use crate::fixtures::*;
use crate::Harness;
use app::domain::{Emoji, COMMON_EMOJI};
use app::model::*;
use app::store::*;
use std::collections::HashMap;

fn react(user: UserId, emoji: &str, on: bool) -> MessageChange {
    MessageChange::React {
        user,
        emoji: Emoji::parse(emoji).unwrap(),
        on,
    }
}

fn edit(text: &str, at: i64) -> MessageChange {
    MessageChange::Edit {
        body: body(text),
        at: Timestamp(at),
        mentions: Vec::new(),
    }
}

/// (seq, rev) of each message in a change feed page.
fn feed(page: &[MessageRecord]) -> Vec<(u64, u64)> {
    page.iter().map(|m| (m.seq, m.rev)).collect()
}

pub async fn every_change_takes_the_rooms_next_revision(h: &mut Harness) {
    let store = h.store();
    let (room, ana) = make_room(store, "revisions").await;
    let (other_room, _) = make_room(store, "elsewhere").await;
    let ben = user("ben");
    store.create_user(&ben).await.unwrap();
    assert_eq!(store.room_revision(room).await.unwrap(), 0);
    assert_eq!(
        store.room_position(room).await.unwrap(),
        RoomPosition::default()
    );

    let mut ids = Vec::new();
    for (i, nonce) in ["a", "b", "c"].into_iter().enumerate() {
        let appended = store
            .append_message(&message(room, ana, nonce, i as i64))
            .await
            .unwrap();
        assert_eq!(appended.message.rev, i as u64 + 1);
        ids.push(appended.message.id);
    }
    // A retried nonce changes nothing, so it takes no revision.
    let again = store
        .append_message(&message(room, ana, "b", 9))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.message.rev, 2);
    store
        .append_message(&message(other_room, ana, "x", 1))
        .await
        .unwrap();

    let edited = store
        .change_message(ids[1], &edit("second, better", 10))
        .await
        .unwrap();
    assert!(edited.changed);
    assert_eq!(edited.message.rev, 4);
    assert_eq!(
        edited.message.edits,
        vec![EditRecord {
            body: "body b".into(),
            replaced_at: Timestamp(10)
        }]
    );
    let same = store
        .change_message(ids[1], &edit("second, better", 11))
        .await
        .unwrap();
    assert!(!same.changed, "the same words again are no edit");
    assert_eq!(same.message.rev, 4);

    let liked = store
        .change_message(ids[0], &react(ben.id, "👍", true))
        .await
        .unwrap();
    assert_eq!((liked.changed, liked.message.rev), (true, 5));
    let twice = store
        .change_message(ids[0], &react(ben.id, "👍", true))
        .await
        .unwrap();
    assert!(!twice.changed, "one person adds an emoji once");
    let also = store
        .change_message(ids[0], &react(ana, "👍", true))
        .await
        .unwrap();
    assert_eq!(also.message.rev, 6);
    assert_eq!(
        also.message.reactions,
        vec![ReactionRecord {
            emoji: "👍".into(),
            users: vec![ben.id, ana]
        }]
    );
    let unliked = store
        .change_message(ids[0], &react(ben.id, "👍", false))
        .await
        .unwrap();
    assert_eq!(unliked.message.rev, 7);
    assert_eq!(unliked.message.reactions[0].users, vec![ana]);

    let deleted = store
        .change_message(ids[2], &MessageChange::Delete { at: Timestamp(20) })
        .await
        .unwrap();
    assert_eq!(deleted.message.rev, 8);
    assert_eq!(
        store.change_message(ids[2], &react(ana, "🎉", true)).await,
        Err(StoreError::NotFound("message")),
        "a tombstone takes no reactions"
    );
    assert_eq!(
        store
            .change_message(MessageId::new(), &react(ana, "🎉", true))
            .await,
        Err(StoreError::NotFound("message"))
    );

    assert_eq!(store.room_revision(room).await.unwrap(), 8);
    assert_eq!(
        store.room_position(room).await.unwrap(),
        RoomPosition {
            last_seq: 3,
            rev: 8
        }
    );
    // Each message once, at its last change, in revision order.
    let all = store.changes(room, 0, 100).await.unwrap();
    assert_eq!(feed(&all), [(2, 4), (1, 7), (3, 8)]);
    assert_eq!(
        all[1], unliked.message,
        "the feed has each message as stored"
    );
    assert_eq!(
        feed(&store.changes(room, 4, 100).await.unwrap()),
        [(1, 7), (3, 8)]
    );
    assert_eq!(feed(&store.changes(room, 7, 1).await.unwrap()), [(3, 8)]);
    assert!(store.changes(room, 8, 100).await.unwrap().is_empty());
    assert_eq!(
        feed(&store.changes(room, 0, 2).await.unwrap()),
        [(2, 4), (1, 7)]
    );
    assert_eq!(
        feed(&store.changes(other_room, 0, 100).await.unwrap()),
        [(1, 1)],
        "rooms count their revisions apart"
    );
    // History shows the same state.
    let history = store.history(room, HistoryQuery::latest(10)).await.unwrap();
    assert_eq!(history[0], unliked.message);
    assert_eq!(history[1], edited.message);
}

pub async fn reactions_are_bounded_per_message(h: &mut Harness) {
    let store = h.store();
    let (room, ana) = make_room(store, "bounded").await;
    let id = store
        .append_message(&message(room, ana, "n", 1))
        .await
        .unwrap()
        .message
        .id;
    for (emoji, _, _) in COMMON_EMOJI.iter().take(MAX_REACTIONS_PER_MESSAGE) {
        assert!(
            store
                .change_message(id, &react(ana, emoji, true))
                .await
                .unwrap()
                .changed
        );
    }
    let next = COMMON_EMOJI[MAX_REACTIONS_PER_MESSAGE].0;
    assert!(matches!(
        store.change_message(id, &react(ana, next, true)).await,
        Err(StoreError::Limit(_))
    ));
    let stored = store.message_by_id(id).await.unwrap().unwrap();
    assert_eq!(stored.reactions.len(), MAX_REACTIONS_PER_MESSAGE);
    assert_eq!(
        stored.rev,
        1 + MAX_REACTIONS_PER_MESSAGE as u64,
        "the refused one took no revision"
    );
}

/// 8 writers at once in one room, appending, editing and reacting to each other's messages: every
/// change they were told about has its own revision, together exactly 1..=N, and the feed holds each
/// message once at the last revision it was given.
pub async fn concurrent_changes_take_gap_free_revisions(h: &mut Harness) {
    const TASKS: usize = 8;
    const EACH: usize = 12;
    let store = h.shared();
    let (room, owner) = make_room(store.as_ref(), "busy changes").await;
    let seeds: Vec<MessageId> = {
        let mut ids = Vec::new();
        for i in 0..4 {
            let m = message(room, owner, &format!("seed{i}"), i);
            ids.push(store.append_message(&m).await.unwrap().message.id);
        }
        ids
    };
    let readers: Vec<UserId> = (0..TASKS).map(|_| UserId::new()).collect();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            let seeds = seeds.clone();
            let me = readers[task];
            tokio::spawn(async move {
                let mut told: Vec<(MessageId, u64)> = Vec::new();
                for i in 0..EACH {
                    let target = seeds[(task + i) % seeds.len()];
                    let outcome = match i % 3 {
                        0 => {
                            let m = message(room, owner, &format!("t{task}-{i}"), i as i64);
                            let appended = store.append_message(&m).await.expect("append");
                            (appended.message.id, appended.message.rev)
                        }
                        1 => {
                            let text = format!("edited by {task} ({i})");
                            let changed = store
                                .change_message(target, &edit(&text, i as i64))
                                .await
                                .expect("edit");
                            assert!(changed.changed);
                            (target, changed.message.rev)
                        }
                        _ => {
                            let emoji = COMMON_EMOJI[task % 4].0;
                            let changed = store
                                .change_message(target, &react(me, emoji, true))
                                .await
                                .expect("react");
                            assert!(changed.changed);
                            (target, changed.message.rev)
                        }
                    };
                    told.push(outcome);
                }
                told
            })
        })
        .collect();
    let mut revs = vec![1, 2, 3, 4];
    let mut last_rev: HashMap<MessageId, u64> =
        seeds.iter().zip(1..).map(|(id, r)| (*id, r)).collect();
    for task in tasks {
        for (id, rev) in task.await.expect("writer task") {
            revs.push(rev);
            let last = last_rev.entry(id).or_default();
            *last = (*last).max(rev);
        }
    }
    revs.sort_unstable();
    let n = (4 + TASKS * EACH) as u64;
    assert_eq!(
        revs,
        (1..=n).collect::<Vec<_>>(),
        "exactly 1..N, no gaps, no repeats"
    );
    assert_eq!(store.room_revision(room).await.unwrap(), n);

    let mut fed = Vec::new();
    let mut after = 0;
    loop {
        let page = store.changes(room, after, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.rev;
        fed.extend(page);
    }
    assert!(
        fed.windows(2).all(|w| w[0].rev < w[1].rev),
        "in revision order"
    );
    let fed_revs: HashMap<MessageId, u64> = fed.iter().map(|m| (m.id, m.rev)).collect();
    assert_eq!(fed.len(), fed_revs.len(), "each message once");
    assert_eq!(fed_revs, last_rev, "each at its last change");
    // No reaction was lost to a concurrent change of the same message.
    for seed in &seeds {
        let m = store.message_by_id(*seed).await.unwrap().unwrap();
        let reacted: usize = m.reactions.iter().map(|r| r.users.len()).sum();
        let expected = (0..TASKS)
            .flat_map(|task| (0..EACH).map(move |i| (task, i)))
            .filter(|(task, i)| i % 3 == 2 && seeds[(task + i) % seeds.len()] == *seed)
            .count();
        assert_eq!(reacted, expected, "every reaction on {seed} kept");
    }
}

/// The nonces of the messages that mention `user`, newest first.
async fn mentioned(store: &dyn Store, user: UserId) -> Vec<String> {
    let found = store.mentions_of(user, None, 100).await.unwrap();
    found.into_iter().map(|m| m.nonce).collect()
}

pub async fn mentions_are_listed_newest_first_and_counted_per_room(h: &mut Harness) {
    let store = h.store();
    let (room, ana) = make_room(store, "mentions").await;
    let (other, _) = make_room(store, "elsewhere").await;
    let (ben, carl) = (UserId::new(), UserId::new());
    let mention = |room, nonce: &str, at, who: Vec<UserId>| {
        let mut m = message(room, ana, nonce, at);
        m.mentions = who;
        m
    };
    let mut ids = Vec::new();
    for (r, nonce, at, who) in [
        (room, "m1", 10, vec![ben]),
        (room, "m2", 20, vec![carl]),
        (other, "m3", 30, vec![ben, carl]),
        (room, "m4", 40, vec![ben, ben]),
        (room, "m5", 40, vec![ben]),
    ] {
        let appended = store
            .append_message(&mention(r, nonce, at, who))
            .await
            .unwrap();
        ids.push(appended.message.id);
    }
    let stored = store.message_by_id(ids[3]).await.unwrap().unwrap();
    assert_eq!(stored.mentions, vec![ben], "each person once");

    let all = store.mentions_of(ben, None, 100).await.unwrap();
    let nonces: Vec<&str> = all.iter().map(|m| m.nonce.as_str()).collect();
    // Newest first; the two at the same time in id order, newest id first.
    let (a, b) = if ids[3].to_string() > ids[4].to_string() {
        ("m4", "m5")
    } else {
        ("m5", "m4")
    };
    assert_eq!(nonces, [a, b, "m3", "m1"]);
    let first_two = store.mentions_of(ben, None, 2).await.unwrap();
    let cursor = MentionCursor {
        created_at: first_two[1].created_at,
        id: first_two[1].id,
    };
    let rest = store.mentions_of(ben, Some(cursor), 100).await.unwrap();
    let rest: Vec<&str> = rest.iter().map(|m| m.nonce.as_str()).collect();
    assert_eq!(rest, ["m3", "m1"], "the next page starts after the cursor");

    assert_eq!(store.count_mentions(ben, room, 0).await.unwrap(), 3);
    assert_eq!(store.count_mentions(ben, room, 1).await.unwrap(), 2);
    assert_eq!(store.count_mentions(ben, other, 0).await.unwrap(), 1);
    assert_eq!(store.count_mentions(carl, room, 0).await.unwrap(), 1);

    // An edit moves the mention; a deletion removes it.
    let edited = MessageChange::Edit {
        body: body("now for carl"),
        at: Timestamp(50),
        mentions: vec![carl],
    };
    store.change_message(ids[0], &edited).await.unwrap();
    store
        .change_message(ids[4], &MessageChange::Delete { at: Timestamp(60) })
        .await
        .unwrap();
    let left = mentioned(store, ben).await;
    assert_eq!(left, ["m4", "m3"]);
    assert_eq!(store.count_mentions(ben, room, 0).await.unwrap(), 1);
    assert_eq!(store.count_mentions(carl, room, 0).await.unwrap(), 2);
    // Deleting the room takes its mentions along.
    store.delete_room(room).await.unwrap();
    let left = mentioned(store, ben).await;
    assert_eq!(left, ["m3"]);
}
