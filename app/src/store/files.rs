//! Files people share in rooms (and profile pictures): the bytes, an image's thumbnail, and the
//! facts about them. Bytes are addressed by their SHA-256 and written durably before the record that
//! points at them, so a record never points at nothing; two uploads of the same bytes share them.
//!
//! A file is uploaded first (pending) and then attached to the message that carries it, or (a file
//! without a room) made its owner's profile picture. Pending files nobody attached or made a picture, and bytes no record points at any more, go at the next clean-up: deleting a
//! file takes its record away at once (it is served no more), its bytes at the clean-up, which runs
//! after every upload has finished writing them (`before`), so an upload of the same bytes racing a
//! deletion never loses them.

use super::StoreResult;
use super::UserRecord;
use crate::model::{FileId, MessageId, RoomId, Timestamp, UserId};
use async_trait::async_trait;
use sha2::{Digest, Sha256};

/// Which bytes of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilePart {
    Original,
    /// An image's small version (absent for other files).
    Thumbnail,
}

/// A file to store, as the upload checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    pub id: FileId,
    pub owner: UserId,
    /// The room it is shared in; `None` for a profile picture.
    pub room: Option<RoomId>,
    /// The name it was uploaded with (shown, and offered when saving).
    pub name: String,
    /// What the bytes are, by their content (never the client's word).
    pub content_type: String,
    /// Width and height in pixels, for images.
    pub dimensions: Option<(u32, u32)>,
    pub created_at: Timestamp,
}

/// Stored bytes: their SHA-256 (hex) and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub sha256: String,
    pub size: u64,
}

impl Blob {
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub id: FileId,
    pub owner: UserId,
    pub room: Option<RoomId>,
    pub name: String,
    pub content_type: String,
    pub dimensions: Option<(u32, u32)>,
    pub created_at: Timestamp,
    pub original: Blob,
    pub thumbnail: Option<Blob>,
    /// The message that carries it; `None` while pending (uploaded, not sent yet).
    pub message: Option<MessageId>,
}

impl FileRecord {
    pub fn new(file: &NewFile, original: Blob, thumbnail: Option<Blob>) -> Self {
        Self {
            id: file.id,
            owner: file.owner,
            room: file.room,
            name: file.name.clone(),
            content_type: file.content_type.clone(),
            dimensions: file.dimensions,
            created_at: file.created_at,
            original,
            thumbnail,
            message: None,
        }
    }

    /// Bytes it counts against its owner's quota (the original and the thumbnail).
    pub fn stored_bytes(&self) -> u64 {
        self.original.size + self.thumbnail.as_ref().map_or(0, |t| t.size)
    }

    pub fn blob(&self, part: FilePart) -> Option<&Blob> {
        match part {
            FilePart::Original => Some(&self.original),
            FilePart::Thumbnail => self.thumbnail.as_ref(),
        }
    }
}

/// `[start, end)` of `size` bytes asked for by `range` (the whole when `None`), clamped.
pub fn clamp_range(range: Option<(u64, u64)>, size: u64) -> (u64, u64) {
    match range {
        None => (0, size),
        Some((start, end)) => (start.min(size), end.min(size).max(start.min(size))),
    }
}

#[async_trait]
pub trait FileStore: Send + Sync {
    /// Stores the bytes, then the record (pending). Fails with `Limit` when the owner's files would
    /// take more than `quota` bytes, and with `Duplicate` for an id already used.
    async fn put_file(
        &self,
        file: &NewFile,
        original: Vec<u8>,
        thumbnail: Option<Vec<u8>>,
        quota: u64,
    ) -> StoreResult<FileRecord>;

    async fn file(&self, id: FileId) -> StoreResult<Option<FileRecord>>;

    /// The bytes of `part` in `[start, end)` of `range` (clamped; the whole when `None`); `None` when
    /// there is no such file or part.
    async fn read_file(
        &self,
        id: FileId,
        part: FilePart,
        range: Option<(u64, u64)>,
    ) -> StoreResult<Option<Vec<u8>>>;

    /// Attaches `owner`'s pending files in `room` to `message`; files attached to `message` already
    /// are left as they are (a retried send completes an attachment a crash cut short). `NotFound`
    /// (and nothing changed) when one is missing, someone else's, in another room or attached to
    /// another message.
    async fn attach_files(
        &self,
        message: MessageId,
        room: RoomId,
        owner: UserId,
        files: &[FileId],
    ) -> StoreResult<()>;

    /// Deletes the files `message` carries; returns how many.
    async fn delete_message_files(&self, message: MessageId) -> StoreResult<u64>;

    /// Deletes every file shared in `room` (the room is being deleted); returns how many.
    async fn delete_room_files(&self, room: RoomId) -> StoreResult<u64>;

    /// Deletes one file (a cancelled upload, a replaced profile picture); whether it existed.
    async fn delete_file(&self, id: FileId) -> StoreResult<bool>;

    /// Deletes pending files created before `before`, and bytes written before `before` that no
    /// record points at. Returns how many files it deleted.
    async fn clean_up_files(&self, before: Timestamp) -> StoreResult<u64>;

    /// Bytes `owner`'s files take (what the quota counts).
    async fn file_bytes_of(&self, owner: UserId) -> StoreResult<u64>;

    /// Makes `file` `owner`'s profile picture (their own pending upload without a room, or their
    /// picture already), or takes the picture away (`None`); the picture it replaces is deleted.
    /// Returns the user as changed. `NotFound` (and nothing changed) for a missing user or a file
    /// that is missing, someone else's, shared in a room or sent.
    async fn set_picture(&self, owner: UserId, file: Option<FileId>) -> StoreResult<UserRecord>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_clamped_to_the_size() {
        assert_eq!(clamp_range(None, 10), (0, 10));
        assert_eq!(clamp_range(Some((2, 5)), 10), (2, 5));
        assert_eq!(clamp_range(Some((2, 50)), 10), (2, 10));
        assert_eq!(clamp_range(Some((20, 50)), 10), (10, 10));
        assert_eq!(clamp_range(Some((5, 2)), 10), (5, 5));
    }

    #[test]
    fn a_blob_is_named_by_its_content() {
        let a = Blob::of(b"hello");
        assert_eq!(a.size, 5);
        assert_eq!(
            a.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_ne!(a, Blob::of(b"hello!"));
    }
}
