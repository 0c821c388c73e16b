//! In-process fan-out: which connection follows which room, and who is online. Publishing never
//! waits: each connection has a bounded inbox, and a connection whose inbox is full is closed with
//! `TooSlow` (it resumes from its last sequence when it reconnects) rather than slowing anyone else.

use crate::model::{RoomId, SessionId, UserId};
use crate::protocol::{CloseReason, Presence, ServerMsg};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// Events (and outgoing frames) waiting for one connection before it counts as too slow.
pub const DEFAULT_QUEUE: usize = 4096;

pub type ConnId = u64;

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

#[derive(Clone)]
struct Conn {
    user: UserId,
    session: SessionId,
    inbox: mpsc::Sender<Arc<ServerMsg>>,
    control: Arc<Control>,
}

impl Conn {
    fn deliver(&self, msg: &Arc<ServerMsg>) {
        if self.inbox.try_send(msg.clone()).is_err() {
            self.control.close(CloseReason::TooSlow);
        }
    }
}

#[derive(Default)]
struct Inner {
    conns: HashMap<ConnId, Conn>,
    rooms: HashMap<RoomId, HashSet<ConnId>>,
    users: HashMap<UserId, HashSet<ConnId>>,
    /// The rooms each connection follows (to clean up on unregister).
    following: HashMap<ConnId, HashSet<RoomId>>,
}

/// A connection's handle on the hub. Dropping it unregisters the connection, even on panic or cancel.
pub struct Registration {
    pub id: ConnId,
    pub inbox: mpsc::Receiver<Arc<ServerMsg>>,
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
}

impl Hub {
    /// `queue`: how many events (and, separately, outgoing frames) one connection may have waiting.
    pub fn new(queue: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            next_id: AtomicU64::new(0),
            queue: queue.max(1),
        })
    }

    pub fn queue(&self) -> usize {
        self.queue
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
            let before = presence_of(&inner, user);
            inner.conns.insert(id, conn);
            inner.users.entry(user).or_default().insert(id);
            for room in rooms {
                inner.rooms.entry(*room).or_default().insert(id);
            }
            inner.following.insert(id, rooms.iter().copied().collect());
            before
        };
        self.announce_if_changed(user, before, &HashSet::new());
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
            let before = presence_of(&inner, user);
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
        self.announce_if_changed(user, before, &rooms);
    }

    /// Sends `msg` to every connection following `room`.
    pub fn publish_room(&self, room: RoomId, msg: ServerMsg) {
        let msg = Arc::new(msg);
        let inner = self.lock();
        if let Some(ids) = inner.rooms.get(&room) {
            for id in ids {
                if let Some(conn) = inner.conns.get(id) {
                    conn.deliver(&msg);
                }
            }
        }
    }

    /// Sends `msg` to every connection of `user`.
    pub fn publish_user(&self, user: UserId, msg: ServerMsg) {
        let msg = Arc::new(msg);
        let inner = self.lock();
        for conn in conns_of(&inner, user) {
            conn.deliver(&msg);
        }
    }

    /// The user's connections start following `room` (joined, invited, new direct message).
    pub fn follow(&self, user: UserId, room: RoomId) {
        let msg = Arc::new(ServerMsg::RoomAdded { room });
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
        let msg = Arc::new(ServerMsg::RoomRemoved { room });
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

    /// Closes the connections of one session (signed out or revoked).
    pub fn close_session(&self, session: SessionId, reason: CloseReason) {
        let inner = self.lock();
        for conn in inner.conns.values().filter(|c| c.session == session) {
            conn.control.close(reason);
        }
    }

    /// Closes every connection of `user`, except those of `keep`.
    pub fn close_user(&self, user: UserId, keep: Option<SessionId>, reason: CloseReason) {
        let inner = self.lock();
        for conn in conns_of(&inner, user) {
            if Some(conn.session) != keep {
                conn.control.close(reason);
            }
        }
    }

    /// Closes every connection (shutdown).
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
            let before = presence_of(&inner, conn.user);
            conn.control.away.store(away, Ordering::Relaxed);
            (conn.user, before)
        };
        self.announce_if_changed(user, before, &HashSet::new());
    }

    pub fn presence(&self, user: UserId) -> Presence {
        presence_of(&self.lock(), user)
    }

    /// Open connections and distinct users online, for the dashboard and metrics.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.conns.len(), inner.users.len())
    }

    /// Tells everyone who shares a room with `user` about a presence change. `also` names rooms a
    /// just-closed connection followed (the user may have no connection left to find them by).
    fn announce_if_changed(&self, user: UserId, before: Presence, also: &HashSet<RoomId>) {
        let inner = self.lock();
        let now = presence_of(&inner, user);
        if now == before {
            return;
        }
        let msg = Arc::new(ServerMsg::Presence {
            user,
            presence: now,
        });
        let mut rooms: HashSet<RoomId> = also.clone();
        for id in inner.users.get(&user).into_iter().flatten() {
            rooms.extend(inner.following.get(id).into_iter().flatten().copied());
        }
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
}

fn conns_of(inner: &Inner, user: UserId) -> impl Iterator<Item = &Conn> {
    inner
        .users
        .get(&user)
        .into_iter()
        .flatten()
        .filter_map(|id| inner.conns.get(id))
}

fn presence_of(inner: &Inner, user: UserId) -> Presence {
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
            if let ServerMsg::Presence { user, presence } = &*msg {
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
}
