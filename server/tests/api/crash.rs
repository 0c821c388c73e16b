//! Crash durability. One client sends as fast as acks come back while the server process is killed
//! with SIGKILL at a random moment, then the server is restarted on the same store; `CRASH_ROUNDS`
//! times (default 20; the documented longer run is `CRASH_ROUNDS=100`). After every restart:
//!
//! - every acknowledged message is in the history, under the sequence and id its ack gave, with its
//!   body; the history holds nothing nobody sent;
//! - the sequences are 1..=N, each once, and no nonce is stored twice;
//! - re-sending nonces creates nothing new: every nonce acknowledged since the previous restart (and,
//!   after the last restart, every nonce of the whole run) gets its original ack again. A send that
//!   was never acknowledged may or may not have been stored: it is either found in the history (and
//!   its re-send returns that message) or stored exactly once, by its re-send, right after the end.
//!
//! Embedded: one data directory across restarts. MongoDB: one database across restarts; only the
//! server process dies, the database stays up.
//!
//! The kill delays come from a seeded generator: the seed is printed, and `CRASH_SEED` replays it.
//! `CRASH_LOG_DIR` keeps each server start's log there.
//!
//! ```text
//! cargo test -p server --test api crash:: -- --nocapture                  # 20 rounds per driver
//! CRASH_ROUNDS=100 cargo test -p server --test api crash::embedded -- --nocapture
//! ```

use crate::helpers::*;
use app::model::{MessageId, RoomId};
use app::protocol::{MessageView, ServerMsg};
use futures::SinkExt;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

on_both_drivers!(acknowledged_messages_survive_kill_9);

/// Sends in flight while the server may die.
const WINDOW: usize = 8;
/// Re-sends in flight (the server stays up meanwhile).
const RESEND_WINDOW: usize = 32;
/// Generous: a missing ack is a failure, a slow one is not.
const ACK_DEADLINE: Duration = Duration::from_secs(30);
const USERNAME: &str = "crasher";
const BODY_PREFIX: &str = "crash message ";

fn body_of(nonce: &str) -> String {
    format!("{BODY_PREFIX}{nonce}")
}

/// What the client knows about its sends.
#[derive(Default)]
struct Ledger {
    /// Nonce -> the sequence and id its ack gave (or, for a send that was never acknowledged, the
    /// message the history showed for it after the restart).
    acked: HashMap<String, (u64, MessageId)>,
    /// Sent, no ack before the kill: stored or not, the next restart tells.
    unknown: Vec<String>,
    /// Acknowledged since the last restart's re-sends: re-sent after the next restart.
    recent: Vec<String>,
    sent: u64,
    acked_live: u64,
    stored_unacked: u64,
    stored_by_resend: u64,
    resends: u64,
}

impl Ledger {
    fn record(&mut self, nonce: String, seq: u64, id: MessageId, ctx: &str) {
        let previous = self.acked.insert(nonce.clone(), (seq, id));
        assert!(previous.is_none(), "{ctx}: {nonce} acknowledged twice");
        self.recent.push(nonce);
    }
}

/// Where the store lives: the same place for every start of the run.
struct Deployment {
    kind: StoreKind,
    data_dir: tempfile::TempDir,
    database: String,
}

impl Deployment {
    fn new(kind: StoreKind) -> Self {
        Self {
            kind,
            data_dir: tempfile::tempdir().expect("temp dir"),
            database: fresh_database("crash"),
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            // Durability is measured here, not limits.
            ("MESSAGES_PER_10S", "1000000".to_owned()),
            ("REGISTRATIONS_PER_IP_PER_HOUR", "100000".to_owned()),
            ("CONNECTIONS_PER_ADDRESS", "100000".to_owned()),
            ("WEBSOCKETS_PER_ADDRESS", "100000".to_owned()),
        ];
        match self.kind {
            StoreKind::Embedded => {
                env.push(("DATA_DIR", self.data_dir.path().display().to_string()))
            }
            StoreKind::Mongo => {
                env.push(("MONGODB_URI", mongodb_uri()));
                env.push(("MONGODB_DB", self.database.clone()));
            }
        }
        env
    }

    async fn start(&self, label: &str) -> ServerProcess {
        let log = std::env::var_os("CRASH_LOG_DIR").map(|dir| {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).expect("CRASH_LOG_DIR");
            dir.join(format!("{}-{label}.log", driver(self.kind)))
        });
        ServerProcess::launch(&self.env(), log.as_deref()).await
    }
}

fn driver(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Embedded => "embedded",
        StoreKind::Mongo => "mongo",
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}"))
    })
}

async fn acknowledged_messages_survive_kill_9(kind: StoreKind) {
    let rounds = env_u64("CRASH_ROUNDS").unwrap_or(20);
    let seed = env_u64("CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let driver = driver(kind);
    eprintln!("crash ({driver}): {rounds} rounds, seed {seed} (CRASH_SEED={seed} replays the kill delays)");
    let mut rng = StdRng::seed_from_u64(seed);
    let deployment = Deployment::new(kind);
    let began = Instant::now();
    let mut ledger = Ledger::default();
    let mut room: Option<RoomId> = None;

    for round in 0..=rounds {
        let ctx = format!("{driver} round {round} of {rounds} (seed {seed})");
        let mut process = deployment.start(&format!("start-{round}")).await;
        let mut browser = Browser::at(&process);
        let room = match room {
            None => {
                let answer = browser.register(USERNAME, GOOD_PASSWORD).await;
                assert_eq!(answer.status, 200, "{ctx}: register: {answer:?}");
                let created = browser
                    .post(
                        "/api/rooms/create",
                        &[("name", "Crash"), ("topic", ""), ("private", "false")],
                    )
                    .await;
                assert_eq!(created.status, 200, "{ctx}: create the room: {created:?}");
                *room.insert(created.body["id"].as_str().unwrap().parse().unwrap())
            }
            Some(room) => {
                let answer = browser.login(USERNAME, GOOD_PASSWORD).await;
                assert_eq!(answer.status, 200, "{ctx}: log in again: {answer:?}");
                room
            }
        };
        let mut ws = WsClient::join(&browser, vec![]).await;
        synced(&mut ws, room).await;

        // What the previous incarnation acknowledged survived it; re-sending creates nothing new.
        check(
            &mut browser,
            &mut ws,
            room,
            &mut ledger,
            round == rounds,
            &ctx,
        )
        .await;
        if round == rounds {
            break;
        }

        // Send as fast as acks come back; die at a random moment.
        let delay = Duration::from_millis(rng.random_range(200..=1500));
        let killed = Arc::new(AtomicBool::new(false));
        let killer = {
            let killed = killed.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                killed.store(true, Ordering::SeqCst);
                process.kill().await;
                process
            })
        };
        send_until_killed(&mut ws, room, &mut ledger, round, &killed, &ctx).await;
        assert!(
            killed.load(Ordering::SeqCst),
            "{ctx}: the connection ended before the kill"
        );
        drop(killer.await.expect("the killer task"));
    }

    assert!(
        ledger.acked_live > 0,
        "no message was acknowledged before a kill"
    );
    eprintln!(
        "crash: {rounds} rounds, {} messages acknowledged, all present, gap-free, no duplicates \
         ({driver}; {} sent, {} unacknowledged ones found stored, {} stored by their re-send, {} re-sends \
         created nothing new; {} in the history; {:.1} s, seed {seed})",
        thousands(ledger.acked_live),
        thousands(ledger.sent),
        thousands(ledger.stored_unacked),
        thousands(ledger.stored_by_resend),
        thousands(ledger.resends - ledger.stored_by_resend),
        thousands(ledger.acked.len() as u64),
        began.elapsed().as_secs_f64(),
    );
}

/// Pipelines new sends (`WINDOW` in flight) and records their acks until the connection ends. Sends
/// still unanswered then are unknown.
async fn send_until_killed(
    ws: &mut WsClient,
    room: RoomId,
    ledger: &mut Ledger,
    round: u64,
    killed: &AtomicBool,
    ctx: &str,
) {
    let mut in_flight: Vec<String> = Vec::new();
    let mut n = 0u64;
    'sending: loop {
        while in_flight.len() < WINDOW {
            n += 1;
            let nonce = format!("r{round}-{n}");
            ledger.sent += 1;
            let sent = ws
                .socket
                .send(frame(&send(room, &nonce, &body_of(&nonce))))
                .await;
            // A frame whose write failed may still have reached the server: unknown as well.
            in_flight.push(nonce);
            if sent.is_err() {
                break 'sending;
            }
        }
        match ws.recv_within(ACK_DEADLINE).await {
            Ok(Some(ServerMsg::Ack { nonce, seq, id, .. })) => {
                let at = in_flight.iter().position(|n| *n == nonce);
                let at = at.unwrap_or_else(|| panic!("{ctx}: an ack for {nonce}, not in flight"));
                in_flight.swap_remove(at);
                ledger.acked_live += 1;
                ledger.record(nonce, seq, id, ctx);
            }
            Ok(Some(ServerMsg::Error {
                code,
                message,
                nonce,
                ..
            })) => panic!("{ctx}: a send was refused: {code:?} {message:?} ({nonce:?})"),
            Ok(Some(ServerMsg::Closing { reason })) => {
                panic!("{ctx}: the server closed the connection: {reason:?}")
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(()) => {
                assert!(
                    killed.load(Ordering::SeqCst),
                    "{ctx}: no answer within {ACK_DEADLINE:?} while the server was up"
                );
                break;
            }
        }
    }
    ledger.unknown.extend(in_flight);
}

/// Checks the history against the ledger, resolves the unknown sends, and re-sends: the recent nonces
/// (or, with `everything`, all of them) and the unknown ones.
async fn check(
    browser: &mut Browser,
    ws: &mut WsClient,
    room: RoomId,
    ledger: &mut Ledger,
    everything: bool,
    ctx: &str,
) {
    let history = full_history(browser, room, ctx).await;
    let seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
    assert_gap_free(&seqs, ctx);
    let n = history.len() as u64;

    let mut by_nonce: HashMap<&str, &MessageView> = HashMap::new();
    for message in &history {
        let nonce = message
            .body
            .strip_prefix(BODY_PREFIX)
            .unwrap_or_else(|| panic!("{ctx}: a message nobody sent: {message:?}"));
        if let Some(first) = by_nonce.insert(nonce, message) {
            panic!(
                "{ctx}: {nonce} is stored twice, at sequences {} and {}",
                first.seq, message.seq
            );
        }
        assert!(
            ledger.acked.contains_key(nonce) || ledger.unknown.iter().any(|u| u == nonce),
            "{ctx}: a message that was never sent: {message:?}"
        );
    }

    let mut missing = Vec::new();
    let mut moved = Vec::new();
    for (nonce, &(seq, id)) in &ledger.acked {
        match by_nonce.get(nonce.as_str()) {
            None => missing.push((nonce.clone(), seq)),
            Some(m) if m.seq != seq || m.id != id => {
                moved.push((nonce.clone(), (seq, id), (m.seq, m.id)))
            }
            Some(_) => {}
        }
    }
    missing.sort_by_key(|(_, seq)| *seq);
    assert!(
        missing.is_empty() && moved.is_empty(),
        "{ctx}: {} acknowledged messages missing (nonce, acked seq): {missing:?}; {} stored under \
         another sequence or id (nonce, acked, stored): {moved:?}; history has {n}",
        missing.len(),
        moved.len()
    );

    // The unknown sends: stored (then the history has them) or not (then their re-send stores them).
    let mut resolved = Vec::new();
    let mut to_store = Vec::new();
    for nonce in std::mem::take(&mut ledger.unknown) {
        match by_nonce.get(nonce.as_str()) {
            Some(m) => {
                ledger.acked.insert(nonce.clone(), (m.seq, m.id));
                ledger.stored_unacked += 1;
                resolved.push(nonce);
            }
            None => to_store.push(nonce),
        }
    }

    let mut resend: Vec<String> = if everything {
        ledger.recent.clear();
        let mut all: Vec<(&String, u64)> = ledger.acked.iter().map(|(k, v)| (k, v.0)).collect();
        all.sort_by_key(|(_, seq)| *seq);
        all.into_iter().map(|(nonce, _)| nonce.clone()).collect()
    } else {
        let mut recent = std::mem::take(&mut ledger.recent);
        recent.extend(resolved);
        recent
    };
    resend.extend(to_store.iter().cloned());
    let acks = send_all(ws, room, &resend, ctx).await;
    ledger.resends += resend.len() as u64;

    let mut new_seqs = Vec::new();
    for nonce in &resend {
        let (seq, id) = acks[nonce];
        match ledger.acked.get(nonce) {
            Some(&original) => assert_eq!(
                (seq, id),
                original,
                "{ctx}: re-sending {nonce} answered another message than its first ack"
            ),
            None => {
                new_seqs.push(seq);
                ledger.stored_by_resend += 1;
                ledger.record(nonce.clone(), seq, id, ctx);
            }
        }
    }
    new_seqs.sort_unstable();
    let created = to_store.len() as u64;
    assert_eq!(
        new_seqs,
        (n + 1..=n + created).collect::<Vec<_>>(),
        "{ctx}: the never-stored sends are stored once each, right after the history"
    );
    // And nothing else was created.
    let latest = history_page(browser, room, None, ctx).await;
    assert_eq!(
        latest.last().map_or(0, |m| m.seq),
        n + created,
        "{ctx}: re-sending {} nonces created messages beyond the {created} never stored",
        resend.len()
    );
}

/// Sends every nonce again (`RESEND_WINDOW` in flight) and returns each one's ack.
async fn send_all(
    ws: &mut WsClient,
    room: RoomId,
    nonces: &[String],
    ctx: &str,
) -> HashMap<String, (u64, MessageId)> {
    let mut acks = HashMap::new();
    let mut next = nonces.iter();
    let mut in_flight = 0usize;
    loop {
        while in_flight < RESEND_WINDOW {
            let Some(nonce) = next.next() else { break };
            ws.send(&send(room, nonce, &body_of(nonce))).await;
            in_flight += 1;
        }
        if in_flight == 0 {
            return acks;
        }
        match ws.recv_within(ACK_DEADLINE).await {
            Ok(Some(ServerMsg::Ack { nonce, seq, id, .. })) => {
                let previous = acks.insert(nonce.clone(), (seq, id));
                assert!(
                    previous.is_none(),
                    "{ctx}: two acks for the re-sent {nonce}"
                );
                in_flight -= 1;
            }
            Ok(Some(ServerMsg::Error {
                code,
                message,
                nonce,
                ..
            })) => panic!("{ctx}: a re-send was refused: {code:?} {message:?} ({nonce:?})"),
            Ok(Some(_)) => {}
            Ok(None) => panic!("{ctx}: the connection ended during the re-sends"),
            Err(()) => panic!("{ctx}: no ack within {ACK_DEADLINE:?} during the re-sends"),
        }
    }
}

/// 3412 -> "3,412".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
