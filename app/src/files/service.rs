//! Uploading and opening files: the rules, apart from HTTP.

use super::media::{self, Sniffed};
use super::FileView;
use crate::auth::sessions::Authenticated;
use crate::chat::access::readable_room;
use crate::domain::Nonce;
use crate::error::AppError;
use crate::model::{FileId, RoomId, Timestamp, UserId};
use crate::rate_limit::KeyedRateLimit;
use crate::state::AppState;
use crate::store::{FilePart, FileRecord, NewFile, StoreError, UserRecord};
use std::time::Duration;

/// Upload limits: the largest file, each person's quota, and how many uploads a minute.
pub struct Uploads {
    pub max_bytes: u64,
    pub quota_bytes: u64,
    rate: KeyedRateLimit<UserId>,
}

impl Uploads {
    /// Uploads one person may start in a minute.
    pub const PER_MINUTE: u32 = 30;

    pub fn new(max_bytes: u64, quota_bytes: u64) -> Self {
        Self {
            max_bytes,
            quota_bytes,
            rate: KeyedRateLimit::new(Self::PER_MINUTE, Duration::from_secs(60)),
        }
    }

    /// Takes one upload from the person's budget.
    pub fn admit(&self, user: UserId) -> Result<(), AppError> {
        self.rate
            .check(&user)
            .map_err(|retry_after_secs| AppError::RateLimited { retry_after_secs })
    }
}

pub fn file_view(file: &FileRecord) -> FileView {
    FileView {
        id: file.id,
        name: file.name.clone(),
        content_type: file.content_type.clone(),
        size: file.original.size,
        dimensions: file.dimensions,
        alt: None,
    }
}

/// Whether a browser may show the file itself (raster images we encoded); everything else is
/// only ever downloaded.
pub fn shown_inline(content_type: &str) -> bool {
    matches!(content_type, "image/png" | "image/jpeg")
}

/// Stores an upload to `room` (the uploader must be a member who may post there), pending until a
/// message carries it.
pub async fn upload(
    state: &AppState,
    me: &Authenticated,
    room: RoomId,
    name: &str,
    bytes: Vec<u8>,
) -> Result<FileView, AppError> {
    state.uploads.admit(me.user.id)?;
    if bytes.len() as u64 > state.uploads.max_bytes {
        return Err(AppError::PayloadTooLarge);
    }
    if bytes.is_empty() {
        return Err(AppError::invalid("file", "The file is empty."));
    }
    crate::chat::access::postable_room(state, me.user.id, room).await?;
    let name = media::clean_file_name(name);
    let (content_type, dimensions, original, thumbnail) = match media::sniff(&bytes) {
        Sniffed::Image(format) => {
            let safe = encode_off_thread(bytes, format, media::make_safe).await?;
            (
                safe.content_type.to_owned(),
                Some(safe.dimensions),
                safe.bytes,
                Some(safe.thumbnail),
            )
        }
        Sniffed::Other(content_type) => (content_type, None, bytes, None),
    };
    let file = NewFile {
        id: FileId::new(),
        owner: me.user.id,
        room: Some(room),
        name,
        content_type,
        dimensions,
        created_at: Timestamp::now(),
    };
    let stored = store_file(state, &file, original, thumbnail).await?;
    Ok(file_view(&stored))
}

/// Runs an image encoder (`media::make_safe`, `media::make_picture`) off the async threads; an
/// image it cannot read is the uploader's 400.
pub(super) async fn encode_off_thread(
    bytes: Vec<u8>,
    format: image::ImageFormat,
    encode: fn(&[u8], image::ImageFormat) -> Result<media::SafeImage, media::ImageRejected>,
) -> Result<media::SafeImage, AppError> {
    tokio::task::spawn_blocking(move || encode(&bytes, format))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "encoding an image failed");
            AppError::Internal
        })?
        .map_err(|e| AppError::invalid("file", e.to_string()))
}

/// Stores an upload against its owner's quota (over it: a 400 saying so).
pub(super) async fn store_file(
    state: &AppState,
    file: &NewFile,
    original: Vec<u8>,
    thumbnail: Option<Vec<u8>>,
) -> Result<FileRecord, AppError> {
    state
        .store
        .put_file(file, original, thumbnail, state.uploads.quota_bytes)
        .await
        .map_err(|e| match e {
            StoreError::Limit(message) => AppError::invalid("file", message),
            other => other.into(),
        })
}

/// The files `me` may send in `room` with the message of `nonce`, as it will show them: their own
/// uploads to that room, not sent yet, or (a retried send) sent already with this very message.
pub async fn attachable(
    state: &AppState,
    me: &UserRecord,
    room: RoomId,
    nonce: &Nonce,
    (ids, alts): (&[FileId], &[String]),
) -> Result<Vec<FileView>, AppError> {
    if alts.len() > ids.len() {
        return Err(AppError::invalid(
            "alts",
            "There are more descriptions than files.",
        ));
    }
    if ids.len() > super::MAX_FILES_PER_MESSAGE {
        return Err(AppError::invalid(
            "files",
            format!(
                "A message carries at most {} files.",
                super::MAX_FILES_PER_MESSAGE
            ),
        ));
    }
    let mut views = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(AppError::invalid(
                "files",
                "The same file is attached twice.",
            ));
        }
        // Someone else's file reads as missing: its existence is not told.
        let file = state
            .store
            .file(*id)
            .await?
            .filter(|f| f.owner == me.id && f.room == Some(room))
            .ok_or_else(|| {
                AppError::invalid("files", "A file to send is missing: upload it again.")
            })?;
        if let Some(sent_with) = file.message {
            let retried = state
                .store
                .message_by_id(sent_with)
                .await?
                .is_some_and(|m| m.author_id == me.id && m.nonce == nonce.as_str());
            if !retried {
                return Err(AppError::invalid(
                    "files",
                    "One of these files was sent in another message already.",
                ));
            }
        }
        let alt = alts
            .get(i)
            .map(|a| super::parse_alt(a))
            .transpose()?
            .flatten();
        views.push(FileView {
            alt,
            ..file_view(&file)
        });
    }
    Ok(views)
}

/// A file the reader may open: its room readable by them (a profile picture: anyone signed in).
pub async fn openable(
    state: &AppState,
    me: &Authenticated,
    id: FileId,
) -> Result<FileRecord, AppError> {
    let file = state
        .store
        .file(id)
        .await?
        .ok_or_else(|| AppError::not_found("That file"))?;
    if let Some(room) = file.room {
        // The file exists; whoever cannot read its room is refused it (403), not told it is gone.
        readable_room(state, me.user.id, room)
            .await
            .map_err(|_| AppError::Forbidden)?;
    }
    Ok(file)
}

/// The bytes of `part` of an openable file within `range`.
pub async fn read(
    state: &AppState,
    file: &FileRecord,
    part: FilePart,
    range: Option<(u64, u64)>,
) -> Result<Vec<u8>, AppError> {
    state
        .store
        .read_file(file.id, part, range)
        .await?
        .ok_or_else(|| AppError::not_found("That file"))
}
