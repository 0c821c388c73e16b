//! Search over the real server: only rooms the reader is in now, never deleted messages, the words,
//! the prefix, phrases and filters; bad queries are refused in words.

use crate::changes::{app_with_people, Witness};
use crate::helpers::*;

on_both_drivers!(
    search_covers_the_readers_rooms_only,
    search_refuses_bad_queries
);

/// The bodies found for `q` (anything after a `&` is passed on as more parameters).
async fn found(browser: &mut Browser, q: &str) -> Vec<String> {
    let (q, more) = q
        .split_once('&')
        .map_or((q, String::new()), |(q, m)| (q, format!("&{m}")));
    let path = format!("/api/search?q={}{more}", urlencode(q));
    let answer = browser.get(&path).await;
    assert_eq!(answer.status, 200, "{q}: {answer:?}");
    answer
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["message"]["body"].as_str().unwrap().to_owned())
        .collect()
}

fn urlencode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn search_covers_the_readers_rooms_only(kind: StoreKind) {
    let (_app, [mut ana, mut ben, mut carl]) = app_with_people(kind, ["ana", "ben", "carl"]).await;
    let open = public_room(&mut ana, &mut [&mut ben, &mut carl]).await;
    let private = ana
        .post(
            "/api/rooms/create",
            &[("name", "Secret"), ("topic", ""), ("private", "true")],
        )
        .await;
    assert_eq!(private.status, 200, "{private:?}");
    let private = private.body["id"].as_str().unwrap().parse().unwrap();
    let mut a = Witness::join(&ana, open).await;
    let mut c = Witness::join(&carl, open).await;
    a.say_text(open, "n1", "Lunch plans for Friday").await;
    c.say_text(
        open,
        "n2",
        "the release notes are out: https://example.com/notes",
    )
    .await;
    let doomed = a.say_text(open, "n3", "lunch is cancelled").await;
    a.say_text(private, "n4", "secret lunch plans").await;

    // Ben is in the open room only.
    assert_eq!(
        found(&mut ben, "lunch").await,
        ["lunch is cancelled", "Lunch plans for Friday"]
    );
    assert_eq!(
        found(&mut ben, "LUNCH pla").await,
        ["Lunch plans for Friday"]
    );
    assert_eq!(
        found(&mut ben, "\"release notes\" has:link").await,
        ["the release notes are out: https://example.com/notes"]
    );
    assert!(found(&mut ben, "\"notes release\"").await.is_empty());
    assert_eq!(found(&mut ben, "from:@carl notes").await.len(), 1);
    assert!(found(&mut ben, "from:@ana notes").await.is_empty());
    assert!(
        found(&mut ben, "secret").await.is_empty(),
        "not a member of the private room"
    );
    // Ana is in both; in: narrows to one.
    assert_eq!(found(&mut ana, "lunch").await.len(), 3);
    assert_eq!(
        found(&mut ana, "in:#Secret lunch").await,
        ["secret lunch plans"]
    );
    // From a room's header: that room only, and only for its members.
    let in_private = format!("lunch&room={private}");
    assert_eq!(found(&mut ana, &in_private).await, ["secret lunch plans"]);
    assert!(found(&mut ben, &in_private).await.is_empty());
    // A deleted message is never found.
    a.change(
        doomed.id,
        app::protocol::ClientMsg::Delete { id: doomed.id },
    )
    .await;
    assert_eq!(found(&mut ben, "lunch").await, ["Lunch plans for Friday"]);
    // Leaving a room takes its messages out of the results.
    let left = ben
        .post("/api/rooms/leave", &[("room", &open.to_string())])
        .await;
    assert_eq!(left.status, 200, "{left:?}");
    assert!(found(&mut ben, "lunch").await.is_empty());
}

async fn search_refuses_bad_queries(kind: StoreKind) {
    let (_app, [mut ana]) = app_with_people(kind, ["ana"]).await;
    let many: String = (0..20).map(|i| format!("w{i} ")).collect();
    for q in ["", "   ", "before:someday lunch", &many, &"x".repeat(300)] {
        let answer = ana.get(&format!("/api/search?q={}", urlencode(q))).await;
        assert_eq!(answer.status, 400, "{q:?}: {answer:?}");
    }
}
