//! Fan-out: which connection follows which room, and who is online. Publishing never waits: each
//! connection has a bounded inbox, and a connection whose inbox is full is closed with `TooSlow` (it
//! resumes from its last sequence when it reconnects) rather than slowing anyone else.
//!
//! With several server instances (MongoDB mode) a [`Relay`] carries every event to the other instances,
//! which apply it to their own connections ([`Hub::apply_remote`]). Presence is then the union of every
//! instance's connections: each instance announces its own part, and forgets the part of an instance
//! that has gone silent (it died), so its users go offline.

use crate::model::{RoomId, SessionId, UserId};
use crate::protocol::{CloseReason, Presence, ServerMsg};
use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tokio_util::task::TaskTracker;

/// Events (and outgoing frames) waiting for one connection before it counts as too slow.
pub const DEFAULT_QUEUE: usize = 4096;

/// A client pings every `HEARTBEAT_SECS`; three missed pings and it is gone.
pub const DEFAULT_SILENCE: Duration = Duration::from_secs(3 * crate::protocol::HEARTBEAT_SECS);

pub type ConnId = u64;

/// What one instance tells the others. Applying it on another instance has the same effect on that
/// instance's connections as the original call had here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum HubEvent {
    Room {
        room: RoomId,
        msg: ServerMsg,
    },
    User {
        user: UserId,
        msg: ServerMsg,
    },
    Follow {
        user: UserId,
        room: RoomId,
    },
    Unfollow {
        user: UserId,
        room: RoomId,
    },
    CloseSession {
        session: SessionId,
        reason: CloseReason,
    },
    CloseUser {
        user: UserId,
        keep: Option<SessionId>,
        reason: CloseReason,
    },
    /// The sender's own part of `user`'s presence (`Offline`: no connection there), and the rooms
    /// whose members should hear about a change.
    Presence {
        user: UserId,
        presence: Presence,
        rooms: Vec<RoomId>,
    },
    /// The sender is alive. Sent every few seconds; an instance not heard from for a while is dead.
    Alive,
    /// A new (or reconnected) instance asks everyone to repeat their presence.
    Hello,
}

/// Carries events to the other instances. Must not block: implementations queue.
pub trait Relay: Send + Sync {
    fn relay(&self, event: HubEvent);
}

/// Shared between a connection and the hub: how to reach it and how to stop it.
pub struct Control {
    closing: Mutex<Option<CloseReason>>,
    closed: Notify,
    away: AtomicBool,
}

impl Control {
    fn new() -> Self {
        Self {
            closing: Mutex::new(None),
            closed: Notify::new(),
            away: AtomicBool::new(false),
        }
    }

    /// Asks the connection to close; the first reason wins.
    pub fn close(&self, reason: CloseReason) {
        let mut closing = self.closing.lock().unwrap_or_else(|e| e.into_inner());
        if closing.is_none() {
            *closing = Some(reason);
            self.closed.notify_waiters();
            self.closed.notify_one();
        }
    }

    pub fn reason(&self) -> Option<CloseReason> {
        *self.closing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Completes once `close` has been called.
    pub async fn closed(&self) -> CloseReason {
        loop {
            let notified = self.closed.notified();
            if let Some(reason) = self.reason() {
                return reason;
            }
            notified.await;
        }
    }
}

/// One event on its way to connections: encoded for the wire at most once, however many connections
/// receive it (a message in a room of 100 is serialized once, not 100 times).
#[derive(Debug)]
pub struct Event {
    msg: ServerMsg,
    frame: OnceLock<Bytes>,
}

impl Event {
    pub fn new(msg: ServerMsg) -> Arc<Self> {
        Arc::new(Self {
            msg,
            frame: OnceLock::new(),
        })
    }

    /// The websocket frame carrying this event (shared, cheap to clone).
    pub fn frame(&self) -> Bytes {
        self.frame
            .get_or_init(|| Bytes::from(crate::protocol::encode_item(&self.msg)))
            .clone()
    }
}

impl std::ops::Deref for Event {
    type Target = ServerMsg;
    fn deref(&self) -> &ServerMsg {
        &self.msg
    }
}

impl PartialEq<ServerMsg> for Event {
    fn eq(&self, other: &ServerMsg) -> bool {
        self.msg == *other
    }
}

#[derive(Clone)]
struct Conn {
    user: UserId,
    session: SessionId,
    inbox: mpsc::Sender<Arc<Event>>,
    control: Arc<Control>,
}

impl Conn {
    fn deliver(&self, msg: &Arc<Event>) {
        if self.inbox.try_send(msg.clone()).is_err() {
            self.control.close(CloseReason::TooSlow);
        }
    }
}

/// Another instance's part of one user's presence.
#[derive(Clone)]
struct RemotePart {
    presence: Presence,
    rooms: Vec<RoomId>,
}

#[derive(Default)]
struct Inner {
    conns: HashMap<ConnId, Conn>,
    rooms: HashMap<RoomId, HashSet<ConnId>>,
    users: HashMap<UserId, HashSet<ConnId>>,
    /// The rooms each connection follows (to clean up on unregister).
    following: HashMap<ConnId, HashSet<RoomId>>,
    /// Other instances' presence parts, by user and instance.
    remote: HashMap<UserId, HashMap<String, RemotePart>>,
    /// When each other instance was last heard from.
    heard: HashMap<String, Instant>,
}

/// A connection's handle on the hub. Dropping it unregisters the connection, even on panic or cancel.
pub struct Registration {
    pub id: ConnId,
    pub inbox: mpsc::Receiver<Arc<Event>>,
    pub control: Arc<Control>,
    hub: Arc<Hub>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(self.id);
    }
}

pub struct Hub {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    queue: usize,
    silence: Duration,
    relay: OnceLock<Arc<dyn Relay>>,
    /// Every websocket's task, until its last frame is written: a draining server waits for them.
    sockets: TaskTracker,
}

impl Hub {
    /// `queue`: how many events (and, separately, outgoing frames) one connection may have waiting.
    pub fn new(queue: usize) -> Arc<Self> {
        Self::with_limits(queue, DEFAULT_SILENCE)
    }

    /// Also sets how long a connection may stay silent (no frame, not even a ping) before it is closed.
    pub fn with_limits(queue: usize, silence: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            next_id: AtomicU64::new(0),
            queue: queue.max(1),
            silence,
            relay: OnceLock::new(),
            sockets: TaskTracker::new(),
        })
    }

    /// Runs a websocket's task as one of the sockets a shutdown waits for.
    pub fn track_socket<F: Future>(&self, socket: F) -> impl Future<Output = F::Output> {
        self.sockets.track_future(socket)
    }

    /// Completes once every socket task has ended (after `close_all`, once each has said `Closing`).
    pub async fn sockets_closed(&self) {
        self.sockets.close();
        self.sockets.wait().await;
    }

    pub fn queue(&self) -> usize {
        self.queue
    }

    pub fn silence(&self) -> Duration {
        self.silence
    }

    /// Connects this hub to the other instances. Set once, at start-up.
    pub fn set_relay(&self, relay: Arc<dyn Relay>) {
        if self.relay.set(relay).is_err() {
            tracing::warn!("the hub already has a relay; keeping the first");
        }
    }

    fn relay(&self, event: HubEvent) {
        self.relay_with(|| event);
    }

    /// Builds the event only when there are other instances (MongoDB mode) to tell.
    fn relay_with(&self, event: impl FnOnce() -> HubEvent) {
        if let Some(relay) = self.relay.get() {
            relay.relay(event());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a connection following `rooms`. Announces the user as online if this is their first.
    pub fn register(
        self: &Arc<Self>,
        user: UserId,
        session: SessionId,
        rooms: &[RoomId],
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.queue);
        let control = Arc::new(Control::new());
        let conn = Conn {
            user,
            session,
            inbox: tx,
            control: control.clone(),
        };
        let before = {
            let mut inner = self.lock();
            let before = (local_presence(&inner, user), presence_of(&inner, user));
            inner.conns.insert(id, conn);
            inner.users.entry(user).or_default().insert(id);
            for room in rooms {
                inner.rooms.entry(*room).or_default().insert(id);
            }
            inner.following.insert(id, rooms.iter().copied().collect());
            before
        };
        self.local_presence_changed(user, before, &HashSet::new());
        Registration {
            id,
            inbox: rx,
            control,
            hub: self.clone(),
        }
    }

    fn unregister(&self, id: ConnId) {
        let (user, before, rooms) = {
            let mut inner = self.lock();
            let Some(user) = inner.conns.get(&id).map(|c| c.user) else {
                return;
            };
            let before = (local_presence(&inner, user), presence_of(&inner, user));
            let conn = inner.conns.remove(&id).expect("present");
            let rooms = inner.following.remove(&id).unwrap_or_default();
            for room in &rooms {
                if let Some(set) = inner.rooms.get_mut(room) {
                    set.remove(&id);
                    if set.is_empty() {
                        inner.rooms.remove(room);
                    }
                }
            }
            if let Some(set) = inner.users.get_mut(&conn.user) {
                set.remove(&id);
                if set.is_empty() {
                    inner.users.remove(&conn.user);
                }
            }
            (conn.user, before, rooms)
        };
        self.local_presence_changed(user, before, &rooms);
    }

    /// Sends `msg` to every connection following `room`, on every instance.
    pub fn publish_room(&self, room: RoomId, msg: ServerMsg) {
        let event = Event::new(msg);
        self.deliver_room(room, &event);
        self.relay_with(|| HubEvent::Room {
            room,
            msg: event.msg.clone(),
        });
    }

    fn deliver_room(&self, room: RoomId, msg: &Arc<Event>) {
        let inner = self.lock();
        if let Some(ids) = inner.rooms.get(&room) {
            for id in ids {
                if let Some(conn) = inner.conns.get(id) {
                    conn.deliver(msg);
                }
            }
        }
    }

    /// Sends `msg` to every connection of `user`, on every instance.
    pub fn publish_user(&self, user: UserId, msg: ServerMsg) {
        let event = Event::new(msg);
        self.deliver_user(user, &event);
        self.relay_with(|| HubEvent::User {
            user,
            msg: event.msg.clone(),
        });
    }

    fn deliver_user(&self, user: UserId, msg: &Arc<Event>) {
        let inner = self.lock();
        for conn in conns_of(&inner, user) {
            conn.deliver(msg);
        }
    }

    /// The user's connections start following `room` (joined, invited, new direct message).
    pub fn follow(&self, user: UserId, room: RoomId) {
        self.follow_here(user, room);
        self.relay(HubEvent::Follow { user, room });
    }

    fn follow_here(&self, user: UserId, room: RoomId) {
        let msg = Event::new(ServerMsg::RoomAdded { room });
        let mut inner = self.lock();
        let ids: Vec<ConnId> = inner
            .users
            .get(&user)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        for id in ids {
            inner.rooms.entry(room).or_default().insert(id);
            inner.following.entry(id).or_default().insert(room);
            if let Some(conn) = inner.conns.get(&id) {
                conn.deliver(&msg);
            }
        }
    }

    /// The user's connections stop following `room`.
    pub fn unfollow(&self, user: UserId, room: RoomId) {
        self.unfollow_here(user, room);
        self.relay(HubEvent::Unfollow { user, room });
    }

    fn unfollow_here(&self, user: UserId, room: RoomId) {
        let msg = Event::new(ServerMsg::RoomRemoved { room });
        let mut inner = self.lock();
        let ids: Vec<ConnId> = inner
            .users
            .get(&user)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        for id in ids {
            if let Some(set) = inner.rooms.get_mut(&room) {
                set.remove(&id);
            }
            if let Some(set) = inner.following.get_mut(&id) {
                set.remove(&room);
            }
            if let Some(conn) = inner.conns.get(&id) {
                conn.deliver(&msg);
            }
        }
    }

    /// Closes the connections of one session (signed out or revoked), on every instance.
    pub fn close_session(&self, session: SessionId, reason: CloseReason) {
        self.close_session_here(session, reason);
        self.relay(HubEvent::CloseSession { session, reason });
    }

    fn close_session_here(&self, session: SessionId, reason: CloseReason) {
        let inner = self.lock();
        for conn in inner.conns.values().filter(|c| c.session == session) {
            conn.control.close(reason);
        }
    }

    /// Closes every connection of `user`, except those of `keep`, on every instance.
    pub fn close_user(&self, user: UserId, keep: Option<SessionId>, reason: CloseReason) {
        self.close_user_here(user, keep, reason);
        self.relay(HubEvent::CloseUser { user, keep, reason });
    }

    fn close_user_here(&self, user: UserId, keep: Option<SessionId>, reason: CloseReason) {
        let inner = self.lock();
        for conn in conns_of(&inner, user) {
            if Some(conn.session) != keep {
                conn.control.close(reason);
            }
        }
    }

    /// Closes every connection of this instance (shutdown, or a relay that lost track).
    pub fn close_all(&self, reason: CloseReason) {
        for conn in self.lock().conns.values() {
            conn.control.close(reason);
        }
    }

    /// Marks one connection away or back, and announces a change in the user's presence.
    pub fn set_away(&self, id: ConnId, away: bool) {
        let (user, before) = {
            let inner = self.lock();
            let Some(conn) = inner.conns.get(&id) else {
                return;
            };
            let before = (
                local_presence(&inner, conn.user),
                presence_of(&inner, conn.user),
            );
            conn.control.away.store(away, Ordering::Relaxed);
            (conn.user, before)
        };
        self.local_presence_changed(user, before, &HashSet::new());
    }

    /// The user's presence across every instance.
    pub fn presence(&self, user: UserId) -> Presence {
        presence_of(&self.lock(), user)
    }

    /// Open connections and distinct users online on this instance, for the dashboard and metrics.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.conns.len(), inner.users.len())
    }

    /// After a local connection came, went or changed: tells the local followers if the overall
    /// presence changed, and the other instances if this instance's part did.
    fn local_presence_changed(
        &self,
        user: UserId,
        (local_before, before): (Presence, Presence),
        also: &HashSet<RoomId>,
    ) {
        let (local_now, rooms) = {
            let inner = self.lock();
            let mut rooms: HashSet<RoomId> = also.clone();
            for id in inner.users.get(&user).into_iter().flatten() {
                rooms.extend(inner.following.get(id).into_iter().flatten().copied());
            }
            announce(&inner, user, before, &rooms);
            (local_presence(&inner, user), rooms)
        };
        if local_now != local_before {
            self.relay(HubEvent::Presence {
                user,
                presence: local_now,
                rooms: rooms.into_iter().collect(),
            });
        }
    }

    /// Applies an event from instance `origin` to this instance's connections.
    pub fn apply_remote(&self, origin: &str, event: HubEvent) {
        self.lock().heard.insert(origin.to_owned(), Instant::now());
        match event {
            HubEvent::Room { room, msg } => self.deliver_room(room, &Event::new(msg)),
            HubEvent::User { user, msg } => self.deliver_user(user, &Event::new(msg)),
            HubEvent::Follow { user, room } => self.follow_here(user, room),
            HubEvent::Unfollow { user, room } => self.unfollow_here(user, room),
            HubEvent::CloseSession { session, reason } => self.close_session_here(session, reason),
            HubEvent::CloseUser { user, keep, reason } => self.close_user_here(user, keep, reason),
            HubEvent::Presence {
                user,
                presence,
                rooms,
            } => {
                let mut inner = self.lock();
                let before = presence_of(&inner, user);
                let parts = inner.remote.entry(user).or_default();
                if presence == Presence::Offline {
                    parts.remove(origin);
                } else {
                    parts.insert(
                        origin.to_owned(),
                        RemotePart {
                            presence,
                            rooms: rooms.clone(),
                        },
                    );
                }
                if parts.is_empty() {
                    inner.remote.remove(&user);
                }
                announce(&inner, user, before, &rooms.into_iter().collect());
            }
            HubEvent::Alive => {}
            HubEvent::Hello => self.repeat_presence(),
        }
    }

    /// Asks the other instances to repeat their presence (after start-up or a lost stream).
    pub fn say_hello(&self) {
        self.relay(HubEvent::Hello);
    }

    /// Tells the other instances this one is alive.
    pub fn say_alive(&self) {
        self.relay(HubEvent::Alive);
    }

    /// Tells the other instances this instance's part of every local user's presence.
    pub fn repeat_presence(&self) {
        let parts: Vec<HubEvent> = {
            let inner = self.lock();
            inner
                .users
                .iter()
                .map(|(user, ids)| HubEvent::Presence {
                    user: *user,
                    presence: local_presence(&inner, *user),
                    rooms: ids
                        .iter()
                        .flat_map(|id| inner.following.get(id).into_iter().flatten().copied())
                        .collect::<HashSet<_>>()
                        .into_iter()
                        .collect(),
                })
                .collect()
        };
        for event in parts {
            self.relay(event);
        }
    }

    /// Forgets the presence parts of instances not heard from within `silence` (they died); their users
    /// go offline unless they are connected elsewhere. Returns how many instances were forgotten.
    pub fn forget_silent_instances(&self, silence: Duration) -> usize {
        let mut inner = self.lock();
        let dead: Vec<String> = inner
            .heard
            .iter()
            .filter(|(_, at)| at.elapsed() > silence)
            .map(|(origin, _)| origin.clone())
            .collect();
        for origin in &dead {
            inner.heard.remove(origin);
            let users: Vec<UserId> = inner
                .remote
                .iter()
                .filter(|(_, parts)| parts.contains_key(origin))
                .map(|(user, _)| *user)
                .collect();
            for user in users {
                let before = presence_of(&inner, user);
                let parts = inner.remote.get_mut(&user).expect("listed above");
                let part = parts.remove(origin).expect("listed above");
                if parts.is_empty() {
                    inner.remote.remove(&user);
                }
                announce(&inner, user, before, &part.rooms.into_iter().collect());
            }
        }
        dead.len()
    }
}

/// Tells the local followers of `rooms` the user's presence, if it changed from `before`.
fn announce(inner: &Inner, user: UserId, before: Presence, rooms: &HashSet<RoomId>) {
    let now = presence_of(inner, user);
    if now == before {
        return;
    }
    let msg = Event::new(ServerMsg::Presence {
        user,
        presence: now,
    });
    let targets: HashSet<ConnId> = rooms
        .iter()
        .flat_map(|room| inner.rooms.get(room).into_iter().flatten().copied())
        .collect();
    for id in targets {
        if let Some(conn) = inner.conns.get(&id) {
            conn.deliver(&msg);
        }
    }
}

fn conns_of(inner: &Inner, user: UserId) -> impl Iterator<Item = &Conn> {
    inner
        .users
        .get(&user)
        .into_iter()
        .flatten()
        .filter_map(|id| inner.conns.get(id))
}

/// This instance's part: online if any local connection is active, away if all are away.
fn local_presence(inner: &Inner, user: UserId) -> Presence {
    let mut any = false;
    for conn in conns_of(inner, user) {
        any = true;
        if !conn.control.away.load(Ordering::Relaxed) {
            return Presence::Online;
        }
    }
    if any {
        Presence::Away
    } else {
        Presence::Offline
    }
}

/// The union over every instance: online beats away beats offline.
fn presence_of(inner: &Inner, user: UserId) -> Presence {
    let parts = inner
        .remote
        .get(&user)
        .into_iter()
        .flat_map(|parts| parts.values().map(|p| p.presence));
    std::iter::once(local_presence(inner, user))
        .chain(parts)
        .min_by_key(|p| match p {
            Presence::Online => 0,
            Presence::Away => 1,
            Presence::Offline => 2,
        })
        .unwrap_or(Presence::Offline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> ServerMsg {
        ServerMsg::Pong
    }

    #[tokio::test]
    async fn presence_is_the_union_of_a_users_connections() {
        let hub = Hub::new(16);
        let room = RoomId::new();
        let (ana, ben) = (UserId::new(), UserId::new());
        let mut watcher = hub.register(ben, SessionId::new(), &[room]);
        assert_eq!(hub.presence(ana), Presence::Offline);

        let phone = hub.register(ana, SessionId::new(), &[room]);
        let laptop = hub.register(ana, SessionId::new(), &[room]);
        assert_eq!(hub.presence(ana), Presence::Online);
        hub.set_away(phone.id, true);
        assert_eq!(
            hub.presence(ana),
            Presence::Online,
            "one active connection is enough"
        );
        hub.set_away(laptop.id, true);
        assert_eq!(hub.presence(ana), Presence::Away);
        drop(laptop);
        assert_eq!(hub.presence(ana), Presence::Away);
        drop(phone);
        assert_eq!(hub.presence(ana), Presence::Offline);

        // Ben, in the same room, heard every change exactly once: online, away, offline.
        let mut heard = Vec::new();
        while let Ok(msg) = watcher.inbox.try_recv() {
            if let ServerMsg::Presence { user, presence } = &**msg {
                if *user == ana {
                    heard.push(*presence);
                }
            }
        }
        assert_eq!(heard, [Presence::Online, Presence::Away, Presence::Offline]);
        assert_eq!(hub.counts(), (1, 1));
    }

    #[tokio::test]
    async fn a_full_inbox_closes_only_that_connection() {
        let hub = Hub::new(2);
        let room = RoomId::new();
        let slow = hub.register(UserId::new(), SessionId::new(), &[room]);
        let mut fast = hub.register(UserId::new(), SessionId::new(), &[room]);
        for _ in 0..3 {
            hub.publish_room(room, msg());
            while fast.inbox.try_recv().is_ok() {}
        }
        assert_eq!(slow.control.reason(), Some(CloseReason::TooSlow));
        assert_eq!(fast.control.reason(), None);
    }

    #[tokio::test]
    async fn following_and_closing_by_session_or_user() {
        let hub = Hub::new(16);
        let (room, user) = (RoomId::new(), UserId::new());
        let (keep, other) = (SessionId::new(), SessionId::new());
        let mut a = hub.register(user, keep, &[]);
        let b = hub.register(user, other, &[]);
        hub.follow(user, room);
        assert_eq!(*a.inbox.try_recv().unwrap(), ServerMsg::RoomAdded { room });
        hub.publish_room(room, msg());
        assert_eq!(
            *a.inbox.try_recv().unwrap(),
            ServerMsg::Pong,
            "now follows the room"
        );
        hub.close_user(user, Some(keep), CloseReason::SignedOut);
        assert_eq!(a.control.reason(), None);
        assert_eq!(b.control.reason(), Some(CloseReason::SignedOut));
        hub.close_session(keep, CloseReason::SignedOut);
        assert_eq!(a.control.reason(), Some(CloseReason::SignedOut));
    }

    /// Two instances joined the way the MongoDB relay joins them, minus the database.
    struct Wire {
        to: std::sync::Weak<Hub>,
        origin: &'static str,
    }

    impl Relay for Wire {
        fn relay(&self, event: HubEvent) {
            if let Some(hub) = self.to.upgrade() {
                hub.apply_remote(self.origin, event);
            }
        }
    }

    fn pair() -> (Arc<Hub>, Arc<Hub>) {
        let (a, b) = (Hub::new(64), Hub::new(64));
        a.set_relay(Arc::new(Wire {
            to: Arc::downgrade(&b),
            origin: "a",
        }));
        b.set_relay(Arc::new(Wire {
            to: Arc::downgrade(&a),
            origin: "b",
        }));
        (a, b)
    }

    fn heard(registration: &mut Registration, who: UserId) -> Vec<Presence> {
        let mut out = Vec::new();
        while let Ok(msg) = registration.inbox.try_recv() {
            if let ServerMsg::Presence { user, presence } = &**msg {
                if *user == who {
                    out.push(*presence);
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn events_and_presence_cross_instances_and_a_dead_instance_expires() {
        let (a, b) = pair();
        let room = RoomId::new();
        let (ana, ben) = (UserId::new(), UserId::new());
        let mut watcher = b.register(ben, SessionId::new(), &[room]);

        // Ana connects on A: Ben, on B, sees her online; a room event from A reaches him.
        let on_a = a.register(ana, SessionId::new(), &[room]);
        assert_eq!(b.presence(ana), Presence::Online);
        assert_eq!(heard(&mut watcher, ana), [Presence::Online]);
        a.publish_room(room, msg());
        assert_eq!(*watcher.inbox.try_recv().unwrap(), ServerMsg::Pong);

        // A second connection on B, then the one on A goes: still online, nothing to announce.
        let on_b = b.register(ana, SessionId::new(), &[room]);
        drop(on_a);
        assert_eq!(b.presence(ana), Presence::Online);
        assert_eq!(a.presence(ana), Presence::Online, "A counts B's part");
        assert_eq!(heard(&mut watcher, ana), []);
        drop(on_b);
        assert_eq!(heard(&mut watcher, ana), [Presence::Offline]);

        // Ana is back on A only, and A dies: B forgets A's part once A has been silent too long.
        let _on_a = a.register(ana, SessionId::new(), &[room]);
        assert_eq!(heard(&mut watcher, ana), [Presence::Online]);
        assert_eq!(b.forget_silent_instances(Duration::from_secs(60)), 0);
        assert_eq!(b.forget_silent_instances(Duration::ZERO), 1);
        assert_eq!(b.presence(ana), Presence::Offline);
        assert_eq!(heard(&mut watcher, ana), [Presence::Offline]);

        // A newcomer learns the current presence by asking.
        b.apply_remote("a", HubEvent::Alive);
        b.relay(HubEvent::Hello);
        assert_eq!(b.presence(ana), Presence::Online);

        // Closing a user reaches their connections everywhere.
        let on_b = b.register(ana, SessionId::new(), &[]);
        a.close_user(ana, None, CloseReason::Disabled);
        assert_eq!(on_b.control.reason(), Some(CloseReason::Disabled));
    }
}
