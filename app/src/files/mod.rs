//! Files people share: uploads checked by their content (images decoded and encoded again, so
//! metadata such as GPS positions never leaves the server; a thumbnail made on upload), stored
//! through the store's `FileStore`, and served only to people who may read the file's room.

#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod media;
#[cfg(feature = "ssr")]
pub mod pictures;
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
    /// What an image shows, in words, as the sender wrote it (screen readers read it; without
    /// one the file's name is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
}

/// Longest alt text, in characters.
pub const MAX_ALT_CHARS: usize = 500;

/// An alt text as sent: trimmed, line breaks and other control characters as spaces; empty is
/// none. Longer than `MAX_ALT_CHARS` is refused.
pub fn parse_alt(raw: &str) -> Result<Option<String>, crate::error::AppError> {
    let text: String = raw
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > MAX_ALT_CHARS {
        return Err(crate::error::AppError::invalid(
            "alts",
            format!("An image's description can be at most {MAX_ALT_CHARS} characters."),
        ));
    }
    Ok((!text.is_empty()).then_some(text))
}

impl FileView {
    /// The text that stands for an image: its alt text, or its name.
    pub fn alt_text(&self) -> &str {
        self.alt.as_deref().unwrap_or(&self.name)
    }

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
    fn alt_text_is_tidied_bounded_and_falls_back_to_the_name() {
        assert_eq!(
            parse_alt("  a cat\non a sofa ").unwrap().as_deref(),
            Some("a cat on a sofa")
        );
        assert_eq!(parse_alt("   ").unwrap(), None);
        assert!(parse_alt(&"é".repeat(MAX_ALT_CHARS)).is_ok());
        assert!(parse_alt(&"é".repeat(MAX_ALT_CHARS + 1)).is_err());
        let mut view = FileView {
            id: FileId::new(),
            name: "IMG_0042.jpg".into(),
            content_type: "image/jpeg".into(),
            size: 1,
            dimensions: Some((1, 1)),
            alt: None,
        };
        assert_eq!(view.alt_text(), "IMG_0042.jpg");
        view.alt = Some("The harbour at dusk".into());
        assert_eq!(view.alt_text(), "The harbour at dusk");
    }

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
