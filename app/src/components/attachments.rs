//! The files a message carries: images as thumbnails that open the full picture, anything else as a
//! card with its name, type and size that downloads it (the server sends those as attachments only).

use crate::files::{human_size, FileView};
use leptos::prelude::*;

#[component]
pub fn Attachments(files: Vec<FileView>) -> impl IntoView {
    view! {
        <ul class="mt-1 flex flex-wrap gap-2" aria-label="Files">
            {files.into_iter().map(|file| view! { <li><Attachment file /></li> }).collect_view()}
        </ul>
    }
}

#[component]
fn Attachment(file: FileView) -> impl IntoView {
    let url = file.url();
    match (file.thumbnail_url(), file.dimensions) {
        (Some(thumbnail), Some((width, height))) => {
            // The thumbnail's box keeps the picture's shape, so the list does not jump as it loads.
            let (w, h) = fit(width, height, 240);
            view! {
                <a href=url target="_blank" rel="noopener" class="block rounded-md focus-visible:outline focus-visible:outline-2 focus-visible:outline-indigo-600"
                    title=format!("{} ({width} × {height}), opens full size", file.name)>
                    <img src=thumbnail alt=file.alt_text().to_owned() width=w height=h loading="lazy"
                        on:error=|ev| super::images::retry_after_renewal(&ev)
                        class="max-w-full rounded-md border border-slate-200 bg-slate-100 object-contain dark:border-slate-700 dark:bg-slate-800" />
                </a>
            }
            .into_any()
        }
        _ => view! {
            <a href=url download=file.name.clone() data-testid="file-card"
                class="flex min-w-0 max-w-xs items-center gap-2 rounded-md border border-slate-300 px-3 py-2 text-sm hover:bg-slate-50 focus-visible:outline focus-visible:outline-2 focus-visible:outline-indigo-600 dark:border-slate-600 dark:hover:bg-slate-800">
                <span aria-hidden="true" class="text-lg">"📄"</span>
                <span class="min-w-0">
                    <span class="block truncate font-medium text-indigo-800 dark:text-indigo-300">{file.name.clone()}</span>
                    <span class="block text-xs text-slate-600 dark:text-slate-400">
                        {format!("{} · {}", kind_of(&file.content_type), human_size(file.size))}
                    </span>
                </span>
            </a>
        }
        .into_any(),
    }
}

/// `width` × `height` scaled down to fit in a `max` square (never up).
pub fn fit(width: u32, height: u32, max: u32) -> (u32, u32) {
    let longest = width.max(height).max(1);
    if longest <= max {
        return (width, height);
    }
    let scale = |n: u32| ((u64::from(n) * u64::from(max)) / u64::from(longest)).max(1) as u32;
    (scale(width), scale(height))
}

/// A short name for a content type ("application/pdf" -> "PDF").
fn kind_of(content_type: &str) -> String {
    let sub = content_type.rsplit('/').next().unwrap_or(content_type);
    match sub {
        "octet-stream" => "File".to_owned(),
        "plain" => "Text".to_owned(),
        other => other.to_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_fit_their_box_and_keep_their_shape() {
        assert_eq!(fit(100, 50, 240), (100, 50));
        assert_eq!(fit(4000, 3000, 240), (240, 180));
        assert_eq!(fit(300, 6000, 240), (12, 240));
        assert_eq!(fit(10000, 1, 240), (240, 1));
    }

    #[test]
    fn content_types_read_as_short_kinds() {
        assert_eq!(kind_of("application/pdf"), "PDF");
        assert_eq!(kind_of("text/plain"), "Text");
        assert_eq!(kind_of("application/octet-stream"), "File");
        assert_eq!(kind_of("application/zip"), "ZIP");
    }
}
