//! Files on MongoDB: bytes in GridFS (bucket `blobs`, so every instance serves every file), one GridFS
//! file per stored blob, named by its SHA-256; records in `files` (`blob_id`/`thumb_blob_id` say
//! where the bytes are, `message_id` is null while pending); each owner's usage in `file_usage`,
//! reserved with a conditional `$inc` before the bytes are written, so two uploads at once cannot
//! both pass the quota. Unlike the embedded store, uploads of the same bytes are not shared here:
//! each record owns its GridFS files, so deleting one never races another upload. GridFS files no
//! record points at (an upload cut off before its record) are removed by the clean-up once older
//! than its `before`. A profile picture is marked `picture_of` its owner, which keeps it from the
//! clean-up of pending files.

use super::errors::{duplicate_key_message, store_error, OrUnavailable};
use super::rows::{collect, decode_found, parse_id, Row, UserRow};
use super::MongoStore;
use crate::model::{FileId, MessageId, RoomId, Timestamp, UserId};
use crate::store::{
    clamp_range, Blob, FilePart, FileRecord, FileStore, NewFile, StoreError, StoreResult,
    UserRecord,
};
use async_trait::async_trait;
use futures::{AsyncReadExt, AsyncWriteExt, TryStreamExt};
use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document};
use mongodb::gridfs::GridFsBucket;
use mongodb::options::{GridFsBucketOptions, ReturnDocument};
use serde::Deserialize;

/// The GridFS bucket of file bytes.
const BUCKET: &str = "blobs";

#[derive(Deserialize)]
struct FileRow {
    #[serde(rename = "_id")]
    id: String,
    owner_id: String,
    room_id: Option<String>,
    name: String,
    content_type: String,
    dimensions: Option<(u32, u32)>,
    created_at: i64,
    sha256: String,
    size: i64,
    thumb_sha256: Option<String>,
    thumb_size: Option<i64>,
    blob_id: ObjectId,
    thumb_blob_id: Option<ObjectId>,
    message_id: Option<String>,
}

/// A record and where its bytes are.
struct Stored {
    record: FileRecord,
    blob_id: ObjectId,
    thumb_blob_id: Option<ObjectId>,
}

impl Row for FileRow {
    type Record = Stored;
    const WHAT: &'static str = "file";
    fn into_record(self) -> StoreResult<Stored> {
        let size = |n: i64| u64::try_from(n).map_err(|_| StoreError::Corrupt("file size".into()));
        let thumbnail = match (self.thumb_sha256, self.thumb_size) {
            (Some(sha256), Some(n)) => Some(Blob {
                sha256,
                size: size(n)?,
            }),
            _ => None,
        };
        Ok(Stored {
            record: FileRecord {
                id: parse_id(&self.id, "file id")?,
                owner: parse_id(&self.owner_id, "file owner id")?,
                room: self
                    .room_id
                    .as_deref()
                    .map(|r| parse_id::<RoomId>(r, "file room id"))
                    .transpose()?,
                name: self.name,
                content_type: self.content_type,
                dimensions: self.dimensions,
                created_at: Timestamp(self.created_at),
                original: Blob {
                    sha256: self.sha256,
                    size: size(self.size)?,
                },
                thumbnail,
                message: self
                    .message_id
                    .as_deref()
                    .map(|m| parse_id::<MessageId>(m, "file message id"))
                    .transpose()?,
            },
            blob_id: self.blob_id,
            thumb_blob_id: self.thumb_blob_id,
        })
    }
}

impl MongoStore {
    fn bucket(&self) -> GridFsBucket {
        self.db.gridfs_bucket(
            GridFsBucketOptions::builder()
                .bucket_name(BUCKET.to_owned())
                .write_concern(super::durable_write_concern())
                .build(),
        )
    }

    async fn upload(&self, blob: &Blob, bytes: &[u8]) -> StoreResult<ObjectId> {
        let id = ObjectId::new();
        let mut stream = self
            .bucket()
            .open_upload_stream(&blob.sha256)
            .id(Bson::ObjectId(id))
            .await
            .or_unavailable("starting a file upload")?;
        stream
            .write_all(bytes)
            .await
            .map_err(|e| StoreError::Unavailable(format!("writing a file: {e}")))?;
        stream
            .close()
            .await
            .map_err(|e| StoreError::Unavailable(format!("finishing a file: {e}")))?;
        Ok(id)
    }

    async fn delete_blob(&self, id: ObjectId) -> StoreResult<()> {
        match self.bucket().delete(Bson::ObjectId(id)).await {
            Ok(()) => Ok(()),
            // Already gone (a clean-up got there first).
            Err(e) if matches!(*e.kind, mongodb::error::ErrorKind::GridFs(_)) => Ok(()),
            Err(e) => Err(store_error("deleting a file's bytes", &e)),
        }
    }

    async fn change_usage(&self, owner: UserId, by: i64) -> StoreResult<()> {
        self.file_usage
            .update_one(
                doc! { "_id": owner.to_string() },
                doc! { "$inc": { "bytes": by } },
            )
            .upsert(true)
            .await
            .or_unavailable("counting file usage")?;
        Ok(())
    }

    /// Reserves `bytes` of `owner`'s quota; false when it would pass `quota`.
    async fn reserve(&self, owner: UserId, bytes: u64, quota: u64) -> StoreResult<bool> {
        let key = owner.to_string();
        let created = self
            .file_usage
            .update_one(
                doc! { "_id": &key },
                doc! { "$setOnInsert": { "bytes": 0_i64 } },
            )
            .upsert(true)
            .await;
        if let Err(e) = created {
            if duplicate_key_message(&e).is_none() {
                return Err(store_error("counting file usage", &e));
            }
        }
        let Some(room_left) = quota.checked_sub(bytes) else {
            return Ok(false);
        };
        let reserved = self
            .file_usage
            .update_one(
                doc! { "_id": &key, "bytes": { "$lte": room_left as i64 } },
                doc! { "$inc": { "bytes": bytes as i64 } },
            )
            .await
            .or_unavailable("reserving file quota")?;
        Ok(reserved.modified_count == 1)
    }

    async fn stored(&self, id: FileId) -> StoreResult<Option<Stored>> {
        super::rows::decode_found::<FileRow>(
            self.files.find_one(doc! { "_id": id.to_string() }).await,
        )
    }

    /// Deletes a record, then its bytes, and gives its owner the space back.
    async fn remove(&self, stored: Stored) -> StoreResult<bool> {
        let gone = self
            .files
            .delete_one(doc! { "_id": stored.record.id.to_string() })
            .await
            .or_unavailable("deleting a file")?;
        if gone.deleted_count == 0 {
            return Ok(false);
        }
        self.change_usage(stored.record.owner, -(stored.record.stored_bytes() as i64))
            .await?;
        self.delete_blob(stored.blob_id).await?;
        if let Some(thumb) = stored.thumb_blob_id {
            self.delete_blob(thumb).await?;
        }
        Ok(true)
    }

    async fn remove_all(&self, filter: Document) -> StoreResult<u64> {
        let mut deleted = 0;
        for stored in collect::<FileRow>(self.files.find(filter).await).await? {
            if self.remove(stored).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Writes bytes, then the record; a failure on the way takes back what was written.
    async fn store(
        &self,
        record: &FileRecord,
        original: &[u8],
        thumbnail: Option<&[u8]>,
    ) -> StoreResult<()> {
        let blob_id = self.upload(&record.original, original).await?;
        let thumb_blob_id = match (&record.thumbnail, thumbnail) {
            (Some(blob), Some(bytes)) => Some(self.upload(blob, bytes).await?),
            _ => None,
        };
        let row = doc! {
            "_id": record.id.to_string(),
            "owner_id": record.owner.to_string(),
            "room_id": record.room.map(|r| r.to_string()),
            "name": &record.name,
            "content_type": &record.content_type,
            "dimensions": record.dimensions.map(|(w, h)| vec![w as i64, h as i64]),
            "created_at": record.created_at.0,
            "sha256": &record.original.sha256,
            "size": record.original.size as i64,
            "thumb_sha256": record.thumbnail.as_ref().map(|t| t.sha256.clone()),
            "thumb_size": record.thumbnail.as_ref().map(|t| t.size as i64),
            "blob_id": blob_id,
            "thumb_blob_id": thumb_blob_id,
            "message_id": Bson::Null,
        };
        if let Err(e) = self.files_durable.insert_one(row).await {
            self.delete_blob(blob_id).await?;
            if let Some(thumb) = thumb_blob_id {
                self.delete_blob(thumb).await?;
            }
            return Err(if duplicate_key_message(&e).is_some() {
                StoreError::Duplicate("file")
            } else {
                store_error("storing a file", &e)
            });
        }
        Ok(())
    }
}

#[async_trait]
impl FileStore for MongoStore {
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
        let bytes = record.stored_bytes();
        if !self.reserve(record.owner, bytes, quota).await? {
            return Err(StoreError::Limit(
                "Your files would take more than your quota.",
            ));
        }
        if let Err(e) = self.store(&record, &original, thumbnail.as_deref()).await {
            self.change_usage(record.owner, -(bytes as i64)).await?;
            return Err(e);
        }
        Ok(record)
    }

    async fn file(&self, id: FileId) -> StoreResult<Option<FileRecord>> {
        Ok(self.stored(id).await?.map(|s| s.record))
    }

    async fn read_file(
        &self,
        id: FileId,
        part: FilePart,
        range: Option<(u64, u64)>,
    ) -> StoreResult<Option<Vec<u8>>> {
        let Some(stored) = self.stored(id).await? else {
            return Ok(None);
        };
        let (blob_id, size) = match (part, &stored.record.thumbnail) {
            (FilePart::Original, _) => (stored.blob_id, stored.record.original.size),
            (FilePart::Thumbnail, Some(t)) => match stored.thumb_blob_id {
                Some(id) => (id, t.size),
                None => return Err(StoreError::Corrupt("thumbnail bytes missing".into())),
            },
            (FilePart::Thumbnail, None) => return Ok(None),
        };
        let mut stream = self
            .bucket()
            .open_download_stream(Bson::ObjectId(blob_id))
            .await
            .or_unavailable("opening a file")?;
        // Files are small (MAX_UPLOAD_BYTES): read whole, then cut.
        let mut bytes = Vec::with_capacity(size as usize);
        stream
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| StoreError::Unavailable(format!("reading a file: {e}")))?;
        let (start, end) = clamp_range(range, bytes.len() as u64);
        Ok(Some(bytes[start as usize..end as usize].to_vec()))
    }

    async fn attach_files(
        &self,
        message: MessageId,
        room: RoomId,
        owner: UserId,
        files: &[FileId],
    ) -> StoreResult<()> {
        let mut ids: Vec<String> = files.iter().map(ToString::to_string).collect();
        ids.sort_unstable();
        ids.dedup();
        let message = message.to_string();
        let mine = doc! {
            "_id": { "$in": &ids },
            "owner_id": owner.to_string(),
            "room_id": room.to_string(),
        };
        let mut attachable = mine.clone();
        attachable.insert("message_id", doc! { "$in": [Bson::Null, &message] });
        let matching = self
            .files
            .count_documents(attachable)
            .await
            .or_unavailable("checking files to attach")?;
        if matching != ids.len() as u64 {
            return Err(StoreError::NotFound("file"));
        }
        let mut pending = mine.clone();
        pending.insert("message_id", Bson::Null);
        self.files_durable
            .update_many(pending, doc! { "$set": { "message_id": &message } })
            .await
            .or_unavailable("attaching files")?;
        let mut attached = mine;
        attached.insert("message_id", &message);
        let now = self
            .files_durable
            .count_documents(attached)
            .await
            .or_unavailable("checking attached files")?;
        if now != ids.len() as u64 {
            // Attached elsewhere meanwhile (the same upload sent twice at once).
            return Err(StoreError::NotFound("file"));
        }
        Ok(())
    }

    async fn delete_message_files(&self, message: MessageId) -> StoreResult<u64> {
        self.remove_all(doc! { "message_id": message.to_string() })
            .await
    }

    async fn delete_room_files(&self, room: RoomId) -> StoreResult<u64> {
        self.remove_all(doc! { "room_id": room.to_string() }).await
    }

    async fn delete_file(&self, id: FileId) -> StoreResult<bool> {
        match self.stored(id).await? {
            Some(stored) => self.remove(stored).await,
            None => Ok(false),
        }
    }

    async fn clean_up_files(&self, before: Timestamp) -> StoreResult<u64> {
        let deleted = self
            .remove_all(doc! {
                "message_id": Bson::Null,
                "picture_of": Bson::Null,
                "created_at": { "$lt": before.0 },
            })
            .await?;
        // Bytes whose record was never written.
        let cutoff = DateTime::from_millis(before.0);
        let mut old = self
            .bucket()
            .find(doc! { "uploadDate": { "$lt": cutoff } })
            .await
            .or_unavailable("listing stored files")?;
        let mut orphans = Vec::new();
        while let Some(blob) = old
            .try_next()
            .await
            .or_unavailable("listing stored files")?
        {
            let Bson::ObjectId(id) = blob.id else {
                continue;
            };
            let used = self
                .files
                .count_documents(doc! { "$or": [{ "blob_id": id }, { "thumb_blob_id": id }] })
                .await
                .or_unavailable("checking stored files")?;
            if used == 0 {
                orphans.push(id);
            }
        }
        for id in orphans {
            self.delete_blob(id).await?;
        }
        Ok(deleted)
    }

    async fn file_bytes_of(&self, owner: UserId) -> StoreResult<u64> {
        let found = self
            .file_usage
            .find_one(doc! { "_id": owner.to_string() })
            .await
            .or_unavailable("reading file usage")?;
        Ok(found
            .and_then(|d| d.get_i64("bytes").ok())
            .map_or(0, |b| b.max(0) as u64))
    }

    async fn set_picture(&self, owner: UserId, file: Option<FileId>) -> StoreResult<UserRecord> {
        let user = owner.to_string();
        if let Some(id) = file {
            // Marked before the user points at it, so the clean-up never takes a picture in use; if
            // what follows is cut short it only holds its owner's quota until the next picture.
            let marked = self
                .files_durable
                .update_one(
                    doc! {
                        "_id": id.to_string(),
                        "owner_id": &user,
                        "room_id": Bson::Null,
                        "message_id": Bson::Null,
                        "picture_of": { "$in": [Bson::Null, &user] },
                    },
                    doc! { "$set": { "picture_of": &user } },
                )
                .await
                .or_unavailable("marking a profile picture")?;
            if marked.matched_count == 0 {
                return Err(StoreError::NotFound("file"));
            }
        }
        let before = self
            .users
            .find_one_and_update(
                doc! { "_id": &user },
                doc! { "$set": { "avatar": file.map(|f| f.to_string()) } },
            )
            .return_document(ReturnDocument::Before)
            .await;
        let Some(mut changed) = decode_found::<UserRow>(before)? else {
            return Err(StoreError::NotFound("user"));
        };
        let replaced = std::mem::replace(&mut changed.avatar, file);
        if let Some(old) = replaced.filter(|old| Some(*old) != file) {
            self.delete_file(old).await?;
        }
        Ok(changed)
    }
}
