use leptos::prelude::*;
use leptos_meta::Title;

/// The landing pane shown before a room is opened.
#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="" />
        <section class="mx-auto flex max-w-xl flex-1 flex-col justify-center gap-4 p-6 text-center">
            <h1 class="text-2xl font-semibold tracking-tight sm:text-3xl">"Welcome to ML-CHAT"</h1>
            <p class="text-slate-600 dark:text-slate-300">
                "Real-time rooms and direct messages, served by one small Rust binary."
            </p>
        </section>
    }
}
