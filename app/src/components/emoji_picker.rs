//! The reaction picker: the common emoji, searchable by name, keyboard-first (it opens with the
//! search focused; Escape closes it). No external emoji CDN: the catalogue is in `domain::emoji`.

use crate::domain::{search_emoji, COMMON_EMOJI};
use leptos::prelude::*;

/// The emoji's name, for screen readers and the hover title.
fn name_of(emoji: &str) -> &'static str {
    COMMON_EMOJI
        .iter()
        .find(|(e, _, _)| *e == emoji)
        .map_or("emoji", |(_, name, _)| name)
}

#[component]
pub fn EmojiPicker(on_pick: Callback<&'static str>, on_close: Callback<()>) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let search = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(input) = search.get() {
            let _ = input.focus();
        }
    });
    let found = Memo::new(move |_| query.with(|q| search_emoji(q)));
    view! {
        <div
            role="dialog"
            aria-label="Pick a reaction"
            class="absolute right-2 z-20 mt-1 w-64 rounded-lg border border-slate-200 bg-white p-2 shadow-lg dark:border-slate-700 dark:bg-slate-900"
            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                if ev.key() == "Escape" {
                    ev.stop_propagation();
                    on_close.run(());
                }
            }
        >
            <input
                type="search"
                node_ref=search
                aria-label="Search emoji"
                placeholder="Search emoji"
                class="mb-2 w-full rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-600 dark:bg-slate-950"
                on:input:target=move |ev| query.set(ev.target().value())
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" {
                        ev.prevent_default();
                        if let Some(first) = found.with_untracked(|f| f.first().copied()) {
                            on_pick.run(first);
                        }
                    }
                }
            />
            <div class="grid max-h-40 grid-cols-8 gap-1 overflow-y-auto">
                <For each=move || found.get() key=|e| *e let:emoji>
                    <button
                        type="button"
                        class="rounded p-0.5 text-lg hover:bg-slate-100 dark:hover:bg-slate-800"
                        aria-label=name_of(emoji)
                        title=name_of(emoji)
                        on:click=move |_| on_pick.run(emoji)
                    >
                        {emoji}
                    </button>
                </For>
            </div>
            {move || found.with(Vec::is_empty).then(|| view! { <p class="px-1 py-2 text-xs text-slate-600 dark:text-slate-400">"No emoji by that name."</p> })}
        </div>
    }
}
