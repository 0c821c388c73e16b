//! MongoDB driver, chosen by `MONGODB_URI`.
//!
//! Collections (ids are uuid strings in `_id`; timestamps are i64 milliseconds unless noted):
//! - `users`: `username_key` (lowercased username, unique) and `display_key` (lowercased display name)
//!   serve case-insensitive lookups and search.
//! - `sessions`: `refresh_hash` unique. `purge_at` is a BSON date under a TTL index, so expired sessions
//!   disappear by themselves; queries use the i64 `expires_at`.
//! - `spent_refresh_tokens`: `_id` = a rotated-away refresh hash, `session_id`, and a TTL `purge_at`.
//! - `rooms`: `name_key` (lowercased name) for ordering and search; `direct_key` unique where present.
//! - `memberships`: unique on (`room_id`, `user_id`).
//! - `invitations`: open invitations, unique on (`room_id`, `user_id`).
//! - `messages`: unique on (`room_id`, `seq`) and on (`room_id`, `author_id`, `nonce`).
//! - `read_markers`: unique on (`user_id`, `room_id`).
//! - `thread_follows`: `_id` "user:root"; by (`user_id`, `followed_at`) and `room_id` (see `threads`).
//! - `audit_log`: insert-only; `actor_key` is the lowercased actor name.
//!
//! Every index is created at start-up (idempotent). Filters are always built here from typed values, so
//! text from users only ever reaches a query as a string literal or an escaped regex.
//!
//! Layout: this file holds the handle and the connection; `indexes` every index; `rows` the document
//! shapes; `errors` how driver errors become store errors; `bus` the change stream that carries live
//! events between instances; one file per aggregate implements its repository trait.

mod audit;
mod bus;
mod contention;
mod errors;
mod files;
mod indexes;
mod message_rows;
mod messages;
mod push;
mod query;
mod read_markers;
mod rooms;
mod rows;
mod search;
mod sessions;
mod threads;
mod users;

use super::{Store, StoreError, StoreResult};
use async_trait::async_trait;
use contention::{RoomLocks, SeqHints};
use errors::{describe, OrUnavailable};
use mongodb::bson::{doc, Document};
use mongodb::options::{Acknowledgment, ClientOptions, CollectionOptions, WriteConcern};
use mongodb::{Client, Collection, Database};
use std::sync::Arc;
use std::time::Duration;

const USERS: &str = "users";

const SESSIONS: &str = "sessions";

const SPENT_TOKENS: &str = "spent_refresh_tokens";

const ROOMS: &str = "rooms";

const MEMBERSHIPS: &str = "memberships";
const INVITATIONS: &str = "invitations";

const MESSAGES: &str = "messages";

const READ_MARKERS: &str = "read_markers";

const THREAD_FOLLOWS: &str = "thread_follows";

const AUDIT_LOG: &str = "audit_log";

/// Files' records, and each owner's bytes (the bytes are in GridFS: see `files`).
const FILES: &str = "files";
const FILE_USAGE: &str = "file_usage";

/// Web push subscriptions, by endpoint (see `push`).
const PUSH_SUBSCRIPTIONS: &str = "push_subscriptions";

/// Acknowledged by a majority, journaled: what an acknowledged message or file needs.
fn durable_write_concern() -> WriteConcern {
    WriteConcern::builder()
        .w(Acknowledgment::Majority)
        .journal(true)
        .build()
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const PING_TIMEOUT: Duration = Duration::from_secs(2);

const APP_NAME: &str = "ml-chat";

/// The MongoDB driver. Cloning is cheap: the client is a shared connection pool.
#[derive(Clone)]
pub struct MongoStore {
    db: Database,
    users: Collection<Document>,
    sessions: Collection<Document>,
    spent_tokens: Collection<Document>,
    rooms: Collection<Document>,
    memberships: Collection<Document>,
    invitations: Collection<Document>,
    messages: Collection<Document>,
    /// The same collection, with majority and journaled writes for acknowledged messages.
    messages_durable: Collection<Document>,
    read_markers: Collection<Document>,
    thread_follows: Collection<Document>,
    audit: Collection<Document>,
    files: Collection<Document>,
    /// The same, with durable writes: a file is acknowledged only once it is.
    files_durable: Collection<Document>,
    file_usage: Collection<Document>,
    push_subscriptions: Collection<Document>,
    /// Serializes appends to one room inside this process; see [`RoomLocks`].
    append_locks: Arc<RoomLocks>,
    /// A lower bound of each recently used room's last sequence; see [`SeqHints`].
    seq_hints: Arc<SeqHints>,
    /// The same for each room's latest revision.
    rev_hints: Arc<SeqHints>,
}

impl MongoStore {
    /// Connects, checks the server answers and creates every index. Any failure is `Unavailable`.
    pub async fn connect(uri: &str, database: &str) -> StoreResult<MongoStore> {
        let mut options = ClientOptions::parse(uri).await.map_err(|e| {
            StoreError::Unavailable(format!("invalid MongoDB URI: {}", describe(&e)))
        })?;
        options.server_selection_timeout = Some(CONNECT_TIMEOUT);
        options.connect_timeout = Some(CONNECT_TIMEOUT);
        options.app_name = Some(APP_NAME.to_string());
        let client = Client::with_options(options).map_err(|e| {
            StoreError::Unavailable(format!("MongoDB client options: {}", describe(&e)))
        })?;
        let db = client.database(database);

        // Server selection already gives up after CONNECT_TIMEOUT; this bounds the whole handshake.
        tokio::time::timeout(CONNECT_TIMEOUT * 2, db.run_command(doc! { "ping": 1 }))
            .await
            .map_err(|_| StoreError::Unavailable("MongoDB did not answer ping".into()))?
            .map_err(|e| {
                StoreError::Unavailable(format!("MongoDB ping failed: {}", describe(&e)))
            })?;

        let durable = CollectionOptions::builder()
            .write_concern(durable_write_concern())
            .build();
        let store = MongoStore {
            users: db.collection(USERS),
            sessions: db.collection(SESSIONS),
            spent_tokens: db.collection(SPENT_TOKENS),
            rooms: db.collection(ROOMS),
            memberships: db.collection(MEMBERSHIPS),
            invitations: db.collection(INVITATIONS),
            messages: db.collection(MESSAGES),
            messages_durable: db.collection_with_options(MESSAGES, durable.clone()),
            read_markers: db.collection(READ_MARKERS),
            thread_follows: db.collection(THREAD_FOLLOWS),
            audit: db.collection(AUDIT_LOG),
            files: db.collection(FILES),
            files_durable: db.collection_with_options(FILES, durable.clone()),
            file_usage: db.collection(FILE_USAGE),
            push_subscriptions: db.collection(PUSH_SUBSCRIPTIONS),
            append_locks: Arc::default(),
            seq_hints: Arc::default(),
            rev_hints: Arc::default(),
            db,
        };
        store.create_indexes().await?;
        store.backfill_search_terms().await?;
        store.index_skeletons().await?;
        tracing::info!(database, "MongoDB store ready");
        Ok(store)
    }

    /// Drops the whole database, indexes included: for clean-up only (tests drop their private one).
    /// The handle is not usable for writes that rely on unique indexes afterwards.
    pub async fn drop_database(&self) -> StoreResult<()> {
        self.db.drop().await.or_unavailable("dropping database")
    }
}

#[async_trait]
impl Store for MongoStore {
    fn driver(&self) -> &'static str {
        "mongodb"
    }

    async fn ping(&self) -> StoreResult<()> {
        tokio::time::timeout(PING_TIMEOUT, self.db.run_command(doc! { "ping": 1 }))
            .await
            .map_err(|_| StoreError::Unavailable("MongoDB ping timed out".into()))?
            .or_unavailable("MongoDB ping")?;
        Ok(())
    }

    async fn event_bus(&self) -> StoreResult<Option<super::BusConnection>> {
        self.open_bus().await.map(Some)
    }
}
