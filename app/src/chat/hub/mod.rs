//! Fan-out: which connection follows which room, and who is online. Publishing never waits: each
//! connection has a bounded inbox, and a connection whose inbox is full is closed with `TooSlow` (it
//! resumes from its cursors when it reconnects) rather than slowing anyone else.
//!
//! - this file: subscribers, rooms and users, and routing messages to them;
//! - `events`: what a connection receives ([`Broadcast`]) and how it is stopped ([`Control`]);
//! - `inbox`: where those wait for the connection's task ([`Inbox`]);
//! - `presence`: online / away / offline, the union over every instance, told to who watches;
//! - `peers`: with several instances on one store, the events they exchange over the store's bus;
//! - `changes`: generations of what other parts keep cached, moved by a change on any instance.

mod changes;
mod events;
mod inbox;
mod peers;
mod presence;

pub use changes::{Cached, Forget};
pub use events::{Broadcast, Control};
pub use inbox::{Inbox, Refused};
pub use peers::{PeerEvent, ALIVE_EVERY, DEAD_AFTER};
pub use presence::CHANGES_PER_FRAME;

use crate::model::{RoomId, SessionId, UserId};
use crate::protocol::{CloseReason, ServerMsg};
use crate::store::EventBus;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio_util::task::TaskTracker;

/// Messages waiting for one connection before it counts as too slow.
pub const DEFAULT_QUEUE: usize = 4096;

/// A client pings every `HEARTBEAT_SECS`; three missed pings and it is gone.
pub const DEFAULT_SILENCE: Duration = Duration::from_secs(3 * crate::protocol::HEARTBEAT_SECS);

pub type ConnId = u64;

/// One connection as the hub knows it: whose it is, and how to reach and stop it.
#[derive(Clone)]
struct Subscriber {
    user: UserId,
    session: SessionId,
    inbox: Arc<Inbox>,
    control: Arc<Control>,
}

impl Subscriber {
    fn deliver(&self, msg: &Arc<Broadcast>) {
        if self.inbox.push(msg) == Err(Refused::Full) {
            self.control.close(CloseReason::TooSlow);
        }
    }
}

#[derive(Default)]
struct Inner {
    subscribers: HashMap<ConnId, Subscriber>,
    rooms: HashMap<RoomId, HashSet<ConnId>>,
    users: HashMap<UserId, HashSet<ConnId>>,
    /// The rooms each connection follows (to clean up on unregister).
    following: HashMap<ConnId, HashSet<RoomId>>,
    /// Other instances' parts of each user's presence.
    peers: presence::PeerPresence,
    /// Whose presence each connection hears.
    watching: presence::Watching,
    /// Presence changes waiting for the window to end.
    coalescing: presence::Coalescing,
}

impl Inner {
    fn subscribers_of(&self, user: UserId) -> impl Iterator<Item = &Subscriber> {
        self.users
            .get(&user)
            .into_iter()
            .flatten()
            .filter_map(|id| self.subscribers.get(id))
    }

    fn deliver_room(&self, room: RoomId, msg: &Arc<Broadcast>) {
        for id in self.rooms.get(&room).into_iter().flatten() {
            if let Some(subscriber) = self.subscribers.get(id) {
                subscriber.deliver(msg);
            }
        }
    }
}

/// A connection's handle on the hub. Dropping it unregisters the connection, even on panic or cancel.
pub struct Registration {
    pub id: ConnId,
    pub inbox: Arc<Inbox>,
    pub control: Arc<Control>,
    hub: Arc<Hub>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(self.id);
        self.inbox.close();
    }
}

pub struct Hub {
    inner: Mutex<Inner>,
    /// Itself, for the task that sends coalesced presence changes.
    me: Weak<Hub>,
    next_id: AtomicU64,
    queue: usize,
    silence: Duration,
    /// With several instances on one store: the bus to them, set once at start-up.
    bus: OnceLock<Arc<dyn EventBus>>,
    /// Every websocket's task, until its last frame is written: a draining server waits for them.
    sockets: TaskTracker,
    /// What caches elsewhere need to read again.
    changes: changes::Changes,
}

impl Hub {
    /// `queue`: how many messages (and, separately, outgoing frames) one connection may have waiting.
    pub fn new(queue: usize) -> Arc<Self> {
        Self::with_limits(queue, DEFAULT_SILENCE)
    }

    /// Also sets how long a connection may stay silent (no frame, not even a ping) before it is closed.
    pub fn with_limits(queue: usize, silence: Duration) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            inner: Mutex::new(Inner::default()),
            me: me.clone(),
            next_id: AtomicU64::new(0),
            queue: queue.max(1),
            silence,
            bus: OnceLock::new(),
            sockets: TaskTracker::new(),
            changes: changes::Changes::default(),
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
        let inbox = Arc::new(Inbox::new(self.queue));
        let control = Arc::new(Control::new());
        let subscriber = Subscriber {
            user,
            session,
            inbox: inbox.clone(),
            control: control.clone(),
        };
        self.changing_presence(user, |inner| {
            inner.subscribers.insert(id, subscriber);
            inner.users.entry(user).or_default().insert(id);
            for room in rooms {
                inner.rooms.entry(*room).or_default().insert(id);
            }
            inner.following.insert(id, rooms.iter().copied().collect());
        });
        Registration {
            id,
            inbox,
            control,
            hub: self.clone(),
        }
    }

    fn unregister(&self, id: ConnId) {
        let Some(user) = self.lock().subscribers.get(&id).map(|s| s.user) else {
            return;
        };
        self.changing_presence(user, |inner| {
            inner.subscribers.remove(&id);
            inner.watching.forget(id);
            for room in inner.following.remove(&id).unwrap_or_default() {
                if let Some(set) = inner.rooms.get_mut(&room) {
                    set.remove(&id);
                    if set.is_empty() {
                        inner.rooms.remove(&room);
                    }
                }
            }
            if let Some(set) = inner.users.get_mut(&user) {
                set.remove(&id);
                if set.is_empty() {
                    inner.users.remove(&user);
                }
            }
        });
    }

    /// Sends `msg` to every connection following `room`, on every instance.
    pub fn publish_room(&self, room: RoomId, msg: ServerMsg) {
        let broadcast = Broadcast::new(msg);
        self.lock().deliver_room(room, &broadcast);
        self.tell_peers_with(|| PeerEvent::Room {
            room,
            msg: broadcast.msg().clone(),
        });
    }

    /// Sends `msg` to every connection of `user`, on every instance.
    pub fn publish_user(&self, user: UserId, msg: ServerMsg) {
        let broadcast = Broadcast::new(msg);
        self.deliver_user(user, &broadcast);
        self.tell_peers_with(|| PeerEvent::User {
            user,
            msg: broadcast.msg().clone(),
        });
    }

    fn deliver_user(&self, user: UserId, msg: &Arc<Broadcast>) {
        let inner = self.lock();
        for subscriber in inner.subscribers_of(user) {
            subscriber.deliver(msg);
        }
    }

    /// The user's connections start following `room` (joined, invited, new direct message).
    pub fn follow(&self, user: UserId, room: RoomId) {
        self.follow_here(user, room);
        self.tell_peers(PeerEvent::Follow { user, room });
    }

    fn follow_here(&self, user: UserId, room: RoomId) {
        let msg = Broadcast::new(ServerMsg::RoomAdded { room });
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
            if let Some(subscriber) = inner.subscribers.get(&id) {
                subscriber.deliver(&msg);
            }
        }
    }

    /// The user's connections stop following `room`.
    pub fn unfollow(&self, user: UserId, room: RoomId) {
        self.unfollow_here(user, room);
        self.tell_peers(PeerEvent::Unfollow { user, room });
    }

    fn unfollow_here(&self, user: UserId, room: RoomId) {
        let msg = Broadcast::new(ServerMsg::RoomRemoved { room });
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
            if let Some(subscriber) = inner.subscribers.get(&id) {
                subscriber.deliver(&msg);
            }
        }
    }

    /// Closes the connections of one session (signed out or revoked), on every instance.
    pub fn close_session(&self, session: SessionId, reason: CloseReason) {
        self.close_session_here(session, reason);
        self.tell_peers(PeerEvent::CloseSession { session, reason });
    }

    fn close_session_here(&self, session: SessionId, reason: CloseReason) {
        let inner = self.lock();
        for subscriber in inner.subscribers.values().filter(|s| s.session == session) {
            subscriber.control.close(reason);
        }
    }

    /// Closes every connection of `user`, except those of `keep`, on every instance.
    pub fn close_user(&self, user: UserId, keep: Option<SessionId>, reason: CloseReason) {
        self.close_user_here(user, keep, reason);
        self.tell_peers(PeerEvent::CloseUser { user, keep, reason });
    }

    fn close_user_here(&self, user: UserId, keep: Option<SessionId>, reason: CloseReason) {
        let inner = self.lock();
        for subscriber in inner.subscribers_of(user) {
            if Some(subscriber.session) != keep {
                subscriber.control.close(reason);
            }
        }
    }

    /// Closes every connection of this instance (shutdown, or a bus that lost track).
    pub fn close_all(&self, reason: CloseReason) {
        for subscriber in self.lock().subscribers.values() {
            subscriber.control.close(reason);
        }
    }

    /// Open connections and distinct users online on this instance, for the dashboard and metrics.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.subscribers.len(), inner.users.len())
    }
}

#[cfg(test)]
mod tests;
