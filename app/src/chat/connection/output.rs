//! What a connection writes: the frames its turns produce, queued as shared events and written with
//! one flush, packed into batch frames for a client that reads them (one websocket frame for a burst).
//!
//! A write runs alongside the connection's other work: while a slow client's socket takes its time,
//! the connection still answers commands and takes events from its inbox, up to `WS_QUEUE_FRAMES`
//! waiting here (then the client is too slow and is closed).

use super::Connection;
use crate::chat::hub::Broadcast;
use crate::protocol::{batch_len, encode_batch, CloseReason};
use axum::body::Bytes;
use futures::future::BoxFuture;
use futures::{Sink, SinkExt};
use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// A batch frame packs items up to this many bytes (an item bigger than this goes alone). Small,
/// because the transport's write buffer keeps the size of the largest frame it ever held for as long
/// as the connection lives.
pub(super) const BATCH_BYTES: usize = 4 * 1024;

/// The connection's output: the sink, or the write under way, which hands the sink back when done.
pub(super) struct Output<W> {
    sink: Option<W>,
    writing: Option<(BoxFuture<'static, (W, bool)>, Instant)>,
}

impl<W> Output<W> {
    pub(super) fn new(sink: W) -> Self {
        Self {
            sink: Some(sink),
            writing: None,
        }
    }

    /// How long the write under way has taken so far.
    pub(super) fn stuck_for(&self) -> Duration {
        self.writing
            .as_ref()
            .map_or(Duration::ZERO, |(_, since)| since.elapsed())
    }

    /// The sink, once no write is under way (`None` while one is).
    pub(super) fn into_sink(self) -> Option<W> {
        self.sink
    }
}

/// Completes when the write under way does (never, if none is).
pub(super) fn written<W>(output: &mut Output<W>) -> impl Future<Output = (W, bool)> + '_ {
    poll_fn(move |cx| match output.writing.as_mut() {
        Some((write, _)) => write.as_mut().poll(cx),
        None => Poll::Pending,
    })
}

impl<W> Connection<W>
where
    W: Sink<Bytes> + Unpin + Send + 'static,
{
    /// Queues a frame for the client. A client that has this many waiting does not read: it is
    /// closed as too slow.
    pub(super) fn emit_event(&mut self, event: Arc<Broadcast>) {
        self.pending.push(event);
        if self.pending.len() > self.state.hub.queue() {
            self.control.close(CloseReason::TooSlow);
        }
    }

    /// Starts writing what waits, if anything does and no write is under way.
    pub(super) fn start_write(&mut self) {
        if self.pending.is_empty() || self.output.writing.is_some() {
            return;
        }
        let Some(mut sink) = self.output.sink.take() else {
            return;
        };
        let several = self.pending.len() > 1;
        let frames = self.pending.drain(..).map(|event| event.frame());
        let frames = if self.batches && several {
            pack(frames)
        } else {
            frames.collect()
        };
        let write = Box::pin(async move {
            let mut ok = true;
            for frame in frames {
                if sink.feed(frame).await.is_err() {
                    ok = false;
                    break;
                }
            }
            let ok = ok && sink.flush().await.is_ok();
            (sink, ok)
        });
        self.output.writing = Some((write, Instant::now()));
    }

    /// A write is done: the sink is back. `false` if the socket broke.
    pub(super) fn write_done(&mut self, (sink, ok): (W, bool)) -> bool {
        self.output.writing = None;
        self.output.sink = Some(sink);
        if !ok {
            self.broken = true;
        }
        ok
    }

    /// Writes everything that waits and waits for it (a long catch-up goes out page by page). A
    /// connection that is closing gives the client `linger` to take it. `false` if the socket broke
    /// or the client did not take it.
    pub(super) async fn flush_now(&mut self) -> bool {
        loop {
            if self.output.writing.is_none() {
                if self.pending.is_empty() {
                    return !self.broken;
                }
                self.start_write();
            }
            let linger = self.state.hub.silence();
            let control = self.control.clone();
            let done = {
                let write = written(&mut self.output);
                tokio::pin!(write);
                tokio::select! {
                    done = &mut write => Some(done),
                    _ = control.closed() => tokio::time::timeout(linger, &mut write).await.ok(),
                }
            };
            let ok = match done {
                Some(done) => self.write_done(done),
                None => false,
            };
            if !ok {
                self.broken = true;
                return false;
            }
        }
    }
}

/// Item frames packed, in order, into as few frames of at most `BATCH_BYTES` as they fit in (an item
/// bigger than that is a frame of its own); an item left alone stays an item frame.
pub(super) fn pack(frames: impl Iterator<Item = Bytes>) -> Vec<Bytes> {
    let mut packed = Vec::new();
    let mut group: Vec<Bytes> = Vec::new();
    let mut group_bytes = 0;
    for frame in frames {
        if !group.is_empty() && batch_len(group.len() + 1, group_bytes + frame.len()) > BATCH_BYTES
        {
            packed.push(seal(std::mem::take(&mut group)));
            group_bytes = 0;
        }
        group_bytes += frame.len();
        group.push(frame);
    }
    if !group.is_empty() {
        packed.push(seal(group));
    }
    packed
}

fn seal(mut group: Vec<Bytes>) -> Bytes {
    if group.len() == 1 {
        group.pop().expect("one frame")
    } else {
        Bytes::from(encode_batch(&group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{items, BATCH_TAG, ITEM_TAG};

    #[test]
    fn packing_keeps_the_order_and_every_frame_within_the_limit() {
        // Frames of a third of the limit: two fit in a batch, three do not.
        let frames: Vec<Bytes> = (0..7u8)
            .map(|i| {
                let mut frame = vec![ITEM_TAG];
                frame.extend(std::iter::repeat_n(b'0' + i, BATCH_BYTES / 3));
                Bytes::from(frame)
            })
            .collect();
        let packed = pack(frames.clone().into_iter());
        assert_eq!(packed.len(), 4);
        assert!(packed.iter().all(|f| f.len() <= BATCH_BYTES));
        assert_eq!(
            packed[3], frames[6],
            "the last one alone stays an item frame"
        );
        let unpacked: Vec<&[u8]> = packed.iter().flat_map(|f| items(f).unwrap()).collect();
        let expected: Vec<&[u8]> = frames.iter().map(|f| &f[1..]).collect();
        assert_eq!(unpacked, expected);
    }

    #[test]
    fn an_item_bigger_than_a_batch_goes_alone_between_its_neighbours_batches() {
        let item = |len: usize| {
            let mut frame = vec![ITEM_TAG];
            frame.extend(std::iter::repeat_n(b'x', len));
            Bytes::from(frame)
        };
        let frames = vec![
            item(10),
            item(10),
            item(2 * BATCH_BYTES),
            item(10),
            item(10),
        ];
        let packed = pack(frames.clone().into_iter());
        let tags: Vec<u8> = packed.iter().map(|f| f[0]).collect();
        assert_eq!(tags, [BATCH_TAG, ITEM_TAG, BATCH_TAG]);
        assert_eq!(packed[1], frames[2]);
    }
}
