//! Embedded driver: one redb file in `DATA_DIR`, the zero-setup default store.
//!
//! redb gives crash-safe, copy-on-write transactions with a single writer. All writes go through one writer
//! thread that **group-commits**: every write waiting when a transaction starts joins it, the batch is made
//! durable with one commit, and only then is each caller answered. One durable commit per batch instead of
//! per write is what lets the store keep up with a busy chat while acknowledging nothing that is not on
//! disk. Because a single thread owns every write, per-room sequence numbers are trivially gap-free.
//!
//! Invariant for write operations: an operation that fails with a *domain* error (duplicate, not found)
//! must fail before it writes anything, since it shares its transaction with others. A storage error
//! aborts the whole batch and every caller in it gets the error.
//!
//! Values are JSON rows private to this module; keys are the ids' text forms or tuples of them.

use super::*;
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "mlchat.redb";
/// How many queued writes one commit may carry at most.
const MAX_BATCH: usize = 512;

// Tables. `&[u8]` values are JSON rows.
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const USERNAMES: TableDefinition<&str, &str> = TableDefinition::new("usernames");
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
const REFRESH_CURRENT: TableDefinition<&str, &str> = TableDefinition::new("refresh_current");
const REFRESH_SPENT: TableDefinition<&str, &str> = TableDefinition::new("refresh_spent");
const USER_SESSIONS: TableDefinition<(&str, &str), ()> = TableDefinition::new("user_sessions");
const ROOMS: TableDefinition<&str, &[u8]> = TableDefinition::new("rooms");
const ROOM_NAMES: TableDefinition<(&str, &str), ()> = TableDefinition::new("room_names");
const DIRECT_ROOMS: TableDefinition<&str, &str> = TableDefinition::new("direct_rooms");
const MEMBERS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("members");
const USER_ROOMS: TableDefinition<(&str, &str), ()> = TableDefinition::new("user_rooms");
const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
const MESSAGE_IDS: TableDefinition<&str, (&str, u64)> = TableDefinition::new("message_ids");
const MESSAGE_TIMES: TableDefinition<(i64, &str), ()> = TableDefinition::new("message_times");
const NONCES: TableDefinition<(&str, &str, &str), u64> = TableDefinition::new("nonces");
const ROOM_SEQ: TableDefinition<&str, u64> = TableDefinition::new("room_seq");
const READ_MARKERS: TableDefinition<(&str, &str), u64> = TableDefinition::new("read_markers");
const AUDIT: TableDefinition<(i64, &str), &[u8]> = TableDefinition::new("audit");

/// Upper bound for prefix scans over id text (ids are lowercase hex and `-`, all below `~`).
const MAX_ID: &str = "~";

/// A queued write: run it inside the batch's transaction, or fail it without running.
trait WriteJob: Send {
    /// Runs the operation and returns how to answer once the batch's commit outcome is known, and
    /// whether the operation hit a storage fault (which aborts the batch).
    fn run(self: Box<Self>, txn: &WriteTransaction) -> (Completion, bool);
    fn fail(self: Box<Self>, error: StoreError);
}

type Completion = Box<dyn FnOnce(StoreResult<()>) + Send>;

struct Op<F, T> {
    op: F,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<F, T> WriteJob for Op<F, T>
where
    T: Send + 'static,
    F: FnOnce(&WriteTransaction) -> StoreResult<T> + Send + 'static,
{
    fn run(self: Box<Self>, txn: &WriteTransaction) -> (Completion, bool) {
        let Op { op, reply } = *self;
        let result = op(txn);
        let fatal = matches!(
            result,
            Err(StoreError::Unavailable(_) | StoreError::Corrupt(_))
        );
        let completion: Completion = Box::new(move |committed| {
            let _ = reply.send(committed.and(result));
        });
        (completion, fatal)
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

type Job = Box<dyn WriteJob>;

pub struct EmbeddedStore {
    db: Arc<Database>,
    jobs: mpsc::Sender<Job>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `data_dir`.
    pub async fn open(data_dir: PathBuf) -> StoreResult<Self> {
        tokio::task::spawn_blocking(move || Self::open_blocking(&data_dir))
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening the embedded store: {e}")))?
    }

    fn open_blocking(data_dir: &std::path::Path) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(DB_FILE);
        let db = Database::create(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        create_tables(&db)?;
        let db = Arc::new(db);
        let (jobs, queue) = mpsc::channel::<Job>(4 * MAX_BATCH);
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run_writer(&writer_db, queue))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            db,
            jobs,
            writer: Some(writer),
        })
    }

    /// Finishes queued writes and releases the database file, so it can be opened again, without
    /// blocking the async runtime while the last batch commits.
    pub async fn close(self) {
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }

    /// Runs `op` inside the next group commit and answers once the batch is durable.
    async fn write<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(Op { op, reply });
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the store writer stopped".into()))?
    }

    /// Runs a point lookup (a few keys, no scan) on a read snapshot right here. These take microseconds
    /// from redb's page cache; sending each to the blocking pool cost more in thread hand-offs than the
    /// read itself (profile of the fan-out benchmark).
    async fn get<T, F>(&self, op: F) -> StoreResult<T>
    where
        F: FnOnce(&ReadTransaction) -> StoreResult<T>,
    {
        let txn = self.db.begin_read().map_err(unavailable)?;
        op(&txn)
    }

    /// Runs `op` (a scan, or anything that may touch many pages) on a read snapshot, off the async runtime.
    async fn read<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> StoreResult<T> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(unavailable)?;
            op(&txn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }
}

/// The writer thread holds the database too: dropping the store ends the queue and waits for the thread
/// (at most one batch commit), so the file is released when the store is — `server admin` or a
/// restart may open it right after the server stops.
impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // Dropping the sender ends the writer's loop; a closed stand-in takes its place in the field.
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.jobs, closed));
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn create_tables(db: &Database) -> StoreResult<()> {
    let txn = db.begin_write().map_err(unavailable)?;
    {
        txn.open_table(USERS).map_err(unavailable)?;
        txn.open_table(USERNAMES).map_err(unavailable)?;
        txn.open_table(SESSIONS).map_err(unavailable)?;
        txn.open_table(REFRESH_CURRENT).map_err(unavailable)?;
        txn.open_table(REFRESH_SPENT).map_err(unavailable)?;
        txn.open_table(USER_SESSIONS).map_err(unavailable)?;
        txn.open_table(ROOMS).map_err(unavailable)?;
        txn.open_table(ROOM_NAMES).map_err(unavailable)?;
        txn.open_table(DIRECT_ROOMS).map_err(unavailable)?;
        txn.open_table(MEMBERS).map_err(unavailable)?;
        txn.open_table(USER_ROOMS).map_err(unavailable)?;
        txn.open_table(MESSAGES).map_err(unavailable)?;
        txn.open_table(MESSAGE_IDS).map_err(unavailable)?;
        txn.open_table(MESSAGE_TIMES).map_err(unavailable)?;
        txn.open_table(NONCES).map_err(unavailable)?;
        txn.open_table(ROOM_SEQ).map_err(unavailable)?;
        txn.open_table(READ_MARKERS).map_err(unavailable)?;
        txn.open_table(AUDIT).map_err(unavailable)?;
    }
    txn.commit().map_err(unavailable)
}

/// The writer loop: take what is queued, run it in one transaction, commit once, answer everyone.
fn run_writer(db: &Database, mut queue: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(db, &mut batch);
    }
}

fn commit_batch(db: &Database, batch: &mut Vec<Job>) {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => {
            let error = unavailable(e);
            for job in batch.drain(..) {
                job.fail(error.clone());
            }
            return;
        }
    };
    let mut completions = Vec::with_capacity(batch.len());
    let mut fatal = None;
    let mut jobs = batch.drain(..);
    for job in jobs.by_ref() {
        let (completion, is_fatal) = job.run(&txn);
        completions.push(completion);
        if is_fatal {
            fatal = Some(StoreError::Unavailable(
                "a write in the same batch failed".into(),
            ));
            break;
        }
    }
    // Writes queued behind a fault never ran; they fail with the batch.
    for job in jobs {
        job.fail(StoreError::Unavailable(
            "a write in the same batch failed".into(),
        ));
    }
    let outcome = match fatal {
        Some(error) => {
            let _ = txn.abort();
            Err(error)
        }
        None => txn.commit().map_err(unavailable),
    };
    if let Err(error) = &outcome {
        tracing::error!(%error, writes = completions.len(), "embedded store batch failed");
    }
    for completion in completions {
        completion(outcome.clone());
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn encode<T: Serialize>(row: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(row).map_err(|e| StoreError::Corrupt(format!("encoding a row: {e}")))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("decoding a row: {e}")))
}

/// Reads and decodes one JSON row.
fn get_row<T, Tab>(table: &Tab, key: &str) -> StoreResult<Option<T>>
where
    T: DeserializeOwned,
    Tab: ReadableTable<&'static str, &'static [u8]>,
{
    match table.get(key).map_err(unavailable)? {
        Some(guard) => decode(guard.value()).map(Some),
        None => Ok(None),
    }
}

fn parse_id<T: std::str::FromStr>(text: &str) -> StoreResult<T> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad id {text:?}")))
}

fn contains_ci(haystack: &str, needle_lower: &str) -> bool {
    haystack.to_lowercase().contains(needle_lower)
}

/// Applies offset/limit to an already filtered and ordered list.
fn paginate<T>(items: Vec<T>, offset: u64, limit: u32) -> Page<T> {
    let total = items.len() as u64;
    let items = items
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(clamp_limit(limit) as usize)
        .collect();
    Page { items, total }
}

// ---------------------------------------------------------------------------------------------------------
// Rows

#[derive(Serialize, Deserialize)]
struct UserRow {
    id: UserId,
    username: String,
    display_name: String,
    password_hash: String,
    role: Role,
    disabled: bool,
    #[serde(default)]
    must_change_password: bool,
    created_at: Timestamp,
    last_seen_at: Option<Timestamp>,
}

impl From<&UserRecord> for UserRow {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            password_hash: u.password_hash.clone(),
            role: u.role,
            disabled: u.disabled,
            must_change_password: u.must_change_password,
            created_at: u.created_at,
            last_seen_at: u.last_seen_at,
        }
    }
}

impl From<UserRow> for UserRecord {
    fn from(u: UserRow) -> Self {
        Self {
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            password_hash: u.password_hash,
            role: u.role,
            disabled: u.disabled,
            must_change_password: u.must_change_password,
            created_at: u.created_at,
            last_seen_at: u.last_seen_at,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct SessionRow {
    id: SessionId,
    user_id: UserId,
    refresh_hash: String,
    created_at: Timestamp,
    last_used_at: Timestamp,
    expires_at: Timestamp,
    revoked_at: Option<Timestamp>,
    user_agent: String,
    ip: String,
}

impl From<&SessionRecord> for SessionRow {
    fn from(s: &SessionRecord) -> Self {
        Self {
            id: s.id,
            user_id: s.user_id,
            refresh_hash: s.refresh_hash.clone(),
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            revoked_at: s.revoked_at,
            user_agent: s.user_agent.clone(),
            ip: s.ip.clone(),
        }
    }
}

impl From<SessionRow> for SessionRecord {
    fn from(s: SessionRow) -> Self {
        Self {
            id: s.id,
            user_id: s.user_id,
            refresh_hash: s.refresh_hash,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            revoked_at: s.revoked_at,
            user_agent: s.user_agent,
            ip: s.ip,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct RoomRow {
    id: RoomId,
    kind: RoomKind,
    name: String,
    topic: String,
    created_by: UserId,
    created_at: Timestamp,
    archived: bool,
    direct_key: Option<String>,
}

impl From<&RoomRecord> for RoomRow {
    fn from(r: &RoomRecord) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            name: r.name.clone(),
            topic: r.topic.clone(),
            created_by: r.created_by,
            created_at: r.created_at,
            archived: r.archived,
            direct_key: r.direct_key.clone(),
        }
    }
}

impl From<RoomRow> for RoomRecord {
    fn from(r: RoomRow) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            name: r.name,
            topic: r.topic,
            created_by: r.created_by,
            created_at: r.created_at,
            archived: r.archived,
            direct_key: r.direct_key,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct MemberRow {
    room_id: RoomId,
    user_id: UserId,
    role: MemberRole,
    joined_at: Timestamp,
}

impl From<&MembershipRecord> for MemberRow {
    fn from(m: &MembershipRecord) -> Self {
        Self {
            room_id: m.room_id,
            user_id: m.user_id,
            role: m.role,
            joined_at: m.joined_at,
        }
    }
}

impl From<MemberRow> for MembershipRecord {
    fn from(m: MemberRow) -> Self {
        Self {
            room_id: m.room_id,
            user_id: m.user_id,
            role: m.role,
            joined_at: m.joined_at,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct MessageRow {
    id: MessageId,
    room_id: RoomId,
    seq: u64,
    author_id: UserId,
    body: String,
    nonce: String,
    created_at: Timestamp,
    edited_at: Option<Timestamp>,
    deleted_at: Option<Timestamp>,
}

impl From<&MessageRecord> for MessageRow {
    fn from(m: &MessageRecord) -> Self {
        Self {
            id: m.id,
            room_id: m.room_id,
            seq: m.seq,
            author_id: m.author_id,
            body: m.body.clone(),
            nonce: m.nonce.clone(),
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted_at: m.deleted_at,
        }
    }
}

impl From<MessageRow> for MessageRecord {
    fn from(m: MessageRow) -> Self {
        Self {
            id: m.id,
            room_id: m.room_id,
            seq: m.seq,
            author_id: m.author_id,
            body: m.body,
            nonce: m.nonce,
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted_at: m.deleted_at,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct AuditRow {
    id: AuditId,
    at: Timestamp,
    actor_id: Option<UserId>,
    actor_name: String,
    action: String,
    target: String,
    ip: String,
    details: String,
}

impl From<&AuditEntry> for AuditRow {
    fn from(a: &AuditEntry) -> Self {
        Self {
            id: a.id,
            at: a.at,
            actor_id: a.actor_id,
            actor_name: a.actor_name.clone(),
            action: a.action.clone(),
            target: a.target.clone(),
            ip: a.ip.clone(),
            details: a.details.clone(),
        }
    }
}

impl From<AuditRow> for AuditEntry {
    fn from(a: AuditRow) -> Self {
        Self {
            id: a.id,
            at: a.at,
            actor_id: a.actor_id,
            actor_name: a.actor_name,
            action: a.action,
            target: a.target,
            ip: a.ip,
            details: a.details,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Users

fn load_user<T: ReadableTable<&'static str, &'static [u8]>>(
    users: &T,
    id: &str,
) -> StoreResult<Option<UserRecord>> {
    Ok(get_row::<UserRow, _>(users, id)?.map(Into::into))
}

#[async_trait]
impl UserStore for EmbeddedStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let row = encode(&UserRow::from(user))?;
        let id = user.id.to_string();
        let key = username_key(&user.username);
        self.write(move |txn| {
            let mut names = txn.open_table(USERNAMES).map_err(unavailable)?;
            if names.get(key.as_str()).map_err(unavailable)?.is_some() {
                return Err(StoreError::Duplicate("username"));
            }
            let mut users = txn.open_table(USERS).map_err(unavailable)?;
            if users.get(id.as_str()).map_err(unavailable)?.is_some() {
                return Err(StoreError::Duplicate("user"));
            }
            names
                .insert(key.as_str(), id.as_str())
                .map_err(unavailable)?;
            users
                .insert(id.as_str(), row.as_slice())
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        self.get(move |txn| {
            let users = txn.open_table(USERS).map_err(unavailable)?;
            load_user(&users, &id.to_string())
        })
        .await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let key = username_key(username);
        self.get(move |txn| {
            let names = txn.open_table(USERNAMES).map_err(unavailable)?;
            let Some(id) = names.get(key.as_str()).map_err(unavailable)? else {
                return Ok(None);
            };
            let users = txn.open_table(USERS).map_err(unavailable)?;
            load_user(&users, id.value())
        })
        .await
    }

    async fn update_user(&self, id: UserId, patch: &UserPatch) -> StoreResult<UserRecord> {
        let patch = patch.clone();
        self.write(move |txn| {
            let mut users = txn.open_table(USERS).map_err(unavailable)?;
            let key = id.to_string();
            let mut user = load_user(&users, &key)?.ok_or(StoreError::NotFound("user"))?;
            if let Some(v) = patch.display_name {
                user.display_name = v;
            }
            if let Some(v) = patch.password_hash {
                user.password_hash = v;
            }
            if let Some(v) = patch.role {
                user.role = v;
            }
            if let Some(v) = patch.disabled {
                user.disabled = v;
            }
            if let Some(v) = patch.must_change_password {
                user.must_change_password = v;
            }
            if let Some(v) = patch.last_seen_at {
                user.last_seen_at = Some(v);
            }
            let row = encode(&UserRow::from(&user))?;
            users
                .insert(key.as_str(), row.as_slice())
                .map_err(unavailable)?;
            Ok(user)
        })
        .await
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<Page<UserRecord>> {
        let query = query.clone();
        self.read(move |txn| {
            let names = txn.open_table(USERNAMES).map_err(unavailable)?;
            let users = txn.open_table(USERS).map_err(unavailable)?;
            let needle = query.search.as_deref().map(str::to_lowercase);
            let mut matches = Vec::new();
            for entry in names.iter().map_err(unavailable)? {
                let (_, id) = entry.map_err(unavailable)?;
                let user = load_user(&users, id.value())?
                    .ok_or_else(|| StoreError::Corrupt("username index points nowhere".into()))?;
                let keep = needle.as_deref().is_none_or(|n| {
                    contains_ci(&user.username, n) || contains_ci(&user.display_name, n)
                });
                if keep {
                    matches.push(user);
                }
            }
            Ok(paginate(matches, query.offset, query.limit))
        })
        .await
    }

    async fn user_stats(&self) -> StoreResult<UserStats> {
        self.read(|txn| {
            let users = txn.open_table(USERS).map_err(unavailable)?;
            let mut stats = UserStats::default();
            for entry in users.iter().map_err(unavailable)? {
                let (_, row) = entry.map_err(unavailable)?;
                let user: UserRow = decode(row.value())?;
                stats.total += 1;
                stats.disabled += u64::from(user.disabled);
                stats.admins += u64::from(user.role == Role::Admin && !user.disabled);
            }
            Ok(stats)
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------------------
// Sessions

fn load_session<T: ReadableTable<&'static str, &'static [u8]>>(
    sessions: &T,
    id: &str,
) -> StoreResult<Option<SessionRecord>> {
    Ok(get_row::<SessionRow, _>(sessions, id)?.map(Into::into))
}

fn put_session(txn: &WriteTransaction, session: &SessionRecord) -> StoreResult<()> {
    let row = encode(&SessionRow::from(session))?;
    let mut sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
    sessions
        .insert(session.id.to_string().as_str(), row.as_slice())
        .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl SessionStore for EmbeddedStore {
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let session = session.clone();
        self.write(move |txn| {
            let id = session.id.to_string();
            let user = session.user_id.to_string();
            {
                let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
                let current = txn.open_table(REFRESH_CURRENT).map_err(unavailable)?;
                if sessions.get(id.as_str()).map_err(unavailable)?.is_some()
                    || current
                        .get(session.refresh_hash.as_str())
                        .map_err(unavailable)?
                        .is_some()
                {
                    return Err(StoreError::Duplicate("session"));
                }
            }
            put_session(txn, &session)?;
            let mut current = txn.open_table(REFRESH_CURRENT).map_err(unavailable)?;
            current
                .insert(session.refresh_hash.as_str(), id.as_str())
                .map_err(unavailable)?;
            let mut by_user = txn.open_table(USER_SESSIONS).map_err(unavailable)?;
            by_user
                .insert((user.as_str(), id.as_str()), ())
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn session_by_id(&self, id: SessionId) -> StoreResult<Option<SessionRecord>> {
        self.get(move |txn| {
            let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
            load_session(&sessions, &id.to_string())
        })
        .await
    }

    async fn find_refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshLookup>> {
        let hash = token_hash.to_owned();
        self.read(move |txn| {
            let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
            let current = txn.open_table(REFRESH_CURRENT).map_err(unavailable)?;
            if let Some(id) = current.get(hash.as_str()).map_err(unavailable)? {
                return Ok(load_session(&sessions, id.value())?.map(RefreshLookup::Current));
            }
            let spent = txn.open_table(REFRESH_SPENT).map_err(unavailable)?;
            if let Some(id) = spent.get(hash.as_str()).map_err(unavailable)? {
                return Ok(load_session(&sessions, id.value())?.map(RefreshLookup::Spent));
            }
            Ok(None)
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        id: SessionId,
        old_hash: &str,
        new_hash: &str,
        used_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<bool> {
        let (old_hash, new_hash) = (old_hash.to_owned(), new_hash.to_owned());
        self.write(move |txn| {
            let key = id.to_string();
            let session = {
                let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
                load_session(&sessions, &key)?
            };
            let Some(mut session) = session else {
                return Ok(false);
            };
            if session.refresh_hash != old_hash || session.revoked_at.is_some() {
                return Ok(false);
            }
            let mut current = txn.open_table(REFRESH_CURRENT).map_err(unavailable)?;
            if current
                .get(new_hash.as_str())
                .map_err(unavailable)?
                .is_some()
            {
                return Err(StoreError::Duplicate("session"));
            }
            current.remove(old_hash.as_str()).map_err(unavailable)?;
            current
                .insert(new_hash.as_str(), key.as_str())
                .map_err(unavailable)?;
            let mut spent = txn.open_table(REFRESH_SPENT).map_err(unavailable)?;
            spent
                .insert(old_hash.as_str(), key.as_str())
                .map_err(unavailable)?;
            session.refresh_hash = new_hash;
            session.last_used_at = used_at;
            session.expires_at = expires_at;
            put_session(txn, &session)?;
            Ok(true)
        })
        .await
    }

    async fn revoke_session(&self, id: SessionId, at: Timestamp) -> StoreResult<()> {
        self.write(move |txn| {
            let session = {
                let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
                load_session(&sessions, &id.to_string())?
            };
            let mut session = session.ok_or(StoreError::NotFound("session"))?;
            if session.revoked_at.is_none() {
                session.revoked_at = Some(at);
                put_session(txn, &session)?;
            }
            Ok(())
        })
        .await
    }

    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        at: Timestamp,
    ) -> StoreResult<u64> {
        self.write(move |txn| {
            let user = user_id.to_string();
            let mut live = Vec::new();
            {
                let by_user = txn.open_table(USER_SESSIONS).map_err(unavailable)?;
                let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
                for entry in by_user
                    .range((user.as_str(), "")..(user.as_str(), MAX_ID))
                    .map_err(unavailable)?
                {
                    let (key, _) = entry.map_err(unavailable)?;
                    let (_, session_id) = key.value();
                    if let Some(session) = load_session(&sessions, session_id)? {
                        if session.revoked_at.is_none() && Some(session.id) != except {
                            live.push(session);
                        }
                    }
                }
            }
            for session in &mut live {
                session.revoked_at = Some(at);
                put_session(txn, session)?;
            }
            Ok(live.len() as u64)
        })
        .await
    }

    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.read(move |txn| {
            let user = user_id.to_string();
            let by_user = txn.open_table(USER_SESSIONS).map_err(unavailable)?;
            let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
            let mut live = Vec::new();
            for entry in by_user
                .range((user.as_str(), "")..(user.as_str(), MAX_ID))
                .map_err(unavailable)?
            {
                let (key, _) = entry.map_err(unavailable)?;
                if let Some(session) = load_session(&sessions, key.value().1)? {
                    if session.revoked_at.is_none() && session.expires_at > now {
                        live.push(session);
                    }
                }
            }
            live.sort_by(|a, b| b.last_used_at.cmp(&a.last_used_at).then(a.id.cmp(&b.id)));
            Ok(live)
        })
        .await
    }

    async fn purge_expired_sessions(&self, before: Timestamp) -> StoreResult<u64> {
        self.write(move |txn| {
            let mut expired = Vec::new();
            {
                let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
                for entry in sessions.iter().map_err(unavailable)? {
                    let (_, row) = entry.map_err(unavailable)?;
                    let session: SessionRow = decode(row.value())?;
                    if session.expires_at < before {
                        expired.push(SessionRecord::from(session));
                    }
                }
            }
            if expired.is_empty() {
                return Ok(0);
            }
            let ids: std::collections::HashSet<String> =
                expired.iter().map(|s| s.id.to_string()).collect();
            let mut sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
            let mut current = txn.open_table(REFRESH_CURRENT).map_err(unavailable)?;
            let mut by_user = txn.open_table(USER_SESSIONS).map_err(unavailable)?;
            for session in &expired {
                let id = session.id.to_string();
                sessions.remove(id.as_str()).map_err(unavailable)?;
                current
                    .remove(session.refresh_hash.as_str())
                    .map_err(unavailable)?;
                by_user
                    .remove((session.user_id.to_string().as_str(), id.as_str()))
                    .map_err(unavailable)?;
            }
            let mut spent = txn.open_table(REFRESH_SPENT).map_err(unavailable)?;
            spent
                .retain(|_, session_id| !ids.contains(session_id))
                .map_err(unavailable)?;
            Ok(expired.len() as u64)
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------------------
// Rooms and memberships

fn load_room<T: ReadableTable<&'static str, &'static [u8]>>(
    rooms: &T,
    id: &str,
) -> StoreResult<Option<RoomRecord>> {
    Ok(get_row::<RoomRow, _>(rooms, id)?.map(Into::into))
}

fn put_room(txn: &WriteTransaction, room: &RoomRecord) -> StoreResult<()> {
    let row = encode(&RoomRow::from(room))?;
    let mut rooms = txn.open_table(ROOMS).map_err(unavailable)?;
    rooms
        .insert(room.id.to_string().as_str(), row.as_slice())
        .map_err(unavailable)?;
    Ok(())
}

fn put_member(txn: &WriteTransaction, member: &MembershipRecord) -> StoreResult<()> {
    let (room, user) = (member.room_id.to_string(), member.user_id.to_string());
    let row = encode(&MemberRow::from(member))?;
    let mut members = txn.open_table(MEMBERS).map_err(unavailable)?;
    members
        .insert((room.as_str(), user.as_str()), row.as_slice())
        .map_err(unavailable)?;
    let mut user_rooms = txn.open_table(USER_ROOMS).map_err(unavailable)?;
    user_rooms
        .insert((user.as_str(), room.as_str()), ())
        .map_err(unavailable)?;
    Ok(())
}

/// Removes every row of `table` whose key `matches`.
fn remove_matching<K, V, F>(
    txn: &WriteTransaction,
    table: TableDefinition<'static, K, V>,
    matches: F,
) -> StoreResult<()>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    F: for<'f> Fn(K::SelfType<'f>) -> bool,
{
    let mut t = txn.open_table(table).map_err(unavailable)?;
    t.retain(|k, _| !matches(k)).map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl RoomStore for EmbeddedStore {
    async fn create_room(
        &self,
        room: &RoomRecord,
        members: &[MembershipRecord],
    ) -> StoreResult<()> {
        let (room, members) = (room.clone(), members.to_vec());
        self.write(move |txn| {
            let id = room.id.to_string();
            {
                let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
                if rooms.get(id.as_str()).map_err(unavailable)?.is_some() {
                    return Err(StoreError::Duplicate("room"));
                }
            }
            if let Some(key) = &room.direct_key {
                let mut direct = txn.open_table(DIRECT_ROOMS).map_err(unavailable)?;
                if direct.get(key.as_str()).map_err(unavailable)?.is_some() {
                    return Err(StoreError::Duplicate("direct room"));
                }
                direct
                    .insert(key.as_str(), id.as_str())
                    .map_err(unavailable)?;
            }
            put_room(txn, &room)?;
            let mut names = txn.open_table(ROOM_NAMES).map_err(unavailable)?;
            names
                .insert((room.name.to_lowercase().as_str(), id.as_str()), ())
                .map_err(unavailable)?;
            drop(names);
            for member in &members {
                put_member(txn, member)?;
            }
            Ok(())
        })
        .await
    }

    async fn room_by_id(&self, id: RoomId) -> StoreResult<Option<RoomRecord>> {
        self.get(move |txn| {
            let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
            load_room(&rooms, &id.to_string())
        })
        .await
    }

    async fn direct_room(&self, key: &str) -> StoreResult<Option<RoomRecord>> {
        let key = key.to_owned();
        self.get(move |txn| {
            let direct = txn.open_table(DIRECT_ROOMS).map_err(unavailable)?;
            let Some(id) = direct.get(key.as_str()).map_err(unavailable)? else {
                return Ok(None);
            };
            let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
            load_room(&rooms, id.value())
        })
        .await
    }

    async fn update_room(&self, id: RoomId, patch: &RoomPatch) -> StoreResult<RoomRecord> {
        let patch = patch.clone();
        self.write(move |txn| {
            let key = id.to_string();
            let room = {
                let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
                load_room(&rooms, &key)?
            };
            let mut room = room.ok_or(StoreError::NotFound("room"))?;
            if let Some(name) = patch.name {
                let mut names = txn.open_table(ROOM_NAMES).map_err(unavailable)?;
                names
                    .remove((room.name.to_lowercase().as_str(), key.as_str()))
                    .map_err(unavailable)?;
                names
                    .insert((name.to_lowercase().as_str(), key.as_str()), ())
                    .map_err(unavailable)?;
                room.name = name;
            }
            if let Some(topic) = patch.topic {
                room.topic = topic;
            }
            if let Some(archived) = patch.archived {
                room.archived = archived;
            }
            put_room(txn, &room)?;
            Ok(room)
        })
        .await
    }

    async fn delete_room(&self, id: RoomId) -> StoreResult<()> {
        self.write(move |txn| {
            let key = id.to_string();
            let room = {
                let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
                load_room(&rooms, &key)?
            };
            let room = room.ok_or(StoreError::NotFound("room"))?;
            txn.open_table(ROOMS)
                .map_err(unavailable)?
                .remove(key.as_str())
                .map_err(unavailable)?;
            txn.open_table(ROOM_NAMES)
                .map_err(unavailable)?
                .remove((room.name.to_lowercase().as_str(), key.as_str()))
                .map_err(unavailable)?;
            if let Some(direct_key) = &room.direct_key {
                txn.open_table(DIRECT_ROOMS)
                    .map_err(unavailable)?
                    .remove(direct_key.as_str())
                    .map_err(unavailable)?;
            }
            let k = key.as_str();
            // Tables keyed by room first are cleared by range; the user-first ones need the members
            // (user_rooms) or, for read markers of people who already left, a scan (rare admin action).
            let mut member_ids = Vec::new();
            {
                let mut members = txn.open_table(MEMBERS).map_err(unavailable)?;
                for entry in members.range((k, "")..(k, MAX_ID)).map_err(unavailable)? {
                    let (key, _) = entry.map_err(unavailable)?;
                    member_ids.push(key.value().1.to_owned());
                }
                members
                    .retain_in((k, "")..(k, MAX_ID), |_, _| false)
                    .map_err(unavailable)?;
            }
            {
                let mut user_rooms = txn.open_table(USER_ROOMS).map_err(unavailable)?;
                for user in &member_ids {
                    user_rooms.remove((user.as_str(), k)).map_err(unavailable)?;
                }
            }
            remove_matching(txn, READ_MARKERS, |(_, r)| r == k)?;
            txn.open_table(NONCES)
                .map_err(unavailable)?
                .retain_in((k, "", "")..(k, MAX_ID, ""), |_, _| false)
                .map_err(unavailable)?;
            // Collect the room's message ids before the messages go, to clean the id and time indexes.
            let mut ids = Vec::new();
            {
                let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
                for entry in messages
                    .range((k, 0u64)..=(k, u64::MAX))
                    .map_err(unavailable)?
                {
                    let (_, row) = entry.map_err(unavailable)?;
                    let message: MessageRow = decode(row.value())?;
                    ids.push((message.id.to_string(), message.created_at.0));
                }
            }
            txn.open_table(MESSAGES)
                .map_err(unavailable)?
                .retain_in((k, 0u64)..=(k, u64::MAX), |_, _| false)
                .map_err(unavailable)?;
            let mut by_id = txn.open_table(MESSAGE_IDS).map_err(unavailable)?;
            let mut by_time = txn.open_table(MESSAGE_TIMES).map_err(unavailable)?;
            for (message_id, at) in &ids {
                by_id.remove(message_id.as_str()).map_err(unavailable)?;
                by_time
                    .remove((*at, message_id.as_str()))
                    .map_err(unavailable)?;
            }
            txn.open_table(ROOM_SEQ)
                .map_err(unavailable)?
                .remove(k)
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn list_rooms(&self, query: &RoomQuery) -> StoreResult<Page<RoomRecord>> {
        let query = query.clone();
        self.read(move |txn| {
            let names = txn.open_table(ROOM_NAMES).map_err(unavailable)?;
            let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
            let needle = query.search.as_deref().map(str::to_lowercase);
            let mut matches = Vec::new();
            for entry in names.iter().map_err(unavailable)? {
                let (key, _) = entry.map_err(unavailable)?;
                let (name_lower, id) = key.value();
                if needle.as_deref().is_some_and(|n| !name_lower.contains(n)) {
                    continue;
                }
                let room = load_room(&rooms, id)?
                    .ok_or_else(|| StoreError::Corrupt("room name index points nowhere".into()))?;
                if query.kind.is_some_and(|k| k != room.kind) {
                    continue;
                }
                if room.archived && !query.include_archived {
                    continue;
                }
                matches.push(room);
            }
            Ok(paginate(matches, query.offset, query.limit))
        })
        .await
    }

    async fn count_rooms(&self) -> StoreResult<u64> {
        self.read(|txn| {
            txn.open_table(ROOMS)
                .map_err(unavailable)?
                .len()
                .map_err(unavailable)
        })
        .await
    }

    async fn add_member(&self, member: &MembershipRecord) -> StoreResult<()> {
        let member = member.clone();
        self.write(move |txn| {
            let (room, user) = (member.room_id.to_string(), member.user_id.to_string());
            {
                let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
                if rooms.get(room.as_str()).map_err(unavailable)?.is_none() {
                    return Err(StoreError::NotFound("room"));
                }
                let members = txn.open_table(MEMBERS).map_err(unavailable)?;
                if members
                    .get((room.as_str(), user.as_str()))
                    .map_err(unavailable)?
                    .is_some()
                {
                    return Err(StoreError::Duplicate("membership"));
                }
            }
            put_member(txn, &member)
        })
        .await
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<()> {
        self.write(move |txn| {
            let (room, user) = (room.to_string(), user.to_string());
            let mut members = txn.open_table(MEMBERS).map_err(unavailable)?;
            if members
                .remove((room.as_str(), user.as_str()))
                .map_err(unavailable)?
                .is_none()
            {
                return Err(StoreError::NotFound("membership"));
            }
            let mut user_rooms = txn.open_table(USER_ROOMS).map_err(unavailable)?;
            user_rooms
                .remove((user.as_str(), room.as_str()))
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> StoreResult<Option<MembershipRecord>> {
        self.get(move |txn| {
            let members = txn.open_table(MEMBERS).map_err(unavailable)?;
            let (room, user) = (room.to_string(), user.to_string());
            match members
                .get((room.as_str(), user.as_str()))
                .map_err(unavailable)?
            {
                Some(row) => Ok(Some(decode::<MemberRow>(row.value())?.into())),
                None => Ok(None),
            }
        })
        .await
    }

    async fn list_members(&self, room: RoomId) -> StoreResult<Vec<MembershipRecord>> {
        self.read(move |txn| {
            let members = txn.open_table(MEMBERS).map_err(unavailable)?;
            let room = room.to_string();
            let mut list = Vec::new();
            for entry in members
                .range((room.as_str(), "")..(room.as_str(), MAX_ID))
                .map_err(unavailable)?
            {
                let (_, row) = entry.map_err(unavailable)?;
                list.push(MembershipRecord::from(decode::<MemberRow>(row.value())?));
            }
            list.sort_by(|a, b| {
                a.joined_at
                    .cmp(&b.joined_at)
                    .then(a.user_id.cmp(&b.user_id))
            });
            Ok(list)
        })
        .await
    }

    async fn rooms_of_user(&self, user: UserId) -> StoreResult<Vec<RoomRecord>> {
        self.read(move |txn| {
            let user_rooms = txn.open_table(USER_ROOMS).map_err(unavailable)?;
            let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
            let user = user.to_string();
            let mut list = Vec::new();
            for entry in user_rooms
                .range((user.as_str(), "")..(user.as_str(), MAX_ID))
                .map_err(unavailable)?
            {
                let (key, _) = entry.map_err(unavailable)?;
                if let Some(room) = load_room(&rooms, key.value().1)? {
                    list.push(room);
                }
            }
            list.sort_by(|a, b| {
                a.name
                    .to_lowercase()
                    .cmp(&b.name.to_lowercase())
                    .then(a.id.cmp(&b.id))
            });
            Ok(list)
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------------------
// Messages

fn load_message_at<T: ReadableTable<(&'static str, u64), &'static [u8]>>(
    messages: &T,
    room: &str,
    seq: u64,
) -> StoreResult<Option<MessageRecord>> {
    match messages.get((room, seq)).map_err(unavailable)? {
        Some(row) => Ok(Some(decode::<MessageRow>(row.value())?.into())),
        None => Ok(None),
    }
}

/// Loads a message through the id index, with its location for rewriting it.
fn locate_message(txn: &WriteTransaction, id: MessageId) -> StoreResult<MessageRecord> {
    let location = {
        let by_id = txn.open_table(MESSAGE_IDS).map_err(unavailable)?;
        let found = by_id.get(id.to_string().as_str()).map_err(unavailable)?;
        found.map(|g| {
            let (room, seq) = g.value();
            (room.to_owned(), seq)
        })
    };
    let (room, seq) = location.ok_or(StoreError::NotFound("message"))?;
    let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
    load_message_at(&messages, &room, seq)?
        .ok_or_else(|| StoreError::Corrupt("message id index points nowhere".into()))
}

fn put_message(txn: &WriteTransaction, message: &MessageRecord) -> StoreResult<()> {
    let row = encode(&MessageRow::from(message))?;
    let room = message.room_id.to_string();
    let mut messages = txn.open_table(MESSAGES).map_err(unavailable)?;
    messages
        .insert((room.as_str(), message.seq), row.as_slice())
        .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl MessageStore for EmbeddedStore {
    async fn append_message(&self, message: &NewMessage) -> StoreResult<Appended> {
        let new = message.clone();
        self.write(move |txn| {
            let room = new.room_id.to_string();
            let author = new.author_id.to_string();
            let mut nonces = txn.open_table(NONCES).map_err(unavailable)?;
            let existing = nonces
                .get((room.as_str(), author.as_str(), new.nonce.as_str()))
                .map_err(unavailable)?
                .map(|g| g.value());
            if let Some(seq) = existing {
                let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
                let message = load_message_at(&messages, &room, seq)?
                    .ok_or_else(|| StoreError::Corrupt("nonce index points nowhere".into()))?;
                return Ok(Appended {
                    message,
                    created: false,
                });
            }
            let mut seqs = txn.open_table(ROOM_SEQ).map_err(unavailable)?;
            let seq = seqs
                .get(room.as_str())
                .map_err(unavailable)?
                .map_or(0, |g| g.value())
                + 1;
            let message = MessageRecord {
                id: MessageId::new(),
                room_id: new.room_id,
                seq,
                author_id: new.author_id,
                body: new.body,
                nonce: new.nonce,
                created_at: new.created_at,
                edited_at: None,
                deleted_at: None,
            };
            let row = encode(&MessageRow::from(&message))?;
            let id = message.id.to_string();
            seqs.insert(room.as_str(), seq).map_err(unavailable)?;
            nonces
                .insert(
                    (room.as_str(), author.as_str(), message.nonce.as_str()),
                    seq,
                )
                .map_err(unavailable)?;
            let mut messages = txn.open_table(MESSAGES).map_err(unavailable)?;
            messages
                .insert((room.as_str(), seq), row.as_slice())
                .map_err(unavailable)?;
            let mut by_id = txn.open_table(MESSAGE_IDS).map_err(unavailable)?;
            by_id
                .insert(id.as_str(), (room.as_str(), seq))
                .map_err(unavailable)?;
            let mut by_time = txn.open_table(MESSAGE_TIMES).map_err(unavailable)?;
            by_time
                .insert((message.created_at.0, id.as_str()), ())
                .map_err(unavailable)?;
            Ok(Appended {
                message,
                created: true,
            })
        })
        .await
    }

    async fn message_by_id(&self, id: MessageId) -> StoreResult<Option<MessageRecord>> {
        self.get(move |txn| {
            let by_id = txn.open_table(MESSAGE_IDS).map_err(unavailable)?;
            let Some(location) = by_id.get(id.to_string().as_str()).map_err(unavailable)? else {
                return Ok(None);
            };
            let (room, seq) = location.value();
            let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
            load_message_at(&messages, room, seq)
        })
        .await
    }

    async fn history(&self, room: RoomId, query: HistoryQuery) -> StoreResult<Vec<MessageRecord>> {
        self.read(move |txn| {
            let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
            let room = room.to_string();
            let r = room.as_str();
            let limit = clamp_limit(query.limit) as usize;
            // Exclusive bounds as an inclusive seq range.
            let low = query.after.map_or(0, |a| a.saturating_add(1));
            let high = match query.before {
                Some(0) => return Ok(Vec::new()),
                Some(b) => b - 1,
                None => u64::MAX,
            };
            if low > high {
                return Ok(Vec::new());
            }
            let range = messages.range((r, low)..=(r, high)).map_err(unavailable)?;
            // With `after` set read forward from it; otherwise take the newest `limit`.
            let rows: Vec<_> = if query.after.is_some() {
                range.take(limit).collect()
            } else {
                let mut newest: Vec<_> = range.rev().take(limit).collect();
                newest.reverse();
                newest
            };
            rows.into_iter()
                .map(|entry| {
                    let (_, row) = entry.map_err(unavailable)?;
                    Ok(decode::<MessageRow>(row.value())?.into())
                })
                .collect()
        })
        .await
    }

    async fn edit_message(
        &self,
        id: MessageId,
        body: &str,
        at: Timestamp,
    ) -> StoreResult<MessageRecord> {
        let body = body.to_owned();
        self.write(move |txn| {
            let mut message = locate_message(txn, id)?;
            message.body = body;
            message.edited_at = Some(at);
            put_message(txn, &message)?;
            Ok(message)
        })
        .await
    }

    async fn delete_message(&self, id: MessageId, at: Timestamp) -> StoreResult<MessageRecord> {
        self.write(move |txn| {
            let mut message = locate_message(txn, id)?;
            message.body.clear();
            if message.deleted_at.is_none() {
                message.deleted_at = Some(at);
            }
            put_message(txn, &message)?;
            Ok(message)
        })
        .await
    }

    async fn last_seq(&self, room: RoomId) -> StoreResult<u64> {
        self.get(move |txn| {
            let seqs = txn.open_table(ROOM_SEQ).map_err(unavailable)?;
            Ok(seqs
                .get(room.to_string().as_str())
                .map_err(unavailable)?
                .map_or(0, |g| g.value()))
        })
        .await
    }

    async fn message_stats(&self, since: Timestamp) -> StoreResult<MessageStats> {
        self.read(move |txn| {
            let by_time = txn.open_table(MESSAGE_TIMES).map_err(unavailable)?;
            let total = by_time.len().map_err(unavailable)?;
            let recent = by_time.range((since.0, "")..).map_err(unavailable)?.count() as u64;
            Ok(MessageStats {
                total,
                since: recent,
            })
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------------------
// Read markers

#[async_trait]
impl ReadMarkerStore for EmbeddedStore {
    async fn mark_read(&self, user: UserId, room: RoomId, seq: u64) -> StoreResult<u64> {
        self.write(move |txn| {
            let (user, room) = (user.to_string(), room.to_string());
            let mut markers = txn.open_table(READ_MARKERS).map_err(unavailable)?;
            let key = (user.as_str(), room.as_str());
            let current = markers
                .get(key)
                .map_err(unavailable)?
                .map_or(0, |g| g.value());
            if seq > current {
                markers.insert(key, seq).map_err(unavailable)?;
                Ok(seq)
            } else {
                Ok(current)
            }
        })
        .await
    }

    async fn read_marker(&self, user: UserId, room: RoomId) -> StoreResult<u64> {
        self.get(move |txn| {
            let markers = txn.open_table(READ_MARKERS).map_err(unavailable)?;
            let (user, room) = (user.to_string(), room.to_string());
            let found = markers
                .get((user.as_str(), room.as_str()))
                .map_err(unavailable)?;
            Ok(found.map_or(0, |g| g.value()))
        })
        .await
    }

    async fn read_markers(&self, user: UserId) -> StoreResult<Vec<ReadMarker>> {
        self.read(move |txn| {
            let markers = txn.open_table(READ_MARKERS).map_err(unavailable)?;
            let user = user.to_string();
            let mut list = Vec::new();
            for entry in markers
                .range((user.as_str(), "")..(user.as_str(), MAX_ID))
                .map_err(unavailable)?
            {
                let (key, seq) = entry.map_err(unavailable)?;
                list.push(ReadMarker {
                    room_id: parse_id(key.value().1)?,
                    seq: seq.value(),
                });
            }
            Ok(list)
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------------------
// Audit log

#[async_trait]
impl AuditStore for EmbeddedStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let row = encode(&AuditRow::from(entry))?;
        let (at, id) = (entry.at.0, entry.id.to_string());
        self.write(move |txn| {
            let mut audit = txn.open_table(AUDIT).map_err(unavailable)?;
            if audit.get((at, id.as_str())).map_err(unavailable)?.is_some() {
                return Err(StoreError::Duplicate("audit entry"));
            }
            audit
                .insert((at, id.as_str()), row.as_slice())
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Page<AuditEntry>> {
        let query = query.clone();
        self.read(move |txn| {
            let audit = txn.open_table(AUDIT).map_err(unavailable)?;
            let actor = query.actor.as_deref().map(str::to_lowercase);
            let mut matches = Vec::new();
            for entry in audit.iter().map_err(unavailable)?.rev() {
                let (_, row) = entry.map_err(unavailable)?;
                let entry: AuditEntry = decode::<AuditRow>(row.value())?.into();
                if actor
                    .as_deref()
                    .is_some_and(|a| entry.actor_name.to_lowercase() != a)
                {
                    continue;
                }
                if query.action.as_deref().is_some_and(|a| entry.action != a) {
                    continue;
                }
                matches.push(entry);
            }
            Ok(paginate(matches, query.offset, query.limit))
        })
        .await
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    fn driver(&self) -> &'static str {
        "embedded"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|txn| txn.open_table(ROOM_SEQ).map(|_| ()).map_err(unavailable))
            .await
    }
}
