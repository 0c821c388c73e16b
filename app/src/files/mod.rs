//! Files people share: uploads checked by their content (images decoded and encoded again, so
//! metadata such as GPS positions never leaves the server; a thumbnail made on upload), stored
//! through the store's `FileStore`, and served only to people who may read the file's room.

#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod media;
#[cfg(feature = "ssr")]
mod service;

use crate::model::FileId;
use serde::{Deserialize, Serialize};
#[cfg(feature = "ssr")]
pub use service::*;

/// Largest upload, by default (`MAX_UPLOAD_BYTES`).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 10 * 1024 * 1024;
/// Bytes one person's files may take, by default (`FILE_QUOTA_BYTES`).
pub const DEFAULT_QUOTA_BYTES: u64 = 1024 * 1024 * 1024;

/// A stored file as the browser sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileView {
    pub id: FileId,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// Width and height, for images (shown inline, with a thumbnail).
    pub dimensions: Option<(u32, u32)>,
}

impl FileView {
    pub fn url(&self) -> String {
        format!("/api/files/{}", self.id)
    }

    pub fn thumbnail_url(&self) -> Option<String> {
        self.dimensions
            .map(|_| format!("/api/files/{}/thumbnail", self.id))
    }
}
