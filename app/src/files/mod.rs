//! Files people share: uploads checked by their content (images decoded and encoded again, so
//! metadata such as GPS positions never leaves the server; a thumbnail made on upload), stored
//! through the store's `FileStore`, and served only to people who may read the file's room.

#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod media;
#[cfg(feature = "ssr")]
mod service;
pub mod upload;

use crate::model::FileId;
use serde::{Deserialize, Serialize};
#[cfg(feature = "ssr")]
pub use service::*;

/// Largest upload, by default (`MAX_UPLOAD_BYTES`).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 10 * 1024 * 1024;
/// Bytes one person's files may take, by default (`FILE_QUOTA_BYTES`).
pub const DEFAULT_QUOTA_BYTES: u64 = 1024 * 1024 * 1024;
/// Files one message carries at most.
pub const MAX_FILES_PER_MESSAGE: usize = 10;

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

/// A size as people read it: "512 bytes", "2.4 KB", "10 MB" (powers of 1,024, one decimal below 10).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    if size < 10.0 {
        format!("{size:.1} {}", UNITS[unit])
    } else {
        format!("{size:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_size(0), "0 bytes");
        assert_eq!(human_size(1023), "1023 bytes");
        assert_eq!(human_size(1024), "1.0 KB");
        assert_eq!(human_size(2500), "2.4 KB");
        assert_eq!(human_size(10 * 1024 * 1024), "10 MB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GB");
    }
}
