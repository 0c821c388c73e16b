//! The message composer: Enter sends, Shift+Enter breaks the line, Up in an empty composer edits the
//! reader's last message, `@` offers the room's members (arrows move, Enter or Tab picks, Escape
//! closes); typing notices go out while typing. Files come with "Attach file" (or "Take photo" on a
//! phone), a drop on the composer or a paste, and go with the next message once uploaded.

use super::uploads::UploadTray;
use super::RoomUi;
use crate::chat::live::Live;
use crate::components::form::keep_typed;
use crate::domain::{mention_at, ROOM_MENTION};
use crate::files::upload::{files_of, Uploads};
use crate::model::RoomId;
use crate::protocol::{ClientMsg, MAX_BODY_CHARS};
use leptos::prelude::*;

#[component]
pub(super) fn Composer(room: RoomId) -> impl IntoView {
    let live = Live::get();
    let ui = RoomUi::get();
    let text = RwSignal::new(String::new());
    let textarea = ui.composer;
    keep_typed(textarea, text);
    let last_typing = StoredValue::new(0.0f64);
    let uploads = Uploads::new();
    let picker = NodeRef::<leptos::html::Input>::new();
    let camera = NodeRef::<leptos::html::Input>::new();
    let send = move || {
        let body = text.get_untracked();
        let files = uploads.ready();
        // A file still on its way holds the message back (Send is disabled meanwhile).
        if (body.trim().is_empty() && files.is_empty()) || uploads.busy_untracked() {
            return;
        }
        live.send(room, body, None, files);
        uploads.clear_ready();
        text.set(String::new());
        last_typing.set_value(0.0);
        live.transmit(ClientMsg::Typing {
            room,
            active: false,
        });
    };
    let too_long = move || text.with(|t| t.chars().count() > MAX_BODY_CHARS);

    // `@` suggestions: where the `@` being completed starts, and the highlighted option.
    let completing = RwSignal::new(None::<(usize, String)>);
    let active = RwSignal::new(0usize);
    let suggestions = Memo::new(move |_| {
        let Some((_, typed)) = completing.get() else {
            return Vec::new();
        };
        let typed = typed.to_lowercase();
        let mut found: Vec<Suggestion> = live.members.with(|rooms| {
            rooms
                .get(&room)
                .into_iter()
                .flatten()
                .filter(|m| Some(m.user) != ui.my_id)
                .filter(|m| {
                    m.username.to_lowercase().starts_with(&typed)
                        || m.display_name.to_lowercase().starts_with(&typed)
                })
                .take(MAX_SUGGESTIONS)
                .map(|m| Suggestion {
                    username: m.username.clone(),
                    label: format!("{} @{}", m.display_name, m.username),
                })
                .collect()
        });
        if ROOM_MENTION.starts_with(&typed) {
            found.push(Suggestion {
                username: ROOM_MENTION.to_owned(),
                label: "@room (everyone in this room)".to_owned(),
            });
        }
        found
    });
    let open = move || !suggestions.with(Vec::is_empty);
    let look_for_mention = move || {
        let Some(el) = textarea.get_untracked() else {
            return;
        };
        let value = el.value();
        let cursor = el
            .selection_start()
            .ok()
            .flatten()
            .map_or(value.len(), |c| utf16_to_byte(&value, c as usize));
        let found = mention_at(&value, cursor).map(|(at, typed)| (at, typed.to_owned()));
        if found != completing.get_untracked() {
            active.set(0);
            completing.set(found);
        }
    };
    let pick = move |index: usize| {
        let (Some((at, typed)), Some(choice)) = (
            completing.get_untracked(),
            suggestions.with_untracked(|s| s.get(index).cloned()),
        ) else {
            return;
        };
        let inserted = format!("@{} ", choice.username);
        let caret = at + inserted.len();
        text.update(|t| t.replace_range(at..at + 1 + typed.len(), &inserted));
        completing.set(None);
        if let Some(el) = textarea.get_untracked() {
            el.set_value(&text.get_untracked());
            let caret = utf16_len(&text.get_untracked()[..caret]) as u32;
            let _ = el.set_selection_range(caret, caret);
            let _ = el.focus();
        }
    };
    let add_files = move |files: Vec<web_sys::File>| {
        if !files.is_empty() {
            uploads.start(room, files);
        }
    };
    let picked = move |input: web_sys::HtmlInputElement| {
        add_files(files_of(input.files()));
        // The same file may be picked again later.
        input.set_value("");
    };
    view! {
        <UploadTray uploads />
        <form
            class="flex items-end gap-2 border-t border-slate-200 p-3 dark:border-slate-800"
            on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); if !too_long() { send(); } }
            on:dragover=move |ev: leptos::ev::DragEvent| ev.prevent_default()
            on:drop=move |ev: leptos::ev::DragEvent| {
                let files = files_of(ev.data_transfer().and_then(|d| d.files()));
                if !files.is_empty() {
                    ev.prevent_default();
                    add_files(files);
                }
            }
        >
            <input type="file" multiple class="hidden" tabindex="-1" aria-hidden="true" node_ref=picker
                data-testid="attach-input" on:change:target=move |ev| picked(ev.target()) />
            <input type="file" accept="image/*" capture="environment" class="hidden" tabindex="-1" aria-hidden="true"
                node_ref=camera on:change:target=move |ev| picked(ev.target()) />
            <button type="button" class=ATTACH aria-label="Attach file" title="Attach file"
                on:click=move |_| if let Some(input) = picker.get_untracked() { input.click(); }
            >"📎"</button>
            <button type="button" class=format!("{ATTACH} sm:hidden") aria-label="Take photo" title="Take photo"
                on:click=move |_| if let Some(input) = camera.get_untracked() { input.click(); }
            >"📷"</button>
            <textarea
                aria-label="Message"
                placeholder="Write a message (Enter to send, Shift+Enter for a new line)"
                rows="2"
                node_ref=textarea
                aria-autocomplete="list"
                aria-controls="mention-suggestions"
                aria-activedescendant=move || open().then(|| format!("mention-option-{}", active.get()))
                on:click=move |_| look_for_mention()
                on:paste=move |ev: leptos::ev::ClipboardEvent| {
                    // A pasted screenshot is a file; pasted text stays text.
                    let files = files_of(ev.clipboard_data().and_then(|d| d.files()));
                    if !files.is_empty() {
                        ev.prevent_default();
                        add_files(files);
                    }
                }
                on:input:target=move |ev| {
                    text.set(ev.target().value());
                    look_for_mention();
                    let now = live.now.get_untracked();
                    if now - last_typing.get_value() > 3000.0 {
                        last_typing.set_value(now.max(1.0));
                        live.transmit(ClientMsg::Typing { room, active: true });
                    }
                }
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    let count = suggestions.with_untracked(Vec::len);
                    if count > 0 {
                        match ev.key().as_str() {
                            "ArrowDown" => {
                                ev.prevent_default();
                                active.update(|a| *a = (*a + 1) % count);
                                return;
                            }
                            "ArrowUp" => {
                                ev.prevent_default();
                                active.update(|a| *a = (*a + count - 1) % count);
                                return;
                            }
                            "Enter" | "Tab" => {
                                ev.prevent_default();
                                pick(active.get_untracked().min(count - 1));
                                return;
                            }
                            "Escape" => {
                                ev.prevent_default();
                                completing.set(None);
                                return;
                            }
                            _ => {}
                        }
                    }
                    if ev.key() == "Enter" && !ev.shift_key() {
                        ev.prevent_default();
                        if !too_long() { send(); }
                    } else if ev.key() == "ArrowUp" && text.with_untracked(String::is_empty) {
                        if let Some(last) = live.last_own_message(room, ui.my_id) {
                            ev.prevent_default();
                            ui.editing.set(Some(last));
                        }
                    }
                }
                class="min-h-10 flex-1 resize-y rounded-md border border-slate-300 bg-white px-3 py-2 text-sm dark:border-slate-700 dark:bg-slate-900"
            ></textarea>
            <button type="submit" class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-semibold text-white disabled:opacity-60"
                disabled=move || too_long() || uploads.busy()>
                "Send"
            </button>
        </form>
        <ul
            id="mention-suggestions"
            role="listbox"
            aria-label="People to mention"
            class=move || if open() { "mx-3 mb-2 max-h-48 overflow-y-auto rounded-md border border-slate-200 bg-white py-1 text-sm shadow dark:border-slate-700 dark:bg-slate-900" } else { "hidden" }
        >
            {move || suggestions.get().into_iter().enumerate().map(|(i, s)| view! {
                <li
                    id=format!("mention-option-{i}")
                    role="option"
                    aria-selected=move || (active.get() == i).to_string()
                    class=move || if active.get() == i { "cursor-pointer bg-indigo-100 px-3 py-1 dark:bg-indigo-900" } else { "cursor-pointer px-3 py-1" }
                    // Keep the focus in the composer.
                    on:mousedown=move |ev| { ev.prevent_default(); pick(i); }
                >
                    {s.label}
                </li>
            }).collect_view()}
        </ul>
        {move || too_long().then(|| view! { <p role="alert" class="px-3 pb-2 text-xs text-red-600 dark:text-red-400">{format!("A message has at most {MAX_BODY_CHARS} characters.")}</p> })}
    }
}

const ATTACH: &str = "rounded-md border border-slate-300 px-2 py-2 text-sm hover:bg-slate-50 dark:border-slate-700 dark:hover:bg-slate-800";

/// Members offered at once while completing an `@`.
const MAX_SUGGESTIONS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Suggestion {
    username: String,
    label: String,
}

/// The browser counts text positions in UTF-16 units; Rust strings are bytes.
fn utf16_to_byte(text: &str, units: usize) -> usize {
    let mut seen = 0;
    for (i, c) in text.char_indices() {
        if seen >= units {
            return i;
        }
        seen += c.len_utf16();
    }
    text.len()
}

fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}
