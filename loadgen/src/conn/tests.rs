//! A connection against a small in-test server that speaks the protocol as a server without the
//! `watch` command does: what the connection counts, and what it sends with and without `--watch`.

use super::*;
use crate::stats::Errors;
use crate::ws::frames::{apply_mask, write_unmasked, OP_BINARY, OP_CLOSE, OP_PING};
use crate::ws::handshake;
use app::protocol::{encode_batch, encode_item, ErrorCode, Presence, PresenceChange};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

fn room() -> RoomId {
    RoomId::from_uuid(uuid::Uuid::from_u128(0xAB))
}

fn user(n: u128) -> UserId {
    UserId::from_uuid(uuid::Uuid::from_u128(0x100 + n))
}

fn shared(users: usize, watch: usize) -> Arc<Shared> {
    Arc::new(Shared {
        conns: (0..1).map(|_| ConnShared::default()).collect(),
        room_targets: vec![AtomicU64::new(0)],
        latency: SharedHistogram::new(1),
        ack_latency: SharedHistogram::new(1),
        senders: 0,
        rate: None,
        max_inflight: 4,
        body_size: 0,
        watch,
        members: Members::new(users, 1, 1, watch),
    })
}

fn message(room: RoomId, seq: u64, body: &str) -> ServerMsg {
    ServerMsg::Message {
        message: app::protocol::MessageView {
            id: app::model::MessageId::from_uuid(uuid::Uuid::from_u128(seq.into())),
            room,
            seq,
            rev: seq,
            author: user(0),
            author_name: "A".into(),
            author_username: "a".into(),
            author_avatar: None,
            body: body.into(),
            html: String::new(),
            created_at: app::model::Timestamp(0),
            edited_at: None,
            deleted: false,
            mentions: Vec::new(),
            reactions: Vec::new(),
            thread: None,
            replies: None,
            files: Vec::new(),
        },
    }
}

#[test]
fn a_batch_is_counted_item_by_item() {
    let mut t = Tally::new(0, room(), 10, shared(1, 0));
    t.inflight.push_back((4, 0));
    let changes = |n| ServerMsg::Presence {
        changes: (0..n)
            .map(|i| PresenceChange {
                user: user(i),
                presence: Presence::Online,
            })
            .collect(),
    };
    let items = [
        changes(3),
        changes(0),
        message(room(), 11, "lg 1 2 3"),
        message(RoomId::from_uuid(uuid::Uuid::from_u128(1)), 5, "x"),
        ServerMsg::Ack {
            nonce: "0-4".into(),
            room: room(),
            id: app::model::MessageId::from_uuid(uuid::Uuid::from_u128(1)),
            seq: 12,
        },
        ServerMsg::Ack {
            nonce: "0-99".into(),
            room: room(),
            id: app::model::MessageId::from_uuid(uuid::Uuid::from_u128(2)),
            seq: 13,
        },
        ServerMsg::Pong,
        ServerMsg::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            nonce: None,
            retry_after_ms: Some(5),
        },
    ];
    let frames: Vec<Vec<u8>> = items.iter().map(encode_item).collect();
    t.frame(&encode_batch(&frames));
    t.frame(b"\x07garbage");
    let c = &t.counts;
    assert_eq!((c.frames, c.items, c.slow_items), (2, 8, 0));
    assert_eq!((c.presence_frames, c.presence_changes), (2, 3));
    assert_eq!((c.delivered, c.foreign_messages, c.pongs), (1, 1, 1));
    assert_eq!((c.acked, t.acked_seqs.clone()), (1, vec![12]));
    assert!(t.inflight.is_empty());
    assert!(t.paused_until.is_some(), "rate_limited pauses the sender");
    let mut errors = Errors::default();
    errors.add("ack for an unknown nonce", 1);
    errors.add("error frame: RateLimited", 1);
    errors.add("undecodable frame", 1);
    assert_eq!(t.errors.0, errors.0);
    assert_eq!(t.deliveries.highest, 11);
}

/// A server without `watch`: welcome, synced (with message 8 after it in the same batch), pongs for
/// pings, an error frame for any command it does not know. Each client message is reported, and
/// answered (if at all) followed by the room's next message (9, 10, ...), so the test can tell when
/// the client has read the answers.
async fn old_server(listener: TcpListener, me: UserId, seen: mpsc::UnboundedSender<Vec<u8>>) {
    let (mut s, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let head = loop {
        let mut chunk = [0u8; 1024];
        let n = s.read(&mut chunk).await.unwrap();
        buf.extend_from_slice(&chunk[..n]);
        if let Some((head, ..)) = handshake::parse_request(&buf).unwrap() {
            break head;
        }
    };
    let key = handshake::parse_request(&buf).unwrap().unwrap().1;
    buf.drain(..head);
    let mut out = handshake::switching(&key);
    let welcome = encode_item(&ServerMsg::Welcome {
        user: me,
        heartbeat_secs: 20,
    });
    write_unmasked(&mut out, true, OP_BINARY, &welcome);
    let synced = encode_item(&ServerMsg::Synced {
        room: room(),
        last_seq: 7,
        rev: 7,
    });
    let batch = encode_batch(&[synced, encode_item(&message(room(), 8, "lg 1 1 1"))]);
    write_unmasked(&mut out, true, OP_BINARY, &batch);
    write_unmasked(&mut out, true, OP_PING, b"hi");
    s.write_all(&out).await.unwrap();
    let mut next_seq = 9;
    loop {
        while let Some((opcode, payload, used)) = client_frame(&buf) {
            buf.drain(..used);
            if opcode == OP_CLOSE {
                return;
            }
            if opcode != OP_BINARY {
                continue;
            }
            let json: serde_json::Value = serde_json::from_slice(&payload[1..]).unwrap();
            let answer = match json["type"].as_str() {
                Some("hello") => None,
                Some("ping") => Some(ServerMsg::Pong),
                _ => Some(ServerMsg::Error {
                    code: ErrorCode::Invalid,
                    message: "unknown command".into(),
                    nonce: None,
                    retry_after_ms: None,
                }),
            };
            let _ = seen.send(payload);
            let mut out = Vec::new();
            if let Some(answer) = answer {
                write_unmasked(&mut out, true, OP_BINARY, &encode_item(&answer));
            }
            let next = encode_item(&message(room(), next_seq, "lg 1 1 1"));
            write_unmasked(&mut out, true, OP_BINARY, &next);
            next_seq += 1;
            s.write_all(&out).await.unwrap();
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.unwrap();
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One masked client frame at the start of `buf`: (opcode, unmasked payload, bytes used).
fn client_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    assert_eq!(b1 & 0x80, 0x80, "client frames are masked");
    let (len, at) = match b1 & 0x7F {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().unwrap()) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let mask: [u8; 4] = buf.get(at..at + 4)?.try_into().unwrap();
    let mut payload = buf.get(at + 4..at + 4 + len)?.to_vec();
    apply_mask(&mut payload, mask);
    Some((b0 & 0x0F, payload, at + 4 + len))
}

/// Connects one connection (user 0 of `users`, all in one room) with `--watch watch` to the old
/// server, runs it until the server has seen `until` client messages, stops it; returns its report
/// and every message it sent.
async fn session(users: usize, watch: usize, until: usize) -> (Report, Vec<serde_json::Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let server = tokio::spawn(old_server(listener, user(0), seen_tx));
    let endpoint = Endpoint {
        addr,
        host: addr.to_string(),
        path: "/api/ws".into(),
        origin: format!("http://{addr}"),
        timeout: Duration::from_secs(10),
    };
    let established = open(&endpoint, addr.ip(), "", room()).await.unwrap();
    assert_eq!((established.base, established.user), (7, Some(user(0))));
    assert!(established.leftover.is_some(), "the message after synced");
    let shared = shared(users, watch);
    shared.members.connected(0, user(0));
    let spec = Spec {
        id: 0,
        user: 0,
        room_idx: 0,
        room: room(),
        source: addr.ip(),
        sender_rank: None,
    };
    let (phase_tx, phase_rx) = watch::channel(Phase::Wait);
    let run = tokio::spawn(run(spec, established, shared.clone(), phase_rx));
    let mut sent = Vec::new();
    while sent.len() < until {
        let payload = seen.recv().await.unwrap();
        sent.push(serde_json::from_slice(&payload[1..]).unwrap());
    }
    // The answers are read once the message after the last one is.
    let last = 8 + until as u64;
    while shared.conns[0]
        .highest_seq
        .load(std::sync::atomic::Ordering::Relaxed)
        < last
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    phase_tx.send_replace(Phase::Stop);
    let report = run.await.unwrap();
    server.await.unwrap();
    while let Ok(payload) = seen.try_recv() {
        sent.push(serde_json::from_slice(&payload[1..]).unwrap());
    }
    (report, sent)
}

fn kinds(sent: &[serde_json::Value]) -> Vec<&str> {
    sent.iter().map(|m| m["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn without_watch_an_old_server_sees_no_watch_and_the_run_is_clean() {
    let (report, sent) = session(3, 0, 2).await;
    assert_eq!(kinds(&sent), ["hello", "ping"]);
    assert!(report.errors.0.is_empty(), "{:?}", report.errors.0);
    assert!(report.open_at_end);
    assert_eq!((report.counts.watch_sent, report.counts.pongs), (0, 1));
    let v = report.deliveries.check_contiguous();
    assert_eq!(
        (v.expected, v.lost),
        (3, 0),
        "message 8, after synced, counts too"
    );
}

#[tokio::test]
async fn with_watch_one_watch_names_the_first_members_and_an_old_server_refuses_it() {
    // Users 0, 1, 2 in one room, --watch 2: users 0 and 1; user 1 has no connection (settled without
    // an id), so the watch names user 0 only.
    let (report, sent) = session(3, 2, 3).await;
    let mut names = kinds(&sent);
    names.sort_unstable();
    assert_eq!(names, ["hello", "ping", "watch"]);
    let watch = sent.iter().find(|m| m["type"] == "watch").unwrap();
    assert_eq!(watch["users"], serde_json::json!([user(0).to_string()]));
    assert_eq!(
        (report.counts.watch_sent, report.counts.watched_users),
        (1, 1)
    );
    assert_eq!(report.errors.0.get("error frame: Invalid"), Some(&1));
}
