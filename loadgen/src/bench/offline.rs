//! `read-bench --offline`: the receive path without sockets or runtime. The synthetic server's
//! chunks (16 batch frames of 9 message items, fresh sequence numbers each round) are copied into
//! a connection's `Reader`, as a read would, and every frame goes through `Tally::frame`: the frame
//! parser, the scanner and the exactly-once and latency bookkeeping, on one thread. What it costs
//! per delivery is loadgen's own share of reading, apart from the kernel's; under
//! `valgrind --tool=cachegrind` it gives instruction counts that other load on the machine cannot
//! disturb.

use super::server::Chunk;
use super::{bench_room, BASE_SEQ};
use crate::conn::{ConnShared, Plan, Shared, Tally};
use crate::members::Members;
use crate::stats::SharedHistogram;
use crate::ws::frames::{Event, Reader};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What an offline run measured.
pub struct Offline {
    pub deliveries: u64,
    pub cpu_secs: f64,
    pub item_bytes: usize,
    pub items_per_frame: usize,
    pub frame_bytes: usize,
}

/// Reads chunks for `seconds` of wall time.
pub fn run(batch_bytes: usize, frames_per_write: usize, seconds: f64) -> anyhow::Result<Offline> {
    let room = bench_room(0);
    let chunk = Chunk::new(room, batch_bytes, frames_per_write)?;
    let shared = Arc::new(Shared {
        conns: vec![ConnShared::default()],
        room_targets: vec![AtomicU64::new(0)],
        latency: SharedHistogram::new(1),
        ack_latency: SharedHistogram::new(1),
        senders: 0,
        rate: None,
        max_inflight: 1,
        body_size: 0,
        watch: 0,
        members: Members::new(1, 1, 1, 0),
    });
    let mut tally = Tally::new(0, room, BASE_SEQ, shared);
    let now = tokio::time::Instant::now();
    tally.plan = Some(Plan {
        start: now,
        send_until: now,
        measure_from_ns: 0,
        measure_to_ns: u64::MAX,
    });
    let mut reader = Reader::new(64 * 1024, 64 * 1024, crate::ws::MAX_MESSAGE);
    let mut bytes = chunk.bytes().to_vec();
    let mut last_seq = BASE_SEQ;
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let cpu0 = crate::proc::cpu_seconds(None).unwrap_or(0.0);
    while Instant::now() < until {
        // A hundred rounds between clock reads.
        for _ in 0..100 {
            last_seq = chunk.fill(&mut bytes, last_seq, crate::wire::unix_nanos());
            reader.spare()[..bytes.len()].copy_from_slice(&bytes);
            reader.filled(bytes.len());
            while let Some(event) = reader.next_event()? {
                if let Event::Message { data, .. } = event {
                    tally.frame(data);
                }
            }
        }
    }
    let cpu_secs = crate::proc::cpu_seconds(None).unwrap_or(0.0) - cpu0;
    tally.flush_latencies();
    let v = tally.deliveries.check_contiguous();
    anyhow::ensure!(
        v.lost == 0 && v.duplicated == 0 && tally.errors.0.is_empty(),
        "offline reading lost or duplicated deliveries: {v:?} {:?}",
        tally.errors.0
    );
    Ok(Offline {
        deliveries: tally.counts.delivered,
        cpu_secs,
        item_bytes: chunk.item_len,
        items_per_frame: chunk.items_per_frame,
        frame_bytes: chunk.frame_len,
    })
}
