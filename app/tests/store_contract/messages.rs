//! Messages: append, edit, delete, idempotent nonces, history pages, gap-free concurrent sequences.

use crate::fixtures::*;
use crate::Harness;
use app::model::*;
use app::store::*;
use std::collections::HashSet;

pub async fn messages_append_edit_delete(h: &mut Harness) {
    let store = h.store();
    let (room_id, owner) = make_room(store, "chat").await;
    assert_eq!(store.last_seq(room_id).await.unwrap(), 0);

    let first = store
        .append_message(&message(room_id, owner, "a", 100))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.message.seq, 1);
    assert_eq!(first.message.body, "body a");
    assert_eq!(first.message.author_id, owner);
    assert_eq!(first.message.created_at, Timestamp(100));
    let second = store
        .append_message(&message(room_id, owner, "b", 200))
        .await
        .unwrap();
    let third = store
        .append_message(&message(room_id, owner, "c", 300))
        .await
        .unwrap();
    assert_eq!((second.message.seq, third.message.seq), (2, 3));
    assert_eq!(store.last_seq(room_id).await.unwrap(), 3);
    assert_eq!(
        store.message_by_id(second.message.id).await.unwrap(),
        Some(second.message.clone())
    );
    assert_eq!(store.message_by_id(MessageId::new()).await.unwrap(), None);

    let edited = store
        .edit_message(second.message.id, &body("better words"), Timestamp(250))
        .await
        .unwrap();
    assert_eq!(edited.body, "better words");
    assert_eq!(edited.edited_at, Some(Timestamp(250)));
    assert_eq!(edited.seq, 2);

    let deleted = store
        .delete_message(first.message.id, Timestamp(400))
        .await
        .unwrap();
    assert_eq!(deleted.body, "", "a tombstone keeps no text");
    assert_eq!(deleted.deleted_at, Some(Timestamp(400)));
    assert_eq!(
        store
            .edit_message(MessageId::new(), &body("x"), Timestamp(1))
            .await,
        Err(StoreError::NotFound("message"))
    );
    assert_eq!(
        store.delete_message(MessageId::new(), Timestamp(1)).await,
        Err(StoreError::NotFound("message"))
    );

    let history = store
        .history(room_id, HistoryQuery::latest(10))
        .await
        .unwrap();
    assert_eq!(seqs(&history), [1, 2, 3], "tombstones keep their place");
    assert_eq!(history[0], deleted);
    assert_eq!(history[1], edited);

    let stats = store.message_stats(Timestamp(200)).await.unwrap();
    assert_eq!(stats, MessageStats { total: 3, since: 2 });
}

pub async fn append_is_idempotent_per_room_author_nonce(h: &mut Harness) {
    let store = h.store();
    let (room_id, ana) = make_room(store, "idem").await;
    let bob = user("bob");
    store.create_user(&bob).await.unwrap();
    let (other_room, _) = make_room(store, "other").await;

    let original = store
        .append_message(&message(room_id, ana, "n-1", 10))
        .await
        .unwrap();
    let mut retry = message(room_id, ana, "n-1", 99);
    retry.body = body("a retry may even carry other text");
    let again = store.append_message(&retry).await.unwrap();
    assert!(!again.created);
    assert_eq!(
        again.message, original.message,
        "the retry returns the original"
    );

    let by_bob = store
        .append_message(&message(room_id, bob.id, "n-1", 11))
        .await
        .unwrap();
    assert!(by_bob.created, "another author may use the same nonce");
    assert_eq!(by_bob.message.seq, 2);
    let elsewhere = store
        .append_message(&message(other_room, ana, "n-1", 12))
        .await
        .unwrap();
    assert!(
        elsewhere.created,
        "the same nonce in another room is another message"
    );
    assert_eq!(elsewhere.message.seq, 1);
    assert_eq!(store.last_seq(room_id).await.unwrap(), 2);
}

pub async fn history_pages_by_sequence(h: &mut Harness) {
    let store = h.store();
    let (room_id, owner) = make_room(store, "paging").await;
    let (other_room, other_owner) = make_room(store, "noise").await;
    append_n(store, room_id, owner, 25).await;
    append_n(store, other_room, other_owner, 5).await;
    let page = |q| async move { seqs(&store.history(room_id, q).await.unwrap()) };

    assert_eq!(
        page(HistoryQuery::latest(10)).await,
        (16..=25).collect::<Vec<_>>()
    );
    assert_eq!(
        page(HistoryQuery::before(16, 10)).await,
        (6..=15).collect::<Vec<_>>()
    );
    assert_eq!(
        page(HistoryQuery::before(6, 10)).await,
        (1..=5).collect::<Vec<_>>()
    );
    assert!(page(HistoryQuery::before(1, 10)).await.is_empty());
    assert!(page(HistoryQuery::before(0, 10)).await.is_empty());
    assert_eq!(page(HistoryQuery::after(0, 3)).await, [1, 2, 3]);
    assert_eq!(
        page(HistoryQuery::after(20, 10)).await,
        (21..=25).collect::<Vec<_>>()
    );
    assert!(page(HistoryQuery::after(25, 10)).await.is_empty());
    assert!(page(HistoryQuery::after(u64::MAX, 10)).await.is_empty());
    let between = HistoryQuery {
        after: Some(5),
        before: Some(9),
        limit: 50,
    };
    assert_eq!(page(between).await, [6, 7, 8]);
    let between_limited = HistoryQuery {
        after: Some(5),
        before: Some(20),
        limit: 2,
    };
    assert_eq!(
        page(between_limited).await,
        [6, 7],
        "oldest first when resuming after a sequence"
    );
    assert!(page(HistoryQuery {
        after: Some(9),
        before: Some(5),
        limit: 5
    })
    .await
    .is_empty());
    assert_eq!(
        page(HistoryQuery::latest(0)).await,
        [25],
        "a zero limit still returns one"
    );
    assert_eq!(page(HistoryQuery::latest(1_000)).await.len(), 25);
    assert!(store
        .history(RoomId::new(), HistoryQuery::latest(10))
        .await
        .unwrap()
        .is_empty());
}

pub async fn history_limit_is_clamped(h: &mut Harness) {
    let store = h.store();
    let (room_id, owner) = make_room(store, "big").await;
    append_n(store, room_id, owner, u64::from(MAX_PAGE_SIZE) + 5).await;
    let newest = store
        .history(room_id, HistoryQuery::latest(u32::MAX))
        .await
        .unwrap();
    assert_eq!(newest.len(), MAX_PAGE_SIZE as usize);
    assert_eq!(newest.first().unwrap().seq, 6);
    assert_eq!(newest.last().unwrap().seq, u64::from(MAX_PAGE_SIZE) + 5);
}

pub async fn concurrent_appends_get_gap_free_sequences(h: &mut Harness) {
    const TASKS: u64 = 8;
    const EACH: u64 = 100;
    let store = h.shared();
    let (room_id, owner) = make_room(store.as_ref(), "busy").await;

    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::with_capacity(EACH as usize);
                for i in 0..EACH {
                    let at = (task * 1000 + i) as i64;
                    let msg = message(room_id, owner, &format!("t{task}-{i}"), at);
                    mine.push(store.append_message(&msg).await.expect("append").message);
                }
                mine
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("appender task"));
    }

    let mut all_seqs = Vec::new();
    let mut ids = HashSet::new();
    for mine in &results {
        let own: Vec<u64> = mine.iter().map(|m| m.seq).collect();
        assert!(
            own.windows(2).all(|w| w[0] < w[1]),
            "one task's messages keep their order"
        );
        all_seqs.extend(own);
        ids.extend(mine.iter().map(|m| m.id));
    }
    all_seqs.sort_unstable();
    assert_eq!(
        all_seqs,
        (1..=TASKS * EACH).collect::<Vec<_>>(),
        "exactly 1..N, no gaps, no repeats"
    );
    assert_eq!(ids.len() as u64, TASKS * EACH);
    assert_eq!(store.last_seq(room_id).await.unwrap(), TASKS * EACH);

    // History agrees with what the appenders were told.
    let seen = all_seqs_in(store.as_ref(), room_id).await;
    assert_eq!(seen, (1..=TASKS * EACH).collect::<Vec<_>>());
}

/// Writes that arrive together may share a commit (the embedded driver batches them): one that fails with
/// a domain error must not take the others down with it.
pub async fn failed_writes_leave_concurrent_ones_intact(h: &mut Harness) {
    let store = h.shared();
    store.create_user(&user("taken")).await.unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            // Every fourth write reuses the taken name and must fail alone.
            let name = if i % 4 == 0 {
                "TAKEN".to_owned()
            } else {
                format!("user{i}")
            };
            tokio::spawn(async move { store.create_user(&user(&name)).await })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("writer task") {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(e, StoreError::Duplicate("username")),
        }
    }
    assert_eq!(ok, 30);
    assert_eq!(store.user_stats().await.unwrap().total, 31);
    for i in (0..40).filter(|i| i % 4 != 0) {
        let name = format!("user{i}");
        assert!(
            store.user_by_username(&name).await.unwrap().is_some(),
            "{name} was stored"
        );
    }
}
