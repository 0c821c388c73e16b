//! One websocket connection, served by one task: it takes the hub's events from its inbox (each
//! change exactly once, in revision order per room, gaps filled from the store: `delivery`), answers
//! the client's commands (`commands`; while a send is stored, what is already queued is written),
//! and writes what its turns produce, a burst with one flush (`output`). It reads the client's frames
//! itself: while a command waits for the store, the next ones wait in the transport (the kernel's
//! socket buffer), which costs an idle connection nothing, where a reader task and a queue of its
//! own cost ~1 KiB each. It persists and publishes nothing itself: `messages` and `rooms` do.

mod commands;
mod delivery;
mod ordering;
mod output;
mod pacing;

use delivery::Cursor;
pub use ordering::{classify, Held, Next};
use output::{written, Output};
use pacing::{Bucket, Latest, Strikes};

use super::hub::{Broadcast, ConnId, Control, Registration};
use crate::auth::sessions::{self, Authenticated};
use crate::error::AppError;
use crate::model::{RoomId, SessionId, Timestamp};
use crate::protocol::{ClientMsg, CloseReason, FrameError, ServerMsg, HEARTBEAT_SECS};
use crate::state::AppState;
use crate::store::UserRecord;
use axum::body::Bytes;
use futures::{FutureExt, Sink, Stream, StreamExt};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the session and account are re-read from the store while commands arrive.
const AUTH_RECHECK: Duration = Duration::from_secs(1);
/// How often a connection re-reads its session even when nothing arrives: a revocation notice from
/// the hub closes it at once, and this catches one that went missing.
const SESSION_RECHECK: Duration = Duration::from_secs(60);
/// Changes held behind one gap before waiting stops and the store is asked.
const MAX_HELD: usize = 1024;
/// A typing or away change reaches others at most this often per connection (the last one waits).
const TOGGLE_GAP: Duration = Duration::from_millis(500);
const AWAY_GAP: Duration = Duration::from_secs(2);
/// "Still typing" is repeated at most this often (the other side lets it expire after 5 s).
const TYPING_REFRESH: Duration = Duration::from_secs(3);
/// Commands other than sending, editing and deleting (those have the person's message budget): a
/// burst, and a steady rate, per connection.
const COMMAND_BURST: u32 = 200;
const COMMANDS_PER_SEC: u32 = 50;
/// A burst taken from the inbox keeps its allocation while the connection is busy; an idle one keeps
/// at most this many slots.
const IDLE_SLOTS: usize = 32;

/// A frame from the client: a command, or why it could not be read.
type Inbound = Result<ClientMsg, FrameError>;

/// A send being stored, with what its answer needs.
type Sending = std::pin::Pin<Box<dyn std::future::Future<Output = commands::Sent> + Send>>;

/// How a connection ended: its input and output (for the caller's goodbye) and why the server ended it
/// (`None`: the client left, or the socket broke).
pub struct Ended<S, W> {
    /// `None` if the client ended it. Otherwise still to be read to its end while saying goodbye: a
    /// socket closed with unread data in it is reset, and a reset makes the client drop what it has
    /// not read yet, such as the `Closing` notice that says why.
    pub input: Option<S>,
    /// `None` if a write was still under way when it ended.
    pub output: Option<W>,
    pub reason: Option<CloseReason>,
    /// The output broke or stopped taking frames: no goodbye can get through.
    pub broken: bool,
}

/// Serves a connection for an authenticated user until it ends: decoded client frames come from
/// `input`, and complete frames (item or batch, as `protocol` encodes them) go to `output`. `Err` if
/// it could not start (the store could not list the user's rooms).
///
/// Not an `async fn`: an async fn keeps its arguments in its future for as long as it runs (twice,
/// rustc#62958), and this one runs as long as the connection. Its arguments wait in one box instead,
/// which is freed once they are moved into the connection.
pub fn serve<S, W>(
    state: AppState,
    me: Authenticated,
    input: S,
    output: W,
) -> impl Future<Output = Result<Ended<S, W>, (AppError, W)>> + Send
where
    S: Stream<Item = Inbound> + Send + Unpin + 'static,
    W: Sink<Bytes> + Unpin + Send + 'static,
{
    let start = Box::new((state, me, input, output));
    async move {
        // Only the box is kept while the store answers.
        let rooms = start.0.store.rooms_of_user(start.1.user.id).await;
        let (state, me, input, output) = *start;
        let rooms: Vec<RoomId> = match rooms {
            Ok(rooms) => rooms.into_iter().map(|r| r.id).collect(),
            Err(e) => return Err((e.into(), output)),
        };
        let registration = state.hub.register(me.user.id, me.session.id, &rooms);
        let connection = Connection::start(state, me, &registration, rooms, output);
        Ok(connection.run(registration, input).await)
    }
}

impl<W> Connection<W>
where
    W: Sink<Bytes> + Unpin + Send + 'static,
{
    /// A connection of `me` to the hub, following `rooms`; on the heap, since it lives as long as the
    /// connection does.
    fn start(
        state: AppState,
        me: Authenticated,
        registration: &Registration,
        rooms: Vec<RoomId>,
        output: W,
    ) -> Box<Self> {
        Box::new(Connection {
            state,
            me: Arc::new(me.user),
            session: me.session.id,
            session_expires: me.session.expires_at,
            expiry_near: false,
            id: registration.id,
            output: Output::new(output),
            pending: Vec::new(),
            batches: false,
            broken: false,
            control: registration.control.clone(),
            rooms: rooms.into_iter().collect(),
            cursors: HashMap::new(),
            held: HashMap::new(),
            synced: false,
            heard: Instant::now(),
            last_auth: Instant::now(),
            typing: HashMap::new(),
            away: Latest::default(),
            commands: Bucket::new(COMMAND_BURST, COMMANDS_PER_SEC, Instant::now()),
            strikes: Strikes::new(Instant::now()),
            sending: None,
        })
    }
}

struct Connection<W> {
    state: AppState,
    me: Arc<UserRecord>,
    session: SessionId,
    /// When the session runs out unless renewed; the connection ends with it.
    session_expires: Timestamp,
    /// The expiry falls before the next heartbeat: wait for it precisely.
    expiry_near: bool,
    id: ConnId,
    /// Where frames go, and what waits to be written there.
    output: Output<W>,
    pending: Vec<Arc<Broadcast>>,
    /// The client reads batch frames (it said so in its `Hello`).
    batches: bool,
    /// The output broke: nothing more gets through.
    broken: bool,
    control: Arc<Control>,
    /// Rooms this connection may see, kept in step with the hub.
    rooms: HashSet<RoomId>,
    /// Per room, the newest message and latest revision delivered (set by `Hello`).
    cursors: HashMap<RoomId, Cursor>,
    /// Per room, changes waiting for a missing earlier one (with their message's sequence).
    held: HashMap<RoomId, Held<(u64, Arc<Broadcast>)>>,
    synced: bool,
    /// When the client last sent a frame, or one of its frames was answered (a client waiting for the
    /// answers to a long queue of its commands is not silent either).
    heard: Instant,
    last_auth: Instant,
    /// Per room, what others were told about this connection typing.
    typing: HashMap<RoomId, Latest<bool>>,
    /// What the hub was told about this connection being away.
    away: Latest<bool>,
    commands: Bucket,
    strikes: Strikes,
    /// The send being stored, answered when it is done. One at a time: a person's messages are
    /// stored in the order they were sent (the store's writes of several would race); the next
    /// commands wait meanwhile.
    sending: Option<Sending>,
}

impl<W> Connection<W>
where
    W: Sink<Bytes> + Unpin + Send + 'static,
{
    async fn run<S>(mut self: Box<Self>, registration: Registration, mut input: S) -> Ended<S, W>
    where
        S: Stream<Item = Inbound> + Unpin,
    {
        self.emit(ServerMsg::Welcome {
            user: self.me.id,
            heartbeat_secs: HEARTBEAT_SECS,
        });
        let mut heartbeat = tokio::time::interval(Duration::from_secs(HEARTBEAT_SECS));
        let control = self.control.clone();
        let inbox = registration.inbox.clone();
        let mut burst = VecDeque::new();
        let mut client_left = false;
        loop {
            // What the last turn produced goes out, in one flush, while this task goes on.
            self.start_write();
            if burst.capacity() > IDLE_SLOTS {
                burst = VecDeque::new();
            }
            let (gap_due, gaps) = (self.next_gap_deadline(), !self.held.is_empty());
            let (toggle_due, toggles) = (self.next_toggle_due(), self.toggle_waiting());
            let (expiry, expiry_near) = (self.until_expiry(), self.expiry_near);
            tokio::select! {
                biased;
                _ = control.closed() => break,
                done = written(&mut self.output) => {
                    if !self.write_done(done) {
                        break;
                    }
                }
                sent = sending(&mut self.sending), if self.sending.is_some() => self.sent(sent),
                // Events wait while a send is being stored: the sender's own copy of the message
                // (published before the send is done: a reply still updates its thread) comes after
                // the ack. They are taken before the next command.
                ready = inbox.ready(), if self.synced && self.sending.is_none() => {
                    if !ready {
                        break;
                    }
                    // The tasks about to queue more for this client are often runnable already: let
                    // them run first, so this turn (and its one flush) carries their events too.
                    tokio::task::yield_now().await;
                    self.answer_finished_sends();
                    inbox.take_all(&mut burst);
                    while let Some(event) = burst.pop_front() {
                        self.forward(&event).await;
                    }
                },
                inbound = input.next(), if self.sending.is_none() => match inbound {
                    Some(inbound) => {
                        let authorized = self.last_auth.elapsed() < AUTH_RECHECK
                            || Box::pin(self.still_authorized()).await;
                        if authorized {
                            // Boxed: commands await the store, and their state kept inline would make
                            // every idle connection's task that much bigger.
                            Box::pin(self.handle(inbound)).await;
                        }
                        // Heard from and answered: not silent, however long the answer took.
                        self.heard = Instant::now();
                    }
                    None => {
                        client_left = true;
                        break;
                    }
                },
                _ = tokio::time::sleep_until(gap_due.into()), if gaps => {
                    Box::pin(self.fill_overdue_gaps()).await;
                }
                _ = tokio::time::sleep_until(toggle_due.into()), if toggles => {
                    self.flush_toggles();
                }
                _ = tokio::time::sleep(expiry), if expiry_near => {
                    // Renewed meanwhile (the new expiry is read back), or over.
                    Box::pin(self.still_authorized()).await;
                }
                _ = heartbeat.tick() => {
                    if self.last_auth.elapsed() >= SESSION_RECHECK {
                        Box::pin(self.still_authorized()).await;
                    }
                    self.expiry_near = self.until_expiry() <= Duration::from_secs(HEARTBEAT_SECS);
                    let silence = self.state.hub.silence();
                    if self.output.stuck_for() > silence {
                        // The client stopped reading (and the transport reads nothing meanwhile).
                        self.control.close(CloseReason::TooSlow);
                    } else if self.heard.elapsed() > silence {
                        self.control.close(CloseReason::Silent);
                    }
                }
            }
            self.answer_finished_sends();
        }
        self.stop_typing();
        // Dropping the registration leaves the hub (and may announce the user offline).
        drop(registration);
        // What was written is taken before the goodbye (a closing client gets `linger` for it).
        let reason = self.control.reason();
        if reason.is_some() && !self.broken {
            self.pending.clear();
            self.flush_now().await;
        }
        let broken = self.broken;
        Ended {
            reason,
            broken,
            input: (!client_left).then_some(input),
            output: self.output.into_sink(),
        }
    }

    /// Answers the send under way if it is done by now, without waiting for it.
    fn answer_finished_sends(&mut self) {
        if let Some(sent) = sending(&mut self.sending).now_or_never() {
            self.sent(sent);
        }
    }

    /// Whoever saw this connection typing sees it stop.
    fn stop_typing(&mut self) {
        let typing = std::mem::take(&mut self.typing);
        for room in typing
            .into_iter()
            .filter(|(_, t)| t.published() == Some(true))
            .map(|(room, _)| room)
        {
            self.publish_typing(room, false);
        }
    }

    /// Time left until the session expires (zero once it has).
    fn until_expiry(&self) -> Duration {
        let left = self.session_expires.millis() - Timestamp::now().millis();
        Duration::from_millis(u64::try_from(left).unwrap_or(0))
    }

    /// Queues a frame for the client.
    fn emit(&mut self, msg: ServerMsg) {
        self.emit_event(Broadcast::new(msg));
    }

    /// Re-reads the session and the account (the caller does so at most once a second): a revoked
    /// session or a disabled account ends the connection even if the hub's notice was missed.
    async fn still_authorized(&mut self) -> bool {
        self.last_auth = Instant::now();
        match sessions::live_by_id(&self.state, self.session, self.me.id).await {
            Ok(me) => {
                self.session_expires = me.session.expires_at;
                self.expiry_near = self.until_expiry() <= Duration::from_secs(HEARTBEAT_SECS);
                if *self.me != me.user {
                    self.me = Arc::new(me.user);
                }
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

/// Completes when the send under way is stored (never, if none is), and clears it.
fn sending(slot: &mut Option<Sending>) -> impl std::future::Future<Output = commands::Sent> + '_ {
    std::future::poll_fn(move |cx| {
        let Some(storing) = slot.as_mut() else {
            return std::task::Poll::Pending;
        };
        let sent = std::task::ready!(storing.as_mut().poll(cx));
        *slot = None;
        std::task::Poll::Ready(sent)
    })
}

#[cfg(test)]
mod tests;
