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
//! - `messages`: unique on (`room_id`, `seq`) and on (`room_id`, `author_id`, `nonce`).
//! - `read_markers`: unique on (`user_id`, `room_id`).
//! - `audit_log`: insert-only; `actor_key` is the lowercased actor name.
//!
//! Every index is created at start-up (idempotent). Filters are always built here from typed values, so
//! text from users only ever reaches a query as a string literal or an escaped regex.

use super::{
    clamp_limit, username_key, Appended, AuditEntry, AuditQuery, AuditStore, HistoryQuery,
    MembershipRecord, MessageRecord, MessageStats, MessageStore, NewMessage, Page, ReadMarker,
    ReadMarkerStore, RefreshLookup, RoomPatch, RoomQuery, RoomRecord, RoomStore, SessionRecord,
    SessionStore, Store, StoreError, StoreResult, UserPatch, UserQuery, UserRecord, UserStats,
    UserStore,
};
use crate::model::{
    AuditId, MemberRole, MessageId, Role, RoomId, RoomKind, SessionId, Timestamp, UserId,
};
use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{self, doc, Bson, DateTime, Document};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use mongodb::options::{
    Acknowledgment, ClientOptions, CollectionOptions, IndexOptions, ReturnDocument, WriteConcern,
};
use mongodb::{Client, Collection, Cursor, Database, IndexModel};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

const USERS: &str = "users";
const SESSIONS: &str = "sessions";
const SPENT_TOKENS: &str = "spent_refresh_tokens";
const ROOMS: &str = "rooms";
const MEMBERSHIPS: &str = "memberships";
const MESSAGES: &str = "messages";
const READ_MARKERS: &str = "read_markers";
const AUDIT_LOG: &str = "audit_log";

// Index names matter: duplicate-key errors name the index that clashed.
const USERNAME_INDEX: &str = "username_key_unique";
const DIRECT_KEY_INDEX: &str = "direct_key_unique";
const SEQ_INDEX: &str = "room_seq_unique";
const NONCE_INDEX: &str = "room_author_nonce_unique";

const DUPLICATE_KEY: i32 = 11000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
const APP_NAME: &str = "ml-chat";
/// Bounded retries when concurrent appends race for the same sequence number.
const APPEND_ATTEMPTS: u32 = 1_000;
/// The TTL monitor never removes a session sooner than this after its last write, so callers that write
/// historical timestamps (imports, tests) are not raced by it; queries rely on `expires_at` anyway.
const TTL_FLOOR_MILLIS: i64 = 60 * 60 * 1000;
/// Purge deletes in batches so one `$in` list stays small.
const PURGE_BATCH: usize = 500;

/// The MongoDB driver. Cloning is cheap: the client is a shared connection pool.
#[derive(Clone)]
pub struct MongoStore {
    db: Database,
    users: Collection<Document>,
    sessions: Collection<Document>,
    spent_tokens: Collection<Document>,
    rooms: Collection<Document>,
    memberships: Collection<Document>,
    messages: Collection<Document>,
    /// The same collection, with majority and journaled writes for acknowledged messages.
    messages_durable: Collection<Document>,
    read_markers: Collection<Document>,
    audit: Collection<Document>,
    /// Serializes appends to one room inside this process; see [`RoomLocks`].
    append_locks: Arc<RoomLocks>,
    /// A lower bound of each recently used room's last sequence; see [`SeqHints`].
    seq_hints: Arc<SeqHints>,
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
            .write_concern(
                WriteConcern::builder()
                    .w(Acknowledgment::Majority)
                    .journal(true)
                    .build(),
            )
            .build();
        let store = MongoStore {
            users: db.collection(USERS),
            sessions: db.collection(SESSIONS),
            spent_tokens: db.collection(SPENT_TOKENS),
            rooms: db.collection(ROOMS),
            memberships: db.collection(MEMBERSHIPS),
            messages: db.collection(MESSAGES),
            messages_durable: db.collection_with_options(MESSAGES, durable),
            read_markers: db.collection(READ_MARKERS),
            audit: db.collection(AUDIT_LOG),
            append_locks: Arc::default(),
            seq_hints: Arc::default(),
            db,
        };
        store.create_indexes().await?;
        tracing::info!(database, "MongoDB store ready");
        Ok(store)
    }

    /// Drops the whole database, indexes included: for clean-up only (tests drop their private one).
    /// The handle is not usable for writes that rely on unique indexes afterwards.
    pub async fn drop_database(&self) -> StoreResult<()> {
        self.db.drop().await.or_unavailable("dropping database")
    }

    async fn create_indexes(&self) -> StoreResult<()> {
        let ttl = |name: &str| {
            IndexModel::builder()
                .keys(doc! { "purge_at": 1 })
                .options(
                    IndexOptions::builder()
                        .name(name.to_string())
                        .expire_after(Duration::ZERO)
                        .build(),
                )
                .build()
        };
        let direct_key = IndexModel::builder()
            .keys(doc! { "direct_key": 1 })
            .options(
                IndexOptions::builder()
                    .name(DIRECT_KEY_INDEX.to_string())
                    .unique(true)
                    // Only direct rooms carry a key; other rooms must not clash on a missing one.
                    .partial_filter_expression(doc! { "direct_key": { "$type": "string" } })
                    .build(),
            )
            .build();
        let plan = [
            (
                &self.users,
                vec![unique(doc! { "username_key": 1 }, USERNAME_INDEX)],
            ),
            (
                &self.sessions,
                vec![
                    unique(doc! { "refresh_hash": 1 }, "refresh_hash_unique"),
                    index(doc! { "user_id": 1, "last_used_at": -1 }, "user_last_used"),
                    index(doc! { "expires_at": 1 }, "expires_at"),
                    ttl("session_ttl"),
                ],
            ),
            (
                &self.spent_tokens,
                vec![
                    index(doc! { "session_id": 1 }, "session_id"),
                    ttl("spent_token_ttl"),
                ],
            ),
            (
                &self.rooms,
                vec![
                    direct_key,
                    index(doc! { "name_key": 1, "_id": 1 }, "name_order"),
                ],
            ),
            (
                &self.memberships,
                vec![
                    unique(doc! { "room_id": 1, "user_id": 1 }, "room_user_unique"),
                    index(doc! { "user_id": 1 }, "user_id"),
                    index(doc! { "room_id": 1, "joined_at": 1 }, "room_joined"),
                ],
            ),
            (
                &self.messages,
                vec![
                    unique(doc! { "room_id": 1, "seq": 1 }, SEQ_INDEX),
                    unique(
                        doc! { "room_id": 1, "author_id": 1, "nonce": 1 },
                        NONCE_INDEX,
                    ),
                    index(doc! { "created_at": 1 }, "created_at"),
                ],
            ),
            (
                &self.read_markers,
                vec![
                    unique(doc! { "user_id": 1, "room_id": 1 }, "user_room_unique"),
                    index(doc! { "room_id": 1 }, "room_id"),
                ],
            ),
            (
                &self.audit,
                vec![
                    index(doc! { "at": -1, "_id": -1 }, "newest_first"),
                    index(doc! { "actor_key": 1, "at": -1 }, "actor_at"),
                    index(doc! { "action": 1, "at": -1 }, "action_at"),
                ],
            ),
        ];
        for (collection, models) in plan {
            collection.create_indexes(models).await.map_err(|e| {
                StoreError::Unavailable(format!(
                    "creating indexes on {}: {}",
                    collection.name(),
                    describe(&e)
                ))
            })?;
        }
        Ok(())
    }

    async fn room_exists(&self, id: &str) -> StoreResult<bool> {
        let found = self
            .rooms
            .find_one(doc! { "_id": id })
            .projection(doc! { "_id": 1 })
            .await
            .or_unavailable("finding room")?;
        Ok(found.is_some())
    }

    async fn message_by_nonce(&self, filter: &Document) -> StoreResult<Option<MessageRecord>> {
        decode_found::<MessageRow>(self.messages.find_one(filter.clone()).await)
    }

    /// The room's highest sequence as stored (0 when empty).
    ///
    /// Sequences only grow (deleted messages keep theirs), so a hint seen earlier is a lower bound and
    /// the query only has to look at `seq >= hint`: one index step on MongoDB, and a small range scan
    /// instead of a sort of the whole room on servers with weaker planners.
    async fn max_seq(&self, room: &str) -> StoreResult<i64> {
        let hint = self.seq_hints.get(room);
        let last = self
            .messages
            .find_one(doc! { "room_id": room, "seq": { "$gte": hint } })
            .sort(doc! { "seq": -1 })
            .projection(doc! { "seq": 1 })
            .await
            .or_unavailable("reading last sequence")?;
        match last {
            // Nothing at or above the hint: the room is empty, or it was deleted and the hint is void.
            None => {
                self.seq_hints.forget(room);
                Ok(0)
            }
            Some(doc) => {
                let last = doc
                    .get_i64("seq")
                    .map_err(|e| StoreError::Corrupt(format!("message seq: {e}")))?;
                self.seq_hints.raise(room, last);
                Ok(last)
            }
        }
    }
}

/// Last sequences seen per room, only ever raised. Another instance may have appended since, so a hint is
/// never trusted as the maximum, only used to narrow the query for it. Bounded: when full it starts over,
/// which costs one wider query per room.
#[derive(Default)]
struct SeqHints(Mutex<HashMap<String, i64>>);

impl SeqHints {
    const MAX_ROOMS: usize = 100_000;

    fn get(&self, room: &str) -> i64 {
        let hints = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        hints.get(room).copied().unwrap_or(0)
    }

    fn raise(&self, room: &str, seq: i64) {
        let mut hints = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if hints.len() >= Self::MAX_ROOMS && !hints.contains_key(room) {
            hints.clear();
        }
        let hint = hints.entry(room.to_string()).or_insert(seq);
        *hint = (*hint).max(seq);
    }

    fn forget(&self, room: &str) {
        let mut hints = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        hints.remove(room);
    }
}

/// One async lock per room with appends in flight. Correctness never depends on it (the unique
/// (room, seq) index does that, also across processes); it only stops this process's own appenders from
/// racing each other for the same sequence number, where every lost race costs a wasted durable insert.
#[derive(Default)]
struct RoomLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl RoomLocks {
    async fn lock(&self, room: &str) -> RoomGuard<'_> {
        let lock = {
            let mut rooms = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            rooms.entry(room.to_string()).or_default().clone()
        };
        RoomGuard {
            locks: self,
            room: room.to_string(),
            guard: Some(lock.lock_owned().await),
        }
    }
}

/// Holds a room's append lock; dropping it forgets the room once nobody else waits for it.
struct RoomGuard<'a> {
    locks: &'a RoomLocks,
    room: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for RoomGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut rooms = self.locks.0.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the map still holds it: no appender has it or waits for it.
        if rooms
            .get(&self.room)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            rooms.remove(&self.room);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Error mapping and decoding

trait OrUnavailable<T> {
    /// Maps a driver error: undecodable data is `Corrupt`, everything else `Unavailable`.
    fn or_unavailable(self, context: &str) -> StoreResult<T>;
    /// Like `or_unavailable`, but a duplicate key becomes `Duplicate(entity(index name))`.
    fn or_duplicate(self, context: &str, entity: fn(&str) -> &'static str) -> StoreResult<T>;
}

impl<T> OrUnavailable<T> for Result<T, MongoError> {
    fn or_unavailable(self, context: &str) -> StoreResult<T> {
        self.map_err(|e| store_error(context, &e))
    }

    fn or_duplicate(self, context: &str, entity: fn(&str) -> &'static str) -> StoreResult<T> {
        self.map_err(|e| match duplicate_key_message(&e) {
            Some(message) => StoreError::Duplicate(entity(clashing_index(message).unwrap_or(""))),
            None => store_error(context, &e),
        })
    }
}

fn store_error(context: &str, err: &MongoError) -> StoreError {
    match err.kind.as_ref() {
        ErrorKind::BsonDeserialization(e) => StoreError::Corrupt(format!("{context}: {e}")),
        _ => StoreError::Unavailable(format!("{context}: {}", describe(err))),
    }
}

/// The error without the raw server reply that `MongoError`'s own Display appends.
fn describe(err: &MongoError) -> String {
    err.kind.to_string()
}

/// The server's message when `err` is a duplicate-key (E11000) failure.
fn duplicate_key_message(err: &MongoError) -> Option<&str> {
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) if e.code == DUPLICATE_KEY => {
            Some(&e.message)
        }
        ErrorKind::Command(e) if e.code == DUPLICATE_KEY => Some(&e.message),
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()?
            .iter()
            .find(|w| w.code == DUPLICATE_KEY)
            .map(|w| w.message.as_str()),
        _ => None,
    }
}

/// The index named in "E11000 duplicate key error collection: db.c index: NAME dup key: { ... }".
fn clashing_index(message: &str) -> Option<&str> {
    message.split_once(" index: ")?.1.split_whitespace().next()
}

/// A stored document's shape, and how it becomes a record of the storage interface.
trait Row: DeserializeOwned {
    type Record;
    const WHAT: &'static str;
    fn into_record(self) -> StoreResult<Self::Record>;
}

fn decode<R: Row>(doc: Document) -> StoreResult<R::Record> {
    bson::from_document::<R>(doc)
        .map_err(|e| StoreError::Corrupt(format!("{}: {e}", R::WHAT)))?
        .into_record()
}

fn encode<T: Serialize>(row: &T, what: &str) -> StoreResult<Document> {
    bson::to_document(row).map_err(|e| StoreError::Corrupt(format!("encoding {what}: {e}")))
}

fn decode_found<R: Row>(
    found: Result<Option<Document>, MongoError>,
) -> StoreResult<Option<R::Record>> {
    found.or_unavailable(R::WHAT)?.map(decode::<R>).transpose()
}

async fn collect<R: Row>(
    cursor: Result<Cursor<Document>, MongoError>,
) -> StoreResult<Vec<R::Record>> {
    let docs: Vec<Document> = cursor
        .or_unavailable(R::WHAT)?
        .try_collect()
        .await
        .or_unavailable(R::WHAT)?;
    docs.into_iter().map(decode::<R>).collect()
}

fn parse_id<I: FromStr>(raw: &str, what: &str) -> StoreResult<I> {
    raw.parse()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not a valid id: {raw:?}")))
}

fn seq_to_db(seq: u64) -> i64 {
    // Beyond i64::MAX no real sequence exists, so saturating keeps comparisons right.
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn seq_from_db(seq: i64) -> StoreResult<u64> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative sequence {seq}")))
}

/// Escapes regex metacharacters so user text matches only itself.
fn escape_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            // Written as an escape so no raw control byte (e.g. NUL) reaches the server's pattern.
            // Control characters are all below U+0100, so two hex digits (PCRE and others agree).
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
            continue;
        }
        if "\\^$.|?*+()[]{}-/#".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A case-insensitive substring match over lowercased key fields.
fn contains_any(fields: &[&str], text: &str) -> Document {
    let pattern = escape_regex(&text.to_lowercase());
    let alternatives: Vec<Document> = fields
        .iter()
        .map(|field| doc! { *field: { "$regex": pattern.as_str(), "$options": "" } })
        .collect();
    doc! { "$or": alternatives }
}

/// When the TTL monitor may drop a session (or spent token) that expires at `expires_at`.
fn purge_at(expires_at: Timestamp) -> DateTime {
    let floor = Timestamp::now().plus_millis(TTL_FLOOR_MILLIS);
    DateTime::from_millis(expires_at.max(floor).millis())
}

fn index(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().name(name.to_string()).build())
        .build()
}

fn unique(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(
            IndexOptions::builder()
                .name(name.to_string())
                .unique(true)
                .build(),
        )
        .build()
}

/// A small random number in `0..bound`, for backoff jitter (no extra dependency needed).
fn jitter(bound: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(Timestamp::now().millis());
    hasher.finish() % bound.max(1)
}

// ---------------------------------------------------------------------------------------------------------
// Rows

#[derive(Serialize, Deserialize)]
struct UserRow {
    #[serde(rename = "_id")]
    id: String,
    username: String,
    username_key: String,
    display_name: String,
    display_key: String,
    password_hash: String,
    role: Role,
    disabled: bool,
    must_change_password: bool,
    created_at: i64,
    last_seen_at: Option<i64>,
}

impl UserRow {
    fn from_record(user: &UserRecord) -> Self {
        UserRow {
            id: user.id.to_string(),
            username: user.username.clone(),
            username_key: username_key(&user.username),
            display_name: user.display_name.clone(),
            display_key: user.display_name.to_lowercase(),
            password_hash: user.password_hash.clone(),
            role: user.role,
            disabled: user.disabled,
            must_change_password: user.must_change_password,
            created_at: user.created_at.millis(),
            last_seen_at: user.last_seen_at.map(Timestamp::millis),
        }
    }
}

impl Row for UserRow {
    type Record = UserRecord;
    const WHAT: &'static str = "user";
    fn into_record(self) -> StoreResult<UserRecord> {
        Ok(UserRecord {
            id: parse_id::<UserId>(&self.id, "user id")?,
            username: self.username,
            display_name: self.display_name,
            password_hash: self.password_hash,
            role: self.role,
            disabled: self.disabled,
            must_change_password: self.must_change_password,
            created_at: Timestamp(self.created_at),
            last_seen_at: self.last_seen_at.map(Timestamp),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct SessionRow {
    #[serde(rename = "_id")]
    id: String,
    user_id: String,
    refresh_hash: String,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    /// TTL field (BSON date); see [`purge_at`].
    purge_at: DateTime,
    revoked_at: Option<i64>,
    user_agent: String,
    ip: String,
}

impl SessionRow {
    fn from_record(session: &SessionRecord) -> Self {
        SessionRow {
            id: session.id.to_string(),
            user_id: session.user_id.to_string(),
            refresh_hash: session.refresh_hash.clone(),
            created_at: session.created_at.millis(),
            last_used_at: session.last_used_at.millis(),
            expires_at: session.expires_at.millis(),
            purge_at: purge_at(session.expires_at),
            revoked_at: session.revoked_at.map(Timestamp::millis),
            user_agent: session.user_agent.clone(),
            ip: session.ip.clone(),
        }
    }
}

impl Row for SessionRow {
    type Record = SessionRecord;
    const WHAT: &'static str = "session";
    fn into_record(self) -> StoreResult<SessionRecord> {
        Ok(SessionRecord {
            id: parse_id::<SessionId>(&self.id, "session id")?,
            user_id: parse_id::<UserId>(&self.user_id, "session user id")?,
            refresh_hash: self.refresh_hash,
            created_at: Timestamp(self.created_at),
            last_used_at: Timestamp(self.last_used_at),
            expires_at: Timestamp(self.expires_at),
            revoked_at: self.revoked_at.map(Timestamp),
            user_agent: self.user_agent,
            ip: self.ip,
        })
    }
}

/// A spent refresh hash (`_id`) and the session it belonged to.
#[derive(Deserialize)]
struct SpentTokenRow {
    session_id: String,
}

impl Row for SpentTokenRow {
    type Record = SessionId;
    const WHAT: &'static str = "spent refresh token";
    fn into_record(self) -> StoreResult<SessionId> {
        parse_id(&self.session_id, "spent token session id")
    }
}

/// Just the `_id` of a document, for projections.
#[derive(Deserialize)]
struct IdRow {
    #[serde(rename = "_id")]
    id: String,
}

impl Row for IdRow {
    type Record = String;
    const WHAT: &'static str = "document id";
    fn into_record(self) -> StoreResult<String> {
        Ok(self.id)
    }
}

#[derive(Serialize, Deserialize)]
struct RoomRow {
    #[serde(rename = "_id")]
    id: String,
    kind: RoomKind,
    name: String,
    name_key: String,
    topic: String,
    created_by: String,
    created_at: i64,
    archived: bool,
    // Absent rather than null for non-direct rooms, so the partial unique index ignores them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    direct_key: Option<String>,
}

impl RoomRow {
    fn from_record(room: &RoomRecord) -> Self {
        RoomRow {
            id: room.id.to_string(),
            kind: room.kind,
            name: room.name.clone(),
            name_key: room.name.to_lowercase(),
            topic: room.topic.clone(),
            created_by: room.created_by.to_string(),
            created_at: room.created_at.millis(),
            archived: room.archived,
            direct_key: room.direct_key.clone(),
        }
    }
}

impl Row for RoomRow {
    type Record = RoomRecord;
    const WHAT: &'static str = "room";
    fn into_record(self) -> StoreResult<RoomRecord> {
        Ok(RoomRecord {
            id: parse_id::<RoomId>(&self.id, "room id")?,
            kind: self.kind,
            name: self.name,
            topic: self.topic,
            created_by: parse_id::<UserId>(&self.created_by, "room creator id")?,
            created_at: Timestamp(self.created_at),
            archived: self.archived,
            direct_key: self.direct_key,
        })
    }
}

/// Memberships keep MongoDB's generated `_id`; the pair is unique through its own index.
#[derive(Serialize, Deserialize)]
struct MembershipRow {
    room_id: String,
    user_id: String,
    role: MemberRole,
    joined_at: i64,
}

impl MembershipRow {
    fn from_record(member: &MembershipRecord) -> Self {
        MembershipRow {
            room_id: member.room_id.to_string(),
            user_id: member.user_id.to_string(),
            role: member.role,
            joined_at: member.joined_at.millis(),
        }
    }
}

impl Row for MembershipRow {
    type Record = MembershipRecord;
    const WHAT: &'static str = "membership";
    fn into_record(self) -> StoreResult<MembershipRecord> {
        Ok(MembershipRecord {
            room_id: parse_id::<RoomId>(&self.room_id, "membership room id")?,
            user_id: parse_id::<UserId>(&self.user_id, "membership user id")?,
            role: self.role,
            joined_at: Timestamp(self.joined_at),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct MessageRow {
    #[serde(rename = "_id")]
    id: String,
    room_id: String,
    seq: i64,
    author_id: String,
    body: String,
    nonce: String,
    created_at: i64,
    edited_at: Option<i64>,
    deleted_at: Option<i64>,
}

impl Row for MessageRow {
    type Record = MessageRecord;
    const WHAT: &'static str = "message";
    fn into_record(self) -> StoreResult<MessageRecord> {
        Ok(MessageRecord {
            id: parse_id::<MessageId>(&self.id, "message id")?,
            room_id: parse_id::<RoomId>(&self.room_id, "message room id")?,
            seq: seq_from_db(self.seq)?,
            author_id: parse_id::<UserId>(&self.author_id, "message author id")?,
            body: self.body,
            nonce: self.nonce,
            created_at: Timestamp(self.created_at),
            edited_at: self.edited_at.map(Timestamp),
            deleted_at: self.deleted_at.map(Timestamp),
        })
    }
}

#[derive(Deserialize)]
struct ReadMarkerRow {
    room_id: String,
    seq: i64,
}

impl Row for ReadMarkerRow {
    type Record = ReadMarker;
    const WHAT: &'static str = "read marker";
    fn into_record(self) -> StoreResult<ReadMarker> {
        Ok(ReadMarker {
            room_id: parse_id::<RoomId>(&self.room_id, "read marker room id")?,
            seq: seq_from_db(self.seq)?,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct AuditRow {
    #[serde(rename = "_id")]
    id: String,
    at: i64,
    actor_id: Option<String>,
    actor_name: String,
    actor_key: String,
    action: String,
    target: String,
    ip: String,
    details: String,
}

impl AuditRow {
    fn from_record(entry: &AuditEntry) -> Self {
        AuditRow {
            id: entry.id.to_string(),
            at: entry.at.millis(),
            actor_id: entry.actor_id.map(|id| id.to_string()),
            actor_name: entry.actor_name.clone(),
            actor_key: entry.actor_name.to_lowercase(),
            action: entry.action.clone(),
            target: entry.target.clone(),
            ip: entry.ip.clone(),
            details: entry.details.clone(),
        }
    }
}

impl Row for AuditRow {
    type Record = AuditEntry;
    const WHAT: &'static str = "audit entry";
    fn into_record(self) -> StoreResult<AuditEntry> {
        let actor_id = match self.actor_id.as_deref() {
            Some(raw) => Some(parse_id::<UserId>(raw, "audit actor id")?),
            None => None,
        };
        Ok(AuditEntry {
            id: parse_id::<AuditId>(&self.id, "audit id")?,
            at: Timestamp(self.at),
            actor_id,
            actor_name: self.actor_name,
            action: self.action,
            target: self.target,
            ip: self.ip,
            details: self.details,
        })
    }
}

/// One page of `filter` in `sort` order, plus the total number of matches.
async fn page<R: Row>(
    collection: &Collection<Document>,
    filter: Document,
    sort: Document,
    offset: u64,
    limit: u32,
) -> StoreResult<Page<R::Record>> {
    let total = collection
        .count_documents(filter.clone())
        .await
        .or_unavailable(R::WHAT)?;
    let items = collect::<R>(
        collection
            .find(filter)
            .sort(sort)
            .skip(offset)
            .limit(i64::from(clamp_limit(limit)))
            .await,
    )
    .await?;
    Ok(Page { items, total })
}

// ---------------------------------------------------------------------------------------------------------
// Users

#[async_trait]
impl UserStore for MongoStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let doc = encode(&UserRow::from_record(user), "user")?;
        self.users
            .insert_one(doc)
            .await
            .or_duplicate("creating user", |index| {
                if index == USERNAME_INDEX {
                    "username"
                } else {
                    "user"
                }
            })?;
        Ok(())
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        decode_found::<UserRow>(self.users.find_one(doc! { "_id": id.to_string() }).await)
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let filter = doc! { "username_key": username_key(username) };
        decode_found::<UserRow>(self.users.find_one(filter).await)
    }

    async fn update_user(&self, id: UserId, patch: &UserPatch) -> StoreResult<UserRecord> {
        let mut set = Document::new();
        if let Some(name) = &patch.display_name {
            set.insert("display_name", name.as_str());
            set.insert("display_key", name.to_lowercase());
        }
        if let Some(hash) = &patch.password_hash {
            set.insert("password_hash", hash.as_str());
        }
        if let Some(role) = patch.role {
            set.insert("role", role.as_str());
        }
        if let Some(disabled) = patch.disabled {
            set.insert("disabled", disabled);
        }
        if let Some(must) = patch.must_change_password {
            set.insert("must_change_password", must);
        }
        if let Some(seen) = patch.last_seen_at {
            set.insert("last_seen_at", seen.millis());
        }
        let filter = doc! { "_id": id.to_string() };
        let found = if set.is_empty() {
            // MongoDB rejects an empty $set; an empty patch is just a read.
            self.users.find_one(filter).await
        } else {
            self.users
                .find_one_and_update(filter, doc! { "$set": set })
                .return_document(ReturnDocument::After)
                .await
        };
        decode_found::<UserRow>(found)?.ok_or(StoreError::NotFound("user"))
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<Page<UserRecord>> {
        let filter = match &query.search {
            Some(text) => contains_any(&["username_key", "display_key"], text),
            None => Document::new(),
        };
        page::<UserRow>(
            &self.users,
            filter,
            doc! { "username_key": 1, "_id": 1 },
            query.offset,
            query.limit,
        )
        .await
    }

    async fn user_stats(&self) -> StoreResult<UserStats> {
        let count = |filter: Document| async {
            self.users
                .count_documents(filter)
                .await
                .or_unavailable("counting users")
        };
        Ok(UserStats {
            total: count(Document::new()).await?,
            disabled: count(doc! { "disabled": true }).await?,
            admins: count(doc! { "role": Role::Admin.as_str(), "disabled": false }).await?,
        })
    }
}

// ---------------------------------------------------------------------------------------------------------
// Sessions

#[async_trait]
impl SessionStore for MongoStore {
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let doc = encode(&SessionRow::from_record(session), "session")?;
        self.sessions
            .insert_one(doc)
            .await
            .or_duplicate("creating session", |_| "session")?;
        Ok(())
    }

    async fn session_by_id(&self, id: SessionId) -> StoreResult<Option<SessionRecord>> {
        decode_found::<SessionRow>(self.sessions.find_one(doc! { "_id": id.to_string() }).await)
    }

    async fn find_refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshLookup>> {
        let current = self
            .sessions
            .find_one(doc! { "refresh_hash": token_hash })
            .await;
        if let Some(session) = decode_found::<SessionRow>(current)? {
            return Ok(Some(RefreshLookup::Current(session)));
        }
        let spent = self.spent_tokens.find_one(doc! { "_id": token_hash }).await;
        let Some(session_id) = decode_found::<SpentTokenRow>(spent)? else {
            return Ok(None);
        };
        Ok(self
            .session_by_id(session_id)
            .await?
            .map(RefreshLookup::Spent))
    }

    async fn rotate_refresh(
        &self,
        id: SessionId,
        old_hash: &str,
        new_hash: &str,
        used_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<bool> {
        let purge = purge_at(expires_at);
        // Spent first, then swapped: in between, the old token still reads as current (and a racing
        // rotation of it fails cleanly); the other order would leave a moment where it is neither.
        // Keyed by the hash itself: an upsert makes recording the same spent hash twice harmless.
        self.spent_tokens
            .update_one(
                doc! { "_id": old_hash },
                doc! { "$set": { "session_id": id.to_string(), "purge_at": purge } },
            )
            .upsert(true)
            .await
            .or_unavailable("recording spent refresh token")?;
        let swapped = self
            .sessions
            .update_one(
                doc! { "_id": id.to_string(), "refresh_hash": old_hash, "revoked_at": Bson::Null },
                doc! { "$set": {
                    "refresh_hash": new_hash,
                    "last_used_at": used_at.millis(),
                    "expires_at": expires_at.millis(),
                    "purge_at": purge,
                } },
            )
            .await
            .or_duplicate("rotating refresh token", |_| "session")?;
        Ok(swapped.matched_count > 0)
    }

    async fn revoke_session(&self, id: SessionId, at: Timestamp) -> StoreResult<()> {
        let id = id.to_string();
        let revoked = self
            .sessions
            .update_one(
                doc! { "_id": &id, "revoked_at": Bson::Null },
                doc! { "$set": { "revoked_at": at.millis() } },
            )
            .await
            .or_unavailable("revoking session")?;
        // Nothing matched: either already revoked (keep the first time) or missing.
        if revoked.matched_count == 0
            && self
                .sessions
                .find_one(doc! { "_id": &id })
                .await
                .or_unavailable("finding session")?
                .is_none()
        {
            return Err(StoreError::NotFound("session"));
        }
        Ok(())
    }

    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        at: Timestamp,
    ) -> StoreResult<u64> {
        let mut filter = doc! {
            "user_id": user_id.to_string(),
            "revoked_at": Bson::Null,
        };
        if let Some(keep) = except {
            filter.insert("_id", doc! { "$ne": keep.to_string() });
        }
        let revoked = self
            .sessions
            .update_many(filter, doc! { "$set": { "revoked_at": at.millis() } })
            .await
            .or_unavailable("revoking user sessions")?;
        Ok(revoked.modified_count)
    }

    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<SessionRecord>> {
        let filter = doc! {
            "user_id": user_id.to_string(),
            "revoked_at": Bson::Null,
            "expires_at": { "$gt": now.millis() },
        };
        collect::<SessionRow>(
            self.sessions
                .find(filter)
                .sort(doc! { "last_used_at": -1, "_id": -1 })
                .await,
        )
        .await
    }

    async fn purge_expired_sessions(&self, before: Timestamp) -> StoreResult<u64> {
        let expired = doc! { "expires_at": { "$lt": before.millis() } };
        let ids = collect::<IdRow>(
            self.sessions
                .find(expired.clone())
                .projection(doc! { "_id": 1 })
                .await,
        )
        .await?;
        let mut deleted = 0;
        for batch in ids.chunks(PURGE_BATCH) {
            let mut filter = expired.clone();
            filter.insert("_id", doc! { "$in": batch });
            deleted += self
                .sessions
                .delete_many(filter)
                .await
                .or_unavailable("purging sessions")?
                .deleted_count;
            self.spent_tokens
                .delete_many(doc! { "session_id": { "$in": batch } })
                .await
                .or_unavailable("purging spent refresh tokens")?;
        }
        Ok(deleted)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Rooms and memberships

#[async_trait]
impl RoomStore for MongoStore {
    async fn create_room(
        &self,
        room: &RoomRecord,
        members: &[MembershipRecord],
    ) -> StoreResult<()> {
        let doc = encode(&RoomRow::from_record(room), "room")?;
        self.rooms
            .insert_one(doc)
            .await
            .or_duplicate("creating room", |index| {
                if index == DIRECT_KEY_INDEX {
                    "direct room"
                } else {
                    "room"
                }
            })?;
        if members.is_empty() {
            return Ok(());
        }
        let docs = members
            .iter()
            .map(|m| encode(&MembershipRow::from_record(m), "membership"))
            .collect::<StoreResult<Vec<_>>>()?;
        let inserted = self
            .memberships
            .insert_many(docs)
            .await
            .or_duplicate("adding room members", |_| "membership");
        if let Err(err) = inserted {
            // No multi-document transaction (standalone servers have none): undo by hand.
            let room_id = room.id.to_string();
            let undone = match self
                .memberships
                .delete_many(doc! { "room_id": &room_id })
                .await
            {
                Ok(_) => self
                    .rooms
                    .delete_one(doc! { "_id": &room_id })
                    .await
                    .map(drop),
                Err(e) => Err(e),
            };
            if let Err(e) = undone {
                tracing::warn!(room = %room_id, error = %describe(&e), "could not undo a half-created room");
            }
            return Err(err);
        }
        Ok(())
    }

    async fn room_by_id(&self, id: RoomId) -> StoreResult<Option<RoomRecord>> {
        decode_found::<RoomRow>(self.rooms.find_one(doc! { "_id": id.to_string() }).await)
    }

    async fn direct_room(&self, key: &str) -> StoreResult<Option<RoomRecord>> {
        decode_found::<RoomRow>(self.rooms.find_one(doc! { "direct_key": key }).await)
    }

    async fn update_room(&self, id: RoomId, patch: &RoomPatch) -> StoreResult<RoomRecord> {
        let mut set = Document::new();
        if let Some(name) = &patch.name {
            set.insert("name", name.as_str());
            set.insert("name_key", name.to_lowercase());
        }
        if let Some(topic) = &patch.topic {
            set.insert("topic", topic.as_str());
        }
        if let Some(archived) = patch.archived {
            set.insert("archived", archived);
        }
        let filter = doc! { "_id": id.to_string() };
        let found = if set.is_empty() {
            self.rooms.find_one(filter).await
        } else {
            self.rooms
                .find_one_and_update(filter, doc! { "$set": set })
                .return_document(ReturnDocument::After)
                .await
        };
        decode_found::<RoomRow>(found)?.ok_or(StoreError::NotFound("room"))
    }

    async fn delete_room(&self, id: RoomId) -> StoreResult<()> {
        let id = id.to_string();
        // The room goes first, so add_member can no longer attach anything to it.
        let deleted = self
            .rooms
            .delete_one(doc! { "_id": &id })
            .await
            .or_unavailable("deleting room")?;
        if deleted.deleted_count == 0 {
            return Err(StoreError::NotFound("room"));
        }
        self.seq_hints.forget(&id);
        let by_room = doc! { "room_id": &id };
        for collection in [&self.memberships, &self.messages, &self.read_markers] {
            collection
                .delete_many(by_room.clone())
                .await
                .or_unavailable("deleting room contents")?;
        }
        Ok(())
    }

    async fn list_rooms(&self, query: &RoomQuery) -> StoreResult<Page<RoomRecord>> {
        let mut filter = Document::new();
        if let Some(kind) = query.kind {
            filter.insert("kind", kind.as_str());
        }
        if !query.include_archived {
            filter.insert("archived", false);
        }
        if let Some(text) = &query.search {
            filter.extend(contains_any(&["name_key"], text));
        }
        page::<RoomRow>(
            &self.rooms,
            filter,
            doc! { "name_key": 1, "_id": 1 },
            query.offset,
            query.limit,
        )
        .await
    }

    async fn count_rooms(&self) -> StoreResult<u64> {
        self.rooms
            .count_documents(Document::new())
            .await
            .or_unavailable("counting rooms")
    }

    async fn add_member(&self, member: &MembershipRecord) -> StoreResult<()> {
        let room_id = member.room_id.to_string();
        if !self.room_exists(&room_id).await? {
            return Err(StoreError::NotFound("room"));
        }
        let doc = encode(&MembershipRow::from_record(member), "membership")?;
        self.memberships
            .insert_one(doc)
            .await
            .or_duplicate("adding member", |_| "membership")?;
        // The room may have been deleted between the check and the insert: do not leave an orphan.
        if !self.room_exists(&room_id).await? {
            let filter = doc! { "room_id": &room_id, "user_id": member.user_id.to_string() };
            self.memberships
                .delete_one(filter)
                .await
                .or_unavailable("removing orphan membership")?;
            return Err(StoreError::NotFound("room"));
        }
        Ok(())
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<()> {
        let removed = self
            .memberships
            .delete_one(doc! { "room_id": room.to_string(), "user_id": user.to_string() })
            .await
            .or_unavailable("removing member")?;
        if removed.deleted_count == 0 {
            return Err(StoreError::NotFound("membership"));
        }
        Ok(())
    }

    async fn membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> StoreResult<Option<MembershipRecord>> {
        let filter = doc! { "room_id": room.to_string(), "user_id": user.to_string() };
        decode_found::<MembershipRow>(self.memberships.find_one(filter).await)
    }

    async fn list_members(&self, room: RoomId) -> StoreResult<Vec<MembershipRecord>> {
        collect::<MembershipRow>(
            self.memberships
                .find(doc! { "room_id": room.to_string() })
                .sort(doc! { "joined_at": 1, "user_id": 1 })
                .await,
        )
        .await
    }

    async fn rooms_of_user(&self, user: UserId) -> StoreResult<Vec<RoomRecord>> {
        let memberships = collect::<MembershipRow>(
            self.memberships
                .find(doc! { "user_id": user.to_string() })
                .await,
        )
        .await?;
        if memberships.is_empty() {
            return Ok(Vec::new());
        }
        let room_ids: Vec<String> = memberships.iter().map(|m| m.room_id.to_string()).collect();
        collect::<RoomRow>(
            self.rooms
                .find(doc! { "_id": { "$in": room_ids } })
                .sort(doc! { "name_key": 1, "_id": 1 })
                .await,
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------------------------
// Messages

#[async_trait]
impl MessageStore for MongoStore {
    /// Gap-free sequences without a counter: each attempt inserts `max(seq) + 1`, and the unique
    /// (room, seq) index lets exactly one concurrent writer (of any process) win; the others re-read and
    /// retry. A sequence number is only ever consumed by a successful insert, so none is ever skipped.
    async fn append_message(&self, message: &NewMessage) -> StoreResult<Appended> {
        let room = message.room_id.to_string();
        let author = message.author_id.to_string();
        let by_nonce = doc! { "room_id": &room, "author_id": &author, "nonce": &message.nonce };
        if let Some(existing) = self.message_by_nonce(&by_nonce).await? {
            return Ok(Appended {
                message: existing,
                created: false,
            });
        }
        let _room_lock = self.append_locks.lock(&room).await;
        // Holding the room lock, this process's own hint is usually exact: try the next number straight
        // away and only ask the server once a clash shows another instance got there first.
        let mut next = match self.seq_hints.get(&room) {
            0 => self.max_seq(&room).await? + 1,
            hint => hint + 1,
        };
        for attempt in 0..APPEND_ATTEMPTS {
            if attempt >= 3 {
                let spread = 2 + u64::from(attempt.min(20));
                tokio::time::sleep(Duration::from_millis(jitter(spread))).await;
            }
            let row = MessageRow {
                id: MessageId::new().to_string(),
                room_id: room.clone(),
                seq: next,
                author_id: author.clone(),
                body: message.body.clone(),
                nonce: message.nonce.clone(),
                created_at: message.created_at.millis(),
                edited_at: None,
                deleted_at: None,
            };
            let doc = encode(&row, "message")?;
            let err = match self.messages_durable.insert_one(doc).await {
                Ok(_) => {
                    self.seq_hints.raise(&room, row.seq);
                    return Ok(Appended {
                        message: row.into_record()?,
                        created: true,
                    });
                }
                Err(err) => err,
            };
            let Some(clash) = duplicate_key_message(&err) else {
                return Err(store_error("appending message", &err));
            };
            if clashing_index(clash) == Some(SEQ_INDEX) {
                next = self.max_seq(&room).await? + 1;
                continue;
            }
            // The nonce index (or a clash we cannot name): a concurrent call with this nonce may have won.
            if let Some(existing) = self.message_by_nonce(&by_nonce).await? {
                return Ok(Appended {
                    message: existing,
                    created: false,
                });
            }
        }
        Err(StoreError::Unavailable(format!(
            "appending message: no free sequence after {APPEND_ATTEMPTS} attempts"
        )))
    }

    async fn message_by_id(&self, id: MessageId) -> StoreResult<Option<MessageRecord>> {
        decode_found::<MessageRow>(self.messages.find_one(doc! { "_id": id.to_string() }).await)
    }

    async fn history(&self, room: RoomId, query: HistoryQuery) -> StoreResult<Vec<MessageRecord>> {
        let mut filter = doc! { "room_id": room.to_string() };
        let mut range = Document::new();
        if let Some(before) = query.before {
            range.insert("$lt", seq_to_db(before));
        }
        if let Some(after) = query.after {
            range.insert("$gt", seq_to_db(after));
        }
        if !range.is_empty() {
            filter.insert("seq", range);
        }
        // With `after`, the oldest matches come first; otherwise the newest, read backwards.
        let oldest_first = query.after.is_some();
        let mut messages = collect::<MessageRow>(
            self.messages
                .find(filter)
                .sort(doc! { "seq": if oldest_first { 1 } else { -1 } })
                .limit(i64::from(clamp_limit(query.limit)))
                .await,
        )
        .await?;
        if !oldest_first {
            messages.reverse();
        }
        Ok(messages)
    }

    async fn edit_message(
        &self,
        id: MessageId,
        body: &str,
        at: Timestamp,
    ) -> StoreResult<MessageRecord> {
        self.update_message(id, doc! { "body": body, "edited_at": at.millis() })
            .await
    }

    async fn delete_message(&self, id: MessageId, at: Timestamp) -> StoreResult<MessageRecord> {
        self.update_message(id, doc! { "body": "", "deleted_at": at.millis() })
            .await
    }

    async fn last_seq(&self, room: RoomId) -> StoreResult<u64> {
        seq_from_db(self.max_seq(&room.to_string()).await?)
    }

    async fn message_stats(&self, since: Timestamp) -> StoreResult<MessageStats> {
        let count = |filter: Document| async {
            self.messages
                .count_documents(filter)
                .await
                .or_unavailable("counting messages")
        };
        Ok(MessageStats {
            total: count(Document::new()).await?,
            since: count(doc! { "created_at": { "$gte": since.millis() } }).await?,
        })
    }
}

impl MongoStore {
    async fn update_message(&self, id: MessageId, set: Document) -> StoreResult<MessageRecord> {
        let updated = self
            .messages_durable
            .find_one_and_update(doc! { "_id": id.to_string() }, doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await;
        decode_found::<MessageRow>(updated)?.ok_or(StoreError::NotFound("message"))
    }
}

// ---------------------------------------------------------------------------------------------------------
// Read markers

#[async_trait]
impl ReadMarkerStore for MongoStore {
    async fn mark_read(&self, user: UserId, room: RoomId, seq: u64) -> StoreResult<u64> {
        let filter = doc! { "user_id": user.to_string(), "room_id": room.to_string() };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let marked = self
                .read_markers
                .find_one_and_update(filter.clone(), doc! { "$max": { "seq": seq_to_db(seq) } })
                .upsert(true)
                .return_document(ReturnDocument::After)
                .await;
            match marked {
                Ok(Some(doc)) => return decode::<ReadMarkerRow>(doc).map(|marker| marker.seq),
                Ok(None) => {
                    return Err(StoreError::Unavailable(
                        "marking read: upsert returned no document".into(),
                    ))
                }
                // Two first marks raced to insert the marker; the next try updates the winner's.
                Err(err) if duplicate_key_message(&err).is_some() && attempt < 3 => continue,
                Err(err) => return Err(store_error("marking read", &err)),
            }
        }
    }

    async fn read_marker(&self, user: UserId, room: RoomId) -> StoreResult<u64> {
        let filter = doc! { "user_id": user.to_string(), "room_id": room.to_string() };
        let marker = decode_found::<ReadMarkerRow>(self.read_markers.find_one(filter).await)?;
        Ok(marker.map_or(0, |m| m.seq))
    }

    async fn read_markers(&self, user: UserId) -> StoreResult<Vec<ReadMarker>> {
        collect::<ReadMarkerRow>(
            self.read_markers
                .find(doc! { "user_id": user.to_string() })
                .sort(doc! { "room_id": 1 })
                .await,
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------------------------
// Audit log

#[async_trait]
impl AuditStore for MongoStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let doc = encode(&AuditRow::from_record(entry), "audit entry")?;
        self.audit
            .insert_one(doc)
            .await
            .or_duplicate("appending audit entry", |_| "audit entry")?;
        Ok(())
    }

    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Page<AuditEntry>> {
        let mut filter = Document::new();
        if let Some(actor) = &query.actor {
            filter.insert("actor_key", actor.to_lowercase());
        }
        if let Some(action) = &query.action {
            filter.insert("action", action.as_str());
        }
        page::<AuditRow>(
            &self.audit,
            filter,
            doc! { "at": -1, "_id": -1 },
            query.offset,
            query.limit,
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------------------------

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_metacharacters_match_only_themselves() {
        assert_eq!(escape_regex("a.b*c"), r"a\.b\*c");
        assert_eq!(escape_regex("(x|y)$"), r"\(x\|y\)\$");
        assert_eq!(escape_regex("plain"), "plain");
        assert_eq!(escape_regex("a\0b"), r"a\x00b");
    }

    #[test]
    fn the_clashing_index_is_read_from_the_server_message() {
        let message =
            "E11000 duplicate key error collection: chat.messages index: room_seq_unique \
                       dup key: { room_id: \"r\", seq: 1 }";
        assert_eq!(clashing_index(message), Some(SEQ_INDEX));
        assert_eq!(clashing_index("E11000 something else"), None);
    }

    #[test]
    fn search_text_is_a_literal_not_an_operator() {
        let filter = contains_any(&["username_key"], "{\"$ne\": 1}");
        let alternatives = filter.get_array("$or").unwrap();
        let first = alternatives[0].as_document().unwrap();
        let regex = first.get_document("username_key").unwrap();
        assert_eq!(regex.get_str("$regex").unwrap(), r#"\{"\$ne": 1\}"#);
    }

    #[test]
    fn huge_sequences_saturate() {
        assert_eq!(seq_to_db(u64::MAX), i64::MAX);
        assert_eq!(seq_to_db(7), 7);
        assert!(seq_from_db(-1).is_err());
    }
}
