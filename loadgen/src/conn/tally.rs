//! What one connection counts as the server's frames arrive: deliveries in its room (for the
//! exactly-once check), their latency, acks of its own sends, presence, error frames. Shared by the
//! scenarios and the read benchmark, whichever transport read the frame.

use super::{Plan, Shared};
use crate::stats::{Batch, Counts, Deliveries, Errors};
use crate::wire::{self, Item};
use app::model::RoomId;
use app::protocol::ServerMsg;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub struct Tally {
    pub id: u32,
    pub room: RoomId,
    /// `room` as the server writes it, compared byte for byte with each item's.
    pub room_text: String,
    pub shared: Arc<Shared>,
    pub deliveries: Deliveries,
    pub counts: Counts,
    pub errors: Errors,
    /// Sequence numbers of this sender's acknowledged messages.
    pub acked_seqs: Vec<u64>,
    latency: Batch,
    ack_latency: Batch,
    /// Messages sent and not yet answered: (n, send time). Answers come in order, so mostly the front.
    pub inflight: VecDeque<(u64, u64)>,
    pub plan: Option<Plan>,
    /// A sender told `rate_limited` waits as long as the server asks before sending again.
    pub paused_until: Option<Instant>,
}

impl Tally {
    /// Connection `id` in `room`, synced at `base`.
    pub fn new(id: u32, room: RoomId, base: u64, shared: Arc<Shared>) -> Self {
        Self {
            id,
            room,
            room_text: room.to_string(),
            shared,
            deliveries: Deliveries::new(base),
            counts: Counts::default(),
            errors: Errors::default(),
            acked_seqs: Vec::new(),
            latency: Batch::new(id as usize),
            ack_latency: Batch::new(id as usize),
            inflight: VecDeque::new(),
            plan: None,
            paused_until: None,
        }
    }

    /// One data message from the server: an item frame or a batch frame.
    pub fn frame(&mut self, data: &[u8]) {
        self.counts.frames += 1;
        let Ok(items) = app::protocol::items(data) else {
            self.errors.add("undecodable frame", 1);
            return;
        };
        // Every item of a frame arrived at the same moment: one clock read per frame.
        let mut now = Now::default();
        for json in items {
            match wire::decode_item(json) {
                Ok((item, slow)) => {
                    self.counts.items += 1;
                    self.counts.slow_items += u64::from(slow);
                    self.item(item, &mut now);
                }
                Err(_) => self.errors.add("undecodable frame", 1),
            }
        }
    }

    /// One decoded item; `now` is the frame's arrival time, read when first needed.
    pub fn item(&mut self, item: Item<'_>, now: &mut Now) {
        match item {
            Item::Message { room, seq, body } => {
                if !room.is(self.room, &self.room_text) {
                    self.counts.foreign_messages += 1;
                    return;
                }
                self.deliveries.record(seq);
                self.counts.delivered += 1;
                if let (Some(plan), Some((_, _, sent_ns))) = (self.plan, wire::parse_body(&body)) {
                    if plan.measured(sent_ns) {
                        self.counts.delivered_measured += 1;
                        let us = now.get().saturating_sub(sent_ns) / 1000;
                        self.latency.record(us, &self.shared.latency);
                    }
                }
            }
            Item::Ack { nonce, room, seq } => {
                let n = wire::nonce_number(&nonce);
                let Some(pos) = n.and_then(|n| self.inflight.iter().position(|(m, _)| *m == n))
                else {
                    self.errors.add("ack for an unknown nonce", 1);
                    return;
                };
                let (_, sent_ns) = self.inflight.remove(pos).expect("found above");
                if !room.is(self.room, &self.room_text) {
                    self.errors.add("ack for another room", 1);
                }
                self.acked_seqs.push(seq);
                self.counts.acked += 1;
                if self.plan.is_some_and(|p| p.measured(sent_ns)) {
                    self.counts.acked_measured += 1;
                    let us = now.get().saturating_sub(sent_ns) / 1000;
                    self.ack_latency.record(us, &self.shared.ack_latency);
                }
            }
            Item::Presence { changes } => {
                self.counts.presence_frames += 1;
                self.counts.presence_changes += changes as u64;
            }
            Item::Pong => self.counts.pongs += 1,
            Item::Ignored => {}
            Item::Full(msg) => match *msg {
                ServerMsg::Error {
                    code,
                    nonce,
                    retry_after_ms,
                    ..
                } => {
                    self.errors.add(format!("error frame: {code:?}"), 1);
                    if let Some(ms) = retry_after_ms {
                        let until = Instant::now() + Duration::from_millis(ms);
                        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
                    }
                    let n = nonce
                        .as_deref()
                        .map(str::as_bytes)
                        .and_then(wire::nonce_number);
                    if let Some(pos) =
                        n.and_then(|n| self.inflight.iter().position(|(m, _)| *m == n))
                    {
                        self.inflight.remove(pos);
                        self.counts.failed_sends += 1;
                    }
                }
                ServerMsg::Closing { reason } => {
                    self.errors.add(format!("closing: {reason:?}"), 1);
                }
                _ => {}
            },
        }
    }

    /// Makes progress visible to the main task (after each read, not each item).
    pub fn publish(&self) {
        let me = &self.shared.conns[self.id as usize];
        me.highest_seq.store(self.deliveries.highest, Relaxed);
        me.delivered.store(self.counts.delivered, Relaxed);
        me.acked.store(self.counts.acked, Relaxed);
    }

    /// Hands the buffered latency samples over to the shared histograms.
    pub fn flush_latencies(&mut self) {
        self.latency.flush(&self.shared.latency);
        self.ack_latency.flush(&self.shared.ack_latency);
    }
}

/// The current time in Unix nanoseconds, read once when first needed.
#[derive(Default)]
pub struct Now(u64);

impl Now {
    fn get(&mut self) -> u64 {
        if self.0 == 0 {
            self.0 = wire::unix_nanos();
        }
        self.0
    }
}
