//! Presence: online if any connection of the person is active, away if all are away, offline without
//! any. With several instances it is the union of every instance's part: each instance announces its
//! own part to the others (versioned, so a late, stale announcement never overrides a newer one) and
//! forgets the part of an instance that has gone silent (it died).
//!
//! Changes are coalesced per room: the first after a quiet spell goes out at once, later ones wait for
//! the end of the room's window and go out together in one frame. A room that n people join at once
//! then costs its members a frame per window, not n frames each (n² deliveries in all).

use super::{Broadcast, ConnId, Hub, Inner, PeerEvent, Subscriber};
use crate::model::{RoomId, UserId};
use crate::protocol::{Presence, PresenceChange, ServerMsg};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A room's shortest window; each follower lengthens it, so a room's presence frames stay near
/// 5,000 deliveries a second however many people it has, up to the longest window.
const MIN_WINDOW: Duration = Duration::from_millis(100);
const WINDOW_PER_FOLLOWER: Duration = Duration::from_micros(200);
const MAX_WINDOW: Duration = Duration::from_secs(2);
/// How often waiting changes are checked while any wait.
const TICK: Duration = Duration::from_millis(50);
/// Changes per presence frame at most (about 3 KB): a window of a big room that many joined goes out
/// in several frames, so no connection's transport is made to hold one huge frame (its write buffer
/// would keep that size for as long as it lives).
pub(super) const CHANGES_PER_FRAME: usize = 48;

fn window(followers: usize) -> Duration {
    (WINDOW_PER_FOLLOWER * followers.min(u32::MAX as usize) as u32).clamp(MIN_WINDOW, MAX_WINDOW)
}

/// One room's presence changes that wait for its window to end.
#[derive(Default)]
struct RoomChanges {
    waiting: Vec<PresenceChange>,
    quiet_until: Option<Instant>,
}

#[derive(Default)]
pub(super) struct Coalescing {
    rooms: HashMap<RoomId, RoomChanges>,
    /// Whether a task is flushing waiting changes (one at most).
    ticking: bool,
}

/// Sends `changes` (the last of each person's) to the local followers of one room.
fn send_changes(
    subscribers: &HashMap<ConnId, Subscriber>,
    followers: &HashSet<ConnId>,
    mut changes: Vec<PresenceChange>,
) {
    let mut seen = HashSet::new();
    changes.reverse();
    changes.retain(|c| seen.insert(c.user));
    changes.reverse();
    for chunk in changes.chunks(CHANGES_PER_FRAME) {
        let msg = Broadcast::new(ServerMsg::Presence {
            changes: chunk.to_vec(),
        });
        for id in followers {
            if let Some(subscriber) = subscribers.get(id) {
                subscriber.deliver(&msg);
            }
        }
    }
}

/// Sends the waiting changes of every room whose window has ended (all of them with `force`), and
/// forgets rooms gone quiet. Whether changes still wait.
fn flush_due(inner: &mut Inner, now: Instant, force: bool) -> bool {
    let Inner {
        subscribers,
        rooms,
        coalescing,
        ..
    } = inner;
    let mut still_waiting = false;
    coalescing.rooms.retain(|room, changes| {
        let Some(followers) = rooms.get(room).filter(|f| !f.is_empty()) else {
            return false;
        };
        let due = force || changes.quiet_until.is_none_or(|t| t <= now);
        if due && !changes.waiting.is_empty() {
            send_changes(subscribers, followers, std::mem::take(&mut changes.waiting));
            changes.quiet_until = Some(now + window(followers.len()));
            return true;
        }
        still_waiting |= !changes.waiting.is_empty();
        !due
    });
    still_waiting
}

/// Another instance's part of one user's presence, as last announced.
#[derive(Clone)]
struct RemotePart {
    presence: Presence,
    rooms: Vec<RoomId>,
    /// The announcing instance's counter: only a higher one replaces this part.
    version: u64,
    /// When it was announced; an `Offline` part is kept this long, to outrank stale announcements.
    at: Instant,
}

#[derive(Default)]
pub(super) struct PeerPresence {
    parts: HashMap<UserId, HashMap<String, RemotePart>>,
    /// When each other instance was last heard from.
    heard: HashMap<String, Instant>,
    /// The version of this instance's latest announcement.
    announced: u64,
}

impl PeerPresence {
    pub(super) fn heard_from(&mut self, origin: &str) {
        self.heard.insert(origin.to_owned(), Instant::now());
    }

    fn next_version(&mut self) -> u64 {
        self.announced += 1;
        self.announced
    }
}

/// This instance's part: online if any local connection is active, away if all are away.
fn local_presence(inner: &Inner, user: UserId) -> Presence {
    let mut any = false;
    for subscriber in inner.subscribers_of(user) {
        any = true;
        if !subscriber.control.away.load(Ordering::Relaxed) {
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
        .peers
        .parts
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

/// Tells the local followers of `rooms` the user's presence, if it changed from `before`: at once in a
/// quiet room, else when the room's window ends. Whether a flushing task must be started.
#[must_use]
fn announce(inner: &mut Inner, user: UserId, before: Presence, rooms: &HashSet<RoomId>) -> bool {
    let presence = presence_of(inner, user);
    if presence == before {
        return false;
    }
    let now = Instant::now();
    let change = PresenceChange { user, presence };
    let mut waits = false;
    // The followers of the quiet rooms hear it at once, once each however many of them they follow.
    let mut at_once = HashSet::new();
    for room in rooms {
        let Some(followers) = inner.rooms.get(room).filter(|f| !f.is_empty()) else {
            continue;
        };
        let changes = inner.coalescing.rooms.entry(*room).or_default();
        if changes.quiet_until.is_some_and(|t| t > now) {
            changes.waiting.push(change);
            waits = true;
        } else {
            changes.quiet_until = Some(now + window(followers.len()));
            at_once.extend(followers.iter().copied());
        }
    }
    if !at_once.is_empty() {
        send_changes(&inner.subscribers, &at_once, vec![change]);
    }
    let start = waits && !inner.coalescing.ticking;
    inner.coalescing.ticking |= waits;
    start
}

impl Hub {
    /// Applies `change` to the local connections of `user` and, in the same critical section, tells the
    /// local followers (of the user's rooms and of `also`) if the overall presence changed. If this
    /// instance's part changed, the other instances hear it with a fresh version.
    pub(super) fn changing_presence(
        &self,
        user: UserId,
        also: &HashSet<RoomId>,
        change: impl FnOnce(&mut Inner),
    ) {
        let (announcement, tick) = {
            let mut inner = self.lock();
            let (local_before, before) = (local_presence(&inner, user), presence_of(&inner, user));
            change(&mut inner);
            let mut rooms = inner.rooms_of(user);
            rooms.extend(also.iter().copied());
            let tick = announce(&mut inner, user, before, &rooms);
            let local_now = local_presence(&inner, user);
            let announcement = (local_now != local_before).then(|| PeerEvent::Presence {
                user,
                presence: local_now,
                rooms: rooms.into_iter().collect(),
                version: inner.peers.next_version(),
            });
            (announcement, tick)
        };
        self.tick_presence(tick);
        if let Some(event) = announcement {
            self.tell_peers(event);
        }
    }

    /// Starts the task that sends waiting presence changes as their windows end, if `start`. Outside a
    /// runtime (nothing to wait with) they go out at once.
    fn tick_presence(&self, start: bool) {
        if !start {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let mut inner = self.lock();
            flush_due(&mut inner, Instant::now(), true);
            inner.coalescing.ticking = false;
            return;
        };
        let hub = self.me.clone();
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(TICK).await;
                let Some(hub) = hub.upgrade() else { return };
                let mut inner = hub.lock();
                if !flush_due(&mut inner, Instant::now(), false) {
                    inner.coalescing.ticking = false;
                    return;
                }
            }
        });
    }

    /// Marks one connection away or back, and announces a change in the user's presence.
    pub fn set_away(&self, id: ConnId, away: bool) {
        let Some(user) = self.lock().subscribers.get(&id).map(|s| s.user) else {
            return;
        };
        self.changing_presence(user, &HashSet::new(), |inner| {
            if let Some(subscriber) = inner.subscribers.get(&id) {
                subscriber.control.away.store(away, Ordering::Relaxed);
            }
        });
    }

    /// The user's presence across every instance.
    pub fn presence(&self, user: UserId) -> Presence {
        presence_of(&self.lock(), user)
    }

    /// Those of `users` who are not online (away or offline), with one look at the hub.
    pub fn not_online(&self, users: impl IntoIterator<Item = UserId>) -> Vec<UserId> {
        let inner = self.lock();
        users
            .into_iter()
            .filter(|&user| presence_of(&inner, user) != Presence::Online)
            .collect()
    }

    /// Another instance's new part of `user`'s presence; ignored if an announcement with a higher
    /// version from that instance was already applied.
    pub(super) fn apply_peer_presence(
        &self,
        origin: &str,
        user: UserId,
        presence: Presence,
        rooms: Vec<RoomId>,
        version: u64,
    ) {
        let tick = {
            let mut inner = self.lock();
            let stale = inner
                .peers
                .parts
                .get(&user)
                .and_then(|parts| parts.get(origin))
                .is_some_and(|part| part.version >= version);
            if stale {
                return;
            }
            let before = presence_of(&inner, user);
            let targets: HashSet<RoomId> = rooms.iter().copied().collect();
            inner.peers.parts.entry(user).or_default().insert(
                origin.to_owned(),
                RemotePart {
                    presence,
                    rooms,
                    version,
                    at: Instant::now(),
                },
            );
            announce(&mut inner, user, before, &targets)
        };
        self.tick_presence(tick);
    }

    /// Tells the other instances this instance's part of every local user's presence (they asked, or
    /// this instance just joined).
    pub fn repeat_presence(&self) {
        let parts: Vec<PeerEvent> = {
            let mut inner = self.lock();
            let users: Vec<UserId> = inner.users.keys().copied().collect();
            users
                .into_iter()
                .map(|user| PeerEvent::Presence {
                    user,
                    presence: local_presence(&inner, user),
                    rooms: inner.rooms_of(user).into_iter().collect(),
                    version: inner.peers.next_version(),
                })
                .collect()
        };
        for event in parts {
            self.tell_peers(event);
        }
    }

    /// Forgets the presence parts of instances not heard from within `silence` (they died); their users
    /// go offline unless they are connected elsewhere. Offline parts older than `silence` are dropped
    /// too: no stale announcement can still be on its way. Returns how many instances were forgotten.
    pub fn forget_silent_instances(&self, silence: Duration) -> usize {
        let mut tick = false;
        let mut inner = self.lock();
        let dead: Vec<String> = inner
            .peers
            .heard
            .iter()
            .filter(|(_, at)| at.elapsed() > silence)
            .map(|(origin, _)| origin.clone())
            .collect();
        for origin in &dead {
            inner.peers.heard.remove(origin);
        }
        let users: Vec<UserId> = inner.peers.parts.keys().copied().collect();
        for user in users {
            let before = presence_of(&inner, user);
            let parts = inner.peers.parts.get_mut(&user).expect("listed above");
            let mut rooms = HashSet::new();
            parts.retain(|origin, part| {
                let gone = dead.contains(origin);
                let expired = part.presence == Presence::Offline && part.at.elapsed() > silence;
                if gone {
                    rooms.extend(part.rooms.iter().copied());
                }
                !(gone || expired)
            });
            if parts.is_empty() {
                inner.peers.parts.remove(&user);
            }
            tick |= announce(&mut inner, user, before, &rooms);
        }
        drop(inner);
        self.tick_presence(tick);
        dead.len()
    }
}
