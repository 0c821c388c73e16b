//! Profile pictures: an image upload (anything else is refused) made safe like every image, cut to
//! a square, stored as a file without a room (so anyone signed in may see it) and made the person's
//! picture in one store step that deletes the one it replaces.

use super::media::{self, Sniffed};
use super::service::{encode_off_thread, store_file};
use crate::auth::sessions::Authenticated;
use crate::chat::hub::Cached;
use crate::error::AppError;
use crate::model::{FileId, Timestamp};
use crate::state::AppState;
use crate::store::NewFile;

/// Makes `bytes` `me`'s profile picture; answers its id.
pub async fn set_picture(
    state: &AppState,
    me: &Authenticated,
    bytes: Vec<u8>,
) -> Result<FileId, AppError> {
    state.uploads.admit(me.user.id)?;
    if bytes.len() as u64 > state.uploads.max_bytes {
        return Err(AppError::PayloadTooLarge);
    }
    let Sniffed::Image(format) = media::sniff(&bytes) else {
        return Err(AppError::invalid(
            "file",
            "A profile picture must be a PNG, JPEG, GIF or WebP image.",
        ));
    };
    let safe = encode_off_thread(bytes, format, media::make_picture).await?;
    let extension = if safe.content_type == "image/jpeg" {
        "jpg"
    } else {
        "png"
    };
    let file = NewFile {
        id: FileId::new(),
        owner: me.user.id,
        room: None,
        name: format!("picture.{extension}"),
        content_type: safe.content_type.to_owned(),
        dimensions: Some(safe.dimensions),
        created_at: Timestamp::now(),
    };
    store_file(state, &file, safe.bytes, Some(safe.thumbnail)).await?;
    state.store.set_picture(me.user.id, Some(file.id)).await?;
    state.hub.changed(Cached::Account(me.user.id));
    Ok(file.id)
}

/// Takes `me`'s profile picture away (the initials are shown again).
pub async fn remove_picture(state: &AppState, me: &Authenticated) -> Result<(), AppError> {
    state.uploads.admit(me.user.id)?;
    state.store.set_picture(me.user.id, None).await?;
    state.hub.changed(Cached::Account(me.user.id));
    Ok(())
}
