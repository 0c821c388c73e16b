//! The browser's live view of chat: the messages it has per room, unread counts, typing and presence,
//! and the messages still waiting for an ack, kept up to date by the websocket in `socket` (browser
//! only). During server rendering the same state exists but never connects, so pages render
//! identically.

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
    /// The server could not store it just now (its database is unreachable): kept, and sent again
    /// by itself in a moment.
    pub retrying: bool,
}

/// How long a message the server could not store waits before it is sent again.
#[cfg(feature = "hydrate")]
const UNAVAILABLE_RETRY_MS: u32 = 3_000;

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
    /// Members of the rooms the page has open, kept up to date as people join and leave.
    pub members: RwSignal<HashMap<RoomId, Vec<super::MemberView>>>,
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
            members: RwSignal::new(HashMap::new()),
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
            ServerMsg::RoomAdded { .. }
            | ServerMsg::RoomRemoved { .. }
            | ServerMsg::InvitationsChanged => self.rooms_changed.update(|v| *v += 1),
            ServerMsg::MemberJoined { room, member } => self.members.update(|map| {
                if let Some(list) = map.get_mut(&room) {
                    if !list.iter().any(|m| m.user == member.user) {
                        list.push(member);
                    }
                }
            }),
            ServerMsg::MemberLeft { room, user } => self.members.update(|map| {
                if let Some(list) = map.get_mut(&room) {
                    list.retain(|m| m.user != user);
                }
            }),
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
                code: crate::protocol::ErrorCode::Unavailable,
                ..
            } => {
                self.pending.update(|p| {
                    if let Some(x) = p.iter_mut().find(|x| x.nonce == nonce) {
                        x.retrying = true;
                    }
                });
                #[cfg(feature = "hydrate")]
                {
                    let live = *self;
                    leptos::task::spawn_local(async move {
                        gloo_timers::future::TimeoutFuture::new(UNAVAILABLE_RETRY_MS).await;
                        let still = live
                            .pending
                            .with_untracked(|p| p.iter().any(|x| x.nonce == nonce && x.retrying));
                        if still {
                            live.retry(&nonce);
                        }
                    });
                }
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
                retrying: false,
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
                x.retrying = false;
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
mod socket;
#[cfg(feature = "hydrate")]
pub use socket::connect;
