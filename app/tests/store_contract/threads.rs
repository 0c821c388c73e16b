//! Threads: replies kept with their root and out of the room's sequence (unless also posted to the
//! room), in the change feed like any change, and who follows a thread.

use crate::fixtures::*;
use crate::Harness;
use app::model::*;
use app::store::*;

pub async fn replies_live_with_their_root_and_out_of_the_timeline(h: &mut Harness) {
    let (room, ana) = make_room(h.store(), "threads").await;
    let ben = user("ben");
    h.store().create_user(&ben).await.unwrap();
    let store = h.store();
    let root = store
        .append_message(&message(room, ana, "root", 1))
        .await
        .unwrap()
        .message;
    let mut replies = Vec::new();
    for i in 0..3 {
        let r = store
            .append_message(&reply(
                room,
                ben.id,
                root.id,
                false,
                &format!("r{i}"),
                10 + i,
            ))
            .await
            .unwrap();
        assert!(r.created);
        assert_eq!(
            r.message.seq, 0,
            "a reply only in its thread has no place in the timeline"
        );
        let link = r.message.thread.unwrap();
        assert_eq!((link.root, link.in_room), (root.id, false));
        assert_eq!(link.at_rev, r.message.rev);
        replies.push(r.message);
    }
    // Retrying a reply's nonce gives the original.
    let again = store
        .append_message(&reply(room, ben.id, root.id, false, "r1", 99))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.message.id, replies[1].id);
    let shared = store
        .append_message(&reply(room, ben.id, root.id, true, "shared", 20))
        .await
        .unwrap()
        .message;
    assert_eq!(
        shared.seq, 2,
        "a reply also posted to the room takes the room's next sequence"
    );
    let after = store
        .append_message(&message(room, ana, "after", 30))
        .await
        .unwrap()
        .message;
    assert_eq!(after.seq, 3);

    // The timeline: the root, the shared reply, the next message; nothing else, no gaps.
    assert_eq!(all_seqs_in(store, room).await, vec![1, 2, 3]);
    let latest = store.history(room, HistoryQuery::latest(50)).await.unwrap();
    assert_eq!(seqs(&latest), vec![1, 2, 3]);
    let before = store
        .history(room, HistoryQuery::before(3, 50))
        .await
        .unwrap();
    assert_eq!(seqs(&before), vec![1, 2]);
    assert_eq!(store.last_seq(room).await.unwrap(), 3);
    let position = store.room_position(room).await.unwrap();
    assert_eq!(position.last_seq, 3);
    assert_eq!(position.rev, after.rev);

    // The thread: every reply in order, paged by reply revision.
    let thread = store.thread_replies(root.id, None, 50).await.unwrap();
    let ids: Vec<_> = thread.iter().map(|m| m.id).collect();
    let expected: Vec<_> = replies.iter().map(|m| m.id).chain([shared.id]).collect();
    assert_eq!(ids, expected);
    assert_eq!(store.count_replies(root.id).await.unwrap(), 4);
    let newest_two = store.thread_replies(root.id, None, 2).await.unwrap();
    assert_eq!(
        newest_two.iter().map(|m| m.id).collect::<Vec<_>>(),
        expected[2..]
    );
    let older = store
        .thread_replies(root.id, Some(newest_two[0].thread.unwrap().at_rev), 50)
        .await
        .unwrap();
    assert_eq!(
        older.iter().map(|m| m.id).collect::<Vec<_>>(),
        expected[..2]
    );
    assert_eq!(store.count_replies(after.id).await.unwrap(), 0);

    // Reading a reply by id, and changing it, like any message: a new revision in the feed.
    let found = store.message_by_id(replies[0].id).await.unwrap().unwrap();
    assert_eq!(found, replies[0]);
    let edited = store
        .change_message(
            replies[0].id,
            &MessageChange::Edit {
                body: body("reworded"),
                at: Timestamp(40),
                mentions: vec![ana],
            },
        )
        .await
        .unwrap();
    assert!(edited.changed);
    assert_eq!(edited.message.seq, 0);
    let summary = store
        .change_message(
            root.id,
            &MessageChange::Replied {
                user: ben.id,
                at: Timestamp(20),
                count: 4,
            },
        )
        .await
        .unwrap();
    assert!(summary.changed);
    let feed = store.changes(room, 0, 100).await.unwrap();
    let revs: Vec<u64> = feed.iter().map(|m| m.rev).collect();
    let mut sorted = revs.clone();
    sorted.sort_unstable();
    assert_eq!(revs, sorted, "the feed is in revision order");
    assert_eq!(
        feed.len(),
        6,
        "root, three replies, the shared reply, the next message"
    );
    assert_eq!(
        feed.last().unwrap().id,
        root.id,
        "the summary was the latest change"
    );
    assert_eq!(
        feed.iter().find(|m| m.id == replies[0].id).unwrap().body,
        "reworded"
    );
    let since_edit = store
        .changes(room, edited.message.rev - 1, 100)
        .await
        .unwrap();
    assert_eq!(
        since_edit.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![replies[0].id, root.id]
    );
    let root_now = store.message_by_id(root.id).await.unwrap().unwrap();
    let replied = root_now.replies.unwrap();
    assert_eq!((replied.count, replied.last_reply_at), (4, Timestamp(20)));
    assert_eq!(replied.repliers, vec![ben.id]);

    // A mention in a reply only in the thread is listed, but does not count in the room's timeline.
    let mentions = store.mentions_of(ana, None, 50).await.unwrap();
    assert_eq!(
        mentions.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![replies[0].id]
    );
    assert_eq!(store.count_mentions(ana, room, 0).await.unwrap(), 0);

    // Kept across a restart.
    h.reopen().await;
    let store = h.store();
    assert_eq!(
        store.thread_replies(root.id, None, 50).await.unwrap().len(),
        4
    );
    assert_eq!(all_seqs_in(store, room).await, vec![1, 2, 3]);

    // Deleting the room takes its threads with it.
    store.delete_room(room).await.unwrap();
    assert!(store.message_by_id(replies[2].id).await.unwrap().is_none());
    assert!(store
        .thread_replies(root.id, None, 50)
        .await
        .unwrap()
        .is_empty());
    assert!(store.mentions_of(ana, None, 50).await.unwrap().is_empty());
    assert!(store.changes(room, 0, 100).await.unwrap().is_empty());
}

pub async fn thread_followers_keep_what_they_read(h: &mut Harness) {
    let store = h.store();
    let (room, ana) = make_room(store, "followers").await;
    let ben = UserId::new();
    let mut roots = Vec::new();
    for i in 0..3 {
        let m = store
            .append_message(&message(room, ana, &format!("root{i}"), i))
            .await
            .unwrap();
        roots.push(m.message.id);
    }
    store
        .follow_thread(ben, roots[0], room, 2, Timestamp(10))
        .await
        .unwrap();
    store
        .follow_thread(ben, roots[1], room, 0, Timestamp(20))
        .await
        .unwrap();
    // Following again keeps what was read.
    store
        .follow_thread(ben, roots[0], room, 0, Timestamp(30))
        .await
        .unwrap();
    let follow = store.thread_follow(ben, roots[0]).await.unwrap().unwrap();
    assert_eq!((follow.room, follow.read), (room, 2));
    assert_eq!(follow.followed_at, Timestamp(10));
    // Reading only moves forward; marking an unfollowed thread does nothing.
    store.mark_thread_read(ben, roots[0], 5).await.unwrap();
    store.mark_thread_read(ben, roots[0], 3).await.unwrap();
    store.mark_thread_read(ben, roots[2], 9).await.unwrap();
    assert_eq!(
        store
            .thread_follow(ben, roots[0])
            .await
            .unwrap()
            .unwrap()
            .read,
        5
    );
    assert!(store.thread_follow(ben, roots[2]).await.unwrap().is_none());
    let list = store.followed_threads(ben).await.unwrap();
    assert_eq!(
        list.iter().map(|f| (f.root, f.read)).collect::<Vec<_>>(),
        vec![(roots[1], 0), (roots[0], 5)],
        "most recently followed first"
    );
    assert!(store.followed_threads(ana).await.unwrap().is_empty());
    store.unfollow_thread(ben, roots[1]).await.unwrap();
    assert_eq!(store.followed_threads(ben).await.unwrap().len(), 1);
    store.delete_room(room).await.unwrap();
    assert!(store.followed_threads(ben).await.unwrap().is_empty());
}

pub async fn concurrent_replies_keep_revisions_and_sequences_gap_free(h: &mut Harness) {
    const TASKS: usize = 8;
    const EACH: usize = 10;
    let store = h.shared();
    let (room, owner) = make_room(store.as_ref(), "busy thread").await;
    let root = store
        .append_message(&message(room, owner, "root", 0))
        .await
        .unwrap()
        .message;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let nonce = format!("t{task}-{i}");
                    // Every third one is also posted to the room, the rest stay in the thread; some
                    // plain messages in between.
                    let new = match i % 4 {
                        0 => message(room, owner, &nonce, i as i64),
                        1 => reply(room, owner, root.id, true, &nonce, i as i64),
                        _ => reply(room, owner, root.id, false, &nonce, i as i64),
                    };
                    store.append_message(&new).await.expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let per_task_in_room = (0..EACH).filter(|i| i % 4 < 2).count();
    let in_room = 1 + TASKS * per_task_in_room;
    let seqs = all_seqs_in(store.as_ref(), room).await;
    assert_eq!(seqs, (1..=in_room as u64).collect::<Vec<_>>());
    let total = 1 + TASKS * EACH;
    let feed = store.changes(room, 0, MAX_PAGE_SIZE).await.unwrap();
    let mut revs: Vec<u64> = feed.iter().map(|m| m.rev).collect();
    let mut more = store
        .changes(room, *revs.last().unwrap(), MAX_PAGE_SIZE)
        .await
        .unwrap();
    revs.extend(more.drain(..).map(|m| m.rev));
    assert_eq!(revs, (1..=total as u64).collect::<Vec<_>>());
    let replies = (0..EACH).filter(|i| i % 4 != 0).count() * TASKS;
    assert_eq!(store.count_replies(root.id).await.unwrap(), replies as u64);
}
