//! What an upload is, judged by its bytes (never by the name or type the client sent), and images
//! made safe to show: decoded and encoded again, which leaves EXIF (GPS positions, camera serials)
//! and anything else riding along behind, turned upright first, with a thumbnail.

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Thumbnails fit in this square.
pub const THUMBNAIL_SIDE: u32 = 320;
/// Profile pictures are cut to a square of at most this side…
pub const PICTURE_SIDE: u32 = 512;
/// …with a small version for messages and member lists.
pub const PICTURE_THUMBNAIL_SIDE: u32 = 96;
/// Larger images are refused: decoding them would take too much memory.
pub const MAX_IMAGE_SIDE: u32 = 8_192;
/// What decoding one image may allocate at most.
const MAX_DECODE_BYTES: u64 = 300 * 1024 * 1024;
const JPEG_QUALITY: u8 = 85;

/// What the bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    /// A raster image we decode, re-encode and show inline.
    Image(ImageFormat),
    /// Anything else, with the type its content shows (served as a download only).
    Other(String),
}

pub fn sniff(bytes: &[u8]) -> Sniffed {
    match infer::get(bytes).map(|t| t.mime_type()) {
        Some("image/png") => Sniffed::Image(ImageFormat::Png),
        Some("image/jpeg") => Sniffed::Image(ImageFormat::Jpeg),
        Some("image/gif") => Sniffed::Image(ImageFormat::Gif),
        Some("image/webp") => Sniffed::Image(ImageFormat::WebP),
        Some(other) => Sniffed::Other(other.to_owned()),
        // Plain text has no magic number: call it text only when it is valid UTF-8.
        None if std::str::from_utf8(bytes).is_ok() => Sniffed::Other("text/plain".to_owned()),
        None => Sniffed::Other("application/octet-stream".to_owned()),
    }
}

/// An image as it is stored and shown.
#[derive(Debug, Clone)]
pub struct SafeImage {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub dimensions: (u32, u32),
    pub thumbnail: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageRejected {
    #[error("The image could not be read: {0}")]
    Unreadable(String),
    #[error("The image is too large (at most {MAX_IMAGE_SIDE} pixels a side).")]
    TooLarge,
}

/// Decodes `bytes` (of `format`), within the size limits, turned upright.
fn decode(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage, ImageRejected> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let rejected = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => ImageRejected::TooLarge,
        other => ImageRejected::Unreadable(other.to_string()),
    };
    let mut decoder = reader.into_decoder().map_err(rejected)?;
    let orientation = decoder.orientation().map_err(rejected)?;
    let mut picture = DynamicImage::from_decoder(decoder).map_err(rejected)?;
    picture.apply_orientation(orientation);
    Ok(picture)
}

/// Encodes `picture` and its thumbnail: photos stay JPEG, everything else becomes PNG.
fn safe_image(
    picture: &DynamicImage,
    thumbnail: &DynamicImage,
    format: ImageFormat,
) -> Result<SafeImage, ImageRejected> {
    let photo = format == ImageFormat::Jpeg;
    let failed = |e: image::ImageError| ImageRejected::Unreadable(e.to_string());
    Ok(SafeImage {
        bytes: encode(picture, photo).map_err(failed)?,
        content_type: if photo { "image/jpeg" } else { "image/png" },
        dimensions: (picture.width(), picture.height()),
        thumbnail: encode(thumbnail, photo).map_err(failed)?,
    })
}

/// Decodes `bytes` (of `format`), turns the picture upright and encodes it again with a thumbnail
/// (an animated GIF keeps its first frame).
pub fn make_safe(bytes: &[u8], format: ImageFormat) -> Result<SafeImage, ImageRejected> {
    let picture = decode(bytes, format)?;
    let thumbnail = picture.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE);
    safe_image(&picture, &thumbnail, format)
}

/// A profile picture: made safe like any image, its middle cut to a square of at most
/// `PICTURE_SIDE`, with a `PICTURE_THUMBNAIL_SIDE` version.
pub fn make_picture(bytes: &[u8], format: ImageFormat) -> Result<SafeImage, ImageRejected> {
    let picture = decode(bytes, format)?;
    let side = picture.width().min(picture.height());
    let square = picture.crop_imm(
        (picture.width() - side) / 2,
        (picture.height() - side) / 2,
        side,
        side,
    );
    let square = if side > PICTURE_SIDE {
        square.resize_exact(
            PICTURE_SIDE,
            PICTURE_SIDE,
            image::imageops::FilterType::Lanczos3,
        )
    } else {
        square
    };
    let small = square.thumbnail(PICTURE_THUMBNAIL_SIDE, PICTURE_THUMBNAIL_SIDE);
    safe_image(&square, &small, format)
}

fn encode(picture: &DynamicImage, photo: bool) -> image::ImageResult<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    if photo {
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
        DynamicImage::ImageRgb8(picture.to_rgb8()).write_with_encoder(encoder)?;
    } else {
        picture.write_to(&mut out, ImageFormat::Png)?;
    }
    Ok(out.into_inner())
}

/// A file name fit to show and to offer when saving: no directories, no control characters, at most
/// 200 characters, never empty.
pub fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | '\u{202E}' | '\u{202D}'))
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        "file".to_owned()
    } else {
        cleaned.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let picture = DynamicImage::new_rgb8(width, height);
        let mut out = Cursor::new(Vec::new());
        picture.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn the_content_decides_what_a_file_is() {
        assert_eq!(sniff(&png(2, 2)), Sniffed::Image(ImageFormat::Png));
        assert_eq!(
            sniff(b"%PDF-1.7\n..."),
            Sniffed::Other("application/pdf".into())
        );
        assert_eq!(
            sniff(b"<html><script>alert(1)</script>"),
            Sniffed::Other("text/html".into())
        );
        assert_eq!(sniff(b"just words"), Sniffed::Other("text/plain".into()));
        assert_eq!(
            sniff(&[0xff, 0x00, 0xfe, 0x01]),
            Sniffed::Other("application/octet-stream".into())
        );
    }

    #[test]
    fn images_are_encoded_again_with_a_thumbnail() {
        let safe = make_safe(&png(1_000, 500), ImageFormat::Png).unwrap();
        assert_eq!(safe.dimensions, (1_000, 500));
        assert_eq!(safe.content_type, "image/png");
        let thumb = image::load_from_memory(&safe.thumbnail).unwrap();
        assert_eq!(
            (thumb.width(), thumb.height()),
            (THUMBNAIL_SIDE, THUMBNAIL_SIDE / 2)
        );
        assert!(matches!(
            make_safe(b"\x89PNG\r\n\x1a\nnot really", ImageFormat::Png),
            Err(ImageRejected::Unreadable(_))
        ));
    }

    #[test]
    fn profile_pictures_are_squares_cut_from_the_middle() {
        // A wide picture: red on the left third, green in the middle, blue on the right.
        let mut wide = image::RgbImage::new(900, 300);
        for (x, _, pixel) in wide.enumerate_pixels_mut() {
            *pixel = match x {
                0..300 => image::Rgb([255, 0, 0]),
                300..600 => image::Rgb([0, 255, 0]),
                _ => image::Rgb([0, 0, 255]),
            };
        }
        let mut bytes = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(wide)
            .write_to(&mut bytes, ImageFormat::Png)
            .unwrap();
        let safe = make_picture(bytes.get_ref(), ImageFormat::Png).unwrap();
        assert_eq!(safe.dimensions, (300, 300));
        let kept = image::load_from_memory(&safe.bytes).unwrap().to_rgb8();
        assert_eq!(kept.get_pixel(0, 150), &image::Rgb([0, 255, 0]));
        assert_eq!(kept.get_pixel(299, 150), &image::Rgb([0, 255, 0]));
        let small = image::load_from_memory(&safe.thumbnail).unwrap();
        assert_eq!(
            (small.width(), small.height()),
            (PICTURE_THUMBNAIL_SIDE, PICTURE_THUMBNAIL_SIDE)
        );

        let large = make_picture(&png(2_000, 1_500), ImageFormat::Png).unwrap();
        assert_eq!(large.dimensions, (PICTURE_SIDE, PICTURE_SIDE));
    }

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\Users\\ana\\cat.png"), "cat.png");
        assert_eq!(clean_file_name("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(clean_file_name("evil\u{202E}gpj.exe"), "evilgpj.exe");
        assert_eq!(clean_file_name(".."), "file");
        assert_eq!(clean_file_name(""), "file");
        assert_eq!(clean_file_name(&"x".repeat(300)).len(), 200);
    }
}
