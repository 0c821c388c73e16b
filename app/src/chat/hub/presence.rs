//! Presence: online if any connection of the person is active, away if all are away, offline without
//! any. With several instances it is the union of every instance's part: each instance announces its
//! own part to the others (versioned, so a late, stale announcement never overrides a newer one) and
//! forgets the part of an instance that has gone silent (it died).
//!
//! Who hears about a change: only the connections that **watch** that person (a client watches the
//! people it shows, at most `MAX_WATCH`, members of a room it follows; the connection checks that).
//! Nobody is told about everyone: n people connecting to a room of n cost each watcher what it
//! watches, so the room costs O(n × watched), not n². A new watch is answered with a snapshot.
//!
//! Changes are coalesced: the first after a quiet spell goes out at once, later ones wait for the end
//! of the window and go out together, one frame per connection (connections that hear the same
//! changes share one encoded frame).

use super::{Broadcast, ConnId, Hub, Inner, PeerEvent};
use crate::model::UserId;
use crate::protocol::{Presence, PresenceChange, ServerMsg};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After a change goes out, later ones wait this long and go out together.
const WINDOW: Duration = Duration::from_millis(200);
/// Changes per presence frame at most (about 3 KB): a big window goes out in several frames, so no
/// connection's transport is made to hold one huge frame.
pub const CHANGES_PER_FRAME: usize = 48;

/// Which connections watch whom. Connections that watch the same people (every member of a room
/// looking at the same member list) share one list, so a connection costs an entry or two here, not
/// one per person it watches.
#[derive(Default)]
pub(super) struct Watching {
    lists: HashMap<ListId, List>,
    /// Each list by the people on it (sorted), to find the one a new watch can share.
    by_people: HashMap<Arc<[UserId]>, ListId>,
    /// Per person, the lists naming them.
    watchers: HashMap<UserId, Vec<ListId>>,
    list_of: HashMap<ConnId, ListId>,
    next_list: ListId,
}

type ListId = u64;

struct List {
    people: Arc<[UserId]>,
    conns: HashSet<ConnId>,
}

impl Watching {
    /// Makes `users` what `conn` watches, instead of what it watched before.
    fn replace(&mut self, conn: ConnId, mut users: Vec<UserId>) {
        self.forget(conn);
        users.sort_unstable();
        users.dedup();
        if users.is_empty() {
            return;
        }
        let id = match self.by_people.get(users.as_slice()) {
            Some(id) => *id,
            None => self.new_list(users.into()),
        };
        if let Some(list) = self.lists.get_mut(&id) {
            list.conns.insert(conn);
        }
        self.list_of.insert(conn, id);
    }

    fn new_list(&mut self, people: Arc<[UserId]>) -> ListId {
        let id = self.next_list;
        self.next_list += 1;
        for user in people.iter() {
            self.watchers.entry(*user).or_default().push(id);
        }
        self.by_people.insert(people.clone(), id);
        self.lists.insert(
            id,
            List {
                people,
                conns: HashSet::new(),
            },
        );
        id
    }

    /// `conn` watches nobody any more (a list nobody watches is dropped).
    pub(super) fn forget(&mut self, conn: ConnId) {
        let Some(id) = self.list_of.remove(&conn) else {
            return;
        };
        let Some(list) = self.lists.get_mut(&id) else {
            return;
        };
        list.conns.remove(&conn);
        if !list.conns.is_empty() {
            return;
        }
        let Some(list) = self.lists.remove(&id) else {
            return;
        };
        self.by_people.remove(&list.people);
        for user in list.people.iter() {
            if let Some(ids) = self.watchers.get_mut(user) {
                ids.retain(|other| *other != id);
                if ids.is_empty() {
                    self.watchers.remove(user);
                }
            }
        }
    }

    /// The connections watching `user`.
    fn of(&self, user: UserId) -> impl Iterator<Item = &ConnId> {
        self.watchers
            .get(&user)
            .into_iter()
            .flatten()
            .filter_map(|id| self.lists.get(id))
            .flat_map(|list| list.conns.iter())
    }
}

/// Changes that wait for the window to end.
#[derive(Default)]
pub(super) struct Coalescing {
    waiting: Vec<PresenceChange>,
    quiet_until: Option<Instant>,
    /// Whether a task is waiting to send them (one at most).
    ticking: bool,
}

/// The presence frames for `changes` (the last of each person's, in order), at most
/// `CHANGES_PER_FRAME` changes each.
fn frames(changes: &[PresenceChange]) -> Vec<Arc<Broadcast>> {
    changes
        .chunks(CHANGES_PER_FRAME)
        .map(|chunk| {
            Broadcast::new(ServerMsg::Presence {
                changes: chunk.to_vec(),
            })
        })
        .collect()
}

/// Keeps the last change of each person, in the order of those last changes.
fn latest_each(mut changes: Vec<PresenceChange>) -> Vec<PresenceChange> {
    let mut seen = HashSet::new();
    changes.reverse();
    changes.retain(|c| seen.insert(c.user));
    changes.reverse();
    changes
}

/// Sends the waiting changes to their watchers, if the window has ended (or with `force`). Whether
/// changes still wait.
fn flush_due(inner: &mut Inner, now: Instant, force: bool) -> bool {
    let coalescing = &mut inner.coalescing;
    if !force && coalescing.quiet_until.is_some_and(|t| t > now) {
        return !coalescing.waiting.is_empty();
    }
    let waiting = latest_each(std::mem::take(&mut coalescing.waiting));
    if waiting.is_empty() {
        coalescing.quiet_until = None;
        return false;
    }
    coalescing.quiet_until = Some(now + WINDOW);
    // Each connection's changes, in the window's order: connections watching the same people get
    // equal lists, and share their frames.
    let mut heard: HashMap<ConnId, Vec<PresenceChange>> = HashMap::new();
    for change in &waiting {
        for conn in inner.watching.of(change.user) {
            heard.entry(*conn).or_default().push(*change);
        }
    }
    let mut encoded: HashMap<Vec<PresenceChange>, Vec<Arc<Broadcast>>> = HashMap::new();
    for (conn, changes) in heard {
        let Some(subscriber) = inner.subscribers.get(&conn) else {
            continue;
        };
        for frame in encoded.entry(changes).or_insert_with_key(|c| frames(c)) {
            subscriber.deliver(frame);
        }
    }
    false
}

/// Another instance's part of one user's presence, as last announced.
#[derive(Clone)]
struct RemotePart {
    presence: Presence,
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

/// Tells the user's watchers their presence, if it changed from `before`: at once after a quiet
/// spell, else when the window ends. Whether a task must be started to send what waits.
#[must_use]
fn announce(inner: &mut Inner, user: UserId, before: Presence) -> bool {
    let presence = presence_of(inner, user);
    if presence == before || inner.watching.of(user).next().is_none() {
        return false;
    }
    let change = PresenceChange { user, presence };
    let now = Instant::now();
    let coalescing = &mut inner.coalescing;
    // Within the window, or with earlier changes still waiting (they must not arrive after this one).
    if coalescing.quiet_until.is_some_and(|t| t > now) || !coalescing.waiting.is_empty() {
        coalescing.waiting.push(change);
        let start = !coalescing.ticking;
        coalescing.ticking = true;
        return start;
    }
    coalescing.quiet_until = Some(now + WINDOW);
    let frame = Broadcast::new(ServerMsg::Presence {
        changes: vec![change],
    });
    for conn in inner.watching.of(user) {
        if let Some(subscriber) = inner.subscribers.get(conn) {
            subscriber.deliver(&frame);
        }
    }
    false
}

impl Hub {
    /// Applies `change` to the local connections of `user` and, in the same critical section, tells
    /// the user's watchers if the overall presence changed. If this instance's part changed, the other
    /// instances hear it with a fresh version.
    pub(super) fn changing_presence(&self, user: UserId, change: impl FnOnce(&mut Inner)) {
        let (announcement, tick) = {
            let mut inner = self.lock();
            let (local_before, before) = (local_presence(&inner, user), presence_of(&inner, user));
            change(&mut inner);
            let tick = announce(&mut inner, user, before);
            let local_now = local_presence(&inner, user);
            let announcement = (local_now != local_before).then(|| PeerEvent::Presence {
                user,
                presence: local_now,
                version: inner.peers.next_version(),
            });
            (announcement, tick)
        };
        self.tick_presence(tick);
        if let Some(event) = announcement {
            self.tell_peers(event);
        }
    }

    /// Starts the task that sends waiting changes when the window ends, if `start`. Outside a
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
                let until = {
                    let Some(hub) = hub.upgrade() else { return };
                    let mut inner = hub.lock();
                    let now = Instant::now();
                    flush_due(&mut inner, now, false);
                    if inner.coalescing.waiting.is_empty() {
                        inner.coalescing.ticking = false;
                        return;
                    }
                    inner.coalescing.quiet_until.unwrap_or(now)
                };
                tokio::time::sleep_until(until.into()).await;
            }
        });
    }

    /// Makes `users` the people connection `conn` hears the presence of (replacing whom it watched)
    /// and returns their presence now. The caller has checked that it may see them.
    pub fn watch_presence(&self, conn: ConnId, users: Vec<UserId>) -> Vec<PresenceChange> {
        let mut inner = self.lock();
        let now: Vec<PresenceChange> = users
            .iter()
            .map(|&user| PresenceChange {
                user,
                presence: presence_of(&inner, user),
            })
            .collect();
        inner.watching.replace(conn, users);
        now
    }

    /// Marks one connection away or back, and announces a change in the user's presence.
    pub fn set_away(&self, id: ConnId, away: bool) {
        let Some(user) = self.lock().subscribers.get(&id).map(|s| s.user) else {
            return;
        };
        self.changing_presence(user, |inner| {
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
            inner.peers.parts.entry(user).or_default().insert(
                origin.to_owned(),
                RemotePart {
                    presence,
                    version,
                    at: Instant::now(),
                },
            );
            announce(&mut inner, user, before)
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
            parts.retain(|origin, part| {
                let gone = dead.contains(origin);
                let expired = part.presence == Presence::Offline && part.at.elapsed() > silence;
                !(gone || expired)
            });
            if parts.is_empty() {
                inner.peers.parts.remove(&user);
            }
            tick |= announce(&mut inner, user, before);
        }
        drop(inner);
        self.tick_presence(tick);
        dead.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watchers_of(watching: &Watching, user: UserId) -> Vec<ConnId> {
        let mut conns: Vec<ConnId> = watching.of(user).copied().collect();
        conns.sort_unstable();
        conns
    }

    #[test]
    fn connections_watching_the_same_people_share_one_list() {
        let (ana, ben, cy) = (UserId::new(), UserId::new(), UserId::new());
        let (one, two, three): (ConnId, ConnId, ConnId) = (1, 2, 3);
        let mut watching = Watching::default();
        watching.replace(one, vec![ana, ben]);
        // The same people in another order, named twice: the same list.
        watching.replace(two, vec![ben, ana, ben]);
        watching.replace(three, vec![ben, cy]);
        assert_eq!(watching.lists.len(), 2);
        assert_eq!(watchers_of(&watching, ana), vec![one, two]);
        assert_eq!(watchers_of(&watching, ben), vec![one, two, three]);
        assert_eq!(watchers_of(&watching, cy), vec![three]);

        // Watching someone else moves a connection to another list; the old one stays for the rest.
        watching.replace(one, vec![cy]);
        assert_eq!(watchers_of(&watching, ana), vec![two]);
        assert_eq!(watchers_of(&watching, cy), vec![one, three]);

        // Once nobody watches a list, it is gone, and so is everything that pointed at it.
        for conn in [one, two, three] {
            watching.forget(conn);
        }
        watching.replace(one, Vec::new());
        assert!(watching.lists.is_empty());
        assert!(watching.by_people.is_empty());
        assert!(watching.watchers.is_empty());
        assert!(watching.list_of.is_empty());
    }
}
