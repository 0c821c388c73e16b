//! Catch-up and live delivery of a room's content: every change (a new message, an edit, a deletion, a
//! reaction) exactly once and in revision order per room, whatever order the hub announces them in,
//! gaps filled from the store's change feed.

use super::ordering::{classify, Held, Next};
use super::{Connection, MAX_HELD};
use crate::chat::hub::Broadcast;
use crate::chat::messages;
use crate::error::AppError;
use crate::model::RoomId;
use crate::protocol::{RoomCursor, ServerMsg, MAX_CURSORS};
use crate::store::{RoomPosition, MAX_PAGE_SIZE};
use axum::body::Bytes;
use futures::Sink;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Where this connection's client is in one room: the newest message and the latest revision it was
/// given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cursor {
    pub(super) seq: u64,
    pub(super) rev: u64,
}

impl From<RoomPosition> for Cursor {
    fn from(p: RoomPosition) -> Self {
        Self {
            seq: p.last_seq,
            rev: p.rev,
        }
    }
}

impl<W> Connection<W>
where
    W: Sink<Bytes> + Unpin + Send + 'static,
{
    /// Catches the client up: per room it names, the changes after its cursor; then live events.
    pub(super) async fn hello(&mut self, cursors: Vec<RoomCursor>) {
        if cursors.len() > MAX_CURSORS {
            let error =
                AppError::invalid("cursors", format!("At most {MAX_CURSORS} rooms per hello."));
            return self.emit_error(&error, None);
        }
        let given: HashMap<RoomId, RoomCursor> = cursors.iter().map(|c| (c.room, *c)).collect();
        let mut rooms: Vec<RoomId> = self.rooms.iter().copied().collect();
        rooms.sort();
        for room in rooms {
            match self.catch_up(room, given.get(&room)).await {
                Ok(at) => self.emit(ServerMsg::Synced {
                    room,
                    last_seq: at.seq,
                    rev: at.rev,
                }),
                Err(e) => return self.emit_error(&e, None),
            }
        }
        self.synced = true;
    }

    /// Sends what the client misses in `room` and returns where that leaves it. Without a cursor it
    /// has nothing of the room yet (it loads it over HTTP): live from now on.
    async fn catch_up(
        &mut self,
        room: RoomId,
        given: Option<&RoomCursor>,
    ) -> Result<Cursor, AppError> {
        let now = Cursor::from(self.state.store.room_position(room).await?);
        let Some(given) = given else {
            self.cursors.insert(room, now);
            return Ok(now);
        };
        // A cursor from the future (another database, a made-up one) would make live events look
        // like duplicates: start from what exists.
        let start = Cursor {
            seq: given.last_seq.min(now.seq),
            rev: given.rev.min(now.rev),
        };
        self.cursors.insert(room, start);
        self.replay(room).await
    }

    /// Sends the room's changes after the connection's cursor, in revision order: as `Message` what is
    /// new to the client, as `Updated` the rest. Returns the cursor reached.
    pub(super) async fn replay(&mut self, room: RoomId) -> Result<Cursor, AppError> {
        let Some(mut at) = self.cursors.get(&room).copied() else {
            return Err(AppError::Forbidden);
        };
        loop {
            let page = self
                .state
                .store
                .changes(room, at.rev, MAX_PAGE_SIZE)
                .await?;
            let full = page.len() as u32 == MAX_PAGE_SIZE;
            for message in messages::message_views(&self.state, &page).await? {
                at.rev = message.rev;
                let event = if message.seq > at.seq {
                    at.seq = message.seq;
                    ServerMsg::Message { message }
                } else if message.thread_only() {
                    // Outside the timeline's sequence: the client files it by its thread.
                    ServerMsg::Message { message }
                } else {
                    ServerMsg::Updated { message }
                };
                self.emit(event);
            }
            self.cursors.insert(room, at);
            // A long catch-up goes out page by page, not held whole in memory.
            if !full || !self.flush_now().await || self.control.reason().is_some() {
                return Ok(at);
            }
        }
    }

    /// Passes a change on if it is the room's next revision for this client; holds it if earlier ones
    /// are still missing; drops it if the client has it.
    pub(super) async fn deliver_change(
        &mut self,
        event: &Arc<Broadcast>,
        room: RoomId,
        rev: u64,
        seq: u64,
    ) {
        let Some(at) = self.cursors.get_mut(&room) else {
            return;
        };
        match classify(at.rev, rev) {
            Next::Duplicate => {}
            Next::Deliver => {
                at.rev = rev;
                at.seq = at.seq.max(seq);
                self.emit_event(event.clone());
                self.release_held(room);
            }
            Next::Gap { .. } => {
                let held = self
                    .held
                    .entry(room)
                    .or_insert_with(|| Held::new(Instant::now()));
                held.hold(rev, (seq, event.clone()));
                if held.len() > MAX_HELD {
                    Box::pin(self.fill_gap(room)).await;
                }
            }
        }
    }

    /// Sends the held changes of `room` that now follow its cursor.
    fn release_held(&mut self, room: RoomId) {
        let Some(held) = self.held.get_mut(&room) else {
            return;
        };
        let Some(at) = self.cursors.get_mut(&room) else {
            return;
        };
        let ready = held.take_ready(at.rev);
        if held.is_empty() {
            self.held.remove(&room);
        }
        let mut events = Vec::with_capacity(ready.len());
        for (rev, (seq, event)) in ready {
            at.rev = rev;
            at.seq = at.seq.max(seq);
            events.push(event);
        }
        for event in events {
            self.emit_event(event);
        }
    }

    pub(super) fn next_gap_deadline(&self) -> Instant {
        self.held
            .values()
            .map(Held::deadline)
            .min()
            .unwrap_or_else(Instant::now)
    }

    pub(super) async fn fill_overdue_gaps(&mut self) {
        let now = Instant::now();
        let overdue: Vec<RoomId> = self
            .held
            .iter()
            .filter(|(_, held)| held.deadline() <= now)
            .map(|(room, _)| *room)
            .collect();
        for room in overdue {
            self.fill_gap(room).await;
        }
    }

    /// Reads the missing changes of `room` from the store (which has everything that was announced).
    async fn fill_gap(&mut self, room: RoomId) {
        self.held.remove(&room);
        if !self.cursors.contains_key(&room) {
            return;
        }
        if let Err(e) = self.replay(room).await {
            self.emit_error(&e, None);
        }
    }

    /// Starts following a room the user was just added to, from where it is now.
    pub(super) async fn follow(&mut self, event: &Arc<Broadcast>, room: RoomId) {
        match self.state.store.room_position(room).await {
            Ok(now) => {
                self.rooms.insert(room);
                self.cursors.insert(room, now.into());
                self.emit_event(event.clone());
            }
            // Without the room's position this connection cannot deliver it in order: the client
            // reconnects and resumes from its cursors.
            Err(error) => {
                tracing::warn!(%error, "a newly followed room could not be read");
                self.control.close(crate::protocol::CloseReason::Resync);
            }
        }
    }
}
