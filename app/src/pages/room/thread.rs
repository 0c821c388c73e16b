//! A thread beside the room (a panel named "Thread"; on phones it covers the room as its own view):
//! the root, its replies live, and a composer whose replies can also go to the room. While it is open
//! and the tab is visible, the reader has read the thread.

use super::{MessageRow, PendingItem, RoomUi};
use crate::auth::authed;
use crate::chat::api::{follow_thread, mark_thread_read, open_thread};
use crate::chat::live::Live;
use crate::components::form::keep_typed;
use crate::model::MessageId;
use crate::protocol::MAX_BODY_CHARS;
use leptos::prelude::*;

#[component]
pub(super) fn ThreadPanel(root: MessageId, member: Signal<bool>) -> impl IntoView {
    let ui = RoomUi::get();
    let live = Live::get();
    let error = RwSignal::new(None::<String>);
    let following = RwSignal::new(false);
    let more = RwSignal::new(false);
    let loading = RwSignal::new(true);
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            match authed(move || open_thread(root, None)).await {
                Ok(page) => {
                    following.set(page.following);
                    more.set(page.more);
                    live.seed_thread(page.root, page.replies);
                }
                Err(e) => error.set(Some(e.to_string())),
            }
            loading.set(false);
        });
    });
    let root_view = Memo::new(move |_| live.thread_roots.with(|m| m.get(&root).cloned()));
    let replies = Memo::new(move |_| {
        live.threads.with(|m| {
            m.get(&root)
                .map(|list| list.values().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        })
    });
    let pending = Memo::new(move |_| {
        live.pending.with(|p| {
            p.iter()
                .filter(|x| x.thread.is_some_and(|(r, _)| r == root))
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    // Open and in view: every reply so far is read (new ones too, as they arrive).
    Effect::new(move |_| {
        let _ = replies.get();
        let _ = root_view.get();
        if !page_visible() {
            return;
        }
        if let Some(read) = live.saw_thread(root) {
            leptos::task::spawn_local(async move {
                let _ = authed(move || mark_thread_read(root, read)).await;
            });
        }
    });
    let load_older = move |_| {
        let Some(oldest) =
            replies.with_untracked(|r| r.first().and_then(|m| m.thread.map(|t| t.at_rev)))
        else {
            return;
        };
        leptos::task::spawn_local(async move {
            if let Ok(page) = authed(move || open_thread(root, Some(oldest))).await {
                more.set(page.more);
                live.seed_thread(page.root, page.replies);
            }
        });
    };
    let toggle_follow = move |_| {
        let on = !following.get_untracked();
        leptos::task::spawn_local(async move {
            match authed(move || follow_thread(root, on)).await {
                Ok(now) => {
                    following.set(now);
                    live.follows_changed.update(|n| *n += 1);
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let close = move || ui.show_thread.run(None);
    view! {
        <aside
            aria-label="Thread"
            class="fixed inset-0 z-30 flex flex-col bg-white dark:bg-slate-950 md:static md:z-auto md:w-96 md:shrink-0 md:border-l md:border-slate-200 md:dark:border-slate-800"
            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                if ev.key() == "Escape" && ui.editing.get_untracked().is_none() && ui.picking.get_untracked().is_none() {
                    ev.prevent_default();
                    close();
                }
            }
        >
            <header class="flex items-center gap-2 border-b border-slate-200 px-4 py-2 dark:border-slate-800">
                <h2 class="flex-1 text-lg font-semibold">"Thread"</h2>
                <button type="button" class="rounded-md border border-slate-300 px-2 py-0.5 text-xs dark:border-slate-600"
                    aria-pressed=move || following.get().to_string()
                    on:click=toggle_follow
                >{move || if following.get() { "Following" } else { "Follow thread" }}</button>
                <button type="button" class="rounded-md px-2 text-xl leading-none text-slate-700 dark:text-slate-300" aria-label="Close thread" on:click=move |_| close()>"×"</button>
            </header>
            <div class="min-h-0 flex-1 space-y-1 overflow-y-auto px-2 py-3">
                {move || error.get().map(|e| view! { <p role="alert" class="px-2 text-sm text-red-700 dark:text-red-400">{e}</p> })}
                {move || root_view.get().map(|m| view! { <MessageRow message=m unread_from_here=false in_thread=true /> })}
                <p class="border-b border-slate-200 px-2 pb-1 text-xs font-semibold text-slate-600 dark:border-slate-800 dark:text-slate-400" data-testid="thread-count">
                    {move || match replies.with(Vec::len) {
                        0 if loading.get() => "Loading…".to_owned(),
                        0 => "No replies yet.".to_owned(),
                        1 => "1 reply".to_owned(),
                        n => format!("{n} replies"),
                    }}
                </p>
                {move || more.get().then(|| view! {
                    <button type="button" class="mx-2 rounded-md border border-slate-300 px-2 py-0.5 text-xs dark:border-slate-600" on:click=load_older>"Older replies"</button>
                })}
                <div aria-label="Replies">
                    <For each=move || replies.get() key=|m| (m.id, m.rev) let:m>
                        <MessageRow message=m unread_from_here=false in_thread=true />
                    </For>
                </div>
                <For each=move || pending.get() key=|p| (p.nonce.clone(), p.failed.clone(), p.retrying) let:p>
                    <PendingItem pending=p />
                </For>
            </div>
            {move || member.get().then(|| view! { <ThreadComposer root /> })}
        </aside>
    }
}

/// Enter sends the reply, Shift+Enter breaks the line; "Also send to the room" posts it to the
/// timeline too.
#[component]
fn ThreadComposer(root: MessageId) -> impl IntoView {
    let ui = RoomUi::get();
    let live = Live::get();
    let text = RwSignal::new(String::new());
    let also = RwSignal::new(false);
    let field = NodeRef::<leptos::html::Textarea>::new();
    keep_typed(field, text);
    Effect::new(move |_| {
        if let Some(el) = field.get() {
            let _ = el.focus();
        }
    });
    let send = move || {
        let body = text.get_untracked();
        if body.trim().is_empty() || body.chars().count() > MAX_BODY_CHARS {
            return;
        }
        live.send(
            ui.room,
            body,
            Some((root, also.get_untracked())),
            Vec::new(),
        );
        text.set(String::new());
        also.set(false);
    };
    view! {
        <form class="border-t border-slate-200 p-3 dark:border-slate-800" on:submit=move |ev| { ev.prevent_default(); send(); }>
            <textarea
                node_ref=field
                aria-label="Reply"
                rows="2"
                placeholder="Reply…"
                class="w-full resize-none rounded-md border border-slate-300 bg-white px-3 py-2 text-sm dark:border-slate-600 dark:bg-slate-900"
                on:input=move |ev| text.set(event_target_value(&ev))
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" && !ev.shift_key() {
                        ev.prevent_default();
                        send();
                    }
                }
            ></textarea>
            <div class="mt-1 flex items-center justify-between gap-2 text-xs">
                <label class="flex items-center gap-1">
                    <input type="checkbox" prop:checked=move || also.get() on:change=move |ev| also.set(event_target_checked(&ev)) />
                    "Also send to the room"
                </label>
                <button type="submit" class="rounded-md bg-indigo-600 px-3 py-1 text-sm text-white">"Send reply"</button>
            </div>
        </form>
    }
}

/// Whether the page is in view (a background tab has not read what arrives).
fn page_visible() -> bool {
    #[cfg(feature = "hydrate")]
    {
        !document().hidden()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        false
    }
}
