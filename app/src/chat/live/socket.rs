//! The browser's end of the live connection: one websocket to `/api/ws` for the page's lifetime,
//! reconnecting with backoff and jitter, resuming from the cursors and re-sending what is not yet
//! acknowledged; and the away detector and the clock that expires typing notices.

use super::{Link, Live, Outbox};
use crate::protocol::{
    decode_json, encode_item, items, ClientMsg, CloseReason, ServerMsg, HEARTBEAT_SECS,
    MAX_FRAME_BYTES,
};
use futures::{FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message};
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// Keeps one websocket open for the page's lifetime: reconnects with exponential backoff and
/// jitter, resumes from the cursors, re-sends unacknowledged messages.
pub fn connect(live: Live) {
    leptos::task::spawn_local(async move {
        let mut failures: u32 = 0;
        loop {
            live.link.set(Link::Connecting);
            let (welcomed, stop) = match open_socket() {
                Ok(socket) => converse(live, socket).await,
                Err(()) => (false, None),
            };
            if welcomed {
                failures = 0;
            }
            match stop {
                Some(CloseReason::SignedOut) => {
                    return crate::auth::client::session_lost(
                        &crate::error::AppError::Unauthenticated,
                    )
                }
                Some(CloseReason::Disabled) => {
                    return crate::auth::client::session_lost(
                        &crate::error::AppError::AccountDisabled,
                    )
                }
                // Not re-sent after the reconnect: it would only close the connection again.
                Some(CloseReason::FrameTooLarge) => live.pending.update(|pending| {
                    for p in pending.iter_mut().filter(|p| p.failed.is_none()) {
                        let frame = encode_item(&p.frame());
                        if frame.len() > MAX_FRAME_BYTES {
                            p.failed = Some("This message is too large to send.".to_owned());
                        }
                    }
                }),
                _ => {}
            }
            if !welcomed {
                // The upgrade was refused or never completed. Perhaps only the access token ran
                // out: renew it before the next attempt.
                if let Err(error) = crate::auth::client::renew().await {
                    if matches!(
                        error,
                        crate::error::AppError::Unauthenticated
                            | crate::error::AppError::AccountDisabled
                    ) {
                        return crate::auth::client::session_lost(&error);
                    }
                }
            }
            live.link.set(Link::Offline);
            failures = failures.saturating_add(1);
            // 0.5 s, 1 s, 2 s, ... up to 30 s, each with ±50% jitter so clients do not reconnect in
            // step; coming back online cuts the wait short.
            let base = (500u64 << failures.min(6)).min(30_000) as f64;
            let wait = base * (0.5 + js_sys::Math::random());
            let (online_tx, online_rx) = futures::channel::oneshot::channel::<()>();
            let online_tx = std::cell::Cell::new(Some(online_tx));
            let _online = window_event_listener(leptos::ev::online, move |_| {
                if let Some(tx) = online_tx.take() {
                    let _ = tx.send(());
                }
            });
            let offline_now = !window().navigator().on_line();
            if offline_now {
                let _ = online_rx.await;
            } else {
                futures::select! {
                    _ = TimeoutFuture::new(wait as u32).fuse() => {},
                    _ = online_rx.fuse() => {},
                }
            }
        }
    });
    // The clock that expires typing notices, and the away detector: a hidden page or five minutes
    // without keyboard or pointer input is "away"; any input or showing the page is "back".
    let last_input = std::rc::Rc::new(std::cell::Cell::new(js_sys::Date::now()));
    for event in ["keydown", "pointerdown", "visibilitychange"] {
        let last_input = last_input.clone();
        let listener = wasm_bindgen::closure::Closure::<dyn Fn()>::new(move || {
            last_input.set(js_sys::Date::now());
        });
        let _ =
            document().add_event_listener_with_callback(event, listener.as_ref().unchecked_ref());
        listener.forget(); // lives as long as the page
    }
    leptos::task::spawn_local(async move {
        // What the current connection was last told (a new connection starts "not away").
        let mut told: Option<bool> = None;
        loop {
            let now = js_sys::Date::now();
            live.now.set(now);
            let away = document().hidden() || now - last_input.get() > AWAY_AFTER_MS;
            if live.link.get_untracked() != Link::Online {
                told = None;
            } else if told.unwrap_or(false) != away && live.transmit(ClientMsg::Away { away }) {
                told = Some(away);
            }
            TimeoutFuture::new(1000).await;
        }
    });
}

/// A websocket to this page's own origin, `/api/ws`.
fn open_socket() -> Result<WebSocket, ()> {
    let location = window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location.host().map_err(|_| ())?;
    WebSocket::open(&format!("{scheme}://{host}/api/ws")).map_err(|_| ())
}

/// Serves one connection until it ends: says hello, sends what the page queues, applies what
/// arrives. Returns whether the server welcomed us, and the reason it gave if it closed us.
async fn converse(live: Live, socket: WebSocket) -> (bool, Option<CloseReason>) {
    let (mut sink, frames) = socket.split();
    let mut frames = frames.fuse();
    let (tx, rx) = futures::channel::mpsc::unbounded::<ClientMsg>();
    let mut rx = rx.fuse();
    live.outbox.set_value(Some(tx.clone()));
    hello(&live, &tx);
    let heartbeat = heartbeat(tx);
    // The browser knows before any timeout when the network is gone.
    let (offline_tx, offline_rx) = futures::channel::oneshot::channel::<()>();
    let mut offline_rx = offline_rx.fuse();
    let offline_tx = std::cell::Cell::new(Some(offline_tx));
    let _offline = window_event_listener(leptos::ev::offline, move |_| {
        if let Some(tx) = offline_tx.take() {
            let _ = tx.send(());
        }
    });
    let mut welcomed = false;
    let mut stop = None;
    loop {
        futures::select! {
            command = rx.next() => {
                let Some(command) = command else { break };
                // Waits while the socket is still connecting; frames queue in the meantime.
                if sink.send(Message::Bytes(encode_item(&command))).await.is_err() {
                    break;
                }
            }
            frame = frames.next() => {
                let bytes = match frame {
                    Some(Ok(Message::Bytes(bytes))) => bytes,
                    Some(Ok(Message::Text(text))) => text.into_bytes(),
                    _ => break,
                };
                // A frame or an item this page cannot read (from a newer server, say) is skipped.
                for json in items(&bytes).into_iter().flatten() {
                    match decode_json::<ServerMsg>(json) {
                        Ok(ServerMsg::Closing { reason }) => {
                            stop = Some(reason);
                            break;
                        }
                        Ok(msg @ ServerMsg::Welcome { .. }) => {
                            welcomed = true;
                            live.link.set(Link::Online);
                            live.apply(msg);
                        }
                        Ok(msg) => live.apply(msg),
                        Err(_) => {}
                    }
                }
                if stop.is_some() {
                    break;
                }
            }
            _ = offline_rx => break,
        }
    }
    drop(heartbeat);
    live.outbox.set_value(None);
    // Dropping both halves closes the socket.
    (welcomed, stop)
}

const AWAY_AFTER_MS: f64 = 5.0 * 60.0 * 1000.0;

/// Resume from where this page is, then re-send everything still unacknowledged, in order.
fn hello(live: &Live, tx: &Outbox) {
    let _ = tx.unbounded_send(ClientMsg::Hello {
        cursors: live.cursors(),
        batches: true,
    });
    if let Some(watch) = live.watch_frame() {
        let _ = tx.unbounded_send(watch);
    }
    live.pending.with_untracked(|pending| {
        for p in pending.iter().filter(|p| p.failed.is_none()) {
            let _ = tx.unbounded_send(p.frame());
        }
    });
}

/// Pings every heartbeat interval until dropped.
fn heartbeat(tx: Outbox) -> impl Drop {
    struct Stop(std::rc::Rc<std::cell::Cell<bool>>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let stopped = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = stopped.clone();
    leptos::task::spawn_local(async move {
        loop {
            TimeoutFuture::new((HEARTBEAT_SECS * 1000) as u32).await;
            if flag.get() || tx.unbounded_send(ClientMsg::Ping).is_err() {
                break;
            }
        }
    });
    Stop(stopped)
}
