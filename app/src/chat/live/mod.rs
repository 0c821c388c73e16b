//! The browser's live view of chat: the messages it has per room, unread counts, typing and presence,
//! and the messages still waiting for an ack, kept up to date by the websocket in `socket` (browser
//! only). During server rendering the same state exists but never connects, so pages render
//! identically.

use super::RoomSummary;
use crate::model::{MessageId, RoomId, UserId};
use crate::protocol::{ClientMsg, MessageView, Presence, ServerMsg};
use leptos::prelude::*;
use std::collections::{BTreeMap, HashMap};

pub mod desktop;

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
    /// A reply in this root's thread, and whether it also goes to the room.
    pub thread: Option<(MessageId, bool)>,
    /// Files uploaded for it, shown with it while it waits.
    pub files: Vec<crate::files::FileView>,
}

impl Pending {
    /// The frame that sends it (again: the nonce keeps it single).
    pub fn frame(&self) -> ClientMsg {
        ClientMsg::Send {
            room: self.room,
            nonce: self.nonce.clone(),
            body: self.body.clone(),
            thread: self.thread.map(|(root, _)| root),
            also_in_room: self.thread.is_some_and(|(_, also)| also),
            files: self.files.iter().map(|f| f.id).collect(),
            alts: alts_of(&self.files),
        }
    }
}

/// The alt texts to send with `files`, in their order; none at all when no file has one.
fn alts_of(files: &[crate::files::FileView]) -> Vec<String> {
    if files.iter().all(|f| f.alt.is_none()) {
        return Vec::new();
    }
    files
        .iter()
        .map(|f| f.alt.clone().unwrap_or_default())
        .collect()
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
    /// Per loaded room, the revision up to which its messages here reflect every change: where to
    /// resume from.
    pub rev: RwSignal<HashMap<RoomId, u64>>,
    pub read_seq: RwSignal<HashMap<RoomId, u64>>,
    /// Per room, unread messages that mention the reader.
    pub mentions: RwSignal<HashMap<RoomId, u64>>,
    /// Per room, what the reader hears about it.
    pub notify: RwSignal<HashMap<RoomId, crate::model::NotifyLevel>>,
    /// Room names, for desktop notifications.
    pub names: RwSignal<HashMap<RoomId, String>>,
    pub typing: RwSignal<HashMap<RoomId, HashMap<UserId, Typist>>>,
    pub presence: RwSignal<HashMap<UserId, Presence>>,
    /// Members of the rooms the page has open, kept up to date as people join and leave.
    pub members: RwSignal<HashMap<RoomId, Vec<super::MemberView>>>,
    pub pending: RwSignal<Vec<Pending>>,
    /// Replies of the threads the page has open, by root, in thread order (reply revision).
    pub threads: RwSignal<HashMap<MessageId, BTreeMap<u64, MessageView>>>,
    /// Roots of the threads the page has open (a root may be older than the room's loaded page).
    pub thread_roots: RwSignal<HashMap<MessageId, MessageView>>,
    /// The threads the reader follows: the Threads view and its unread counts.
    pub followed: RwSignal<Vec<super::FollowedThread>>,
    /// Bumped when the reader may have started following a thread (the list is read again).
    pub follows_changed: RwSignal<u32>,
    /// Bumped when the user's set of rooms changes (joined, invited, new direct message).
    pub rooms_changed: RwSignal<u32>,
    /// The browser clock in milliseconds, ticking every second (expires typing notices).
    pub now: RwSignal<f64>,
    /// Whose presence the page shows (members of one room): told to the server as `watch`, and
    /// again after every reconnect.
    watching: StoredValue<Option<(RoomId, Vec<UserId>)>>,
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
            rev: RwSignal::new(HashMap::new()),
            read_seq: RwSignal::new(HashMap::new()),
            mentions: RwSignal::new(HashMap::new()),
            notify: RwSignal::new(HashMap::new()),
            names: RwSignal::new(HashMap::new()),
            typing: RwSignal::new(HashMap::new()),
            presence: RwSignal::new(HashMap::new()),
            members: RwSignal::new(HashMap::new()),
            pending: RwSignal::new(Vec::new()),
            threads: RwSignal::new(HashMap::new()),
            thread_roots: RwSignal::new(HashMap::new()),
            followed: RwSignal::new(Vec::new()),
            follows_changed: RwSignal::new(0),
            rooms_changed: RwSignal::new(0),
            now: RwSignal::new(0.0),
            watching: StoredValue::new(None),
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
        self.mentions.update(|map| {
            for room in rooms {
                map.insert(room.id, room.mentions);
            }
        });
        self.notify.update(|map| {
            for room in rooms {
                map.insert(room.id, room.notify);
            }
        });
        self.names.update(|map| {
            for room in rooms {
                map.insert(room.id, room.name.clone());
            }
        });
    }

    pub fn notify_level(&self, room: RoomId) -> crate::model::NotifyLevel {
        self.notify
            .with(|m| m.get(&room).copied())
            .unwrap_or_default()
    }

    /// What the tab title counts: unread messages in rooms heard in full, unread mentions in the
    /// others.
    /// 0 once the state is gone (the server renders the title after the page's state is dropped).
    pub fn attention(&self) -> u64 {
        let Some(rooms) = self
            .last_seq
            .try_with(|m| m.keys().copied().collect::<Vec<RoomId>>())
        else {
            return 0;
        };
        rooms
            .into_iter()
            .map(|room| match self.notify_level(room) {
                crate::model::NotifyLevel::All => self.unread(room),
                _ => self.unread_mentions(room),
            })
            .sum()
    }

    /// Unread mentions of the reader in `room`.
    pub fn unread_mentions(&self, room: RoomId) -> u64 {
        self.mentions.with(|m| m.get(&room).copied().unwrap_or(0))
    }

    /// Unread mentions of the reader in all rooms.
    pub fn all_unread_mentions(&self) -> u64 {
        self.mentions.with(|m| m.values().sum())
    }

    /// The room page's opening messages, read at revision `rev` (they reflect every change up to it).
    pub fn open_room(&self, room: RoomId, page: Vec<MessageView>, rev: u64) {
        self.seed_messages(room, page);
        self.rev.update(|map| {
            let entry = map.entry(room).or_insert(0);
            *entry = (*entry).max(rev);
        });
    }

    /// Messages loaded over HTTP (a history page). A message already here in a newer state stays.
    pub fn seed_messages(&self, room: RoomId, page: Vec<MessageView>) {
        let newest = page.last().map(|m| m.seq).unwrap_or(0);
        self.messages.update(|map| {
            let list = map.entry(room).or_default();
            for message in page {
                upsert(list, message);
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
                        rev: self
                            .rev
                            .with_untracked(|m| m.get(room).copied().unwrap_or(0)),
                    })
                })
                .collect()
        })
    }

    /// The reader's newest message in a loaded room that is not deleted (Up in an empty composer
    /// edits it).
    pub fn last_own_message(
        &self,
        room: RoomId,
        me: Option<UserId>,
    ) -> Option<crate::model::MessageId> {
        let me = me?;
        self.messages.with_untracked(|map| {
            map.get(&room)?
                .values()
                .rev()
                .find(|m| m.author == me && !m.deleted)
                .map(|m| m.id)
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
            ServerMsg::Message { message } if message.thread_only() => self.apply_reply(message),
            ServerMsg::Message { message } => {
                if message.thread.is_some() {
                    self.apply_reply(message.clone());
                }
                let (room, seq, rev) = (message.room, message.seq, message.rev);
                let me = self.me.get_untracked();
                let read = self
                    .read_seq
                    .with_untracked(|m| m.get(&room).copied().unwrap_or(0));
                let mentions_me = me.is_some_and(|me| message.mentions.contains(&me));
                if mentions_me && seq > read {
                    self.mentions.update(|m| *m.entry(room).or_insert(0) += 1);
                }
                if seq > read && me != Some(message.author) {
                    let level = self.notify.with_untracked(|m| m.get(&room).copied());
                    if level.unwrap_or_default().notifies(mentions_me) {
                        let room_name = self.names.with_untracked(|m| m.get(&room).cloned());
                        desktop::notify_if_hidden(&message, room_name.as_deref());
                    }
                }
                // Only rooms the page has loaded keep their messages; others just count.
                if self.apply_change(message, true) {
                    self.advance_rev(room, rev);
                }
                self.last_seq.update(|map| {
                    let entry = map.entry(room).or_insert(0);
                    *entry = (*entry).max(seq);
                });
            }
            ServerMsg::Updated { message } if message.thread_only() => self.apply_reply(message),
            ServerMsg::Updated { message } => {
                let (room, rev) = (message.room, message.rev);
                if message.thread.is_some() {
                    self.apply_reply(message.clone());
                }
                if message.replies.is_some() {
                    self.apply_root(&message);
                }
                if self.apply_change(message, false) {
                    self.advance_rev(room, rev);
                }
            }
            ServerMsg::Synced {
                room,
                last_seq,
                rev,
            } => {
                self.last_seq.update(|map| {
                    let entry = map.entry(room).or_insert(0);
                    *entry = (*entry).max(last_seq);
                });
                self.advance_rev(room, rev);
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
            ServerMsg::Presence { changes } => {
                self.presence.update(|map| {
                    map.extend(changes.into_iter().map(|c| (c.user, c.presence)));
                });
            }
            ServerMsg::Read { room, seq } => {
                self.read_seq.update(|map| {
                    let entry = map.entry(room).or_insert(0);
                    *entry = (*entry).max(seq);
                });
                self.forget_read_mentions(room);
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

    /// Applies a new (`insert`) or changed message to a loaded room; whether the room is loaded. A
    /// change to a message this page does not hold (older than what it loaded) is not needed.
    fn apply_change(&self, message: MessageView, insert: bool) -> bool {
        let mut loaded = false;
        self.messages.update(|map| {
            if let Some(list) = map.get_mut(&message.room) {
                loaded = true;
                if insert || list.contains_key(&message.seq) {
                    upsert(list, message);
                }
            }
        });
        loaded
    }

    /// The loaded room's messages now reflect every change up to `rev`.
    fn advance_rev(&self, room: RoomId, rev: u64) {
        let loaded = self.messages.with_untracked(|m| m.contains_key(&room));
        if loaded {
            self.rev.update(|map| {
                let entry = map.entry(room).or_insert(0);
                *entry = (*entry).max(rev);
            });
        }
    }

    /// Queues a frame for the server if connected; `false` when offline (the caller keeps it pending).
    /// Follows the presence of `users`, members of `room` shown on the page (at most `MAX_WATCH`;
    /// an empty list: nobody), now and after every reconnect.
    pub fn watch(&self, room: RoomId, mut users: Vec<UserId>) {
        users.truncate(crate::protocol::MAX_WATCH);
        let watching = Some((room, users));
        // (Also called as a page is torn down, when the state may be gone already.)
        if self.watching.try_with_value(|w| *w == watching) != Some(false) {
            return;
        }
        self.watching.set_value(watching);
        self.transmit(self.watch_frame().expect("just set"));
    }

    /// The `watch` that says what the page shows, if it shows anyone's presence.
    fn watch_frame(&self) -> Option<ClientMsg> {
        self.watching.with_value(|w| {
            w.as_ref().map(|(room, users)| ClientMsg::Watch {
                room: *room,
                users: users.clone(),
            })
        })
    }

    pub fn transmit(&self, msg: ClientMsg) -> bool {
        self.outbox
            .with_value(|outbox| outbox.as_ref().map(|tx| tx.unbounded_send(msg).is_ok()))
            .unwrap_or(false)
    }

    /// Sends a message (with `thread`, a reply): shown at once as pending, delivered when connected,
    /// re-sent after a reconnect until acknowledged (the nonce keeps it single).
    pub fn send(
        &self,
        room: RoomId,
        body: String,
        thread: Option<(MessageId, bool)>,
        files: Vec<crate::files::FileView>,
    ) {
        let pending = Pending {
            room,
            nonce: new_nonce(),
            body,
            failed: None,
            retrying: false,
            thread,
            files,
        };
        let frame = pending.frame();
        self.pending.update(|p| p.push(pending));
        self.transmit(frame);
    }

    /// Tries a refused message again.
    pub fn retry(&self, nonce: &str) {
        let mut again = None;
        self.pending.update(|p| {
            if let Some(x) = p.iter_mut().find(|x| x.nonce == nonce) {
                x.failed = None;
                x.retrying = false;
                again = Some(x.frame());
            }
        });
        if let Some(msg) = again {
            self.transmit(msg);
        }
    }

    /// Marks `room` read up to its newest message (if that moves the marker).
    pub fn mark_read(&self, room: RoomId) {
        let last = of(self.last_seq, room);
        let read = of(self.read_seq, room);
        if last > read {
            self.read_seq.update(|m| {
                m.insert(room, last);
            });
            self.transmit(ClientMsg::Read { room, seq: last });
        }
        self.forget_read_mentions(room);
    }

    /// Read up to the newest message: no mention there is unread any more.
    fn forget_read_mentions(&self, room: RoomId) {
        let last = of(self.last_seq, room);
        let read = of(self.read_seq, room);
        let counted = of(self.mentions, room);
        if read >= last && counted > 0 {
            self.mentions.update(|m| {
                m.insert(room, 0);
            });
        }
    }
}

/// A per-room number, 0 when the room has none yet (without subscribing).
fn of(map: RwSignal<HashMap<RoomId, u64>>, room: RoomId) -> u64 {
    map.with_untracked(|m| m.get(&room).copied().unwrap_or(0))
}

/// Puts a message in its room's list unless the list has it in a newer state already (pages and the
/// socket may deliver one message at different revisions).
fn upsert(list: &mut BTreeMap<u64, MessageView>, message: MessageView) {
    match list.get(&message.seq) {
        Some(held) if held.rev > message.rev => {}
        _ => {
            list.insert(message.seq, message);
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
mod threads;
#[cfg(feature = "hydrate")]
pub use socket::connect;
