//! The browser's live view of chat: one websocket (reconnecting with backoff and jitter), the messages
//! it has per room, unread counts, typing and presence, and the messages still waiting for an ack.
//! During server rendering the same state exists but never connects, so pages render identically.

use super::RoomSummary;
use crate::model::{RoomId, UserId};
use crate::protocol::{ClientMsg, MessageView, Presence, ServerMsg};
use leptos::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// How the live connection is doing, shown in the top bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Online,
    /// Lost; the next attempt is due.
    Offline,
}

impl Link {
    pub fn label(self) -> &'static str {
        match self {
            Link::Connecting => "Connecting…",
            Link::Online => "Connected",
            Link::Offline => "Offline, retrying…",
        }
    }
}

/// A message typed but not yet acknowledged by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub room: RoomId,
    pub nonce: String,
    pub body: String,
    /// `Some(reason)` when the server refused it (rate limit, too long, ...).
    pub failed: Option<String>,
}

/// Someone typing in a room, until `until` (milliseconds, browser clock).
#[derive(Debug, Clone, PartialEq)]
pub struct Typist {
    pub name: String,
    pub until: f64,
}

/// How long a "typing" notice lasts without a refresh.
pub const TYPING_TTL_MS: f64 = 5000.0;

#[derive(Clone, Copy)]
pub struct Live {
    pub link: RwSignal<Link>,
    pub me: RwSignal<Option<UserId>>,
    pub messages: RwSignal<HashMap<RoomId, BTreeMap<u64, MessageView>>>,
    pub last_seq: RwSignal<HashMap<RoomId, u64>>,
    pub read_seq: RwSignal<HashMap<RoomId, u64>>,
    pub typing: RwSignal<HashMap<RoomId, HashMap<UserId, Typist>>>,
    pub presence: RwSignal<HashMap<UserId, Presence>>,
    pub pending: RwSignal<Vec<Pending>>,
    /// Bumped when the user's set of rooms changes (joined, invited, new direct message).
    pub rooms_changed: RwSignal<u32>,
    /// The browser clock in milliseconds, ticking every second (expires typing notices).
    pub now: RwSignal<f64>,
    #[allow(dead_code)]
    outbox: StoredValue<Option<Outbox>>,
}

type Outbox = futures::channel::mpsc::UnboundedSender<ClientMsg>;

impl Live {
    pub fn provide() -> Self {
        let live = Self {
            link: RwSignal::new(Link::Connecting),
            me: RwSignal::new(None),
            messages: RwSignal::new(HashMap::new()),
            last_seq: RwSignal::new(HashMap::new()),
            read_seq: RwSignal::new(HashMap::new()),
            typing: RwSignal::new(HashMap::new()),
            presence: RwSignal::new(HashMap::new()),
            pending: RwSignal::new(Vec::new()),
            rooms_changed: RwSignal::new(0),
            now: RwSignal::new(0.0),
            outbox: StoredValue::new(None),
        };
        provide_context(live);
        live
    }

    pub fn get() -> Self {
        expect_context::<Self>()
    }

    /// What the room list said about each room (newest sequence, read marker).
    pub fn seed_rooms(&self, rooms: &[RoomSummary]) {
        self.last_seq.update(|map| {
            for room in rooms {
                let entry = map.entry(room.id).or_insert(0);
                *entry = (*entry).max(room.last_seq);
            }
        });
        self.read_seq.update(|map| {
            for room in rooms {
                let entry = map.entry(room.id).or_insert(0);
                *entry = (*entry).max(room.read_seq);
            }
        });
    }

    /// Messages loaded over HTTP (a history page).
    pub fn seed_messages(&self, room: RoomId, page: Vec<MessageView>) {
        let newest = page.last().map(|m| m.seq).unwrap_or(0);
        self.messages.update(|map| {
            let list = map.entry(room).or_default();
            for message in page {
                list.insert(message.seq, message);
            }
        });
        self.last_seq.update(|map| {
            let entry = map.entry(room).or_insert(0);
            *entry = (*entry).max(newest);
        });
    }

    pub fn unread(&self, room: RoomId) -> u64 {
        let last = self.last_seq.with(|m| m.get(&room).copied().unwrap_or(0));
        let read = self.read_seq.with(|m| m.get(&room).copied().unwrap_or(0));
        last.saturating_sub(read)
    }

    /// The newest sequence this client holds without a hole, per loaded room: where to resume.
    pub fn cursors(&self) -> Vec<crate::protocol::RoomCursor> {
        self.messages.with_untracked(|map| {
            map.iter()
                .filter_map(|(room, list)| {
                    let (&first, _) = list.first_key_value()?;
                    let mut last = first;
                    for &seq in list.keys().skip(1) {
                        if seq != last + 1 {
                            break;
                        }
                        last = seq;
                    }
                    // Resume from the end of the run that reaches the newest message, if any.
                    let newest = *list.keys().next_back()?;
                    Some(crate::protocol::RoomCursor {
                        room: *room,
                        last_seq: if last == newest { newest } else { last },
                    })
                })
                .collect()
        })
    }

    /// People typing in `room` now (not the user), by name.
    pub fn typists(&self, room: RoomId) -> Vec<String> {
        let now = self.now.get();
        let me = self.me.get();
        self.typing.with(|map| {
            let mut names: Vec<String> = map
                .get(&room)
                .into_iter()
                .flatten()
                .filter(|(user, t)| Some(**user) != me && t.until > now)
                .map(|(_, t)| t.name.clone())
                .collect();
            names.sort();
            names
        })
    }

    /// Applies one server event to the state.
    pub fn apply(&self, msg: ServerMsg) {
        match msg {
            ServerMsg::Welcome { user, .. } => self.me.set(Some(user)),
            ServerMsg::Ack { nonce, .. } => {
                self.pending.update(|p| p.retain(|x| x.nonce != nonce));
            }
            ServerMsg::Message { message } => {
                let (room, seq) = (message.room, message.seq);
                self.messages.update(|map| {
                    // Only rooms the page has loaded keep their messages; others just count.
                    if let Some(list) = map.get_mut(&room) {
                        list.insert(seq, message);
                    }
                });
                self.last_seq.update(|map| {
                    let entry = map.entry(room).or_insert(0);
                    *entry = (*entry).max(seq);
                });
            }
            ServerMsg::Updated { message } => {
                self.messages.update(|map| {
                    if let Some(list) = map.get_mut(&message.room) {
                        list.insert(message.seq, message);
                    }
                });
            }
            ServerMsg::Synced { room, last_seq } => {
                self.last_seq.update(|map| {
                    let entry = map.entry(room).or_insert(0);
                    *entry = (*entry).max(last_seq);
                });
            }
            ServerMsg::RoomAdded { .. } | ServerMsg::RoomRemoved { .. } => {
                self.rooms_changed.update(|v| *v += 1)
            }
            ServerMsg::Typing {
                room,
                user,
                name,
                active,
            } => {
                let until = self.now.get_untracked() + TYPING_TTL_MS;
                self.typing.update(|map| {
                    let room = map.entry(room).or_default();
                    if active {
                        room.insert(user, Typist { name, until });
                    } else {
                        room.remove(&user);
                    }
                });
            }
            ServerMsg::Presence { user, presence } => {
                self.presence.update(|map| {
                    map.insert(user, presence);
                });
            }
            ServerMsg::Read { room, seq } => {
                self.read_seq.update(|map| {
                    let entry = map.entry(room).or_insert(0);
                    *entry = (*entry).max(seq);
                });
            }
            ServerMsg::Error {
                nonce: Some(nonce),
                message,
                ..
            } => {
                self.pending.update(|p| {
                    if let Some(x) = p.iter_mut().find(|x| x.nonce == nonce) {
                        x.failed = Some(message);
                    }
                });
            }
            ServerMsg::Error { .. } | ServerMsg::Pong | ServerMsg::Closing { .. } => {}
        }
    }

    /// Queues a frame for the server if connected; `false` when offline (the caller keeps it pending).
    pub fn transmit(&self, msg: ClientMsg) -> bool {
        self.outbox
            .with_value(|outbox| outbox.as_ref().map(|tx| tx.unbounded_send(msg).is_ok()))
            .unwrap_or(false)
    }

    /// Sends a message: shown at once as pending, delivered when connected, re-sent after a
    /// reconnect until acknowledged (the nonce keeps it single).
    pub fn send(&self, room: RoomId, body: String) {
        let nonce = new_nonce();
        self.pending.update(|p| {
            p.push(Pending {
                room,
                nonce: nonce.clone(),
                body: body.clone(),
                failed: None,
            })
        });
        self.transmit(ClientMsg::Send { room, nonce, body });
    }

    /// Tries a refused message again.
    pub fn retry(&self, nonce: &str) {
        let mut again = None;
        self.pending.update(|p| {
            if let Some(x) = p.iter_mut().find(|x| x.nonce == nonce) {
                x.failed = None;
                again = Some(ClientMsg::Send {
                    room: x.room,
                    nonce: x.nonce.clone(),
                    body: x.body.clone(),
                });
            }
        });
        if let Some(msg) = again {
            self.transmit(msg);
        }
    }

    /// Marks `room` read up to its newest message (if that moves the marker).
    pub fn mark_read(&self, room: RoomId) {
        let last = self
            .last_seq
            .with_untracked(|m| m.get(&room).copied().unwrap_or(0));
        let read = self
            .read_seq
            .with_untracked(|m| m.get(&room).copied().unwrap_or(0));
        if last > read {
            self.read_seq.update(|m| {
                m.insert(room, last);
            });
            self.transmit(ClientMsg::Read { room, seq: last });
        }
    }
}

/// A client nonce: time and randomness, unique per browser for practical purposes.
fn new_nonce() -> String {
    #[cfg(feature = "hydrate")]
    {
        let random = (js_sys::Math::random() * 1e12) as u64;
        format!("{:x}-{random:x}", js_sys::Date::now() as u64)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        String::from("server")
    }
}

#[cfg(feature = "hydrate")]
pub use client::connect;

#[cfg(feature = "hydrate")]
mod client {
    use super::{Link, Live, Outbox};
    use crate::protocol::{
        decode_item, encode_item, ClientMsg, CloseReason, ServerMsg, HEARTBEAT_SECS,
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
            let _ = document()
                .add_event_listener_with_callback(event, listener.as_ref().unchecked_ref());
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
                    // A frame this page cannot read (from a newer server, say) is skipped.
                    match decode_item::<ServerMsg>(&bytes) {
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
        });
        live.pending.with_untracked(|pending| {
            for p in pending.iter().filter(|p| p.failed.is_none()) {
                let _ = tx.unbounded_send(ClientMsg::Send {
                    room: p.room,
                    nonce: p.nonce.clone(),
                    body: p.body.clone(),
                });
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
}
