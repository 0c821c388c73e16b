//! Cross-instance fan-out over MongoDB, for several server instances on one database.
//!
//! Every hub event goes into the `hub_events` collection (one small document, batched inserts), and
//! every instance follows that collection with a change stream, applying the other instances' events
//! to its own connections. The collection has a TTL index: events are transient (typing, presence,
//! live copies of messages whose durable copy is in `messages`), never history.
//!
//! The stream's resume token is kept, so a stream that breaks (network, failover) continues exactly
//! after the last event applied. If the server no longer has that point, this instance cannot know
//! what it missed: it closes its connections with `Resync`, and clients resume from their cursors.
//! While the stream is down, `/readyz` says 503 so a balancer sends clients elsewhere.

use super::hub::{Hub, HubEvent, Relay};
use crate::store::{StoreError, StoreResult};
use futures::StreamExt;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::change_stream::event::ResumeToken;
use mongodb::error::{Error as MongoError, ErrorKind};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

pub const EVENTS: &str = "hub_events";
/// Events older than this are removed by MongoDB. Resuming works within this window.
const EVENT_TTL_SECS: i64 = 600;
/// How often an instance says it is alive, and how long the others wait before forgetting it.
pub const ALIVE_EVERY: Duration = Duration::from_secs(3);
pub const DEAD_AFTER: Duration = Duration::from_secs(15);
/// Events waiting to be written. Beyond this (the database is down for long), new events are dropped:
/// live copies of messages are recovered by the clients' gap filling, typing and presence are transient.
const OUTBOX: usize = 100_000;
/// Most events per insert.
const BATCH: usize = 512;
/// MongoDB error codes meaning the resume point is gone (history lost, or the stream is unusable).
const HISTORY_LOST: [i32; 3] = [136, 280, 286];

/// What `/readyz` and the metrics need to know about the relay.
#[derive(Default)]
pub struct RelayStatus {
    streaming: AtomicBool,
    dropped: AtomicU64,
    resumed: AtomicU64,
}

impl RelayStatus {
    /// Whether this instance currently receives the other instances' events.
    pub fn is_streaming(&self) -> bool {
        self.streaming.load(Ordering::Relaxed)
    }

    /// How many times the stream broke and was resumed.
    pub fn resumed(&self) -> u64 {
        self.resumed.load(Ordering::Relaxed)
    }
}

struct MongoRelay {
    outbox: mpsc::Sender<HubEvent>,
    status: Arc<RelayStatus>,
}

impl Relay for MongoRelay {
    fn relay(&self, event: HubEvent) {
        if self.outbox.try_send(event).is_err() {
            let dropped = self.status.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "relay outbox full: dropping hub events");
            }
        }
    }
}

fn unavailable(context: &str, error: &MongoError) -> StoreError {
    StoreError::Unavailable(format!("{context}: {error}"))
}

/// Connects the hub to the other instances on this database. Returns once the change stream is open,
/// so nothing published after start-up is missed.
pub async fn start(uri: &str, database: &str, hub: &Arc<Hub>) -> StoreResult<Arc<RelayStatus>> {
    let mut options = ClientOptions::parse(uri)
        .await
        .map_err(|e| unavailable("relay: MongoDB URI", &e))?;
    options.app_name = Some("ml-chat-relay".into());
    options.server_selection_timeout = Some(Duration::from_secs(5));
    let client = Client::with_options(options).map_err(|e| unavailable("relay: client", &e))?;
    let events: Collection<Document> = client.database(database).collection(EVENTS);
    let ttl = IndexModel::builder()
        .keys(doc! { "at": 1 })
        .options(
            IndexOptions::builder()
                .name("events_ttl".to_owned())
                .expire_after(Duration::from_secs(EVENT_TTL_SECS as u64))
                .build(),
        )
        .build();
    events
        .create_index(ttl)
        .await
        .map_err(|e| unavailable("relay: events index", &e))?;

    let origin = uuid::Uuid::now_v7().to_string();
    let status = Arc::new(RelayStatus::default());
    let stream = open_stream(&events, &origin, None)
        .await
        .map_err(|e| unavailable("relay: change stream", &e))?;
    status.streaming.store(true, Ordering::Relaxed);

    let (outbox, rx) = mpsc::channel(OUTBOX);
    hub.set_relay(Arc::new(MongoRelay {
        outbox,
        status: status.clone(),
    }));
    tokio::spawn(write_events(rx, events.clone(), origin.clone()));
    tokio::spawn(follow_events(
        stream,
        events,
        origin.clone(),
        Arc::downgrade(hub),
        status.clone(),
    ));
    tokio::spawn(keep_alive(Arc::downgrade(hub)));
    // Learn who is online on the instances already running.
    hub.repeat_presence();
    hub.say_hello();
    tracing::info!(%origin, "relay to other instances ready (MongoDB change stream)");
    Ok(status)
}

type EventStream = mongodb::change_stream::ChangeStream<
    mongodb::change_stream::event::ChangeStreamEvent<Document>,
>;

async fn open_stream(
    events: &Collection<Document>,
    origin: &str,
    resume: Option<ResumeToken>,
) -> Result<EventStream, MongoError> {
    events
        .watch()
        .pipeline([doc! { "$match": {
            "operationType": "insert",
            "fullDocument.origin": { "$ne": origin },
        } }])
        .resume_after(resume)
        .await
}

/// Writes queued events in order, in batches, retrying until the database takes them.
async fn write_events(
    mut rx: mpsc::Receiver<HubEvent>,
    events: Collection<Document>,
    origin: String,
) {
    let mut batch: Vec<Document> = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.clear();
        for event in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            match serde_json::to_string(&event) {
                Ok(json) => {
                    batch.push(doc! { "origin": &origin, "at": DateTime::now(), "e": json })
                }
                Err(error) => tracing::error!(%error, "relay: event not serializable"),
            }
            if batch.len() == BATCH {
                break;
            }
        }
        let mut wait = Duration::from_millis(50);
        while let Err(error) = events.insert_many(batch.iter()).ordered(true).await {
            tracing::warn!(%error, "relay: writing events failed; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }
}

/// Applies the other instances' events, reopening the stream where it broke.
async fn follow_events(
    mut stream: EventStream,
    events: Collection<Document>,
    origin: String,
    hub: Weak<Hub>,
    status: Arc<RelayStatus>,
) {
    let mut wait = Duration::from_millis(100);
    loop {
        loop {
            // Wake up now and then even when nothing happens, to notice that the server stopped.
            let change = match tokio::time::timeout(Duration::from_secs(1), stream.next()).await {
                Err(_) if hub.strong_count() == 0 => return,
                Err(_) => continue,
                Ok(None) => break,
                Ok(Some(change)) => change,
            };
            let Some(hub) = hub.upgrade() else { return };
            match change {
                Ok(change) => {
                    wait = Duration::from_millis(100);
                    if let Some(doc) = change.full_document {
                        apply(&hub, &doc);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "relay: change stream broke");
                    break;
                }
            }
        }
        status.streaming.store(false, Ordering::Relaxed);
        let token = stream.resume_token();
        // Reopen after the last applied event; if that point is gone, start afresh and make every
        // local client resync from its own cursors.
        stream = loop {
            if hub.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
            match open_stream(&events, &origin, token.clone()).await {
                Ok(stream) => break stream,
                Err(error) if history_lost(&error) => {
                    tracing::error!(%error, "relay: resume point lost; clients will resync");
                    if let Ok(stream) = open_stream(&events, &origin, None).await {
                        if let Some(hub) = hub.upgrade() {
                            hub.close_all(crate::protocol::CloseReason::Resync);
                            hub.say_hello();
                        }
                        break stream;
                    }
                }
                Err(error) => tracing::warn!(%error, "relay: reopening the change stream failed"),
            }
        };
        status.resumed.fetch_add(1, Ordering::Relaxed);
        status.streaming.store(true, Ordering::Relaxed);
        tracing::info!("relay: change stream resumed");
    }
}

fn history_lost(error: &MongoError) -> bool {
    matches!(&*error.kind, ErrorKind::Command(e) if HISTORY_LOST.contains(&e.code))
}

fn apply(hub: &Hub, doc: &Document) {
    let (Ok(origin), Ok(json)) = (doc.get_str("origin"), doc.get_str("e")) else {
        tracing::warn!("relay: malformed event document");
        return;
    };
    match serde_json::from_str::<HubEvent>(json) {
        Ok(event) => hub.apply_remote(origin, event),
        Err(error) => tracing::warn!(%error, "relay: undecodable event"),
    }
}

/// Says "alive" every few seconds and forgets instances that stopped saying it.
async fn keep_alive(hub: Weak<Hub>) {
    let mut tick = tokio::time::interval(ALIVE_EVERY);
    loop {
        tick.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        hub.say_alive();
        let forgotten = hub.forget_silent_instances(DEAD_AFTER);
        if forgotten > 0 {
            tracing::warn!(
                forgotten,
                "relay: instances went silent; their users' presence expired"
            );
        }
    }
}
