//! Who is in which room, for `--watch N`: each connection asks to follow the presence of the first N
//! members of its room, in the order loadgen assigned users to it (user u is in room u mod R, so room
//! r's members are r, r + R, r + 2R, ...). Their ids are learnt from each user's first `welcome`; a
//! connection waits until every one of those N users is settled (id known, or all its connections
//! failed) and then sends one `watch` naming the known ones.

use app::model::UserId;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use tokio::sync::watch;

pub struct Members {
    /// N: the first N members of each room are watched (0: no watching).
    watch: usize,
    rooms: usize,
    users: usize,
    ids: Vec<OnceLock<UserId>>,
    /// Per user, connections that have not failed yet.
    untried: Vec<AtomicUsize>,
    settled: Vec<AtomicBool>,
    /// Per room, how many of its first N members are not settled yet ...
    unsettled: Vec<AtomicUsize>,
    /// ... and a flag that turns true once none is left.
    ready: Vec<watch::Sender<bool>>,
}

impl Members {
    /// `connections` connections, connection c belonging to user c mod `users`.
    pub fn new(users: usize, rooms: usize, connections: usize, watch: usize) -> Self {
        let users = users.max(1);
        let rooms = rooms.max(1);
        let mut this = Self {
            watch,
            rooms,
            users,
            ids: (0..users).map(|_| OnceLock::new()).collect(),
            untried: (0..users)
                .map(|u| {
                    AtomicUsize::new(connections / users + usize::from(u < connections % users))
                })
                .collect(),
            settled: (0..users).map(|_| AtomicBool::new(false)).collect(),
            unsettled: Vec::new(),
            ready: Vec::new(),
        };
        for room in 0..rooms {
            let firsts = this.first_members(room).count();
            this.unsettled.push(AtomicUsize::new(firsts));
            this.ready.push(watch::channel(firsts == 0).0);
        }
        // A user without any connection never gets an id.
        for user in 0..users {
            if this.untried[user].load(Ordering::Relaxed) == 0 {
                this.settle(user);
            }
        }
        this
    }

    /// The users a connection in `room` watches: its first N members.
    fn first_members(&self, room: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.watch)
            .map(move |k| room + k * self.rooms)
            .take_while(|&u| u < self.users)
    }

    /// A connection of `user` was welcomed as `id`.
    pub fn connected(&self, user: usize, id: UserId) {
        let _ = self.ids[user].set(id);
        self.settle(user);
    }

    /// A connection of `user` failed (or was never tried because the user's setup failed).
    pub fn failed(&self, user: usize) {
        let left = self.untried[user]
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if left == Ok(1) {
            self.settle(user);
        }
    }

    fn settle(&self, user: usize) {
        if self.settled[user].swap(true, Ordering::AcqRel) {
            return;
        }
        let room = user % self.rooms;
        if user / self.rooms < self.watch
            && self.unsettled[room].fetch_sub(1, Ordering::AcqRel) == 1
        {
            self.ready[room].send_replace(true);
        }
    }

    /// Turns true once the watch list of `room` is complete.
    pub fn ready(&self, room: usize) -> watch::Receiver<bool> {
        self.ready[room].subscribe()
    }

    /// The ids of the first N members of `room` that are known, in order.
    pub fn watch_list(&self, room: usize) -> Vec<UserId> {
        self.first_members(room)
            .filter_map(|u| self.ids[u].get().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> UserId {
        UserId::from_uuid(uuid::Uuid::from_u128(n + 1))
    }

    #[test]
    fn a_room_is_ready_once_its_first_members_are_settled() {
        // 10 users in 3 rooms: room 1 has users 1, 4, 7; the first two are watched.
        let m = Members::new(10, 3, 10, 2);
        let ready = m.ready(1);
        assert!(!*ready.borrow());
        m.connected(7, id(7)); // not among the first two
        m.connected(1, id(1));
        assert!(!*ready.borrow());
        m.connected(1, id(1)); // a second connection of the same user changes nothing
        assert!(!*ready.borrow());
        m.failed(4); // its only connection failed: settled without an id
        assert!(*ready.borrow());
        assert_eq!(m.watch_list(1), [id(1)]);
        assert!(!*m.ready(0).borrow());
    }

    #[test]
    fn users_with_several_connections_settle_on_the_first_welcome_or_the_last_failure() {
        // 2 users, 6 connections: 3 each; one room, both watched.
        let m = Members::new(2, 1, 6, 5);
        m.failed(0);
        m.failed(0);
        m.connected(1, id(1));
        assert!(!*m.ready(0).borrow());
        m.connected(0, id(0));
        assert!(*m.ready(0).borrow());
        assert_eq!(m.watch_list(0), [id(0), id(1)]);
        m.failed(0); // more failures than connections do not underflow
        m.failed(0);
        m.failed(0);

        let all_failed = Members::new(2, 1, 4, 2);
        for _ in 0..2 {
            all_failed.failed(0);
            all_failed.failed(1);
        }
        assert!(*all_failed.ready(0).borrow());
        assert!(all_failed.watch_list(0).is_empty());
    }

    #[test]
    fn no_watching_is_ready_at_once_and_users_without_connections_do_not_block() {
        let m = Members::new(4, 2, 4, 0);
        assert!(*m.ready(0).borrow() && *m.ready(1).borrow());
        assert!(m.watch_list(0).is_empty());
        // 5 users, 3 connections: users 3 and 4 have none.
        let m = Members::new(5, 1, 3, 5);
        for u in 0..3 {
            m.connected(u, id(u as u128));
        }
        assert!(*m.ready(0).borrow());
        assert_eq!(m.watch_list(0), [id(0), id(1), id(2)]);
    }
}
