//! The client's commands: each is checked against the connection's budgets, translated into a call of
//! the chat rules, and answered. A send is stored while the connection goes on writing what it has
//! queued and watching its timers (`Connection::sending`), and answered with its ack when it is
//! durable; the rest are answered in turn.

use super::{Connection, Inbound, Sending, AWAY_GAP, TOGGLE_GAP, TYPING_REFRESH};
use crate::chat::{messages, rooms, threads};
use crate::error::AppError;
use crate::model::{FileId, MessageId, RoomId, UserId};
use crate::protocol::{
    ClientMsg, CloseReason, ErrorCode, FrameError, PresenceChange, ServerMsg, MAX_WATCH,
};
use crate::store::Appended;
use axum::body::Bytes;
use futures::Sink;
use std::time::{Duration, Instant};

/// A send that is done: its nonce and what became of it.
pub(super) struct Sent {
    nonce: String,
    result: Result<Appended, AppError>,
}

/// What one `Send` carries.
struct Outgoing {
    room: RoomId,
    nonce: String,
    body: String,
    thread: Option<(MessageId, bool)>,
    files: Vec<FileId>,
    alts: Vec<String>,
}

impl<W> Connection<W>
where
    W: Sink<Bytes> + Unpin + Send + 'static,
{
    pub(super) fn emit_error(&mut self, error: &AppError, nonce: Option<String>) {
        let (code, retry_after_ms) = match error {
            AppError::Invalid { .. } | AppError::Transport { .. } => (ErrorCode::Invalid, None),
            AppError::Forbidden => (ErrorCode::Forbidden, None),
            AppError::NotFound { .. } => (ErrorCode::NotFound, None),
            AppError::TooManyAttempts { retry_after_secs }
            | AppError::RateLimited { retry_after_secs } => {
                (ErrorCode::RateLimited, Some(retry_after_secs * 1000))
            }
            AppError::Unavailable => (ErrorCode::Unavailable, None),
            _ => (ErrorCode::Internal, None),
        };
        self.emit(ServerMsg::Error {
            code,
            message: error.to_string(),
            nonce,
            retry_after_ms,
        });
    }

    pub(super) async fn handle(&mut self, inbound: Inbound) {
        let command = match inbound {
            Ok(command) => command,
            Err(FrameError::TooLarge { .. }) => {
                self.control.close(CloseReason::FrameTooLarge);
                return;
            }
            Err(detail) => {
                let error =
                    AppError::invalid("frame", format!("That frame could not be read: {detail}"));
                return self.emit_error(&error, None);
            }
        };
        let budgeted = matches!(
            command,
            ClientMsg::Send { .. }
                | ClientMsg::Edit { .. }
                | ClientMsg::Delete { .. }
                | ClientMsg::React { .. }
        );
        if !budgeted {
            if let Err(wait) = self.commands.take(Instant::now()) {
                let retry_after_secs = wait.as_secs().max(1);
                return self.refuse(&AppError::TooManyAttempts { retry_after_secs });
            }
        }
        match command {
            ClientMsg::Hello { cursors, batches } => {
                self.batches = batches;
                self.hello(cursors).await
            }
            ClientMsg::Send {
                room,
                nonce,
                body,
                thread,
                also_in_room,
                files,
                alts,
            } => self.send(Outgoing {
                room,
                nonce,
                body,
                thread: thread.map(|root| (root, also_in_room)),
                files,
                alts,
            }),
            ClientMsg::Edit { id, body } => {
                if let Err(e) = messages::edit(&self.state, &self.me, id, &body).await {
                    self.emit_error(&e, None);
                }
            }
            ClientMsg::Delete { id } => {
                if let Err(e) = messages::delete(&self.state, &self.me, id).await {
                    self.emit_error(&e, None);
                }
            }
            ClientMsg::React { id, emoji, on } => {
                if let Err(e) = messages::react(&self.state, &self.me, id, &emoji, on).await {
                    self.emit_error(&e, None);
                }
            }
            ClientMsg::Typing { room, active } => self.typing(room, active),
            ClientMsg::Read { room, seq } => {
                if let Err(e) = rooms::mark_read(&self.state, self.me.id, room, seq).await {
                    self.emit_error(&e, None);
                }
            }
            ClientMsg::Away { away } => self.away(away),
            ClientMsg::Watch { room, users } => self.watch(room, users).await,
            ClientMsg::Ping => self.emit(ServerMsg::Pong),
        }
    }

    /// Starts storing a message; its ack goes out when it is stored (`sent`), while the connection
    /// goes on with other commands and events.
    fn send(&mut self, send: Outgoing) {
        let (state, me) = (self.state.clone(), self.me.clone());
        let storing: Sending = Box::pin(async move {
            let Outgoing {
                room,
                nonce,
                body,
                thread,
                files,
                alts,
            } = send;
            let text = (nonce.as_str(), body.as_str());
            let attached = (files.as_slice(), alts.as_slice());
            let result = match thread {
                Some(thread) => {
                    threads::send_reply(&state, &me, room, text, thread, attached).await
                }
                None => messages::send(&state, &me, room, text, None, attached).await,
            };
            Sent { nonce, result }
        });
        debug_assert!(self.sending.is_none(), "one send at a time");
        self.sending = Some(storing);
    }

    /// Answers a send that is done: its ack, or why it failed.
    pub(super) fn sent(&mut self, Sent { nonce, result }: Sent) {
        match result {
            Ok(appended) => self.emit(ServerMsg::Ack {
                nonce,
                room: appended.message.room_id,
                id: appended.message.id,
                seq: appended.message.seq,
            }),
            Err(e) => self.emit_error(&e, Some(nonce)),
        }
    }

    /// Refuses a command with an error frame; a connection that keeps flooding after being refused
    /// is closed.
    fn refuse(&mut self, error: &AppError) {
        self.emit_error(error, None);
        if self.strikes.strike(Instant::now()) {
            tracing::warn!(user = %self.me.id, "a connection kept flooding after being refused; closed");
            self.control.close(CloseReason::Flooding);
        }
    }

    /// Follows the presence of `users`, members of `room` (which the connection follows): those
    /// who are not members are left out. Answered with their presence now.
    async fn watch(&mut self, room: RoomId, users: Vec<UserId>) {
        if users.len() > MAX_WATCH {
            let error =
                AppError::invalid("users", format!("At most {MAX_WATCH} people per watch."));
            return self.emit_error(&error, None);
        }
        if !self.rooms.contains(&room) {
            return self.emit_error(&AppError::Forbidden, None);
        }
        let members = match self.state.store.members_among(room, &users).await {
            Ok(members) => members,
            Err(e) => return self.emit_error(&e.into(), None),
        };
        let now = self.state.hub.watch_presence(self.id, members);
        for chunk in now.chunks(crate::chat::hub::CHANGES_PER_FRAME) {
            let changes: Vec<PresenceChange> = chunk.to_vec();
            self.emit(ServerMsg::Presence { changes });
        }
    }

    fn typing(&mut self, room: RoomId, active: bool) {
        if !self.rooms.contains(&room) {
            return self.emit_error(&AppError::Forbidden, None);
        }
        if let Err(error) = self.state.limits.typing(self.me.id) {
            return self.refuse(&error);
        }
        let now = Instant::now();
        let latest = self.typing.entry(room).or_default();
        if let Some(active) = latest.offer(active, now, TOGGLE_GAP, TYPING_REFRESH) {
            self.publish_typing(room, active);
        }
        if self
            .typing
            .get(&room)
            .is_some_and(|t| t.published() == Some(false) && t.due(TOGGLE_GAP).is_none())
        {
            self.typing.remove(&room);
        }
    }

    pub(super) fn publish_typing(&self, room: RoomId, active: bool) {
        self.state.hub.publish_room(
            room,
            ServerMsg::Typing {
                room,
                user: self.me.id,
                name: self.me.display_name.as_str().to_owned(),
                active,
            },
        );
    }

    fn away(&mut self, away: bool) {
        if let Err(error) = self.state.limits.presence(self.me.id) {
            return self.refuse(&error);
        }
        let now = Instant::now();
        if let Some(away) = self.away.offer(away, now, AWAY_GAP, Duration::MAX) {
            self.state.hub.set_away(self.id, away);
        }
    }

    pub(super) fn toggle_waiting(&self) -> bool {
        self.away.due(AWAY_GAP).is_some()
            || self.typing.values().any(|t| t.due(TOGGLE_GAP).is_some())
    }

    pub(super) fn next_toggle_due(&self) -> Instant {
        self.typing
            .values()
            .filter_map(|t| t.due(TOGGLE_GAP))
            .chain(self.away.due(AWAY_GAP))
            .min()
            .unwrap_or_else(Instant::now)
    }

    /// Publishes the typing and away changes whose wait is over.
    pub(super) fn flush_toggles(&mut self) {
        let now = Instant::now();
        let due: Vec<(RoomId, bool)> = self
            .typing
            .iter_mut()
            .filter_map(|(room, t)| t.flush(now, TOGGLE_GAP).map(|active| (*room, active)))
            .collect();
        for (room, active) in due {
            self.publish_typing(room, active);
        }
        self.typing
            .retain(|_, t| t.published() == Some(true) || t.due(TOGGLE_GAP).is_some());
        if let Some(away) = self.away.flush(now, AWAY_GAP) {
            self.state.hub.set_away(self.id, away);
        }
    }
}
