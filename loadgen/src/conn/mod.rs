//! One websocket connection: connect from a chosen source address, say hello, wait for its room's
//! `synced`, then (as a sender) send on schedule and (always) record every delivery in its room.
//! Everything it counts stays local until it ends; only a few relaxed atomics are shared, for progress
//! and for knowing when deliveries have caught up.
//!
//! `open` (here) upgrades and waits for `synced`; `run` drives the connection; `Tally` counts what
//! arrives. All of it on the lean client of `crate::ws` and the scanner of `crate::wire`.

mod run;
mod tally;

pub use run::{run, Report};
pub use tally::{Now, Tally};

use crate::members::Members;
use crate::stats::SharedHistogram;
use crate::wire::{self, Item};
use crate::ws::{Event, UpgradeError, WsClient};
use app::model::{RoomId, UserId};
use app::protocol::{ClientMsg, ServerMsg, BATCH_TAG};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;
use tokio::net::TcpSocket;
use tokio::time::Instant;

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
    pub fn measured(&self, sent_ns: u64) -> bool {
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
    /// `--watch N`: each connection follows the presence of the first N members of its room.
    pub watch: usize,
    pub members: Members,
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
    /// `host:port` as given in --url (the `Host` header).
    pub host: String,
    /// `/api/ws`.
    pub path: String,
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
    pub fn new(kind: impl Into<String>, detail: impl ToString) -> Self {
        Self {
            kind: kind.into(),
            detail: detail.to_string(),
            unauthorized: false,
        }
    }
}

/// A connection ready for live events.
pub struct Established {
    pub ws: WsClient,
    /// The `last_seq` of its room's `synced`: it must receive every later message exactly once.
    pub base: u64,
    /// Who the server says we are (from `welcome`).
    pub user: Option<UserId>,
    /// Items that came after `synced` in the same batch frame, as a batch frame of their own.
    pub leftover: Option<Vec<u8>>,
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

    let mut ws = WsClient::upgrade(
        stream,
        &endpoint.host,
        &endpoint.path,
        &endpoint.origin,
        cookies,
    )
    .await
    .map_err(|e| match e {
        UpgradeError::Refused { status, body } => ConnectError {
            kind: format!("upgrade: http {status}"),
            detail: format!("upgrade answered {status}: {body}"),
            unauthorized: status == 401,
        },
        UpgradeError::BadHeader(h) => {
            ConnectError::new(format!("bad {h}"), format!("a {h} that cannot be sent"))
        }
        other => ConnectError::new("upgrade: error", other),
    })?;
    let upgrade = started.elapsed();

    // `welcome`, then our `hello`, then one `synced` per room of the user; ours is the one we need.
    let mut before = BeforeSynced {
        room,
        user: None,
        hello_due: false,
    };
    let failed = |e: &dyn std::fmt::Display| ConnectError::new("error before synced", e);
    loop {
        while let Some(event) = ws.next_event().map_err(|e| failed(&e))? {
            match event {
                Event::Message { data, .. } => {
                    if let Some(SyncedAt { base, leftover }) = before.frame(data)? {
                        return Ok(Established {
                            ws,
                            base,
                            user: before.user,
                            leftover,
                            upgrade,
                            ready: started.elapsed(),
                        });
                    }
                    if std::mem::take(&mut before.hello_due) {
                        ws.send_binary(&wire::encode(&ClientMsg::Hello {
                            cursors: Vec::new(),
                            batches: true,
                        }));
                    }
                }
                Event::Close { .. } => {
                    return Err(ConnectError::new(
                        "closed before synced",
                        "the server closed",
                    ))
                }
                Event::Ping(_) | Event::Pong => {}
            }
        }
        ws.flush().await.map_err(|e| failed(&e))?;
        if ws.read().await.map_err(|e| failed(&e))? == 0 {
            return Err(ConnectError::new(
                "closed before synced",
                "the server closed",
            ));
        }
    }
}

/// Our room's `synced`: its `last_seq`, and the items after it in the same frame.
struct SyncedAt {
    base: u64,
    leftover: Option<Vec<u8>>,
}

/// What `open` has seen so far.
struct BeforeSynced {
    room: RoomId,
    user: Option<UserId>,
    /// `welcome` came: our `hello` is to be sent.
    hello_due: bool,
}

impl BeforeSynced {
    /// Reads one frame; once our room's `synced` is in it, its `last_seq` and the items after it.
    fn frame(&mut self, data: &[u8]) -> Result<Option<SyncedAt>, ConnectError> {
        let undecodable = |e: &dyn std::fmt::Display| ConnectError::new("undecodable frame", e);
        let mut items = app::protocol::items(data).map_err(|e| undecodable(&e))?;
        while let Some(json) = items.next() {
            let Item::Full(msg) = wire::decode_item(json).map_err(|e| undecodable(&e))?.0 else {
                continue; // live events before `synced` are not ours to count
            };
            match *msg {
                ServerMsg::Welcome { user, .. } if self.user.is_none() => {
                    self.user = Some(user);
                    self.hello_due = true;
                }
                ServerMsg::Synced { room, last_seq, .. } if room == self.room => {
                    let rest: Vec<&[u8]> = items.collect();
                    let leftover = (!rest.is_empty()).then(|| {
                        let mut frame = vec![BATCH_TAG];
                        for json in rest {
                            frame.extend_from_slice(&(json.len() as u32).to_be_bytes());
                            frame.extend_from_slice(json);
                        }
                        frame
                    });
                    return Ok(Some(SyncedAt {
                        base: last_seq,
                        leftover,
                    }));
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
            }
        }
        Ok(None)
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

#[cfg(test)]
mod tests;
