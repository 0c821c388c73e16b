//! The event bus over MongoDB, for several server instances on one database.
//!
//! Every published event goes into the `hub_events` collection (one small document, batched inserts),
//! and every instance follows that collection with a change stream, passing on the other instances'
//! events. The collection has a TTL index: events are transient, never history.
//!
//! The stream's resume token is kept, so a stream that breaks (network, failover) continues exactly
//! after the last event passed on. If the server no longer has that point, this instance cannot know
//! what it missed: it delivers `Lost`, and the hub makes its clients resync from their cursors. While
//! the stream is down, `is_streaming` is false (`/readyz` answers 503).
//!
//! It uses the store's own client (one connection pool per process).

use super::MongoStore;
use crate::store::{BusConnection, BusDelivery, EventBus, StoreError, StoreResult};
use futures::StreamExt;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::change_stream::event::ResumeToken;
use mongodb::error::{Error as MongoError, ErrorKind};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub const EVENTS: &str = "hub_events";
/// Events older than this are removed by MongoDB. Resuming works within this window.
const EVENT_TTL: Duration = Duration::from_secs(600);
/// Events waiting to be written; beyond this, new ones are dropped (see `EventBus::publish`).
const OUTBOX: usize = 100_000;
/// Events received and not yet taken by the hub; beyond this the stream waits (back-pressure).
const INBOX: usize = 4096;
/// Most events per insert.
const BATCH: usize = 512;
/// MongoDB error codes meaning the resume point is gone (history lost, or the stream is unusable).
const HISTORY_LOST: [i32; 3] = [136, 280, 286];

struct MongoBus {
    outbox: mpsc::Sender<String>,
    streaming: Arc<AtomicBool>,
    dropped: AtomicU64,
}

impl EventBus for MongoBus {
    fn publish(&self, payload: String) {
        if self.outbox.try_send(payload).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "event bus outbox full: dropping events");
            }
        }
    }

    fn is_streaming(&self) -> bool {
        self.streaming.load(Ordering::Relaxed)
    }
}

fn unavailable(context: &str, error: &MongoError) -> StoreError {
    StoreError::Unavailable(format!("{context}: {}", super::errors::describe(error)))
}

impl MongoStore {
    /// Opens the bus. Returns once the change stream is open, so nothing published after start-up is
    /// missed. The tasks end when both the bus and the receiver of deliveries are dropped.
    pub(super) async fn open_bus(&self) -> StoreResult<BusConnection> {
        let events: Collection<Document> = self.db.collection(EVENTS);
        let ttl = IndexModel::builder()
            .keys(doc! { "at": 1 })
            .options(
                IndexOptions::builder()
                    .name("events_ttl".to_owned())
                    .expire_after(EVENT_TTL)
                    .build(),
            )
            .build();
        events
            .create_index(ttl)
            .await
            .map_err(|e| unavailable("event bus: index", &e))?;

        let origin = uuid::Uuid::now_v7().to_string();
        let stream = open_stream(&events, &origin, None)
            .await
            .map_err(|e| unavailable("event bus: change stream", &e))?;
        let streaming = Arc::new(AtomicBool::new(true));
        let (outbox, outgoing) = mpsc::channel(OUTBOX);
        let (inbox, deliveries) = mpsc::channel(INBOX);
        tokio::spawn(write_events(outgoing, events.clone(), origin.clone()));
        tokio::spawn(follow_events(
            stream,
            events,
            origin.clone(),
            inbox,
            streaming.clone(),
        ));
        tracing::info!(%origin, "event bus to other instances ready (MongoDB change stream)");
        Ok(BusConnection {
            bus: Arc::new(MongoBus {
                outbox,
                streaming,
                dropped: AtomicU64::new(0),
            }),
            deliveries,
        })
    }
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

/// Writes queued events in order, in batches, retrying until the database takes them. Ends when the
/// bus is dropped.
async fn write_events(
    mut rx: mpsc::Receiver<String>,
    events: Collection<Document>,
    origin: String,
) {
    let mut batch: Vec<Document> = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.clear();
        for payload in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            batch.push(doc! { "origin": &origin, "at": DateTime::now(), "e": payload });
            if batch.len() == BATCH {
                break;
            }
        }
        let mut wait = Duration::from_millis(50);
        while let Err(error) = events.insert_many(batch.iter()).ordered(true).await {
            tracing::warn!(error = %super::errors::describe(&error), "event bus: writing events failed; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }
}

/// Passes the other instances' events on, reopening the stream where it broke. Ends when the receiver
/// of deliveries is gone.
async fn follow_events(
    mut stream: EventStream,
    events: Collection<Document>,
    origin: String,
    inbox: mpsc::Sender<BusDelivery>,
    streaming: Arc<AtomicBool>,
) {
    let mut wait = Duration::from_millis(100);
    loop {
        loop {
            // Wake up now and then even when nothing happens, to notice that the hub is gone.
            let change = match tokio::time::timeout(Duration::from_secs(1), stream.next()).await {
                Err(_) if inbox.is_closed() => return,
                Err(_) => continue,
                Ok(None) => break,
                Ok(Some(change)) => change,
            };
            match change {
                Ok(change) => {
                    wait = Duration::from_millis(100);
                    let Some(delivery) = change.full_document.as_ref().and_then(delivery) else {
                        continue;
                    };
                    if inbox.send(delivery).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "event bus: change stream broke");
                    break;
                }
            }
        }
        streaming.store(false, Ordering::Relaxed);
        let token = stream.resume_token();
        // Reopen after the last event passed on; if that point is gone, start afresh and tell the hub.
        stream = loop {
            if inbox.is_closed() {
                return;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
            match open_stream(&events, &origin, token.clone()).await {
                Ok(stream) => break stream,
                Err(error) if history_lost(&error) => {
                    tracing::error!(%error, "event bus: resume point lost; clients will resync");
                    if let Ok(stream) = open_stream(&events, &origin, None).await {
                        if inbox.send(BusDelivery::Lost).await.is_err() {
                            return;
                        }
                        break stream;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "event bus: reopening the change stream failed")
                }
            }
        };
        streaming.store(true, Ordering::Relaxed);
        tracing::info!("event bus: change stream resumed");
    }
}

fn history_lost(error: &MongoError) -> bool {
    matches!(&*error.kind, ErrorKind::Command(e) if HISTORY_LOST.contains(&e.code))
}

/// The event in one stored document, or `None` (logged) for a malformed one.
fn delivery(doc: &Document) -> Option<BusDelivery> {
    match (doc.get_str("origin"), doc.get_str("e")) {
        (Ok(origin), Ok(payload)) => Some(BusDelivery::Event {
            origin: origin.to_owned(),
            payload: payload.to_owned(),
        }),
        _ => {
            tracing::warn!("event bus: malformed event document");
            None
        }
    }
}
