//! Search: every term, case and accents ignored, the prefix, filters, newest first and paged; edits and
//! deletions take old words out at once; writers and readers at the same time.

use crate::fixtures::*;
use crate::Harness;
use app::domain::search::LINK_TERM;
use app::model::*;
use app::store::*;

fn terms(words: &[&str]) -> SearchFilter {
    SearchFilter {
        terms: words.iter().map(|w| (*w).to_owned()).collect(),
        ..SearchFilter::default()
    }
}

async fn bodies(store: &dyn Store, filter: &SearchFilter) -> Vec<String> {
    let found = store.search_messages(filter, 50).await.unwrap();
    found.into_iter().map(|m| m.body).collect()
}

pub async fn search_finds_every_word_newest_first_in_the_rooms_given(h: &mut Harness) {
    let (room, ana) = make_room(h.store(), "search").await;
    let (other, bob) = make_room(h.store(), "elsewhere").await;
    let store = h.store();
    let mut at = 100;
    let mut say = |room, author, text: &str| {
        at += 10;
        let mut m = message(room, author, &format!("n{at}"), at);
        m.body = body(text);
        m
    };
    let mut ids = Vec::new();
    for (r, who, text) in [
        (room, ana, "Café au lait, s'il vous plaît"),
        (room, ana, "Lunch plans for Friday"),
        (room, bob, "lunch at noon"),
        (room, ana, "plans changed"),
        (room, ana, "the docs: https://example.com/start"),
        (other, bob, "lunch elsewhere"),
    ] {
        let m = store
            .append_message(&say(r, who, text))
            .await
            .unwrap()
            .message;
        ids.push(m.id);
    }
    let in_room = |f: SearchFilter| SearchFilter {
        rooms: vec![room],
        ..f
    };
    // Every word, newest first; case and accents do not matter.
    assert_eq!(
        bodies(store, &in_room(terms(&["lunch"]))).await,
        ["lunch at noon", "Lunch plans for Friday"]
    );
    assert_eq!(
        bodies(store, &in_room(terms(&["cafe", "plait"]))).await,
        ["Café au lait, s'il vous plaît"]
    );
    assert!(bodies(store, &in_room(terms(&["lunch", "cafe"])))
        .await
        .is_empty());
    // The prefix, alone and with words.
    let prefix = |p: &str, words: &[&str]| SearchFilter {
        prefix: Some(p.to_owned()),
        ..terms(words)
    };
    assert_eq!(
        bodies(store, &in_room(prefix("pla", &[]))).await,
        [
            "plans changed",
            "Lunch plans for Friday",
            "Café au lait, s'il vous plaît"
        ]
    );
    assert_eq!(
        bodies(store, &in_room(prefix("pl", &["lunch"]))).await,
        ["Lunch plans for Friday"]
    );
    assert_eq!(
        bodies(store, &in_room(terms(&[LINK_TERM]))).await,
        ["the docs: https://example.com/start"]
    );
    // Rooms, author and time.
    let both = SearchFilter {
        rooms: vec![room, other],
        ..terms(&["lunch"])
    };
    assert_eq!(
        bodies(store, &both).await,
        ["lunch elsewhere", "lunch at noon", "Lunch plans for Friday"]
    );
    let by_bob = SearchFilter {
        author: Some(bob),
        ..both.clone()
    };
    assert_eq!(
        bodies(store, &by_bob).await,
        ["lunch elsewhere", "lunch at noon"]
    );
    let window = SearchFilter {
        after: Some(Timestamp(120)),
        until: Some(Timestamp(160)),
        ..both.clone()
    };
    assert_eq!(
        bodies(store, &window).await,
        ["lunch at noon", "Lunch plans for Friday"]
    );
    assert!(bodies(store, &SearchFilter::default()).await.is_empty());
    assert!(
        bodies(store, &terms(&["lunch"])).await.is_empty(),
        "no rooms, nothing"
    );
    // Paged, newest first, by (time, id).
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .search_messages(
                &SearchFilter {
                    before: cursor,
                    ..both.clone()
                },
                1,
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some(MentionCursor {
            created_at: last.created_at,
            id: last.id,
        });
        seen.push(last.body.clone());
    }
    assert_eq!(seen, bodies(store, &both).await);

    // An edit is found by its new words only; a deletion by none.
    store
        .change_message(
            ids[2],
            &MessageChange::Edit {
                body: body("dinner at noon"),
                at: Timestamp(500),
                mentions: Vec::new(),
            },
        )
        .await
        .unwrap();
    store
        .change_message(ids[1], &MessageChange::Delete { at: Timestamp(501) })
        .await
        .unwrap();
    assert!(bodies(store, &in_room(terms(&["lunch"]))).await.is_empty());
    assert_eq!(
        bodies(store, &in_room(terms(&["dinner"]))).await,
        ["dinner at noon"]
    );
    assert_eq!(bodies(store, &in_room(prefix("pla", &[]))).await.len(), 2);
    // Reactions change no words.
    store
        .change_message(
            ids[3],
            &MessageChange::React {
                user: ana,
                emoji: app::domain::Emoji::parse("👍").unwrap(),
                on: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        bodies(store, &in_room(terms(&["changed"]))).await,
        ["plans changed"]
    );

    // Kept across a restart; a deleted room is gone from search.
    h.reopen().await;
    let store = h.store();
    assert_eq!(
        bodies(store, &in_room(terms(&["dinner"]))).await,
        ["dinner at noon"]
    );
    store.delete_room(room).await.unwrap();
    assert!(bodies(store, &in_room(terms(&["dinner"]))).await.is_empty());
    assert_eq!(bodies(store, &both).await, ["lunch elsewhere"]);
}

pub async fn search_sees_every_acknowledged_message_while_eight_write(h: &mut Harness) {
    const TASKS: usize = 8;
    const EACH: usize = 15;
    let store = h.shared();
    let (room, owner) = make_room(store.as_ref(), "busy search").await;
    let filter = SearchFilter {
        rooms: vec![room],
        ..terms(&["shared"])
    };
    let writers: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let mut m = message(
                        room,
                        owner,
                        &format!("w{task}-{i}"),
                        (task * 100 + i) as i64,
                    );
                    m.body = body(&format!("shared words from writer{task} number {i}"));
                    store.append_message(&m).await.expect("append");
                    // Acknowledged means findable.
                    let mine = SearchFilter {
                        rooms: vec![room],
                        ..terms(&[&format!("writer{task}"), &i.to_string()])
                    };
                    let found = store.search_messages(&mine, 5).await.expect("search");
                    assert_eq!(found.len(), 1, "writer {task} message {i}");
                }
            })
        })
        .collect();
    let reader = {
        let store = store.clone();
        let filter = filter.clone();
        tokio::spawn(async move {
            let mut last = 0;
            for _ in 0..30 {
                let found = store.search_messages(&filter, MAX_PAGE_SIZE).await.unwrap();
                assert!(found.iter().all(|m| m.body.contains("shared")));
                assert!(
                    found.len() >= last.min(MAX_PAGE_SIZE as usize),
                    "results never shrink"
                );
                last = found.len();
                tokio::task::yield_now().await;
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    reader.await.unwrap();
    let found = store.search_messages(&filter, MAX_PAGE_SIZE).await.unwrap();
    assert_eq!(found.len(), TASKS * EACH);
}

/// A prefix many words share (more than a store may follow word by word) still finds every message
/// with one of them, alone and with another word; pages stay newest first.
pub async fn search_by_a_prefix_of_many_words_finds_them_all(h: &mut Harness) {
    let (room, ana) = make_room(h.store(), "many").await;
    let store = h.store();
    for i in 0..90 {
        let mut m = message(room, ana, &format!("w{i}"), 1_000 + i);
        // Every third also has "lunch"; each has a word of its own starting with "zeta".
        let extra = if i % 3 == 0 { " lunch" } else { "" };
        m.body = body(&format!("zeta{i:03}{extra}"));
        store.append_message(&m).await.unwrap();
    }
    let filter = |words: &[&str]| SearchFilter {
        rooms: vec![room],
        prefix: Some("zeta".to_owned()),
        ..terms(words)
    };
    let expected = |step: usize| -> Vec<String> {
        (0..90)
            .rev()
            .filter(|i| i % step == 0)
            .map(|i| format!("zeta{i:03}{}", if i % 3 == 0 { " lunch" } else { "" }))
            .collect()
    };
    let mut alone = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .search_messages(
                &SearchFilter {
                    before: cursor,
                    ..filter(&[])
                },
                40,
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some(MentionCursor {
            created_at: last.created_at,
            id: last.id,
        });
        alone.extend(page.into_iter().map(|m| m.body));
    }
    assert_eq!(alone, expected(1));
    assert_eq!(bodies(store, &filter(&["lunch"])).await, expected(3));
    // A word of the prefix's that no message with "lunch" has.
    let one = SearchFilter {
        prefix: Some("zeta001".to_owned()),
        ..filter(&["lunch"])
    };
    assert!(bodies(store, &one).await.is_empty());
}
