//! The files waiting to go with the next message: each upload's progress (with Cancel), a finished
//! one's thumbnail or size (with Remove), or why it failed.

use crate::files::upload::{Upload, UploadState, Uploads};
use crate::files::{human_size, FileView, MAX_ALT_CHARS};
use leptos::prelude::*;

const BUTTON: &str = "rounded px-1 text-indigo-700 hover:underline dark:text-indigo-300";

#[component]
pub(super) fn UploadTray(uploads: Uploads) -> impl IntoView {
    view! {
        <Show when=move || !uploads.list.with(Vec::is_empty)>
            <ul aria-label="Files to send" class="flex flex-wrap gap-2 px-3 pt-2">
                {move || uploads.list.get().into_iter().map(|upload| view! { <UploadItem upload uploads /> }).collect_view()}
            </ul>
        </Show>
    }
}

#[component]
fn UploadItem(upload: Upload, uploads: Uploads) -> impl IntoView {
    let Upload {
        key,
        name,
        size,
        state,
    } = upload;
    let remove = move |_| uploads.remove(key);
    let content = match state {
        UploadState::Sending(percent) => view! {
            <span class="max-w-40 truncate">{name.clone()}</span>
            <progress max="100" value=percent aria-label=format!("Uploading {name}") class="w-24"></progress>
            <button type="button" class=BUTTON aria-label=format!("Cancel upload of {name}") on:click=remove>"Cancel"</button>
        }
        .into_any(),
        UploadState::Done(file) => view! {
            <Preview file=file.clone() />
            <span class="max-w-40 truncate">{name.clone()}</span>
            <span class="text-slate-600 dark:text-slate-400">{human_size(file.size)}</span>
            {file.dimensions.is_some().then(|| view! {
                <input
                    type="text"
                    aria-label=format!("Alt text for {name}")
                    placeholder="Describe it (alt text)"
                    maxlength=MAX_ALT_CHARS
                    prop:value=uploads.description(key)
                    on:input=move |ev| uploads.describe(key, event_target_value(&ev))
                    class="w-44 rounded border border-slate-300 bg-white px-1 py-0.5 text-xs text-slate-900 placeholder:text-slate-600 dark:border-slate-600 dark:bg-slate-900 dark:text-slate-100 dark:placeholder:text-slate-400"
                />
            })}
            <button type="button" class=BUTTON aria-label=format!("Remove {name}") on:click=remove>"Remove"</button>
        }
        .into_any(),
        UploadState::Failed(why) => view! {
            <span class="max-w-40 truncate">{name.clone()}</span>
            <span role="alert" class="text-red-700 dark:text-red-400">{why}</span>
            <button type="button" class=BUTTON aria-label=format!("Remove {name}") on:click=remove>"Remove"</button>
        }
        .into_any(),
    };
    view! {
        <li class="flex items-center gap-2 rounded-md border border-slate-300 px-2 py-1 text-xs dark:border-slate-600"
            data-testid="upload" title=format!("{name} ({})", human_size(size))>
            {content}
        </li>
    }
}

#[component]
fn Preview(file: FileView) -> impl IntoView {
    file.thumbnail_url().map(|src| {
        view! { <img src=src alt=file.name.clone() class="h-10 w-10 rounded object-cover" /> }
    })
}
