//! A MongoDB outage while people are connected and sending. The app talks to MongoDB through a
//! `CuttableProxy`, which is cut for 10 s while Ana sends continuously (a small window of sends in
//! flight, unique nonces) and Ben, in the same room, reads. Meanwhile and afterwards:
//!
//! - the process stays up and `/healthz` answers 200 throughout; `/readyz` answers 503 during the
//!   outage and 200 again by itself once the database is back;
//! - sends that cannot be written are refused with `unavailable` (or not answered); Ana keeps every
//!   unacknowledged message and re-sends it under its nonce, as the browser does, until it is acked;
//! - nothing is acknowledged that was not written: every ack (before, during and after the outage)
//!   is in the history under the sequence and id it gave;
//! - the history holds each message exactly once, with sequences 1..=N, and Ben received each exactly
//!   once (live, plus the catch-up after a reconnect if his socket was closed).
//!
//! The websockets may stay open or be closed by the server; either way the clients reconnect with
//! their cursors, and the summary says which happened. Only generous deadlines for events, no
//! wall-clock thresholds.
//!
//! ```text
//! cargo test -p server --test api outage:: -- --nocapture
//! ```

use crate::helpers::*;
use app::model::{MessageId, RoomId};
use app::protocol::{ClientMsg, ErrorCode, MessageView, RoomCursor, ServerMsg};
use futures::SinkExt;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long MongoDB is unreachable (the outage's length, not a limit on anything).
const OUTAGE: Duration = Duration::from_secs(10);
/// Ana's sends in flight at once.
const WINDOW: usize = 4;
/// Messages Ana has typed and not yet had acknowledged, at most (she stops typing beyond this).
const MAX_UNACKED: usize = 32;
/// Ana types a new message at most this often.
const TYPING_PACE: Duration = Duration::from_millis(20);
/// After an `unavailable` refusal, a message is re-sent this much later.
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// A send unanswered for this long is re-sent (a browser would too); generous.
const NO_ANSWER: Duration = Duration::from_secs(30);
/// The clients' pings (the server closes sockets silent for 60 s).
const PING_EVERY: Duration = Duration::from_secs(15);
/// Generous deadlines for things that must happen, not measurements.
const EVENT_DEADLINE: Duration = Duration::from_secs(60);
const RECOVERY_DEADLINE: Duration = Duration::from_secs(120);
/// Acks Ana must have before the cut, and after the restore before she stops typing.
const ACKS_BEFORE: usize = 20;
const ACKS_AFTER: usize = 20;
const BODY_PREFIX: &str = "outage message ";

fn body_of(nonce: &str) -> String {
    format!("{BODY_PREFIX}{nonce}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Before = 0,
    During = 1,
    After = 2,
}

impl Phase {
    fn of(shared: &AtomicU8) -> Phase {
        match shared.load(Ordering::SeqCst) {
            0 => Phase::Before,
            1 => Phase::During,
            _ => Phase::After,
        }
    }
}

/// Whether Ana still types new messages, or only gets the ones she has acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Typing,
    Draining,
}

/// What one client's websocket went through.
#[derive(Debug, Default)]
struct SocketLog {
    /// Each time the server ended the socket: the phase, and the `closing` reason if one came first.
    closes: Vec<String>,
    reconnects: u32,
    /// Upgrade attempts refused (status), or accepted and closed before the welcome (0).
    refused_upgrades: Vec<u16>,
    /// `error` frames without a nonce (a failed hello or gap fill), with their code.
    other_errors: Vec<String>,
}

impl SocketLog {
    fn describe(&self) -> String {
        if self.closes.is_empty() {
            "stayed open".to_owned()
        } else {
            format!(
                "closed {} time(s) [{}], reconnected {} time(s) (upgrade attempts refused: {:?})",
                self.closes.len(),
                self.closes.join(", "),
                self.reconnects,
                self.refused_upgrades
            )
        }
    }
}

struct Acked {
    seq: u64,
    id: MessageId,
    phase: Phase,
}

/// What Ana knows about her messages; shared with the test's main task.
#[derive(Default)]
struct Ledger {
    /// Every nonce she typed, in order.
    typed: Vec<String>,
    acked: HashMap<String, Acked>,
    /// `Send` frames written, re-sends included.
    frames: u64,
    /// `unavailable` refusals of her sends, by the phase they arrived in.
    unavailable: [u64; 3],
    /// When the first refusal arrived, counted from the cut, and what it said.
    first_unavailable_after_cut: Option<Duration>,
    first_unavailable_message: Option<String>,
    /// The longest a send waited for its answer (ack or refusal), and the phase that answer came in.
    longest_wait: (Duration, Option<Phase>),
    /// Messages first sent after the cut and acknowledged before the restore (none possible).
    acked_while_unreachable: Vec<String>,
    /// Messages sent at least once and not acknowledged (kept, to be re-sent): Ana keeps it current.
    sent_unacked: usize,
    /// Sends re-sent because they went unanswered for `NO_ANSWER`.
    unanswered: u64,
    /// Refusals other than `unavailable` (none expected): code, nonce, message.
    unexpected_refusals: Vec<String>,
    /// A second ack for a nonce that named another message than the first (none expected).
    conflicting_acks: Vec<String>,
}

impl Ledger {
    fn note_wait(&mut self, sent_at: Option<Instant>, phase: Phase) {
        if let Some(waited) = sent_at.map(|at| at.elapsed()) {
            if waited > self.longest_wait.0 {
                self.longest_wait = (waited, Some(phase));
            }
        }
    }

    fn acked_in(&self, phase: Phase) -> usize {
        self.acked.values().filter(|a| a.phase == phase).count()
    }
}

/// The shared clock marks of the outage.
struct Clock {
    phase: AtomicU8,
    cut_at: Mutex<Option<Instant>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_outage_keeps_unacked_messages_and_recovers_by_itself() {
    let uri = mongodb_uri();
    let proxy = CuttableProxy::start(mongodb_host_port(&uri)).await;
    let via_proxy = mongodb_uri_via(&uri, &format!("127.0.0.1:{}", proxy.port));
    let app = spawn_app_with(
        StoreKind::Mongo,
        &[
            ("MONGODB_URI", via_proxy),
            ("MESSAGES_PER_10S", "1000000".into()),
        ],
    )
    .await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    let mut ana = Browser::new(&app);
    let registered = ana.register("ana", GOOD_PASSWORD).await;
    assert_eq!(registered.status, 200, "{registered:?}");
    let mut ben = Browser::new(&app);
    let registered = ben.register("ben", GOOD_PASSWORD).await;
    assert_eq!(registered.status, 200, "{registered:?}");
    let created = ana
        .post(
            "/api/rooms/create",
            &[("name", "Outage"), ("topic", ""), ("private", "false")],
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let room_text = created.body["id"].as_str().unwrap().to_owned();
    let joined = ben.post("/api/rooms/join", &[("room", &room_text)]).await;
    assert_eq!(joined.status, 200, "{joined:?}");
    let room: RoomId = room_text.parse().unwrap();

    let mut ana_ws = WsClient::join(&ana, vec![]).await;
    assert_eq!(synced(&mut ana_ws, room).await, 0);
    let mut ben_ws = WsClient::join(&ben, vec![]).await;
    assert_eq!(synced(&mut ben_ws, room).await, 0);

    let clock = Arc::new(Clock {
        phase: AtomicU8::new(Phase::Before as u8),
        cut_at: Mutex::new(None),
    });
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (mode_tx, mode_rx) = watch::channel(Mode::Typing);
    let (target_tx, target_rx) = watch::channel(None::<u64>);
    let ana_task = tokio::spawn(ana_sends(
        ana,
        ana_ws,
        room,
        ledger.clone(),
        clock.clone(),
        mode_rx,
    ));
    let ben_task = tokio::spawn(ben_reads(ben, ben_ws, room, clock.clone(), target_rx));

    // Ana is sending and being acknowledged.
    wait_for(&ledger, "acks before the cut", |l| {
        l.acked.len() >= ACKS_BEFORE
    })
    .await;

    // The outage.
    clock.phase.store(Phase::During as u8, Ordering::SeqCst);
    proxy.cut();
    let cut_at = Instant::now();
    *clock.cut_at.lock().unwrap() = Some(cut_at);
    let mut readyz_503_after = None;
    let mut readyz_reason = serde_json::Value::Null;
    let mut healthz_checks = 0u32;
    loop {
        assert!(
            !app.server.is_finished(),
            "the server stopped during the outage: {:?}",
            app.server
        );
        let health = http_status(&app, "/healthz").await;
        assert_eq!(health, 200, "/healthz during the outage");
        healthz_checks += 1;
        if readyz_503_after.is_none() {
            let ready = tokio::time::timeout(EVENT_DEADLINE, app.get("/readyz"))
                .await
                .expect("/readyz answers during the outage");
            let status = ready.status().as_u16();
            assert!(
                status == 200 || status == 503,
                "/readyz during the outage: {status}"
            );
            if status == 503 {
                readyz_503_after = Some(cut_at.elapsed());
                let body: serde_json::Value = ready.json().await.unwrap();
                assert_eq!(body["status"], "unavailable", "{body}");
                readyz_reason = body["reason"].clone();
            }
        }
        // The outage lasts OUTAGE; should /readyz take longer to notice, it lasts until it has.
        if cut_at.elapsed() >= OUTAGE && readyz_503_after.is_some() {
            break;
        }
        assert!(
            cut_at.elapsed() < EVENT_DEADLINE,
            "/readyz still not 503 after {EVENT_DEADLINE:?} of outage"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let outage_lasted = cut_at.elapsed();
    let (refused_during, sent_unacked_at_restore, unacked_at_restore) = {
        let ledger = ledger.lock().unwrap();
        (
            ledger.unavailable[Phase::During as usize],
            ledger.sent_unacked,
            ledger.typed.len() - ledger.acked.len(),
        )
    };
    proxy.restore();
    clock.phase.store(Phase::After as u8, Ordering::SeqCst);
    let restored_at = Instant::now();

    // Back by itself: readiness, then Ana's messages.
    let readyz_200_after = loop {
        assert!(
            !app.server.is_finished(),
            "the server stopped after the restore"
        );
        assert_eq!(
            http_status(&app, "/healthz").await,
            200,
            "/healthz after the restore"
        );
        if http_status(&app, "/readyz").await == 200 {
            break restored_at.elapsed();
        }
        assert!(
            restored_at.elapsed() < RECOVERY_DEADLINE,
            "/readyz still not 200 {RECOVERY_DEADLINE:?} after MongoDB came back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    wait_for(&ledger, "acks after the restore", |l| {
        l.acked_in(Phase::After) >= ACKS_AFTER
    })
    .await;
    // Ana stops typing; everything she typed gets acknowledged by re-sending.
    mode_tx.send(Mode::Draining).unwrap();
    let (mut ana, ana_log) = match ana_task.await {
        Ok(done) => done,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    let all_acked_after = restored_at.elapsed();

    // The history: each message once, 1..=N, every ack in it as given.
    let history = full_history(&mut ana, room, "outage").await;
    let n = history.len() as u64;
    target_tx.send(Some(n)).unwrap();
    let seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
    assert_gap_free(&seqs, "outage");
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    let typed: HashSet<&str> = ledger.typed.iter().map(String::as_str).collect();
    let mut stored: HashMap<&str, &MessageView> = HashMap::new();
    for message in &history {
        let nonce = message
            .body
            .strip_prefix(BODY_PREFIX)
            .unwrap_or_else(|| panic!("a message nobody sent: {message:?}"));
        assert!(
            typed.contains(nonce),
            "a message Ana never typed: {message:?}"
        );
        if let Some(first) = stored.insert(nonce, message) {
            panic!(
                "{nonce} is stored twice, at sequences {} and {}",
                first.seq, message.seq
            );
        }
    }
    let mut not_written = Vec::new();
    let mut moved = Vec::new();
    for (nonce, ack) in &ledger.acked {
        match stored.get(nonce.as_str()) {
            None => not_written.push((nonce.clone(), ack.seq, ack.phase)),
            Some(m) if m.seq != ack.seq || m.id != ack.id => {
                moved.push((nonce.clone(), ack.phase, (ack.seq, ack.id), (m.seq, m.id)))
            }
            Some(_) => {}
        }
    }
    assert!(
        not_written.is_empty() && moved.is_empty(),
        "acknowledged but not in the history (nonce, acked seq, phase): {not_written:?}; stored \
         under another sequence or id than acked (nonce, phase, acked, stored): {moved:?}"
    );
    assert_eq!(
        ledger.acked.len(),
        ledger.typed.len(),
        "every message Ana typed was acknowledged"
    );
    assert_eq!(
        n,
        ledger.typed.len() as u64,
        "the history holds exactly the messages Ana typed"
    );
    assert!(
        ledger.unexpected_refusals.is_empty(),
        "refusals other than `unavailable`: {:?}",
        ledger.unexpected_refusals
    );
    assert!(
        ledger.conflicting_acks.is_empty(),
        "a re-sent nonce was acknowledged as another message: {:?}",
        ledger.conflicting_acks
    );
    assert!(
        ledger.acked_while_unreachable.is_empty(),
        "acknowledged while MongoDB was unreachable, although first sent after the cut: {:?}",
        ledger.acked_while_unreachable
    );
    // The "can't send right now" state: sends refused with `unavailable`, or sent and still waiting
    // (kept for a re-send) when MongoDB came back.
    assert!(
        refused_during + sent_unacked_at_restore as u64 > 0,
        "no send was refused or left waiting although MongoDB was unreachable for {outage_lasted:?}"
    );

    // Ben: every message exactly once, in order.
    let (_ben, ben_log, received) = match ben_task.await {
        Ok(done) => done,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    let expected: Vec<(u64, String)> = history.iter().map(|m| (m.seq, m.body.clone())).collect();
    if received != expected {
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for (seq, _) in &received {
            *counts.entry(*seq).or_default() += 1;
        }
        let missing: Vec<u64> = (1..=n).filter(|s| !counts.contains_key(s)).collect();
        let repeated: Vec<u64> = counts
            .iter()
            .filter(|(_, c)| **c > 1)
            .map(|(s, _)| *s)
            .collect();
        let out_of_order = received.windows(2).filter(|w| w[1].0 <= w[0].0).count();
        panic!(
            "Ben received {} messages, the history has {n}: missing {missing:?}, repeated \
             {repeated:?}, {out_of_order} out of order; his socket {}",
            received.len(),
            ben_log.describe()
        );
    }
    assert!(!app.server.is_finished(), "the server is still running");

    eprintln!(
        "outage: MongoDB unreachable for {:.1} s; {} messages sent ({} send frames incl. re-sends), \
         all acked and in the history once, seqs 1..={n}, Ben got each once",
        outage_lasted.as_secs_f64(),
        ledger.typed.len(),
        ledger.frames,
    );
    eprintln!(
        "outage: acked before/during/after the outage: {}/{}/{}; unavailable errors seen \
         before/during/after: {}/{}/{} (first {} after the cut: {:?}); re-sent unanswered: {}; \
         longest wait for an answer {:.1} s (answered {:?}); at the restore {unacked_at_restore} \
         typed messages unacked, {sent_unacked_at_restore} of them sent at least once",
        ledger.acked_in(Phase::Before),
        ledger.acked_in(Phase::During),
        ledger.acked_in(Phase::After),
        ledger.unavailable[0],
        ledger.unavailable[1],
        ledger.unavailable[2],
        ledger
            .first_unavailable_after_cut
            .map_or("none".to_owned(), |d| format!("{:.1} s", d.as_secs_f64())),
        ledger.first_unavailable_message.as_deref().unwrap_or(""),
        ledger.unanswered,
        ledger.longest_wait.0.as_secs_f64(),
        ledger.longest_wait.1,
    );
    eprintln!(
        "outage: /readyz 503 ({readyz_reason}) {:.1} s after the cut, 200 again {:.1} s after the restore; all acked \
         {:.1} s after the restore; /healthz 200 at all {healthz_checks} checks during the outage",
        readyz_503_after.unwrap().as_secs_f64(),
        readyz_200_after.as_secs_f64(),
        all_acked_after.as_secs_f64(),
    );
    eprintln!(
        "outage: Ana's socket {}; Ben's socket {}; error frames without a nonce: ana {:?}, ben {:?}",
        ana_log.describe(),
        ben_log.describe(),
        ana_log.other_errors,
        ben_log.other_errors,
    );
    app.stop().await.unwrap();
}

/// One message Ana typed and has no ack for yet.
struct Unacked {
    nonce: String,
    /// When it was last sent on the current socket, if it is waiting for an answer.
    in_flight_since: Option<Instant>,
    /// When it was first sent (on any socket).
    first_sent: Option<Instant>,
    /// When it may be (re-)sent.
    due: Instant,
}

/// Ana types (while `mode` says so) and sends, keeping every unacknowledged message and re-sending it
/// after a refusal, an unanswered wait or a reconnect, until all are acknowledged once draining.
async fn ana_sends(
    browser: Browser,
    mut ws: WsClient,
    room: RoomId,
    ledger: Arc<Mutex<Ledger>>,
    clock: Arc<Clock>,
    mode: watch::Receiver<Mode>,
) -> (Browser, SocketLog) {
    let mut log = SocketLog::default();
    let mut unacked: Vec<Unacked> = Vec::new();
    let mut typed = 0u64;
    let mut next_typing = Instant::now();
    let mut last_ping = Instant::now();
    let mut drain_started: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let draining = *mode.borrow() == Mode::Draining;
        if draining {
            let started = *drain_started.get_or_insert(now);
            if unacked.is_empty() {
                break;
            }
            assert!(
                started.elapsed() < RECOVERY_DEADLINE,
                "{} of Ana's messages still unacknowledged {RECOVERY_DEADLINE:?} after she stopped \
                 typing (MongoDB is back): {:?}",
                unacked.len(),
                unacked.iter().map(|u| &u.nonce).collect::<Vec<_>>()
            );
        }
        // Unanswered for too long: send again.
        for u in &mut unacked {
            if u.in_flight_since
                .is_some_and(|at| at.elapsed() >= NO_ANSWER)
            {
                u.in_flight_since = None;
                u.due = now;
                ledger.lock().unwrap().unanswered += 1;
            }
        }
        if !draining && unacked.len() < MAX_UNACKED && now >= next_typing {
            typed += 1;
            let nonce = format!("m{typed}");
            ledger.lock().unwrap().typed.push(nonce.clone());
            unacked.push(Unacked {
                nonce,
                in_flight_since: None,
                first_sent: None,
                due: now,
            });
            next_typing = now + TYPING_PACE;
        }
        // Oldest first, at most WINDOW in flight.
        let mut closed = false;
        let mut in_flight = unacked
            .iter()
            .filter(|u| u.in_flight_since.is_some())
            .count();
        for u in &mut unacked {
            if in_flight >= WINDOW {
                break;
            }
            if u.in_flight_since.is_some() || u.due > now {
                continue;
            }
            ledger.lock().unwrap().frames += 1;
            u.in_flight_since = Some(now);
            u.first_sent.get_or_insert(now);
            in_flight += 1;
            if ws
                .socket
                .send(frame(&send(room, &u.nonce, &body_of(&u.nonce))))
                .await
                .is_err()
            {
                closed = true;
                break;
            }
        }
        ledger.lock().unwrap().sent_unacked =
            unacked.iter().filter(|u| u.first_sent.is_some()).count();
        if !closed && last_ping.elapsed() >= PING_EVERY {
            last_ping = Instant::now();
            closed = ws.socket.send(frame(&ClientMsg::Ping)).await.is_err();
        }
        if !closed {
            match ws.recv_within(Duration::from_millis(100)).await {
                Ok(Some(ServerMsg::Ack { nonce, seq, id, .. })) => {
                    let mut ledger = ledger.lock().unwrap();
                    if let Some(at) = unacked.iter().position(|u| u.nonce == nonce) {
                        let answered = unacked.remove(at);
                        let phase = Phase::of(&clock.phase);
                        ledger.note_wait(answered.in_flight_since, phase);
                        // Typed and first sent while MongoDB was unreachable, yet acknowledged before
                        // it came back: it cannot have been written.
                        let cut_at = *clock.cut_at.lock().unwrap();
                        if phase == Phase::During
                            && cut_at
                                .is_some_and(|cut| answered.first_sent.is_some_and(|f| f > cut))
                        {
                            ledger
                                .acked_while_unreachable
                                .push(format!("{nonce} (seq {seq})"));
                        }
                        ledger.acked.insert(nonce, Acked { seq, id, phase });
                    } else {
                        // A second answer to a send re-sent after going unanswered.
                        let first = ledger
                            .acked
                            .get(&nonce)
                            .unwrap_or_else(|| panic!("an ack for {nonce}, which Ana never sent"));
                        if (first.seq, first.id) != (seq, id) {
                            let conflict = format!(
                                "{nonce}: first ({}, {}), then ({seq}, {id})",
                                first.seq, first.id
                            );
                            ledger.conflicting_acks.push(conflict);
                        }
                    }
                }
                Ok(Some(ServerMsg::Error {
                    code,
                    message,
                    nonce: Some(nonce),
                    retry_after_ms,
                })) => {
                    let mut ledger = ledger.lock().unwrap();
                    let retry_in = if code == ErrorCode::Unavailable {
                        let phase = Phase::of(&clock.phase);
                        ledger.unavailable[phase as usize] += 1;
                        if ledger.first_unavailable_after_cut.is_none() {
                            ledger.first_unavailable_after_cut =
                                clock.cut_at.lock().unwrap().map(|at| at.elapsed());
                            ledger.first_unavailable_message = Some(message);
                        }
                        RETRY_AFTER
                    } else {
                        ledger
                            .unexpected_refusals
                            .push(format!("{code:?} {nonce}: {message}"));
                        Duration::from_millis(retry_after_ms.unwrap_or(500))
                    };
                    if let Some(u) = unacked.iter_mut().find(|u| u.nonce == nonce) {
                        ledger.note_wait(u.in_flight_since, Phase::of(&clock.phase));
                        u.in_flight_since = None;
                        u.due = Instant::now() + retry_in;
                    }
                }
                Ok(Some(ServerMsg::Error { code, message, .. })) => {
                    log.other_errors.push(format!("{code:?}: {message}"));
                }
                Ok(Some(ServerMsg::Closing { reason })) => {
                    log.closes
                        .push(format!("{:?}: {reason:?}", Phase::of(&clock.phase)));
                    // The end of the socket follows.
                }
                Ok(Some(_)) => {}
                Ok(None) => closed = true,
                Err(()) => {}
            }
        }
        if closed {
            let phase = Phase::of(&clock.phase);
            let announced = log
                .closes
                .last()
                .is_some_and(|c| c.starts_with(&format!("{phase:?}:")));
            if !announced {
                log.closes
                    .push(format!("{phase:?}: ended without a notice"));
            }
            // Whatever was in flight on the old socket is sent again on the new one.
            for u in &mut unacked {
                u.in_flight_since = None;
            }
            ws = reconnect(&browser, vec![], &mut log).await;
        }
    }
    ws.close().await;
    (browser, log)
}

/// Ben reads the room, pinging now and then and reconnecting with his cursor if the socket ends,
/// until he has the room up to the `target` sequence (or a generous deadline passed since it was set).
async fn ben_reads(
    browser: Browser,
    mut ws: WsClient,
    room: RoomId,
    clock: Arc<Clock>,
    target: watch::Receiver<Option<u64>>,
) -> (Browser, SocketLog, Vec<(u64, String)>) {
    let mut log = SocketLog::default();
    let mut received: Vec<(u64, String)> = Vec::new();
    let mut cursor = 0u64;
    let mut target_set_at: Option<Instant> = None;
    let mut last_ping = Instant::now();
    let mut synced_now = true;
    loop {
        if let Some(target) = *target.borrow() {
            let at = *target_set_at.get_or_insert_with(Instant::now);
            if cursor >= target || at.elapsed() >= RECOVERY_DEADLINE {
                break;
            }
        }
        let mut closed = false;
        if last_ping.elapsed() >= PING_EVERY {
            last_ping = Instant::now();
            closed = ws.socket.send(frame(&ClientMsg::Ping)).await.is_err();
        }
        if !closed {
            match ws.recv_within(Duration::from_millis(100)).await {
                Ok(Some(ServerMsg::Message { message })) if message.room == room => {
                    cursor = cursor.max(message.seq);
                    received.push((message.seq, message.body));
                }
                Ok(Some(ServerMsg::Synced { room: r, .. })) if r == room => synced_now = true,
                Ok(Some(ServerMsg::Error { code, message, .. })) => {
                    log.other_errors
                        .push(format!("{:?} {code:?}: {message}", Phase::of(&clock.phase)));
                    // A hello the store could not answer: this socket gets no live events; start over.
                    if !synced_now {
                        log.closes.push(format!(
                            "{:?}: hello refused, closed by the client",
                            Phase::of(&clock.phase)
                        ));
                        let _ = ws.socket.close(None).await;
                        closed = true;
                    }
                }
                Ok(Some(ServerMsg::Closing { reason })) => {
                    log.closes
                        .push(format!("{:?}: {reason:?}", Phase::of(&clock.phase)));
                }
                Ok(Some(_)) => {}
                Ok(None) => closed = true,
                Err(()) => {}
            }
        }
        if closed {
            let phase = Phase::of(&clock.phase);
            let announced = log
                .closes
                .last()
                .is_some_and(|c| c.starts_with(&format!("{phase:?}:")));
            if !announced {
                log.closes
                    .push(format!("{phase:?}: ended without a notice"));
            }
            // Only sends here: revisions follow sequences.
            let cursors = vec![RoomCursor {
                room,
                last_seq: cursor,
                rev: cursor,
            }];
            ws = reconnect(&browser, cursors, &mut log).await;
            synced_now = false;
        }
    }
    ws.close().await;
    (browser, log, received)
}

/// Connects again with backoff until the server welcomes the socket, then says hello with `cursors`.
async fn reconnect(browser: &Browser, cursors: Vec<RoomCursor>, log: &mut SocketLog) -> WsClient {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(250);
    loop {
        assert!(
            started.elapsed() < RECOVERY_DEADLINE,
            "could not reconnect within {RECOVERY_DEADLINE:?} (refused: {:?})",
            log.refused_upgrades
        );
        match WsClient::connect(browser).await {
            Ok(mut ws) => match ws.recv_within(EVENT_DEADLINE).await {
                Ok(Some(ServerMsg::Welcome { .. })) => {
                    // A failed write shows as a closed socket at the next read.
                    let _ = ws
                        .socket
                        .send(frame(&ClientMsg::Hello {
                            cursors,
                            batches: false,
                        }))
                        .await;
                    log.reconnects += 1;
                    return ws;
                }
                Ok(other) => {
                    assert!(other.is_none(), "the first frame is a welcome: {other:?}");
                    log.refused_upgrades.push(0);
                }
                Err(()) => panic!("no welcome within {EVENT_DEADLINE:?} after an upgrade"),
            },
            Err(status) => log.refused_upgrades.push(status),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Waits (generously) until Ana's ledger satisfies `done`.
async fn wait_for(ledger: &Mutex<Ledger>, what: &str, done: impl Fn(&Ledger) -> bool) {
    let started = Instant::now();
    loop {
        {
            let ledger = ledger.lock().unwrap();
            if done(&ledger) {
                return;
            }
            assert!(
                started.elapsed() < RECOVERY_DEADLINE,
                "{what}: not reached within {RECOVERY_DEADLINE:?} ({} typed, {} acked)",
                ledger.typed.len(),
                ledger.acked.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The status of a GET, which must come within a generous deadline.
async fn http_status(app: &TestApp, path: &str) -> u16 {
    tokio::time::timeout(EVENT_DEADLINE, app.get(path))
        .await
        .unwrap_or_else(|_| panic!("{path} did not answer within {EVENT_DEADLINE:?}"))
        .status()
        .as_u16()
}
