//! A room's whole history as a client reads it, and the check that its sequences are 1..=N.

use super::Browser;
use app::model::RoomId;
use app::protocol::MessageView;
use std::collections::HashMap;

/// One page of history: the latest messages, or those before `before`; oldest first.
pub async fn history_page(
    browser: &mut Browser,
    room: RoomId,
    before: Option<u64>,
    ctx: &str,
) -> Vec<MessageView> {
    let path = match before {
        Some(before) => format!("/api/rooms/history?room={room}&before={before}"),
        None => format!("/api/rooms/history?room={room}"),
    };
    let answer = browser.get(&path).await;
    assert_eq!(answer.status, 200, "{ctx}: {path}: {answer:?}");
    serde_json::from_value(answer.body).expect("a page of messages")
}

/// The whole history, oldest first, read backwards page by page.
pub async fn full_history(browser: &mut Browser, room: RoomId, ctx: &str) -> Vec<MessageView> {
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = history_page(browser, room, before, ctx).await;
        let Some(first) = page.first() else { break };
        let first = first.seq;
        if let Some(before) = before {
            assert!(
                first < before,
                "{ctx}: history before {before} starts at {first}"
            );
        }
        pages.push(page);
        if first <= 1 {
            break;
        }
        before = Some(first);
    }
    pages.into_iter().rev().flatten().collect()
}

/// Sequences 1..=N in order, each once; otherwise says which are missing and which repeat.
pub fn assert_gap_free(seqs: &[u64], ctx: &str) {
    if seqs.iter().enumerate().all(|(i, seq)| *seq == i as u64 + 1) {
        return;
    }
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for seq in seqs {
        *counts.entry(*seq).or_default() += 1;
    }
    let top = seqs.iter().copied().max().unwrap_or(0);
    let missing: Vec<u64> = (1..=top).filter(|s| !counts.contains_key(s)).collect();
    let mut repeated: Vec<u64> = counts
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(seq, _)| *seq)
        .collect();
    repeated.sort_unstable();
    panic!(
        "{ctx}: history of {} messages is not 1..=N: missing {missing:?}, repeated {repeated:?}",
        seqs.len()
    );
}
