//! A connection's inbox: the events the hub routed to it, waiting for its task. Publishing costs a
//! short lock and a push; the task is woken only when the inbox goes from empty to not empty, and
//! takes everything waiting at once, so a connection that is behind handles a burst in one turn (and
//! writes it with one flush) instead of one wake-up per event.

use super::Broadcast;
use futures::task::AtomicWaker;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::Poll;

/// A burst taken out of an inbox keeps its allocation for the next one, up to this many slots; a
/// bigger one is freed, so a connection that was once far behind does not keep that memory.
const KEEP_SLOTS: usize = 256;

pub struct Inbox {
    events: Mutex<Queue>,
    waker: AtomicWaker,
    limit: usize,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Arc<Broadcast>>,
    /// The registration is gone: nothing more will arrive.
    closed: bool,
}

/// Why an event could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// `limit` events are already waiting: the connection is too slow.
    Full,
    Closed,
}

impl Inbox {
    pub fn new(limit: usize) -> Self {
        Self {
            events: Mutex::new(Queue::default()),
            waker: AtomicWaker::new(),
            limit: limit.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `event`, waking the connection if it was idle.
    pub fn push(&self, event: &Arc<Broadcast>) -> Result<(), Refused> {
        let was_empty = {
            let mut queue = self.lock();
            if queue.closed {
                return Err(Refused::Closed);
            }
            if queue.events.len() >= self.limit {
                return Err(Refused::Full);
            }
            queue.events.push_back(event.clone());
            queue.events.len() == 1
        };
        if was_empty {
            self.waker.wake();
        }
        Ok(())
    }

    /// Nothing more will be queued (the connection left the hub); a waiting task is woken.
    pub fn close(&self) {
        self.lock().closed = true;
        self.waker.wake();
    }

    /// Completes once an event waits, or the inbox is closed and empty (then `false`).
    pub async fn ready(&self) -> bool {
        poll_fn(|cx| {
            self.waker.register(cx.waker());
            let queue = self.lock();
            if !queue.events.is_empty() {
                Poll::Ready(true)
            } else if queue.closed {
                Poll::Ready(false)
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Moves every waiting event into `into` (which should be empty), in order. `into`'s allocation
    /// becomes the inbox's, so a steady stream of bursts allocates nothing.
    pub fn take_all(&self, into: &mut VecDeque<Arc<Broadcast>>) {
        debug_assert!(into.is_empty());
        if into.capacity() > KEEP_SLOTS {
            *into = VecDeque::new();
        }
        std::mem::swap(&mut self.lock().events, into);
    }

    /// The next event, waiting for one; `None` once closed and empty.
    pub async fn recv(&self) -> Option<Arc<Broadcast>> {
        loop {
            if let Some(event) = self.try_recv() {
                return Some(event);
            }
            if !self.ready().await {
                return None;
            }
        }
    }

    /// The next event if one waits.
    pub fn try_recv(&self) -> Option<Arc<Broadcast>> {
        self.lock().events.pop_front()
    }

    /// How many events wait.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerMsg;

    #[tokio::test]
    async fn a_burst_is_taken_whole_in_order_and_the_limit_refuses_more() {
        let inbox = Inbox::new(3);
        let events: Vec<_> = (0..4)
            .map(|seq| {
                Broadcast::new(ServerMsg::Read {
                    room: crate::model::RoomId::new(),
                    seq,
                })
            })
            .collect();
        for event in &events[..3] {
            inbox.push(event).unwrap();
        }
        assert_eq!(inbox.push(&events[3]), Err(Refused::Full));
        assert!(inbox.ready().await);
        let mut burst = VecDeque::new();
        inbox.take_all(&mut burst);
        let taken: Vec<_> = burst.iter().map(|e| e.msg().clone()).collect();
        let sent: Vec<_> = events[..3].iter().map(|e| e.msg().clone()).collect();
        assert_eq!(taken, sent);
        assert!(inbox.is_empty());
        // Taken, the room is there again.
        burst.clear();
        inbox.push(&events[3]).unwrap();
        assert_eq!(
            inbox.try_recv().map(|e| e.msg().clone()),
            Some(events[3].msg().clone())
        );
    }

    #[tokio::test]
    async fn a_waiting_task_wakes_on_the_first_event_and_on_close() {
        let inbox = Arc::new(Inbox::new(8));
        let waiting = tokio::spawn({
            let inbox = inbox.clone();
            async move { inbox.recv().await.map(|e| e.msg().clone()) }
        });
        tokio::task::yield_now().await;
        inbox.push(&Broadcast::new(ServerMsg::Pong)).unwrap();
        assert_eq!(waiting.await.unwrap(), Some(ServerMsg::Pong));

        let waiting = tokio::spawn({
            let inbox = inbox.clone();
            async move { inbox.recv().await }
        });
        tokio::task::yield_now().await;
        inbox.close();
        assert!(waiting.await.unwrap().is_none());
        assert_eq!(
            inbox.push(&Broadcast::new(ServerMsg::Pong)),
            Err(Refused::Closed)
        );
    }
}
