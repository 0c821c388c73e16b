//! Counting: latency histograms, per-connection delivery records and the exactly-once check, send
//! pacing, and the merged results.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Highest value a histogram records, in microseconds (an hour): anything slower is clamped.
const HIST_MAX_US: u64 = 3_600_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// Latencies recorded by many tasks: a few mutex-guarded histograms that tasks fill in batches, so no
/// lock is taken per message and tasks rarely meet on the same lock.
pub struct SharedHistogram {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl SharedHistogram {
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(new_histogram()))
                .collect(),
        }
    }

    fn record_all(&self, shard: usize, values: &[u64]) {
        let mut hist = self.shards[shard % self.shards.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for &v in values {
            hist.saturating_record(v.clamp(1, HIST_MAX_US));
        }
    }

    pub fn merged(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            all.add(&*shard).expect("same bounds");
        }
        all
    }
}

/// One task's unflushed samples for a `SharedHistogram`.
pub struct Batch {
    shard: usize,
    len: usize,
    values: [u64; 64],
}

impl Batch {
    pub fn new(shard: usize) -> Self {
        Self {
            shard,
            len: 0,
            values: [0; 64],
        }
    }

    pub fn record(&mut self, value: u64, into: &SharedHistogram) {
        self.values[self.len] = value;
        self.len += 1;
        if self.len == self.values.len() {
            self.flush(into);
        }
    }

    pub fn flush(&mut self, into: &SharedHistogram) {
        if self.len > 0 {
            into.record_all(self.shard, &self.values[..self.len]);
            self.len = 0;
        }
    }
}

/// Percentiles of a histogram of microseconds, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    pub fn of(hist: &Histogram<u64>) -> Self {
        if hist.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: hist.len(),
            min_ms: ms(hist.min()),
            p50_ms: ms(hist.value_at_quantile(0.50)),
            p90_ms: ms(hist.value_at_quantile(0.90)),
            p99_ms: ms(hist.value_at_quantile(0.99)),
            p999_ms: ms(hist.value_at_quantile(0.999)),
            max_ms: ms(hist.max()),
            mean_ms: hist.mean() / 1000.0,
        }
    }

    /// Durations in microseconds, e.g. connect times collected in a `Vec`.
    pub fn of_micros(values: &[u64]) -> Self {
        let mut hist = new_histogram();
        for &v in values {
            hist.saturating_record(v.clamp(1, HIST_MAX_US));
        }
        Self::of(&hist)
    }

    pub fn line(&self) -> String {
        if self.count == 0 {
            return "none".into();
        }
        format!(
            "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (n={})",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}

// ---------------------------------------------------------------------------------------------------
// Exactly-once accounting.

/// What one connection received in its room: a count per sequence number after the point it synced
/// at (`base`, the `last_seq` of its `synced`). One byte per message.
#[derive(Debug, Clone, Default)]
pub struct Deliveries {
    pub base: u64,
    counts: Vec<u8>,
    /// Deliveries at or below `base`: the server promised everything up to `base` was already had.
    pub at_or_below_base: u64,
    pub highest: u64,
}

impl Deliveries {
    pub fn new(base: u64) -> Self {
        Self {
            base,
            counts: Vec::new(),
            at_or_below_base: 0,
            highest: base,
        }
    }

    pub fn record(&mut self, seq: u64) {
        if seq <= self.base {
            self.at_or_below_base += 1;
            return;
        }
        let i = (seq - self.base - 1) as usize;
        if i >= self.counts.len() {
            // Grow geometrically: messages mostly arrive in order.
            let want = (i + 1).max(self.counts.len() * 2).max(1024);
            self.counts.resize(want, 0);
        }
        self.counts[i] = self.counts[i].saturating_add(1);
        self.highest = self.highest.max(seq);
    }

    /// The verdict for a stream where every sequence number after `base` up to the highest received
    /// was to arrive (one writer and no acks to compare with: the read benchmark).
    pub fn check_contiguous(&self) -> Verdict {
        let mut v = Verdict {
            duplicated: self.at_or_below_base,
            ..Verdict::default()
        };
        for seq in self.base + 1..=self.highest {
            v.expected += 1;
            match self.count(seq) {
                0 => v.lost += 1,
                n => v.duplicated += u64::from(n) - 1,
            }
        }
        v
    }

    fn count(&self, seq: u64) -> u8 {
        if seq <= self.base {
            return 0;
        }
        self.counts
            .get((seq - self.base - 1) as usize)
            .copied()
            .unwrap_or(0)
    }
}

/// The acknowledged sequence numbers of one room, from every sender.
#[derive(Debug, Clone, Default)]
pub struct RoomAcks {
    acked: Vec<bool>,
    /// The same sequence number acknowledged for two different nonces: the server gave one number to two
    /// messages.
    pub reused_seqs: u64,
    pub count: u64,
    pub highest: u64,
}

impl RoomAcks {
    pub fn add(&mut self, seq: u64) {
        let i = seq as usize;
        if i >= self.acked.len() {
            self.acked.resize((i + 1).max(self.acked.len() * 2), false);
        }
        if self.acked[i] {
            self.reused_seqs += 1;
        } else {
            self.acked[i] = true;
            self.count += 1;
        }
        self.highest = self.highest.max(seq);
    }

    fn is_acked(&self, seq: u64) -> bool {
        self.acked.get(seq as usize).copied().unwrap_or(false)
    }
}

/// The exactly-once verdict for one connection (or many, added up).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Verdict {
    /// Acknowledged messages after the connection's sync point that it should have received.
    pub expected: u64,
    /// ... of which it never received.
    pub lost: u64,
    /// Extra copies: received more than once, or at/below its sync point.
    pub duplicated: u64,
    /// Received, but never acknowledged to a sender (its ack was lost with a closed connection): stored
    /// by the server, so not an error of delivery.
    pub unacked_delivered: u64,
}

impl Verdict {
    pub fn add(&mut self, other: Verdict) {
        self.expected += other.expected;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.unacked_delivered += other.unacked_delivered;
    }
}

/// Checks one connection's deliveries against its room's acks: every acked message after `base` exactly
/// once.
pub fn check(deliveries: &Deliveries, acks: &RoomAcks) -> Verdict {
    let mut v = Verdict {
        duplicated: deliveries.at_or_below_base,
        ..Verdict::default()
    };
    let top = acks.highest.max(deliveries.highest);
    for seq in deliveries.base + 1..=top {
        let got = u64::from(deliveries.count(seq));
        if acks.is_acked(seq) {
            v.expected += 1;
            match got {
                0 => v.lost += 1,
                n => v.duplicated += n - 1,
            }
        } else if got > 0 {
            v.unacked_delivered += 1;
            v.duplicated += got - 1;
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------------
// Pacing.

/// When message `n` (from 0) of sender `rank` (of `senders`) is due, in nanoseconds after the start,
/// for a total rate of `total_rate` messages per second shared evenly. Senders are offset by a fraction
/// of the interval so they do not all send at the same instant.
pub fn due_offset_nanos(n: u64, rank: usize, senders: usize, total_rate: f64) -> u64 {
    let per_sender = total_rate / senders.max(1) as f64;
    let interval = 1e9 / per_sender;
    let phase = rank as f64 / senders.max(1) as f64;
    ((n as f64 + phase) * interval) as u64
}

/// Which connections send: `senders` of them, dealt round-robin over the rooms (so each room gets its
/// share) and spread over each room's connections. `conn_rooms[c]` is connection c's room.
pub fn pick_senders(conn_rooms: &[usize], rooms: usize, senders: usize) -> Vec<Option<usize>> {
    let mut by_room: Vec<Vec<usize>> = vec![Vec::new(); rooms];
    for (c, &r) in conn_rooms.iter().enumerate() {
        by_room[r].push(c);
    }
    let mut rank_of = vec![None; conn_rooms.len()];
    let mut taken = vec![0usize; rooms];
    let mut rank = 0;
    let mut room = 0;
    let mut idle_rooms = 0;
    while rank < senders.min(conn_rooms.len()) && idle_rooms < rooms {
        let members = &by_room[room];
        if taken[room] < members.len() {
            // Take every k-th member so senders are not all the first connections of a room.
            let k = taken[room];
            let per_room = senders.div_ceil(rooms).clamp(1, members.len());
            let stride = (members.len() / per_room).max(1);
            let mut idx = (k * stride) % members.len();
            while rank_of[members[idx]].is_some() {
                idx = (idx + 1) % members.len();
            }
            rank_of[members[idx]] = Some(rank);
            taken[room] += 1;
            rank += 1;
            idle_rooms = 0;
        } else {
            idle_rooms += 1;
        }
        room = (room + 1) % rooms;
    }
    rank_of
}

// ---------------------------------------------------------------------------------------------------
// Counters.

/// Error and event counts, keyed by a short kind (`connect: http 401`, `error: rate_limited`, ...).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Errors(pub BTreeMap<String, u64>);

impl Errors {
    pub fn add(&mut self, kind: impl Into<String>, n: u64) {
        if n > 0 {
            *self.0.entry(kind.into()).or_default() += n;
        }
    }

    pub fn merge(&mut self, other: &Errors) {
        for (k, v) in &other.0 {
            self.add(k.clone(), *v);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// What one connection counted while running.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub sent: u64,
    pub sent_measured: u64,
    pub acked: u64,
    pub acked_measured: u64,
    pub failed_sends: u64,
    pub delivered: u64,
    pub delivered_measured: u64,
    pub foreign_messages: u64,
    pub pongs: u64,
    /// Websocket messages read, and the protocol items in them.
    pub frames: u64,
    pub items: u64,
    /// Items of the kinds the scanner handles that it could not read (serde decoded them).
    pub slow_items: u64,
    /// `presence` items, and the presence changes they carried.
    pub presence_frames: u64,
    pub presence_changes: u64,
    /// `watch` commands sent (one per connection at most), and the users they named.
    pub watch_sent: u64,
    pub watched_users: u64,
    /// How far behind its schedule a rate-limited sender fell at worst, in microseconds.
    pub max_lag_us: u64,
    pub unacked_at_end: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.sent += o.sent;
        self.sent_measured += o.sent_measured;
        self.acked += o.acked;
        self.acked_measured += o.acked_measured;
        self.failed_sends += o.failed_sends;
        self.delivered += o.delivered;
        self.delivered_measured += o.delivered_measured;
        self.foreign_messages += o.foreign_messages;
        self.pongs += o.pongs;
        self.frames += o.frames;
        self.items += o.items;
        self.slow_items += o.slow_items;
        self.presence_frames += o.presence_frames;
        self.presence_changes += o.presence_changes;
        self.watch_sent += o.watch_sent;
        self.watched_users += o.watched_users;
        self.max_lag_us = self.max_lag_us.max(o.max_lag_us);
        self.unacked_at_end += o.unacked_at_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acks(seqs: impl IntoIterator<Item = u64>) -> RoomAcks {
        let mut a = RoomAcks::default();
        for s in seqs {
            a.add(s);
        }
        a
    }

    #[test]
    fn exactly_once_everything_after_the_sync_point() {
        let room = acks(1..=10);
        let mut d = Deliveries::new(3);
        for seq in 4..=10 {
            d.record(seq);
        }
        assert_eq!(
            check(&d, &room),
            Verdict {
                expected: 7,
                lost: 0,
                duplicated: 0,
                unacked_delivered: 0
            }
        );
    }

    #[test]
    fn lost_and_duplicated_deliveries_are_counted() {
        let room = acks(1..=10);
        let mut d = Deliveries::new(0);
        for seq in [1, 2, 2, 2, 4, 5, 6, 7, 8, 9] {
            d.record(seq); // 3 and 10 lost, 2 twice too many
        }
        d.record(0); // at the sync point: a duplicate
        let v = check(&d, &room);
        assert_eq!((v.expected, v.lost, v.duplicated), (10, 2, 3));
    }

    #[test]
    fn delivered_but_unacked_is_reported_not_lost() {
        let room = acks([1, 2, 4]);
        let mut d = Deliveries::new(0);
        for seq in [1, 2, 3, 4, 5] {
            d.record(seq);
        }
        let v = check(&d, &room);
        assert_eq!(
            (v.expected, v.lost, v.duplicated, v.unacked_delivered),
            (3, 0, 0, 2)
        );
    }

    #[test]
    fn messages_before_the_sync_point_are_not_expected() {
        let room = acks(1..=5);
        let d = Deliveries::new(5);
        assert_eq!(check(&d, &room), Verdict::default());
        let mut late = Deliveries::new(2);
        late.record(4);
        let v = check(&late, &room);
        assert_eq!((v.expected, v.lost), (3, 2));
    }

    #[test]
    fn a_contiguous_stream_is_checked_up_to_its_highest() {
        let mut d = Deliveries::new(999_999_999);
        for seq in [1_000_000_000, 1_000_000_001, 1_000_000_001, 1_000_000_003] {
            d.record(seq);
        }
        let v = d.check_contiguous();
        assert_eq!((v.expected, v.lost, v.duplicated), (4, 1, 1));
        assert_eq!(Deliveries::new(5).check_contiguous(), Verdict::default());
    }

    #[test]
    fn one_seq_acked_twice_is_flagged() {
        let room = acks([1, 2, 2, 3]);
        assert_eq!((room.count, room.reused_seqs, room.highest), (3, 1, 3));
    }

    #[test]
    fn deliveries_grow_for_large_and_sparse_seqs() {
        let mut d = Deliveries::new(1_000_000);
        d.record(1_005_000);
        d.record(1_000_001);
        let v = check(&d, &acks([1_000_001, 1_005_000]));
        assert_eq!((v.expected, v.lost, v.duplicated), (2, 0, 0));
    }

    #[test]
    fn pacing_spreads_the_total_rate_over_senders() {
        // 700 msg/s over 100 senders: 7 msg/s each, one every 142.857 ms.
        let total: usize = (0..100)
            .map(|rank| {
                (0..100)
                    .take_while(|&n| due_offset_nanos(n, rank, 100, 700.0) < 1_000_000_000)
                    .count()
            })
            .sum();
        assert_eq!(total, 700);
        assert_eq!(due_offset_nanos(0, 0, 100, 700.0), 0);
        assert_eq!(due_offset_nanos(1, 0, 100, 700.0), 142_857_142);
        // Sender 50 of 100 starts half an interval later.
        assert_eq!(due_offset_nanos(0, 50, 100, 700.0), 71_428_571);
        // One sender at 1000 msg/s: every millisecond.
        assert_eq!(due_offset_nanos(1000, 0, 1, 1000.0), 1_000_000_000);
    }

    #[test]
    fn senders_are_dealt_over_rooms() {
        // 1000 connections in 10 rooms (c mod 10), 100 senders: 10 per room.
        let rooms: Vec<usize> = (0..1000).map(|c| c % 10).collect();
        let picked = pick_senders(&rooms, 10, 100);
        let mut per_room = [0; 10];
        for (c, rank) in picked.iter().enumerate() {
            if rank.is_some() {
                per_room[rooms[c]] += 1;
            }
        }
        assert_eq!(per_room, [10; 10]);
        let mut ranks: Vec<usize> = picked.iter().flatten().copied().collect();
        ranks.sort();
        assert_eq!(ranks, (0..100).collect::<Vec<_>>());

        // Uneven rooms: the small one gives what it has, the others take the rest.
        let rooms = [0, 1, 1, 1, 1, 1];
        let picked = pick_senders(&rooms, 2, 4);
        assert_eq!(picked.iter().flatten().count(), 4);
        assert!(picked[0].is_some());
        // More senders than connections: everyone sends.
        assert!(pick_senders(&[0, 0], 1, 5).iter().all(Option::is_some));
        assert!(pick_senders(&[0, 0], 1, 0).iter().all(Option::is_none));
    }

    #[test]
    fn batches_reach_the_shared_histogram() {
        let shared = SharedHistogram::new(4);
        let mut batch = Batch::new(7);
        for v in 1..=100 {
            batch.record(v * 1000, &shared);
        }
        assert_eq!(shared.merged().len(), 64);
        batch.flush(&shared);
        let p = Percentiles::of(&shared.merged());
        assert_eq!(p.count, 100);
        assert!((p.p50_ms - 50.0).abs() < 0.1);
        assert!((p.max_ms - 100.0).abs() < 0.1);
    }
}
