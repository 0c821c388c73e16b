//! Files: bytes as content-addressed blob files under `DATA_DIR/files` (`ab/abcdef…`, the SHA-256),
//! written and synced before the record that points at them is committed; records, reference counts,
//! per-owner usage and the pending list in redb. Blobs no record points at are removed by the clean-up,
//! inside the writer thread, so it never races an upload's commit (see `store::files`).

use super::rows::*;
use super::{decode, encode, get_row, parse_id, unavailable, EmbeddedStore, MAX_ID};
use crate::model::{FileId, MessageId, RoomId, Timestamp, UserId};
use crate::store::{
    clamp_range, Blob, FilePart, FileRecord, FileStore, NewFile, StoreError, StoreResult,
    UserRecord,
};
use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The directory of blob files inside the data directory.
pub(super) const FILES_DIR: &str = "files";
/// Blob files one clean-up removes at most (the next one takes the rest).
const MAX_SWEEP: usize = 1_000;

fn blob_path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join(&sha256[..2]).join(sha256)
}

/// Makes the blob durable: a fresh one is written beside its place, synced, renamed into place and
/// its directory synced; one already there is touched, so a clean-up running now keeps it.
fn write_blob(dir: &Path, blob: &Blob, bytes: &[u8]) -> StoreResult<()> {
    let io = |what: &str, e: std::io::Error| StoreError::Unavailable(format!("{what}: {e}"));
    let path = blob_path(dir, &blob.sha256);
    if let Ok(existing) = std::fs::File::options().write(true).open(&path) {
        existing
            .set_modified(SystemTime::now())
            .map_err(|e| io("touching a stored file", e))?;
        return Ok(());
    }
    let parent = path.parent().expect("blob paths have a parent");
    std::fs::create_dir_all(parent).map_err(|e| io("creating the files directory", e))?;
    let partial = parent.join(format!(".{}.partial", uuid::Uuid::now_v7()));
    let mut file = std::fs::File::create(&partial).map_err(|e| io("writing a file", e))?;
    file.write_all(bytes).map_err(|e| io("writing a file", e))?;
    file.sync_all().map_err(|e| io("syncing a file", e))?;
    std::fs::rename(&partial, &path).map_err(|e| io("storing a file", e))?;
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing the files directory", e))
}

fn read_blob(dir: &Path, blob: &Blob, (start, end): (u64, u64)) -> StoreResult<Vec<u8>> {
    let path = blob_path(dir, &blob.sha256);
    let mut file = std::fs::File::open(&path)
        .map_err(|e| StoreError::Corrupt(format!("stored file {} is missing: {e}", blob.sha256)))?;
    let mut bytes = vec![0; (end - start) as usize];
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(|e| StoreError::Unavailable(format!("reading a stored file: {e}")))?;
    Ok(bytes)
}

fn add_ref(txn: &WriteTransaction, blob: &Blob) -> StoreResult<()> {
    let mut refs = txn.open_table(BLOB_REFS).map_err(unavailable)?;
    let now = refs
        .get(blob.sha256.as_str())
        .map_err(unavailable)?
        .map_or(0, |v| v.value());
    refs.insert(blob.sha256.as_str(), now + 1)
        .map_err(unavailable)?;
    Ok(())
}

fn drop_ref(txn: &WriteTransaction, blob: &Blob) -> StoreResult<()> {
    let mut refs = txn.open_table(BLOB_REFS).map_err(unavailable)?;
    let now = refs
        .get(blob.sha256.as_str())
        .map_err(unavailable)?
        .map_or(0, |v| v.value());
    if now <= 1 {
        refs.remove(blob.sha256.as_str()).map_err(unavailable)?;
    } else {
        refs.insert(blob.sha256.as_str(), now - 1)
            .map_err(unavailable)?;
    }
    Ok(())
}

fn change_usage(txn: &WriteTransaction, owner: UserId, plus: u64, minus: u64) -> StoreResult<u64> {
    let mut usage = txn.open_table(FILE_USAGE).map_err(unavailable)?;
    let key = owner.to_string();
    let now = usage
        .get(key.as_str())
        .map_err(unavailable)?
        .map_or(0, |v| v.value());
    let next = (now + plus).saturating_sub(minus);
    usage.insert(key.as_str(), next).map_err(unavailable)?;
    Ok(next)
}

fn load(txn: &WriteTransaction, id: &str) -> StoreResult<Option<FileRecord>> {
    let files = txn.open_table(FILES).map_err(unavailable)?;
    get_row::<FileRow, _>(&files, id)?
        .map(FileRecord::try_from)
        .transpose()
}

/// Removes a file's record and everything that counts it.
fn remove(txn: &WriteTransaction, file: &FileRecord) -> StoreResult<()> {
    let id = file.id.to_string();
    txn.open_table(FILES)
        .map_err(unavailable)?
        .remove(id.as_str())
        .map_err(unavailable)?;
    match file.message {
        None => {
            txn.open_table(PENDING_FILES)
                .map_err(unavailable)?
                .remove((file.created_at.0, id.as_str()))
                .map_err(unavailable)?;
        }
        Some(message) => {
            txn.open_table(MESSAGE_FILES)
                .map_err(unavailable)?
                .remove((message.to_string().as_str(), id.as_str()))
                .map_err(unavailable)?;
        }
    }
    drop_ref(txn, &file.original)?;
    if let Some(thumbnail) = &file.thumbnail {
        drop_ref(txn, thumbnail)?;
    }
    change_usage(txn, file.owner, 0, file.stored_bytes())?;
    Ok(())
}

/// Blob files last written before `before` that no record points at, removed (at most `MAX_SWEEP`).
fn sweep_blobs(txn: &WriteTransaction, dir: &Path, before: Timestamp) -> StoreResult<()> {
    let refs = txn.open_table(BLOB_REFS).map_err(unavailable)?;
    let Ok(shards) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let cutoff = std::time::UNIX_EPOCH + std::time::Duration::from_millis(before.0.max(0) as u64);
    let mut removed = 0;
    for shard in shards.flatten() {
        let Ok(entries) = std::fs::read_dir(shard.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|at| at < cutoff);
            // Partial writes (a crash mid-upload) start with a dot; blobs are named by their hash.
            let referenced =
                !name.starts_with('.') && refs.get(name.as_str()).map_err(unavailable)?.is_some();
            if old && !referenced {
                let _ = std::fs::remove_file(entry.path());
                removed += 1;
                if removed == MAX_SWEEP {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

impl EmbeddedStore {
    fn files_dir(&self) -> PathBuf {
        self.data_dir.join(FILES_DIR)
    }
}

#[async_trait]
impl FileStore for EmbeddedStore {
    async fn put_file(
        &self,
        file: &NewFile,
        original: Vec<u8>,
        thumbnail: Option<Vec<u8>>,
        quota: u64,
    ) -> StoreResult<FileRecord> {
        let record = FileRecord::new(
            file,
            Blob::of(&original),
            thumbnail.as_deref().map(Blob::of),
        );
        let dir = self.files_dir();
        let written = record.clone();
        tokio::task::spawn_blocking(move || {
            write_blob(&dir, &written.original, &original)?;
            match (&written.thumbnail, &thumbnail) {
                (Some(blob), Some(bytes)) => write_blob(&dir, blob, bytes),
                _ => Ok(()),
            }
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("writing a file: {e}")))??;
        let stored = record.clone();
        self.write(move |txn| {
            let id = stored.id.to_string();
            if load(txn, &id)?.is_some() {
                return Err(StoreError::Duplicate("file"));
            }
            let usage = txn
                .open_table(FILE_USAGE)
                .map_err(unavailable)?
                .get(stored.owner.to_string().as_str())
                .map_err(unavailable)?
                .map_or(0, |v| v.value());
            if usage + stored.stored_bytes() > quota {
                return Err(StoreError::Limit(
                    "Your files would take more than your quota.",
                ));
            }
            txn.open_table(FILES)
                .map_err(unavailable)?
                .insert(id.as_str(), encode(&FileRow::from(&stored))?.as_slice())
                .map_err(unavailable)?;
            txn.open_table(PENDING_FILES)
                .map_err(unavailable)?
                .insert((stored.created_at.0, id.as_str()), ())
                .map_err(unavailable)?;
            add_ref(txn, &stored.original)?;
            if let Some(thumbnail) = &stored.thumbnail {
                add_ref(txn, thumbnail)?;
            }
            change_usage(txn, stored.owner, stored.stored_bytes(), 0)?;
            Ok(stored)
        })
        .await
    }

    async fn file(&self, id: FileId) -> StoreResult<Option<FileRecord>> {
        self.get(|txn| {
            let files = txn.open_table(FILES).map_err(unavailable)?;
            get_row::<FileRow, _>(&files, &id.to_string())?
                .map(FileRecord::try_from)
                .transpose()
        })
        .await
    }

    async fn read_file(
        &self,
        id: FileId,
        part: FilePart,
        range: Option<(u64, u64)>,
    ) -> StoreResult<Option<Vec<u8>>> {
        let Some(blob) = self.file(id).await?.and_then(|f| f.blob(part).cloned()) else {
            return Ok(None);
        };
        let dir = self.files_dir();
        let range = clamp_range(range, blob.size);
        tokio::task::spawn_blocking(move || read_blob(&dir, &blob, range).map(Some))
            .await
            .map_err(|e| StoreError::Unavailable(format!("reading a file: {e}")))?
    }

    async fn attach_files(
        &self,
        message: MessageId,
        room: RoomId,
        owner: UserId,
        files: &[FileId],
    ) -> StoreResult<()> {
        let files = files.to_vec();
        self.write(move |txn| {
            // Every file is checked before anything is written (the batch's transaction is shared).
            let mut found = Vec::with_capacity(files.len());
            for id in &files {
                match load(txn, &id.to_string())? {
                    Some(f) if f.owner == owner && f.room == Some(room) && f.message.is_none() => {
                        found.push(f)
                    }
                    Some(f) if f.owner == owner && f.message == Some(message) => {}
                    _ => return Err(StoreError::NotFound("file")),
                }
            }
            let message_key = message.to_string();
            for mut file in found {
                let id = file.id.to_string();
                txn.open_table(PENDING_FILES)
                    .map_err(unavailable)?
                    .remove((file.created_at.0, id.as_str()))
                    .map_err(unavailable)?;
                txn.open_table(MESSAGE_FILES)
                    .map_err(unavailable)?
                    .insert((message_key.as_str(), id.as_str()), ())
                    .map_err(unavailable)?;
                file.message = Some(message);
                txn.open_table(FILES)
                    .map_err(unavailable)?
                    .insert(id.as_str(), encode(&FileRow::from(&file))?.as_slice())
                    .map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }

    async fn delete_message_files(&self, message: MessageId) -> StoreResult<u64> {
        self.write(move |txn| {
            let key = message.to_string();
            let ids: Vec<String> = {
                let carried = txn.open_table(MESSAGE_FILES).map_err(unavailable)?;
                let mut ids = Vec::new();
                for entry in carried
                    .range((key.as_str(), "")..(key.as_str(), MAX_ID))
                    .map_err(unavailable)?
                {
                    let (k, _) = entry.map_err(unavailable)?;
                    ids.push(k.value().1.to_owned());
                }
                ids
            };
            let mut deleted = 0;
            for id in ids {
                if let Some(file) = load(txn, &id)? {
                    remove(txn, &file)?;
                    deleted += 1;
                }
            }
            Ok(deleted)
        })
        .await
    }

    async fn delete_room_files(&self, room: RoomId) -> StoreResult<u64> {
        self.write(move |txn| {
            // Records are keyed by id alone: a scan, for a rare admin action.
            let shared: Vec<FileRecord> = {
                let files = txn.open_table(FILES).map_err(unavailable)?;
                let mut shared = Vec::new();
                for entry in files.iter().map_err(unavailable)? {
                    let (_, row) = entry.map_err(unavailable)?;
                    let file = FileRecord::try_from(decode::<FileRow>(row.value())?)?;
                    if file.room == Some(room) {
                        shared.push(file);
                    }
                }
                shared
            };
            for file in &shared {
                remove(txn, file)?;
            }
            Ok(shared.len() as u64)
        })
        .await
    }

    async fn delete_file(&self, id: FileId) -> StoreResult<bool> {
        self.write(move |txn| match load(txn, &id.to_string())? {
            Some(file) => remove(txn, &file).map(|()| true),
            None => Ok(false),
        })
        .await
    }

    async fn clean_up_files(&self, before: Timestamp) -> StoreResult<u64> {
        let dir = self.files_dir();
        self.write(move |txn| {
            let stale: Vec<String> = {
                let pending = txn.open_table(PENDING_FILES).map_err(unavailable)?;
                let mut ids = Vec::new();
                for entry in pending
                    .range((i64::MIN, "")..(before.0, ""))
                    .map_err(unavailable)?
                {
                    let (k, _) = entry.map_err(unavailable)?;
                    ids.push(k.value().1.to_owned());
                }
                ids
            };
            let mut deleted = 0;
            for id in stale {
                if let Some(file) = load(txn, &id)? {
                    remove(txn, &file)?;
                    deleted += 1;
                }
            }
            sweep_blobs(txn, &dir, before)?;
            Ok(deleted)
        })
        .await
    }

    async fn file_bytes_of(&self, owner: UserId) -> StoreResult<u64> {
        self.get(|txn| {
            Ok(txn
                .open_table(FILE_USAGE)
                .map_err(unavailable)?
                .get(owner.to_string().as_str())
                .map_err(unavailable)?
                .map_or(0, |v| v.value()))
        })
        .await
    }

    async fn set_picture(&self, owner: UserId, file: Option<FileId>) -> StoreResult<UserRecord> {
        self.write(move |txn| {
            let key = owner.to_string();
            let mut user: UserRecord = {
                let users = txn.open_table(USERS).map_err(unavailable)?;
                get_row::<UserRow, _>(&users, &key)?
                    .ok_or(StoreError::NotFound("user"))?
                    .into()
            };
            if let Some(id) = file {
                let picture = load(txn, &id.to_string())?
                    .filter(|f| f.owner == owner && f.room.is_none() && f.message.is_none())
                    .ok_or(StoreError::NotFound("file"))?;
                // In use now: the clean-up of pending files leaves it alone.
                txn.open_table(PENDING_FILES)
                    .map_err(unavailable)?
                    .remove((picture.created_at.0, id.to_string().as_str()))
                    .map_err(unavailable)?;
            }
            let replaced = std::mem::replace(&mut user.avatar, file);
            txn.open_table(USERS)
                .map_err(unavailable)?
                .insert(key.as_str(), encode(&UserRow::from(&user))?.as_slice())
                .map_err(unavailable)?;
            if let Some(old) = replaced.filter(|old| Some(*old) != file) {
                if let Some(old) = load(txn, &old.to_string())? {
                    remove(txn, &old)?;
                }
            }
            Ok(user)
        })
        .await
    }
}

/// A stored file's record. Ids are kept as text, checked when read back.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct FileRow {
    id: String,
    owner: String,
    room: Option<String>,
    name: String,
    content_type: String,
    dimensions: Option<(u32, u32)>,
    created_at: i64,
    sha256: String,
    size: u64,
    thumbnail: Option<(String, u64)>,
    message: Option<String>,
}

impl From<&FileRecord> for FileRow {
    fn from(f: &FileRecord) -> Self {
        Self {
            id: f.id.to_string(),
            owner: f.owner.to_string(),
            room: f.room.map(|r| r.to_string()),
            name: f.name.clone(),
            content_type: f.content_type.clone(),
            dimensions: f.dimensions,
            created_at: f.created_at.0,
            sha256: f.original.sha256.clone(),
            size: f.original.size,
            thumbnail: f.thumbnail.as_ref().map(|t| (t.sha256.clone(), t.size)),
            message: f.message.map(|m| m.to_string()),
        }
    }
}

impl TryFrom<FileRow> for FileRecord {
    type Error = StoreError;
    fn try_from(row: FileRow) -> StoreResult<Self> {
        Ok(Self {
            id: parse_id(&row.id)?,
            owner: parse_id(&row.owner)?,
            room: row.room.as_deref().map(parse_id).transpose()?,
            name: row.name,
            content_type: row.content_type,
            dimensions: row.dimensions,
            created_at: Timestamp(row.created_at),
            original: Blob {
                sha256: row.sha256,
                size: row.size,
            },
            thumbnail: row.thumbnail.map(|(sha256, size)| Blob { sha256, size }),
            message: row.message.as_deref().map(parse_id).transpose()?,
        })
    }
}
