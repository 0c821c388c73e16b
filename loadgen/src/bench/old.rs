//! The receive path loadgen had before the lean client, for `read-bench --path old`: tokio-tungstenite
//! (8 KiB read buffer, one `Message` per frame) and the serde decoder of `wire::legacy`, feeding the
//! same bookkeeping (`Tally`) as the lean path, so the comparison is about reading and decoding.

use crate::conn::{ConnectError, Endpoint, Phase, Report, Shared, Spec, Tally};
use crate::wire::legacy::{self, Frame, MessageField};
use crate::wire::{self, Item, Room};
use app::protocol::{ClientMsg, ServerMsg};
use futures::{SinkExt, StreamExt};
use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::{
    client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig, Message,
};
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// Connects and upgrades with tokio-tungstenite, says hello, waits for `synced` in `spec`'s room.
pub async fn open(
    endpoint: &Endpoint,
    spec: &Spec,
    cookies: &str,
) -> Result<(Ws, u64), ConnectError> {
    let err = |kind: &str, e: &dyn std::fmt::Display| ConnectError::new(kind, e);
    let stream = TcpStream::connect(endpoint.addr)
        .await
        .map_err(|e| err("tcp connect", &e))?;
    let _ = stream.set_nodelay(true);
    let url = format!("ws://{}{}", endpoint.host, endpoint.path);
    let mut request = url
        .into_client_request()
        .map_err(|e| err("bad request", &e))?;
    let headers = request.headers_mut();
    headers.insert(
        "origin",
        HeaderValue::from_str(&endpoint.origin).map_err(|e| err("bad origin", &e))?,
    );
    headers.insert(
        "cookie",
        HeaderValue::from_str(cookies).map_err(|e| err("bad cookie", &e))?,
    );
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| err("upgrade: error", &e))?;
    loop {
        let bytes = match ws.next().await {
            Some(Ok(Message::Binary(bytes))) => bytes,
            Some(Ok(_)) => continue,
            _ => return Err(ConnectError::new("closed before synced", "closed")),
        };
        for item in legacy::decode(&bytes).map_err(|e| err("undecodable frame", &e))? {
            match item {
                Ok(Frame::Full(msg)) => match *msg {
                    ServerMsg::Welcome { .. } => {
                        let hello = wire::encode(&ClientMsg::Hello {
                            cursors: Vec::new(),
                            batches: true,
                        });
                        ws.send(Message::Binary(hello.into()))
                            .await
                            .map_err(|e| err("error before synced", &e))?;
                    }
                    ServerMsg::Synced { room, last_seq, .. } if room == spec.room => {
                        return Ok((ws, last_seq));
                    }
                    _ => {}
                },
                Ok(Frame::Lite(_)) => {}
                Err(e) => return Err(err("undecodable frame", &e)),
            }
        }
    }
}

/// Reads and counts until `Phase::Stop`, as `conn::run` did before (without sending).
pub async fn run(
    spec: Spec,
    ws: Ws,
    base: u64,
    shared: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
) -> Report {
    let me = &shared.conns[spec.id as usize];
    me.open.store(true, Relaxed);
    let mut t = Tally::new(spec.id, spec.room, base, shared.clone());
    let (mut sink, mut stream) = ws.split();
    let mut open_at_end = false;
    let mut pending = Some(*phase.borrow_and_update());
    loop {
        match pending.take() {
            Some(Phase::Run(plan)) => t.plan = Some(plan),
            Some(Phase::Stop) => {
                open_at_end = true;
                break;
            }
            _ => {}
        }
        tokio::select! {
            biased;
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
                pending = Some(*phase.borrow_and_update());
            }
            frame = stream.next() => {
                let bytes = match frame {
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Close(_))) | None => {
                        t.errors.add("closed by server", 1);
                        break;
                    }
                    Some(Err(_)) => {
                        t.errors.add("connection error", 1);
                        break;
                    }
                    Some(Ok(_)) => continue,
                };
                t.counts.frames += 1;
                let Ok(items) = legacy::decode(&bytes) else {
                    t.errors.add("undecodable frame", 1);
                    continue;
                };
                let mut now = crate::conn::Now::default();
                for item in items {
                    match item.map(from_legacy) {
                        Ok(Some(item)) => {
                            t.counts.items += 1;
                            t.item(item, &mut now);
                        }
                        Ok(None) | Err(_) => t.errors.add("undecodable frame", 1),
                    }
                }
                t.publish();
            }
        }
    }
    me.open.store(false, Relaxed);
    t.flush_latencies();
    t.publish();
    if open_at_end {
        let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
    }
    Report {
        room_idx: spec.room_idx,
        deliveries: t.deliveries,
        acked_seqs: t.acked_seqs,
        counts: t.counts,
        errors: t.errors,
        open_at_end,
    }
}

/// The old decoder's view of an item as the lean path's `Item` (`None`: a message or ack lacking a
/// field loadgen needs).
fn from_legacy(frame: Frame<'_>) -> Option<Item<'_>> {
    Some(match frame {
        Frame::Full(msg) => Item::Full(msg),
        Frame::Lite(lite) => match &*lite.kind {
            "message" => match lite.message? {
                MessageField::View(m) => Item::Message {
                    room: Room::Id(m.room),
                    seq: m.seq,
                    body: match m.body {
                        Cow::Borrowed(b) => Cow::Borrowed(b.as_bytes()),
                        Cow::Owned(b) => Cow::Owned(b.into_bytes()),
                    },
                },
                MessageField::Text => return None,
            },
            "ack" => Item::Ack {
                nonce: match lite.nonce? {
                    Cow::Borrowed(n) => Cow::Borrowed(n.as_bytes()),
                    Cow::Owned(n) => Cow::Owned(n.into_bytes()),
                },
                room: Room::Id(lite.room?),
                seq: lite.seq?,
            },
            // The old decoder did not read presence changes.
            "presence" => Item::Presence { changes: 0 },
            "pong" => Item::Pong,
            _ => Item::Ignored,
        },
    })
}
