//! One websocket connection: connect from a chosen source address, say hello, wait for its room's
//! `synced`, then (as a sender) send on schedule and (always) record every delivery in its room.
//! Everything it counts stays local until it ends; only a few relaxed atomics are shared, for progress
//! and for knowing when deliveries have caught up.

use crate::stats::{due_offset_nanos, Batch, Counts, Deliveries, Errors, SharedHistogram};
use crate::wire::{self, Frame, MessageField};
use app::model::RoomId;
use app::protocol::{ClientMsg, ServerMsg, HEARTBEAT_SECS};
use futures::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{
    client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig, Error as WsError,
    Message,
};
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// What the main task tells every connection.
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    /// Connected; wait (heartbeats only).
    Wait,
    /// Send (if a sender) from `start` to `send_until`.
    Run(Plan),
    /// Close and report.
    Stop,
}

#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub start: Instant,
    pub send_until: Instant,
    /// The measured window, in Unix nanoseconds: messages sent inside it count for latency and
    /// throughput.
    pub measure_from_ns: u64,
    pub measure_to_ns: u64,
}

impl Plan {
    fn measured(&self, sent_ns: u64) -> bool {
        (self.measure_from_ns..self.measure_to_ns).contains(&sent_ns)
    }
}

/// Per-connection values other tasks read: progress, and whether its deliveries have caught up. Each
/// is written only by its own connection; aligned so neighbours do not share a cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct ConnShared {
    pub highest_seq: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub delivered: AtomicU64,
    pub open: AtomicBool,
    /// A sender that is sending or still waiting for acks.
    pub busy_sending: AtomicBool,
}

/// Settings and shared state of the run.
pub struct Shared {
    pub conns: Vec<ConnShared>,
    /// Per room, the highest acknowledged sequence, published by each sender when it is done.
    pub room_targets: Vec<AtomicU64>,
    pub latency: SharedHistogram,
    pub ack_latency: SharedHistogram,
    pub senders: usize,
    pub rate: Option<f64>,
    pub max_inflight: usize,
    pub body_size: usize,
}

/// Who a connection is.
#[derive(Debug, Clone)]
pub struct Spec {
    pub id: u32,
    pub user: usize,
    pub room_idx: usize,
    pub room: RoomId,
    pub source: IpAddr,
    /// This connection's rank among the senders, if it sends.
    pub sender_rank: Option<usize>,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// `ws://host:port/api/ws`, with the host as given in --url.
    pub url: String,
    pub origin: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ConnectError {
    pub kind: String,
    pub detail: String,
    pub unauthorized: bool,
}

impl ConnectError {
    fn new(kind: impl Into<String>, detail: impl ToString) -> Self {
        Self {
            kind: kind.into(),
            detail: detail.to_string(),
            unauthorized: false,
        }
    }
}

/// A connection ready for live events.
pub struct Established {
    pub ws: Ws,
    /// The `last_seq` of its room's `synced`: it must receive every later message exactly once.
    pub base: u64,
    /// TCP connect + websocket upgrade.
    pub upgrade: Duration,
    /// From the start to its room's `synced`.
    pub ready: Duration,
}

/// Connects, upgrades, says hello and waits for `synced` in `room`.
pub async fn open(
    endpoint: &Endpoint,
    source: IpAddr,
    cookies: &str,
    room: RoomId,
) -> Result<Established, ConnectError> {
    let started = Instant::now();
    let socket = if endpoint.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| ConnectError::new(io_kind("socket", &e), e))?;
    // Binding first picks the source address; port 0 lets the kernel choose the port.
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| ConnectError::new(io_kind("bind", &e), e))?;
    let stream = socket
        .connect(endpoint.addr)
        .await
        .map_err(|e| ConnectError::new(io_kind("tcp connect", &e), e))?;
    let _ = stream.set_nodelay(true);

    let mut request = endpoint
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::new("bad request", e))?;
    let headers = request.headers_mut();
    headers.insert(
        "origin",
        HeaderValue::from_str(&endpoint.origin).map_err(|e| ConnectError::new("bad origin", e))?,
    );
    headers.insert(
        "cookie",
        HeaderValue::from_str(cookies).map_err(|e| ConnectError::new("bad cookie", e))?,
    );
    // Small read buffers: 20,000 idle connections should not cost loadgen gigabytes.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| match e {
            WsError::Http(response) => {
                let status = response.status().as_u16();
                ConnectError {
                    kind: format!("upgrade: http {status}"),
                    detail: format!(
                        "upgrade answered {status}: {}",
                        response
                            .body()
                            .as_ref()
                            .map(|b| String::from_utf8_lossy(b).into_owned())
                            .unwrap_or_default()
                    ),
                    unauthorized: status == 401,
                }
            }
            other => ConnectError::new("upgrade: error", other),
        })?;
    let upgrade = started.elapsed();

    // `welcome`, then our `hello`, then one `synced` per room of the user; ours is the one we need.
    let mut welcomed = false;
    loop {
        let frame = match ws.next().await {
            Some(Ok(Message::Binary(bytes))) => bytes,
            Some(Ok(Message::Close(_))) | None => {
                return Err(ConnectError::new(
                    "closed before synced",
                    "the server closed",
                ))
            }
            Some(Err(e)) => return Err(ConnectError::new("error before synced", e)),
            Some(Ok(_)) => continue,
        };
        let items = wire::decode(&frame).map_err(|e| ConnectError::new("undecodable frame", e))?;
        for item in items {
            match item {
                Ok(Frame::Full(msg)) => match *msg {
                    ServerMsg::Welcome { .. } if !welcomed => {
                        welcomed = true;
                        let hello = wire::encode(&ClientMsg::Hello {
                            cursors: Vec::new(),
                            batches: true,
                        });
                        ws.send(Message::Binary(hello.into()))
                            .await
                            .map_err(|e| ConnectError::new("error before synced", e))?;
                    }
                    ServerMsg::Synced {
                        room: r, last_seq, ..
                    } if r == room => {
                        return Ok(Established {
                            ws,
                            base: last_seq,
                            upgrade,
                            ready: started.elapsed(),
                        });
                    }
                    ServerMsg::Error { code, message, .. } => {
                        return Err(ConnectError::new(
                            format!("error before synced: {code:?}"),
                            message,
                        ))
                    }
                    ServerMsg::Closing { reason } => {
                        return Err(ConnectError::new(
                            format!("closed before synced: {reason:?}"),
                            "closing",
                        ))
                    }
                    _ => {}
                },
                Ok(Frame::Lite(_)) => {}
                Err(e) => return Err(ConnectError::new("undecodable frame", e)),
            }
        }
    }
}

fn io_kind(step: &str, e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => format!("{step}: too many open files"),
        Some(libc::EADDRNOTAVAIL) | Some(libc::EADDRINUSE) => {
            format!("{step}: no free source port")
        }
        _ => format!("{step}: {:?}", e.kind()),
    }
}

/// What a connection reports when it ends.
pub struct Report {
    pub room_idx: usize,
    pub deliveries: Deliveries,
    /// Sequence numbers of this sender's acknowledged messages.
    pub acked_seqs: Vec<u64>,
    pub counts: Counts,
    pub errors: Errors,
    /// Still open when told to stop (its deliveries can be checked in full).
    pub open_at_end: bool,
}

/// Runs an established connection until `Phase::Stop` (or until the server closes it).
pub async fn run(
    spec: Spec,
    established: Established,
    shared: std::sync::Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
) -> Report {
    let id = spec.id;
    let me = &shared.conns[id as usize];
    me.open.store(true, Relaxed);
    me.busy_sending.store(spec.sender_rank.is_some(), Relaxed);
    let (mut sink, mut stream) = established.ws.split();
    let room_text = spec.room.to_string();
    let mut deliveries = Deliveries::new(established.base);
    let mut counts = Counts::default();
    let mut errors = Errors::default();
    let mut acked_seqs = Vec::new();
    let mut latency = Batch::new(id as usize);
    let mut ack_latency = Batch::new(id as usize);
    // Messages sent and not yet answered: (n, send time). Answers come in order, so mostly the front.
    let mut inflight: VecDeque<(u64, u64)> = VecDeque::new();
    let mut next_n = 0u64;
    let mut plan: Option<Plan> = None;
    let mut sending = false;
    let mut sender_done = spec.sender_rank.is_none();
    let mut open_at_end = false;

    // Pings a little more often than required, spread so 20,000 connections do not ping at once.
    let every = Duration::from_millis(HEARTBEAT_SECS * 1000 * 3 / 4);
    let first =
        Instant::now() + Duration::from_millis(u64::from(id) * 7919 % every.as_millis() as u64);
    let mut heartbeat = tokio::time::interval_at(first, every);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ping = bytes_of(wire::encode(&ClientMsg::Ping));
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let due_timer = tokio::time::sleep_until(far);
    let end_timer = tokio::time::sleep_until(far);
    tokio::pin!(due_timer, end_timer);
    let mut due_armed = false;
    // A sender told `rate_limited` waits as long as the server asks before sending again.
    let mut paused_until: Option<Instant> = None;

    // Senders that are done publish how far their room got, then stop counting as busy.
    let finish_sending = |acked_seqs: &Vec<u64>, sender_done: &mut bool| {
        if !*sender_done {
            *sender_done = true;
            if let Some(&top) = acked_seqs.iter().max() {
                shared.room_targets[spec.room_idx].fetch_max(top, Relaxed);
            }
            me.busy_sending.store(false, Relaxed);
        }
    };
    // The phase may have moved on before this task started: apply the current one first.
    let mut pending_phase = Some(*phase.borrow_and_update());

    'run: loop {
        match pending_phase.take() {
            None | Some(Phase::Wait) => {}
            Some(Phase::Run(p)) => {
                if plan.is_none() {
                    plan = Some(p);
                    if spec.sender_rank.is_some() && Instant::now() < p.send_until {
                        sending = true;
                        end_timer.as_mut().reset(p.send_until);
                    }
                }
            }
            Some(Phase::Stop) => {
                open_at_end = true;
                break 'run;
            }
        }
        // Send whatever is due (fast mode: as much as the in-flight bound allows).
        if sending {
            let plan = plan.expect("sending has a plan");
            let rank = spec.sender_rank.expect("only senders send");
            let now = Instant::now();
            if now >= plan.send_until {
                sending = false;
            } else if let Some(until) = paused_until.filter(|&until| until > now) {
                due_timer.as_mut().reset(until);
                due_armed = true;
            } else {
                let mut wrote = false;
                due_armed = false;
                paused_until = None;
                while inflight.len() < shared.max_inflight {
                    if let Some(rate) = shared.rate {
                        let due = plan.start
                            + Duration::from_nanos(due_offset_nanos(
                                next_n,
                                rank,
                                shared.senders,
                                rate,
                            ));
                        if due > now {
                            due_timer.as_mut().reset(due);
                            due_armed = true;
                            break;
                        }
                        counts.max_lag_us = counts
                            .max_lag_us
                            .max(now.duration_since(due).as_micros() as u64);
                    }
                    let sent_ns = wire::unix_nanos();
                    let frame =
                        wire::encode_send(&room_text, id, next_n, sent_ns, shared.body_size);
                    if let Err(e) = sink.feed(Message::Binary(frame.into())).await {
                        errors.add(format!("send failed: {}", ws_kind(&e)), 1);
                        break 'run;
                    }
                    inflight.push_back((next_n, sent_ns));
                    counts.sent += 1;
                    counts.sent_measured += u64::from(plan.measured(sent_ns));
                    next_n += 1;
                    wrote = true;
                }
                if wrote {
                    if let Err(e) = sink.flush().await {
                        errors.add(format!("send failed: {}", ws_kind(&e)), 1);
                        break 'run;
                    }
                    me.sent.store(counts.sent, Relaxed);
                }
            }
        }
        if !sending && plan.is_some() && inflight.is_empty() {
            finish_sending(&acked_seqs, &mut sender_done);
        }

        tokio::select! {
            biased;
            frame = stream.next() => {
                let bytes = match frame {
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Close(_))) | None => {
                        errors.add("closed by server", 1);
                        break 'run;
                    }
                    Some(Err(e)) => {
                        errors.add(format!("connection error: {}", ws_kind(&e)), 1);
                        break 'run;
                    }
                    Some(Ok(_)) => continue, // pings are answered by tungstenite
                };
                counts.frames += 1;
                let Ok(items) = wire::decode(&bytes) else {
                    errors.add("undecodable frame", 1);
                    continue;
                };
                for item in items {
                match item {
                    Ok(Frame::Lite(item)) => match &*item.kind {
                        "message" => {
                            let Some(MessageField::View(m)) = item.message else { continue };
                            if m.room != spec.room {
                                counts.foreign_messages += 1;
                                continue;
                            }
                            deliveries.record(m.seq);
                            counts.delivered += 1;
                            me.highest_seq.store(deliveries.highest, Relaxed);
                            me.delivered.store(counts.delivered, Relaxed);
                            if let (Some(plan), Some((_, _, sent_ns))) = (plan, wire::parse_body(&m.body)) {
                                if plan.measured(sent_ns) {
                                    counts.delivered_measured += 1;
                                    let us = wire::unix_nanos().saturating_sub(sent_ns) / 1000;
                                    latency.record(us, &shared.latency);
                                }
                            }
                        }
                        "ack" => {
                            let n = item.nonce.as_deref().and_then(wire::nonce_number);
                            let Some(pos) = n.and_then(|n| inflight.iter().position(|(m, _)| *m == n)) else {
                                errors.add("ack for an unknown nonce", 1);
                                continue;
                            };
                            let (_, sent_ns) = inflight.remove(pos).expect("found above");
                            if item.room != Some(spec.room) {
                                errors.add("ack for another room", 1);
                            }
                            if let Some(seq) = item.seq {
                                acked_seqs.push(seq);
                            }
                            counts.acked += 1;
                            me.acked.store(counts.acked, Relaxed);
                            if plan.is_some_and(|p| p.measured(sent_ns)) {
                                counts.acked_measured += 1;
                                let us = wire::unix_nanos().saturating_sub(sent_ns) / 1000;
                                ack_latency.record(us, &shared.ack_latency);
                            }
                        }
                        "pong" => counts.pongs += 1,
                        _ => {}
                    },
                    Ok(Frame::Full(msg)) => match *msg {
                        ServerMsg::Error { code, nonce, retry_after_ms, .. } => {
                            errors.add(format!("error frame: {code:?}"), 1);
                            if let Some(ms) = retry_after_ms {
                                let until = Instant::now() + Duration::from_millis(ms);
                                paused_until = Some(paused_until.map_or(until, |p| p.max(until)));
                            }
                            let n = nonce.as_deref().and_then(wire::nonce_number);
                            if let Some(pos) = n.and_then(|n| inflight.iter().position(|(m, _)| *m == n)) {
                                inflight.remove(pos);
                                counts.failed_sends += 1;
                            }
                        }
                        ServerMsg::Closing { reason } => {
                            errors.add(format!("closing: {reason:?}"), 1);
                        }
                        _ => {}
                    },
                    Err(_) => errors.add("undecodable frame", 1),
                }
                }
            }
            changed = phase.changed() => {
                if changed.is_err() {
                    break 'run; // the main task is gone
                }
                pending_phase = Some(*phase.borrow_and_update());
            }
            () = &mut due_timer, if sending && due_armed => {}
            () = &mut end_timer, if sending => sending = false,
            _ = heartbeat.tick() => {
                if let Err(e) = sink.send(Message::Binary(ping.clone())).await {
                    errors.add(format!("send failed: {}", ws_kind(&e)), 1);
                    break 'run;
                }
            }
        }
    }

    me.open.store(false, Relaxed);
    counts.unacked_at_end = inflight.len() as u64;
    finish_sending(&acked_seqs, &mut sender_done);
    latency.flush(&shared.latency);
    ack_latency.flush(&shared.ack_latency);
    if open_at_end {
        // A polite close; the server does not need to answer for the run to be over.
        let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
    }
    Report {
        room_idx: spec.room_idx,
        deliveries,
        acked_seqs,
        counts,
        errors,
        open_at_end,
    }
}

fn bytes_of(v: Vec<u8>) -> tokio_tungstenite::tungstenite::Bytes {
    v.into()
}

fn ws_kind(e: &WsError) -> &'static str {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => "closed",
        WsError::Io(_) => "io",
        WsError::Protocol(_) => "protocol",
        WsError::Capacity(_) => "capacity",
        _ => "other",
    }
}
