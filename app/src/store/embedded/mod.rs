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
//!
//! Layout: this file holds the handle, the writer thread and the group commit; `rows` the tables and
//! row types; one file per aggregate implements its repository trait.

mod audit;
mod files;
mod messages;
mod push;
mod read_markers;
mod rooms;
mod rows;
mod search;
mod sessions;
mod threads;
mod users;

use super::{clamp_limit, Page, Store, StoreError, StoreResult};
use async_trait::async_trait;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{de::DeserializeOwned, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// redb's page cache. Its default (1 GiB) holds the whole file in memory as it grows, so the server's
/// RSS grew with every message stored (about 5.5 MB a minute at 100 msg/s in the soak of
/// BENCHMARKS.md); the hot pages of a chat store (recent messages, sessions, memberships) fit in far
/// less, and older pages are still served from the kernel's page cache, which is not ours to hold.
/// 16 MiB fills within the soak's first five minutes, after which the RSS stays flat.
const CACHE_BYTES: usize = 16 * 1024 * 1024;
/// File name of the database inside the data directory.
pub const DB_FILE: &str = "mlchat.redb";
/// How many queued writes one commit may carry at most.
const MAX_BATCH: usize = 512;

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
    data_dir: PathBuf,
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
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        create_tables(&db)?;
        users::index_skeletons(&db)?;
        search::backfill(&db)?;
        let db = Arc::new(db);
        let (jobs, queue) = mpsc::channel::<Job>(4 * MAX_BATCH);
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run_writer(&writer_db, queue))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            db,
            data_dir: data_dir.to_path_buf(),
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
    use rows::*;
    let txn = db.begin_write().map_err(unavailable)?;
    {
        txn.open_table(USERS).map_err(unavailable)?;
        txn.open_table(USERNAMES).map_err(unavailable)?;
        txn.open_table(USERNAME_SKELETONS).map_err(unavailable)?;
        txn.open_table(SESSIONS).map_err(unavailable)?;
        txn.open_table(REFRESH_CURRENT).map_err(unavailable)?;
        txn.open_table(REFRESH_SPENT).map_err(unavailable)?;
        txn.open_table(USER_SESSIONS).map_err(unavailable)?;
        txn.open_table(ROOMS).map_err(unavailable)?;
        txn.open_table(ROOM_NAMES).map_err(unavailable)?;
        txn.open_table(DIRECT_ROOMS).map_err(unavailable)?;
        txn.open_table(MEMBERS).map_err(unavailable)?;
        txn.open_table(USER_ROOMS).map_err(unavailable)?;
        txn.open_table(INVITATIONS).map_err(unavailable)?;
        txn.open_table(USER_INVITATIONS).map_err(unavailable)?;
        txn.open_table(MESSAGES).map_err(unavailable)?;
        txn.open_table(MESSAGE_IDS).map_err(unavailable)?;
        txn.open_table(MESSAGE_TIMES).map_err(unavailable)?;
        txn.open_table(NONCES).map_err(unavailable)?;
        txn.open_table(ROOM_SEQ).map_err(unavailable)?;
        txn.open_table(ROOM_REV).map_err(unavailable)?;
        txn.open_table(MESSAGE_REVS).map_err(unavailable)?;
        txn.open_table(MENTIONS).map_err(unavailable)?;
        txn.open_table(ROOM_MENTIONS).map_err(unavailable)?;
        txn.open_table(REPLY_REVS).map_err(unavailable)?;
        txn.open_table(THREAD_REPLIES).map_err(unavailable)?;
        txn.open_table(THREAD_FOLLOWS).map_err(unavailable)?;
        txn.open_table(SEARCH_TERMS).map_err(unavailable)?;
        txn.open_table(FILES).map_err(unavailable)?;
        txn.open_table(BLOB_REFS).map_err(unavailable)?;
        txn.open_table(FILE_USAGE).map_err(unavailable)?;
        txn.open_table(PENDING_FILES).map_err(unavailable)?;
        txn.open_table(MESSAGE_FILES).map_err(unavailable)?;
        txn.open_table(PUSH_SUBSCRIPTIONS).map_err(unavailable)?;
        txn.open_table(USER_PUSH).map_err(unavailable)?;
        txn.open_table(SESSION_PUSH).map_err(unavailable)?;
        txn.open_table(READ_MARKERS).map_err(unavailable)?;
        txn.open_table(NOTIFY_LEVELS).map_err(unavailable)?;
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

#[async_trait]
impl Store for EmbeddedStore {
    fn driver(&self) -> &'static str {
        "embedded"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|txn| {
            txn.open_table(rows::ROOM_SEQ)
                .map(|_| ())
                .map_err(unavailable)
        })
        .await
    }
}
