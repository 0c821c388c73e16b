//! Several instances on one store: what they tell each other over the store's event bus, and how an
//! event from another instance is applied here. Applying an event has the same effect on this
//! instance's connections as the original call had on the sender's.

use super::{Broadcast, Cached, Hub};
use crate::model::{RoomId, SessionId, UserId};
use crate::protocol::{CloseReason, Presence, ServerMsg};
use crate::store::{BusConnection, BusDelivery, EventBus};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often an instance says it is alive, and how long the others wait before forgetting it.
pub const ALIVE_EVERY: Duration = Duration::from_secs(3);
pub const DEAD_AFTER: Duration = Duration::from_secs(15);

/// What one instance tells the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum PeerEvent {
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
    /// The sender's own part of `user`'s presence (`Offline`: no connection there), and the sender's
    /// version of this announcement (higher is newer; announcements may be published in a different
    /// order than they were made). Each instance tells its own connections that watch `user`.
    Presence {
        user: UserId,
        presence: Presence,
        #[serde(default)]
        version: u64,
    },
    /// The sender is alive. Sent every few seconds; an instance not heard from for a while is dead.
    Alive,
    /// A new (or reconnected) instance asks everyone to repeat their presence.
    Hello,
    /// `what` changed in the store: caches of it read it again.
    Changed {
        what: Cached,
    },
}

impl Hub {
    /// Connects this hub to the other instances through the store's bus: publishes every event there,
    /// applies theirs here, says "alive" every few seconds and asks who is online.
    pub fn connect_peers(self: &Arc<Self>, connection: BusConnection) {
        let BusConnection {
            bus,
            mut deliveries,
        } = connection;
        if self.bus.set(bus).is_err() {
            tracing::warn!("the hub is already connected to its peers; keeping the first bus");
            return;
        }
        let hub = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(delivery) = deliveries.recv().await {
                let Some(hub) = hub.upgrade() else { return };
                hub.apply_delivery(delivery);
            }
        });
        tokio::spawn(keep_alive(Arc::downgrade(self)));
        // Learn who is online on the instances already running, and tell them about us.
        self.repeat_presence();
        self.tell_peers(PeerEvent::Hello);
    }

    /// The bus to the other instances, if there are any (`/readyz` asks whether it streams).
    pub fn bus(&self) -> Option<&Arc<dyn EventBus>> {
        self.bus.get()
    }

    pub(super) fn tell_peers(&self, event: PeerEvent) {
        self.tell_peers_with(|| event);
    }

    /// Builds the event only when there are other instances to tell.
    pub(super) fn tell_peers_with(&self, event: impl FnOnce() -> PeerEvent) {
        if let Some(bus) = self.bus.get() {
            match serde_json::to_string(&event()) {
                Ok(payload) => bus.publish(payload),
                Err(error) => tracing::error!(%error, "a peer event could not be encoded"),
            }
        }
    }

    fn apply_delivery(&self, delivery: BusDelivery) {
        match delivery {
            BusDelivery::Event { origin, payload } => match serde_json::from_str(&payload) {
                Ok(event) => self.apply_remote(&origin, event),
                Err(error) => tracing::warn!(%error, "an undecodable peer event was skipped"),
            },
            BusDelivery::Lost => {
                // Events may have been missed: every client resumes from its own cursors, and every
                // cache reads again.
                self.close_all(CloseReason::Resync);
                self.changes.apply_all();
                self.tell_peers(PeerEvent::Hello);
            }
        }
    }

    /// Applies an event from instance `origin` to this instance's connections.
    pub fn apply_remote(&self, origin: &str, event: PeerEvent) {
        self.lock().peers.heard_from(origin);
        match event {
            PeerEvent::Room { room, msg } => self.lock().deliver_room(room, &Broadcast::new(msg)),
            PeerEvent::User { user, msg } => self.deliver_user(user, &Broadcast::new(msg)),
            PeerEvent::Follow { user, room } => self.follow_here(user, room),
            PeerEvent::Unfollow { user, room } => self.unfollow_here(user, room),
            PeerEvent::CloseSession { session, reason } => self.close_session_here(session, reason),
            PeerEvent::CloseUser { user, keep, reason } => self.close_user_here(user, keep, reason),
            PeerEvent::Presence {
                user,
                presence,
                version,
            } => self.apply_peer_presence(origin, user, presence, version),
            PeerEvent::Alive => {}
            PeerEvent::Hello => self.repeat_presence(),
            PeerEvent::Changed { what } => self.changes.apply(what),
        }
    }
}

/// Says "alive" every few seconds and forgets instances that stopped saying it.
async fn keep_alive(hub: Weak<Hub>) {
    let mut tick = tokio::time::interval(ALIVE_EVERY);
    loop {
        tick.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        hub.tell_peers(PeerEvent::Alive);
        let forgotten = hub.forget_silent_instances(DEAD_AFTER);
        if forgotten > 0 {
            tracing::warn!(
                forgotten,
                "instances went silent; their users' presence expired"
            );
        }
    }
}
