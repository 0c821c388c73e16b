use super::*;
use crate::protocol::{Presence, PresenceChange};
use crate::store::{BusConnection, EventBus};
use tokio::sync::mpsc;

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
    assert_eq!(
        hub.watch_presence(watcher.id, vec![ana]),
        [PresenceChange {
            user: ana,
            presence: Presence::Offline
        }]
    );

    // Ben, who watches her, hears every change once.
    let phone = hub.register(ana, SessionId::new(), &[room]);
    let laptop = hub.register(ana, SessionId::new(), &[room]);
    assert_eq!(hub.presence(ana), Presence::Online);
    assert_eq!(
        hears(&mut watcher, ana, Presence::Online).await,
        [Presence::Online]
    );
    hub.set_away(phone.id, true);
    assert_eq!(
        hub.presence(ana),
        Presence::Online,
        "one active connection is enough"
    );
    hub.set_away(laptop.id, true);
    assert_eq!(hub.presence(ana), Presence::Away);
    assert_eq!(
        hears(&mut watcher, ana, Presence::Away).await,
        [Presence::Away]
    );
    drop(laptop);
    assert_eq!(hub.presence(ana), Presence::Away);
    drop(phone);
    assert_eq!(hub.presence(ana), Presence::Offline);
    assert_eq!(
        hears(&mut watcher, ana, Presence::Offline).await,
        [Presence::Offline]
    );
    assert_eq!(hub.counts(), (1, 1));
}

#[tokio::test]
async fn many_joining_one_room_cost_each_member_a_few_frames_not_one_per_person() {
    let hub = Hub::new(4096);
    let room = RoomId::new();
    let watcher = hub.register(UserId::new(), SessionId::new(), &[room]);
    let people: Vec<UserId> = (0..300).map(|_| UserId::new()).collect();
    hub.watch_presence(watcher.id, people.clone());
    let mut members: Vec<Registration> = people
        .iter()
        .map(|p| hub.register(*p, SessionId::new(), &[room]))
        .collect();

    // The watcher learns that every one of them is online, in far fewer frames than people.
    let mut online = HashSet::new();
    let mut frames = 0;
    while online.len() < people.len() {
        let msg = tokio::time::timeout(Duration::from_secs(10), watcher.inbox.recv())
            .await
            .expect("the changes arrive")
            .expect("the watcher is open");
        if let ServerMsg::Presence { changes } = &**msg {
            // ... each frame of a bounded size, however many came in one window.
            assert!(changes.len() <= super::presence::CHANGES_PER_FRAME);
            frames += 1;
            online.extend(
                changes
                    .iter()
                    .filter(|c| c.presence == Presence::Online)
                    .map(|c| c.user),
            );
        }
    }
    assert!(
        frames * 10 <= people.len(),
        "{frames} presence frames for {} people",
        people.len()
    );
    // So did the last to join about the others who came after it... and nobody's inbox grew with
    // the square of the room: each member got a few frames, not one per later arrival.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received: usize = members
        .iter_mut()
        .map(|m| std::iter::from_fn(|| m.inbox.try_recv()).count())
        .sum();
    assert!(
        received <= 10 * people.len(),
        "{received} frames reached {} members",
        people.len()
    );
}

#[tokio::test]
async fn a_room_of_n_connecting_costs_each_member_what_it_watches_not_n() {
    // 300 members of one room connect at once; each watches the first 10 (as a member list
    // showing them would). Each hears exactly those 10 come online, and nobody else.
    let hub = Hub::new(4096);
    let room = RoomId::new();
    let people: Vec<UserId> = (0..300).map(|_| UserId::new()).collect();
    let shown = &people[..10];
    let mut members: Vec<Registration> = Vec::new();
    for person in &people {
        let registration = hub.register(*person, SessionId::new(), &[room]);
        hub.watch_presence(registration.id, shown.to_vec());
        members.push(registration);
    }
    // The last to connect saw them all online in its snapshot; the first hears them come online.
    let mut heard = HashSet::new();
    let mut changes = 0;
    while heard.len() < shown.len() - 1 {
        let msg = tokio::time::timeout(Duration::from_secs(10), members[0].inbox.recv())
            .await
            .expect("the changes arrive")
            .expect("the member is open");
        if let ServerMsg::Presence { changes: c } = &**msg {
            changes += c.len();
            assert!(
                c.iter().all(|c| shown.contains(&c.user)),
                "only whom it watches"
            );
            heard.extend(
                c.iter()
                    .filter(|c| c.presence == Presence::Online)
                    .map(|c| c.user),
            );
        }
    }
    assert!(
        !heard.contains(&people[0]),
        "not told about itself before it watched"
    );
    assert_eq!(changes, shown.len() - 1, "each change once");
    // Nobody heard about anyone it does not watch: every frame anywhere names only the shown.
    for member in &members[1..] {
        while let Some(msg) = member.inbox.try_recv() {
            if let ServerMsg::Presence { changes } = &**msg {
                assert!(changes.iter().all(|c| shown.contains(&c.user)));
            }
        }
    }
}

#[tokio::test]
async fn a_full_inbox_closes_only_that_connection() {
    let hub = Hub::new(2);
    let room = RoomId::new();
    let slow = hub.register(UserId::new(), SessionId::new(), &[room]);
    let fast = hub.register(UserId::new(), SessionId::new(), &[room]);
    for _ in 0..3 {
        hub.publish_room(room, msg());
        while fast.inbox.try_recv().is_some() {}
    }
    assert_eq!(slow.control.reason(), Some(CloseReason::TooSlow));
    assert_eq!(fast.control.reason(), None);
}

#[tokio::test]
async fn following_and_closing_by_session_or_user() {
    let hub = Hub::new(16);
    let (room, user) = (RoomId::new(), UserId::new());
    let (keep, other) = (SessionId::new(), SessionId::new());
    let a = hub.register(user, keep, &[]);
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

/// A bus that hands every event straight to another hub, as the MongoDB bus does, minus the database.
struct Wire {
    to: std::sync::Weak<Hub>,
    origin: &'static str,
}

impl EventBus for Wire {
    fn publish(&self, payload: String) {
        if let Some(hub) = self.to.upgrade() {
            hub.apply_remote(self.origin, serde_json::from_str(&payload).unwrap());
        }
    }
    fn is_streaming(&self) -> bool {
        true
    }
}

fn wire(to: &Arc<Hub>, origin: &'static str) -> BusConnection {
    let (_, deliveries) = mpsc::channel(1);
    BusConnection {
        bus: Arc::new(Wire {
            to: Arc::downgrade(to),
            origin,
        }),
        deliveries,
    }
}

fn pair() -> (Arc<Hub>, Arc<Hub>) {
    let (a, b) = (Hub::new(64), Hub::new(64));
    a.connect_peers(wire(&b, "a"));
    b.connect_peers(wire(&a, "b"));
    (a, b)
}

/// The presence changes of `who` a connection hears, up to and including `until` (changes are
/// coalesced per room, so some arrive after a short wait).
async fn hears(registration: &mut Registration, who: UserId, until: Presence) -> Vec<Presence> {
    let mut out = Vec::new();
    while out.last() != Some(&until) {
        let msg = tokio::time::timeout(Duration::from_secs(10), registration.inbox.recv())
            .await
            .unwrap_or_else(|_| panic!("no change to {until:?} arrived; heard {out:?}"))
            .expect("the connection is open");
        out.extend(msg.presence_of(who));
    }
    out
}

#[tokio::test]
async fn events_and_presence_cross_instances_and_a_dead_instance_expires() {
    let (a, b) = pair();
    let room = RoomId::new();
    let (ana, ben) = (UserId::new(), UserId::new());
    let mut watcher = b.register(ben, SessionId::new(), &[room]);
    b.watch_presence(watcher.id, vec![ana]);

    // Ana connects on A: Ben, on B, sees her online; a room event from A reaches him.
    let on_a = a.register(ana, SessionId::new(), &[room]);
    assert_eq!(b.presence(ana), Presence::Online);
    assert_eq!(
        hears(&mut watcher, ana, Presence::Online).await,
        [Presence::Online]
    );
    a.publish_room(room, msg());
    assert_eq!(*watcher.inbox.try_recv().unwrap(), ServerMsg::Pong);

    // A second connection on B, then the one on A goes: still online, nothing to announce.
    let on_b = b.register(ana, SessionId::new(), &[room]);
    drop(on_a);
    assert_eq!(b.presence(ana), Presence::Online);
    assert_eq!(a.presence(ana), Presence::Online, "A counts B's part");
    drop(on_b);
    // Nothing was announced in between: the next change Ben hears is her going offline.
    assert_eq!(
        hears(&mut watcher, ana, Presence::Offline).await,
        [Presence::Offline]
    );

    // Ana is back on A only, and A dies: B forgets A's part once A has been silent too long.
    let _on_a = a.register(ana, SessionId::new(), &[room]);
    assert_eq!(
        hears(&mut watcher, ana, Presence::Online).await,
        [Presence::Online]
    );
    assert_eq!(b.forget_silent_instances(Duration::from_secs(60)), 0);
    assert_eq!(b.forget_silent_instances(Duration::ZERO), 1);
    assert_eq!(b.presence(ana), Presence::Offline);
    assert_eq!(
        hears(&mut watcher, ana, Presence::Offline).await,
        [Presence::Offline]
    );

    // A newcomer learns the current presence by asking.
    b.apply_remote("a", PeerEvent::Alive);
    b.tell_peers(PeerEvent::Hello);
    assert_eq!(b.presence(ana), Presence::Online);

    // Closing a user reaches their connections everywhere.
    let on_b = b.register(ana, SessionId::new(), &[]);
    a.close_user(ana, None, CloseReason::Disabled);
    assert_eq!(on_b.control.reason(), Some(CloseReason::Disabled));
}

#[tokio::test]
async fn a_stale_presence_announcement_never_overrides_a_newer_one() {
    // Announcements can be published in another order than they were made (two threads changing one
    // person's connections at once). The later one, by version, wins wherever it lands first.
    let hub = Hub::new(16);
    let room = RoomId::new();
    let (ana, ben) = (UserId::new(), UserId::new());
    let mut watcher = hub.register(ben, SessionId::new(), &[room]);
    hub.watch_presence(watcher.id, vec![ana]);
    let online = |version| PeerEvent::Presence {
        user: ana,
        presence: Presence::Online,
        version,
    };
    let offline = |version| PeerEvent::Presence {
        user: ana,
        presence: Presence::Offline,
        version,
    };
    hub.apply_remote("a", online(1));
    assert_eq!(
        hears(&mut watcher, ana, Presence::Online).await,
        [Presence::Online]
    );
    hub.apply_remote("a", offline(3));
    hub.apply_remote("a", online(2)); // made before the offline, arrived after it
    assert_eq!(hub.presence(ana), Presence::Offline);
    assert_eq!(
        hears(&mut watcher, ana, Presence::Offline).await,
        [Presence::Offline]
    );
    // A newer announcement still counts, and the offline marker expires with time.
    hub.apply_remote("a", online(4));
    assert_eq!(hub.presence(ana), Presence::Online);
    assert_eq!(
        hears(&mut watcher, ana, Presence::Online).await,
        [Presence::Online]
    );
    hub.apply_remote("a", offline(5));
    hub.forget_silent_instances(Duration::from_secs(60));
    assert_eq!(hub.presence(ana), Presence::Offline);
}

#[tokio::test]
async fn each_announcement_of_an_instance_has_a_higher_version() {
    // What the receiving side relies on: versions grow with every change this instance announces.
    struct Record(std::sync::Mutex<Vec<PeerEvent>>);
    impl EventBus for Record {
        fn publish(&self, payload: String) {
            self.0
                .lock()
                .unwrap()
                .push(serde_json::from_str(&payload).unwrap());
        }
        fn is_streaming(&self) -> bool {
            true
        }
    }
    let hub = Hub::new(16);
    let record = Arc::new(Record(Default::default()));
    let (_, deliveries) = mpsc::channel(1);
    hub.connect_peers(BusConnection {
        bus: record.clone(),
        deliveries,
    });
    let ana = UserId::new();
    let phone = hub.register(ana, SessionId::new(), &[]);
    hub.set_away(phone.id, true);
    drop(phone);
    let versions: Vec<(Presence, u64)> = record
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            PeerEvent::Presence {
                presence, version, ..
            } => Some((*presence, *version)),
            _ => None,
        })
        .collect();
    assert_eq!(
        versions.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        [Presence::Online, Presence::Away, Presence::Offline]
    );
    assert!(versions.windows(2).all(|w| w[0].1 < w[1].1), "{versions:?}");
}
