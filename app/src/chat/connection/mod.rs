//! One websocket connection: reads commands without ever blocking on storage (so the transport never
//! has to drop frames), translates each into a call of the chat rules and its result into frames, in
//! order, and forwards room events (`delivery`: each change exactly once, in revision order per room,
//! gaps filled from the store). It persists and publishes nothing itself: `messages` and `rooms` do.

mod delivery;
mod heard;
mod ordering;
mod pacing;

use delivery::Cursor;
use heard::Heard;
pub use ordering::{classify, Held, Next};
use pacing::{Bucket, Latest, Strikes};

use super::hub::{Broadcast, ConnId, Control, Registration};
use super::{messages, rooms, threads};
use crate::auth::sessions::{self, Authenticated};
use crate::error::AppError;
use crate::model::{FileId, MessageId, RoomId, SessionId, Timestamp};
use crate::protocol::{ClientMsg, CloseReason, ErrorCode, FrameError, ServerMsg, HEARTBEAT_SECS};
use crate::state::AppState;
use crate::store::UserRecord;
use futures::{Stream, StreamExt};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Commands read but not yet answered. A client that runs this far ahead is closed (it re-sends unacked
/// commands after reconnecting; nonces keep them single).
pub const COMMAND_QUEUE: usize = 8192;
/// How often the session and account are re-read from the store while commands arrive.
const AUTH_RECHECK: Duration = Duration::from_secs(1);
/// How often a connection re-reads its session even when nothing arrives: a revocation notice from
/// the hub closes it at once, and this catches one that went missing.
const SESSION_RECHECK: Duration = Duration::from_secs(60);
/// Changes held behind one gap before waiting stops and the store is asked.
const MAX_HELD: usize = 1024;
/// Hub events forwarded in one go before the connection looks at its commands again.
const INBOX_BURST: usize = 256;
/// A typing or away change reaches others at most this often per connection (the last one waits).
const TOGGLE_GAP: Duration = Duration::from_millis(500);
const AWAY_GAP: Duration = Duration::from_secs(2);
/// "Still typing" is repeated at most this often (the other side lets it expire after 5 s).
const TYPING_REFRESH: Duration = Duration::from_secs(3);
/// Commands other than sending, editing and deleting (those have the person's message budget): a
/// burst, and a steady rate, per connection.
const COMMAND_BURST: u32 = 200;
const COMMANDS_PER_SEC: u32 = 50;

/// Queued boxed (`Box<Inbound>`): a queue's first slots are allocated up front for every connection, so
/// they are kept pointer-sized.
enum Inbound {
    Command(ClientMsg),
    Malformed(FrameError),
}

/// A connection being served: the events to write to the client (each encoded once, however many
/// clients get it), and its control (closed with a reason when the server ends it).
pub struct Outgoing {
    pub frames: mpsc::Receiver<Arc<Broadcast>>,
    pub control: Arc<Control>,
}

/// Starts serving a connection for an authenticated user, reading decoded client frames from `input`.
pub async fn open<S>(state: AppState, me: Authenticated, input: S) -> Result<Outgoing, AppError>
where
    S: Stream<Item = Result<ClientMsg, FrameError>> + Send + Unpin + 'static,
{
    let rooms: Vec<RoomId> = state
        .store
        .rooms_of_user(me.user.id)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let registration = state.hub.register(me.user.id, me.session.id, &rooms);
    let control = registration.control.clone();
    let (out, frames) = mpsc::channel(state.hub.queue());
    let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let heard = Arc::new(Heard::new());
    tokio::spawn(read_commands(
        input,
        commands,
        control.clone(),
        heard.clone(),
    ));
    let connection = Connection {
        state,
        me: me.user,
        session: me.session.id,
        session_expires: me.session.expires_at,
        expiry_near: false,
        id: registration.id,
        out,
        control: control.clone(),
        rooms: rooms.into_iter().collect(),
        cursors: HashMap::new(),
        held: HashMap::new(),
        synced: false,
        heard,
        last_auth: Instant::now(),
        typing: HashMap::new(),
        away: Latest::default(),
        commands: Bucket::new(COMMAND_BURST, COMMANDS_PER_SEC, Instant::now()),
        strikes: Strikes::new(Instant::now()),
    };
    tokio::spawn(connection.run(registration, commands_rx));
    Ok(Outgoing { frames, control })
}

/// Reads frames as fast as they come and queues them; never waits on anything else.
async fn read_commands<S>(
    mut input: S,
    commands: mpsc::Sender<Box<Inbound>>,
    control: Arc<Control>,
    heard: Arc<Heard>,
) where
    S: Stream<Item = Result<ClientMsg, FrameError>> + Unpin,
{
    while let Some(frame) = input.next().await {
        heard.now();
        let inbound = Box::new(match frame {
            Ok(command) => Inbound::Command(command),
            Err(error) => Inbound::Malformed(error),
        });
        match commands.try_send(inbound) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                control.close(CloseReason::TooManyPending);
                break;
            }
            // The connection has ended.
            Err(mpsc::error::TrySendError::Closed(_)) => break,
        }
    }
    drop(commands);
    // Keep reading (and ignoring) until the transport ends the input: a socket closed with unread data
    // in it is reset, and a reset makes the client drop what it has not read yet, such as the
    // `Closing` notice that says why.
    while input.next().await.is_some() {}
}

struct Connection {
    state: AppState,
    me: UserRecord,
    session: SessionId,
    /// When the session runs out unless renewed; the connection ends with it.
    session_expires: Timestamp,
    /// The expiry falls before the next heartbeat: wait for it precisely.
    expiry_near: bool,
    id: ConnId,
    /// Events for the client's writer.
    out: mpsc::Sender<Arc<Broadcast>>,
    control: Arc<Control>,
    /// Rooms this connection may see, kept in step with the hub.
    rooms: HashSet<RoomId>,
    /// Per room, the newest message and latest revision delivered (set by `Hello`).
    cursors: HashMap<RoomId, Cursor>,
    /// Per room, changes waiting for a missing earlier one (with their message's sequence).
    held: HashMap<RoomId, Held<(u64, Arc<Broadcast>)>>,
    synced: bool,
    /// When the client last sent a frame (as it arrives, however long its turn in the queue takes).
    heard: Arc<Heard>,
    last_auth: Instant,
    /// Per room, what others were told about this connection typing.
    typing: HashMap<RoomId, Latest<bool>>,
    /// What the hub was told about this connection being away.
    away: Latest<bool>,
    commands: Bucket,
    strikes: Strikes,
}

impl Connection {
    async fn run(
        mut self,
        mut registration: Registration,
        mut commands: mpsc::Receiver<Box<Inbound>>,
    ) {
        self.emit(ServerMsg::Welcome {
            user: self.me.id,
            heartbeat_secs: HEARTBEAT_SECS,
        });
        let mut heartbeat = tokio::time::interval(Duration::from_secs(HEARTBEAT_SECS));
        let control = self.control.clone();
        loop {
            tokio::select! {
                biased;
                _ = control.closed() => break,
                // Events first: forwarding is quick, and a flood of commands must not starve the inbox.
                event = registration.inbox.recv(), if self.synced => match event {
                    Some(event) => {
                        self.forward(&event).await;
                        // Take whatever else is already waiting before yielding: fewer wake-ups under load.
                        for _ in 0..INBOX_BURST {
                            match registration.inbox.try_recv() {
                                Ok(event) => self.forward(&event).await,
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
                inbound = commands.recv() => match inbound {
                    Some(inbound) => {
                        // Whatever the client sent is still being answered: not silent yet.
                        self.heard.now();
                        let authorized = self.last_auth.elapsed() < AUTH_RECHECK
                            || Box::pin(self.still_authorized()).await;
                        if authorized {
                            // Boxed: commands await the store, and their state kept inline would make
                            // every idle connection's task that much bigger.
                            Box::pin(self.handle(inbound)).await;
                        }
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(self.next_gap_deadline().into()), if !self.held.is_empty() => {
                    Box::pin(self.fill_overdue_gaps()).await;
                }
                _ = tokio::time::sleep_until(self.next_toggle_due().into()), if self.toggle_waiting() => {
                    self.flush_toggles();
                }
                _ = tokio::time::sleep(self.until_expiry()), if self.expiry_near => {
                    // Renewed meanwhile (the new expiry is read back), or over.
                    Box::pin(self.still_authorized()).await;
                }
                _ = heartbeat.tick() => {
                    if self.last_auth.elapsed() >= SESSION_RECHECK {
                        Box::pin(self.still_authorized()).await;
                    }
                    self.expiry_near = self.until_expiry() <= Duration::from_secs(HEARTBEAT_SECS);
                    if self.heard.elapsed() > self.state.hub.silence() {
                        // The transport reads nothing from a client while a write to it is stuck, so a
                        // client that stopped reading also looks silent: say which it is.
                        let backed_up = self.out.capacity() < self.out.max_capacity();
                        self.control.close(if backed_up {
                            CloseReason::TooSlow
                        } else {
                            CloseReason::Silent
                        });
                    }
                }
            }
        }
        // Whoever saw this connection typing sees it stop.
        let typing = std::mem::take(&mut self.typing);
        for room in typing
            .into_iter()
            .filter(|(_, t)| t.published() == Some(true))
            .map(|(room, _)| room)
        {
            self.state.hub.publish_room(
                room,
                ServerMsg::Typing {
                    room,
                    user: self.me.id,
                    name: self.me.display_name.as_str().to_owned(),
                    active: false,
                },
            );
        }
        // Dropping the registration leaves the hub (and may announce the user offline).
        drop(registration);
    }

    /// Time left until the session expires (zero once it has).
    fn until_expiry(&self) -> Duration {
        let left = self.session_expires.millis() - Timestamp::now().millis();
        Duration::from_millis(u64::try_from(left).unwrap_or(0))
    }

    /// Queues a frame for the client; a client too slow to take it is closed.
    fn emit(&self, msg: ServerMsg) {
        self.emit_event(Broadcast::new(msg));
    }

    fn emit_event(&self, event: Arc<Broadcast>) {
        if self.out.try_send(event).is_err() {
            self.control.close(CloseReason::TooSlow);
        }
    }

    fn emit_error(&self, error: &AppError, nonce: Option<String>) {
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

    /// Re-reads the session and the account (the caller does so at most once a second): a revoked
    /// session or a disabled account ends the connection even if the hub's notice was missed.
    async fn still_authorized(&mut self) -> bool {
        self.last_auth = Instant::now();
        match sessions::live_by_id(&self.state, self.session, self.me.id).await {
            Ok(me) => {
                self.session_expires = me.session.expires_at;
                self.expiry_near = self.until_expiry() <= Duration::from_secs(HEARTBEAT_SECS);
                self.me = me.user;
                true
            }
            Err(AppError::AccountDisabled) => {
                self.control.close(CloseReason::Disabled);
                false
            }
            Err(AppError::Unauthenticated) => {
                self.control.close(CloseReason::SignedOut);
                false
            }
            // A store hiccup is not a sign-out; the next heartbeat checks again.
            Err(_) => {
                self.expiry_near = false;
                true
            }
        }
    }

    async fn handle(&mut self, inbound: Box<Inbound>) {
        let command = match *inbound {
            Inbound::Command(command) => command,
            Inbound::Malformed(FrameError::TooLarge { .. }) => {
                self.control.close(CloseReason::FrameTooLarge);
                return;
            }
            Inbound::Malformed(detail) => {
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
                if batches {
                    self.control.allow_batches();
                }
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
            } => {
                let thread = thread.map(|root| (root, also_in_room));
                self.send(room, (nonce, body), thread, (files, alts)).await
            }
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
            ClientMsg::Ping => self.emit(ServerMsg::Pong),
        }
    }

    /// The ack goes out before the sender's own copy of the message: that copy waits in this
    /// connection's inbox, which is read only after this command is answered.
    async fn send(
        &mut self,
        room: RoomId,
        (nonce, body): (String, String),
        thread: Option<(MessageId, bool)>,
        (files, alts): (Vec<FileId>, Vec<String>),
    ) {
        let text = (nonce.as_str(), body.as_str());
        let (state, me) = (&self.state, &self.me);
        let attached = (files.as_slice(), alts.as_slice());
        let sent = match thread {
            Some(thread) => threads::send_reply(state, me, room, text, thread, attached).await,
            None => messages::send(state, me, room, text, None, attached).await,
        };
        match sent {
            Ok(appended) => self.emit(ServerMsg::Ack {
                nonce,
                room,
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

    fn publish_typing(&self, room: RoomId, active: bool) {
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

    fn toggle_waiting(&self) -> bool {
        self.away.due(AWAY_GAP).is_some()
            || self.typing.values().any(|t| t.due(TOGGLE_GAP).is_some())
    }

    fn next_toggle_due(&self) -> Instant {
        self.typing
            .values()
            .filter_map(|t| t.due(TOGGLE_GAP))
            .chain(self.away.due(AWAY_GAP))
            .min()
            .unwrap_or_else(Instant::now)
    }

    /// Publishes the typing and away changes whose wait is over.
    fn flush_toggles(&mut self) {
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

    /// Passes a hub event on: content changes exactly once and in order (`deliver_change`), the rest
    /// as they come.
    async fn forward(&mut self, event: &Arc<Broadcast>) {
        let msg: &ServerMsg = event;
        match msg {
            ServerMsg::Message { message } | ServerMsg::Updated { message } => {
                let (room, rev, seq) = (message.room, message.rev, message.seq);
                self.deliver_change(event, room, rev, seq).await;
            }
            ServerMsg::RoomAdded { room } => self.follow(event, *room).await,
            ServerMsg::RoomRemoved { room } => {
                self.rooms.remove(room);
                self.cursors.remove(room);
                self.held.remove(room);
                self.emit_event(event.clone());
            }
            ServerMsg::Typing { user, .. } if *user == self.me.id => {}
            _ => self.emit_event(event.clone()),
        }
    }
}

#[cfg(test)]
mod tests;
