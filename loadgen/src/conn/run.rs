//! A connection's life after `synced`: send on schedule (senders), read and count everything that
//! arrives, heartbeat, watch presence (`--watch`), close when told to stop.

use super::{Established, Phase, Plan, Shared, Spec, Tally};
use crate::stats::{due_offset_nanos, Counts, Deliveries, Errors};
use crate::wire;
use crate::ws::{Event, WsClient};
use app::protocol::{ClientMsg, HEARTBEAT_SECS};
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Reads in a row (of up to 64 KiB each) before the connection lets the other tasks run: under a
/// steady stream the socket is always readable, and tokio's budget counts polls, not bytes.
const READS_PER_TURN: usize = 4;

/// What `read_available` left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The socket had nothing more.
    Drained,
    /// It may have more: let the others run first.
    More,
    /// The server closed the connection (end of stream or close frame).
    Closed,
}

/// What a connection reports when it ends.
pub struct Report {
    pub room_idx: usize,
    pub deliveries: Deliveries,
    /// Sequence numbers of this sender's acknowledged messages.
    pub acked_seqs: Vec<u64>,
    pub counts: Counts,
    pub errors: Errors,
    /// Still open when told to stop (its deliveries can be checked in full).
    pub open_at_end: bool,
}

/// Runs an established connection until `Phase::Stop` (or until the server closes it).
pub async fn run(
    spec: Spec,
    established: Established,
    shared: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
) -> Report {
    let id = spec.id;
    let me = &shared.conns[id as usize];
    me.open.store(true, Relaxed);
    me.busy_sending.store(spec.sender_rank.is_some(), Relaxed);
    let Established {
        mut ws,
        base,
        leftover,
        ..
    } = established;
    let mut t = Tally::new(id, spec.room, base, shared.clone());
    if let Some(frame) = leftover {
        t.frame(&frame);
        t.publish();
    }
    let mut next_n = 0u64;
    let mut sending = false;
    let mut sender_done = spec.sender_rank.is_none();
    let mut open_at_end = false;
    let mut frame = Vec::with_capacity(128 + shared.body_size);

    // Pings a little more often than required, spread so 20,000 connections do not ping at once.
    let every = Duration::from_millis(HEARTBEAT_SECS * 1000 * 3 / 4);
    let first =
        Instant::now() + Duration::from_millis(u64::from(id) * 7919 % every.as_millis() as u64);
    let mut heartbeat = tokio::time::interval_at(first, every);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ping = wire::encode(&ClientMsg::Ping);
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let due_timer = tokio::time::sleep_until(far);
    let end_timer = tokio::time::sleep_until(far);
    tokio::pin!(due_timer, end_timer);
    let mut due_armed = false;
    // With --watch, the members to watch are known once this flag turns true.
    let mut watch_ready = (shared.watch > 0).then(|| shared.members.ready(spec.room_idx));

    // Senders that are done publish how far their room got, then stop counting as busy.
    let finish_sending = |acked_seqs: &Vec<u64>, sender_done: &mut bool| {
        if !*sender_done {
            *sender_done = true;
            if let Some(&top) = acked_seqs.iter().max() {
                shared.room_targets[spec.room_idx].fetch_max(top, Relaxed);
            }
            me.busy_sending.store(false, Relaxed);
        }
    };
    // The phase may have moved on before this task started: apply the current one first.
    let mut pending_phase = Some(*phase.borrow_and_update());

    'run: loop {
        match pending_phase.take() {
            None | Some(Phase::Wait) => {}
            Some(Phase::Run(p)) => {
                if t.plan.is_none() {
                    t.plan = Some(p);
                    if spec.sender_rank.is_some() && Instant::now() < p.send_until {
                        sending = true;
                        end_timer.as_mut().reset(p.send_until);
                    }
                }
            }
            Some(Phase::Stop) => {
                open_at_end = true;
                break 'run;
            }
        }
        // Send whatever is due (fast mode: as much as the in-flight bound allows).
        if sending {
            let plan: Plan = t.plan.expect("sending has a plan");
            let rank = spec.sender_rank.expect("only senders send");
            let now = Instant::now();
            if now >= plan.send_until {
                sending = false;
            } else if let Some(until) = t.paused_until.filter(|&until| until > now) {
                due_timer.as_mut().reset(until);
                due_armed = true;
            } else {
                let mut wrote = false;
                due_armed = false;
                t.paused_until = None;
                while t.inflight.len() < shared.max_inflight {
                    if let Some(rate) = shared.rate {
                        let due = plan.start
                            + Duration::from_nanos(due_offset_nanos(
                                next_n,
                                rank,
                                shared.senders,
                                rate,
                            ));
                        if due > now {
                            due_timer.as_mut().reset(due);
                            due_armed = true;
                            break;
                        }
                        t.counts.max_lag_us = t
                            .counts
                            .max_lag_us
                            .max(now.duration_since(due).as_micros() as u64);
                    }
                    let sent_ns = wire::unix_nanos();
                    wire::encode_send_into(
                        &mut frame,
                        &t.room_text,
                        id,
                        next_n,
                        sent_ns,
                        shared.body_size,
                    );
                    ws.send_binary(&frame);
                    t.inflight.push_back((next_n, sent_ns));
                    t.counts.sent += 1;
                    t.counts.sent_measured += u64::from(plan.measured(sent_ns));
                    next_n += 1;
                    wrote = true;
                }
                if wrote {
                    if ws.flush().await.is_err() {
                        t.errors.add("send failed: io", 1);
                        break 'run;
                    }
                    me.sent.store(t.counts.sent, Relaxed);
                }
            }
        }
        if !sending && t.plan.is_some() && t.inflight.is_empty() {
            finish_sending(&t.acked_seqs, &mut sender_done);
        }

        // Biased towards the cheap checks: under a steady stream the socket is always readable, and
        // the phase and the timers must still be seen.
        tokio::select! {
            biased;
            changed = phase.changed() => {
                if changed.is_err() {
                    break 'run; // the main task is gone
                }
                pending_phase = Some(*phase.borrow_and_update());
            }
            () = &mut due_timer, if sending && due_armed => {}
            () = &mut end_timer, if sending => sending = false,
            _ = heartbeat.tick() => {
                ws.send_binary(&ping);
                if ws.flush().await.is_err() {
                    t.errors.add("send failed: io", 1);
                    break 'run;
                }
            }
            () = ready(&mut watch_ready), if watch_ready.is_some() => {
                watch_ready = None;
                let users = shared.members.watch_list(spec.room_idx);
                ws.send_binary(&wire::encode_watch(spec.room, &users));
                if ws.flush().await.is_err() {
                    t.errors.add("send failed: io", 1);
                    break 'run;
                }
                t.counts.watch_sent += 1;
                t.counts.watched_users += users.len().min(wire::MAX_WATCH) as u64;
            }
            readable = ws.readable() => {
                let outcome = match readable {
                    Ok(()) => read_available(&mut ws, &mut t),
                    Err(e) => Err(("connection error: io", e.to_string())),
                };
                t.publish();
                // Pongs, or the answer to the server's close.
                let flushed = ws.flush().await;
                match outcome {
                    Ok(Read::Drained) => {}
                    Ok(Read::More) => tokio::task::yield_now().await,
                    Ok(Read::Closed) => {
                        t.errors.add("closed by server", 1);
                        break 'run;
                    }
                    Err((kind, _)) => {
                        t.errors.add(kind, 1);
                        break 'run;
                    }
                }
                if flushed.is_err() {
                    t.errors.add("send failed: io", 1);
                    break 'run;
                }
            }
        }
    }

    me.open.store(false, Relaxed);
    t.counts.unacked_at_end = t.inflight.len() as u64;
    finish_sending(&t.acked_seqs, &mut sender_done);
    t.flush_latencies();
    t.publish();
    if open_at_end {
        // A polite close; the server does not need to answer for the run to be over.
        ws.send_close();
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.flush()).await;
    }
    Report {
        room_idx: spec.room_idx,
        deliveries: t.deliveries,
        acked_seqs: t.acked_seqs,
        counts: t.counts,
        errors: t.errors,
        open_at_end,
    }
}

/// Reads what the socket holds (a few reads at most) and counts every complete message in it.
pub fn read_available(ws: &mut WsClient, t: &mut Tally) -> Result<Read, (&'static str, String)> {
    for _ in 0..READS_PER_TURN {
        match ws.try_read() {
            Ok(0) => return Ok(Read::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Read::Drained),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(("connection error: io", e.to_string())),
        }
        loop {
            match ws.next_event() {
                Ok(Some(Event::Message { data, .. })) => t.frame(data),
                Ok(Some(Event::Close { .. })) => return Ok(Read::Closed),
                Ok(Some(Event::Ping(_) | Event::Pong)) => {}
                Ok(None) => break,
                Err(e) => return Err(("connection error: protocol", e.to_string())),
            }
        }
    }
    Ok(Read::More)
}

/// Resolves once the flag turns true (or its sender is gone); never without a receiver.
async fn ready(flag: &mut Option<watch::Receiver<bool>>) {
    match flag {
        Some(rx) => {
            let _ = rx.wait_for(|ready| *ready).await;
        }
        None => std::future::pending().await,
    }
}
