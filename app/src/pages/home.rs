use crate::auth::UserContext;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

const PRIMARY: &str =
    "rounded-md bg-indigo-600 px-4 py-3 text-sm font-semibold text-white hover:bg-indigo-500";
const SECONDARY: &str = "rounded-md border border-slate-300 px-4 py-3 text-sm font-semibold hover:bg-slate-100 dark:border-slate-700 dark:hover:bg-slate-800";

/// The landing pane shown before a room is opened: for a signed-in person, the ways forward.
#[component]
pub fn HomePage() -> impl IntoView {
    let user = UserContext::get().0;
    view! {
        <Title text="" />
        <section class="mx-auto flex max-w-xl flex-1 flex-col justify-center gap-4 p-6 text-center">
            <h1 class="text-2xl font-semibold tracking-tight sm:text-3xl">"Welcome to ML-CHAT"</h1>
            <p class="text-slate-600 dark:text-slate-300">
                "Real-time rooms and direct messages, served by one small Rust binary."
            </p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match user.await {
                        Ok(Some(me)) => view! {
                            <p class="text-lg" data-testid="greeting">{format!("Hello, {}!", me.display_name)}</p>
                            <p class="text-slate-600 dark:text-slate-300">
                                "Pick a room on the left, or:"
                            </p>
                            <nav aria-label="Get started" class="grid gap-3 sm:grid-cols-3">
                                <A href="/rooms#new-room" attr:class=PRIMARY>"Create a room"</A>
                                <A href="/rooms#public-rooms" attr:class=SECONDARY>"Browse rooms"</A>
                                <A href="/rooms#direct-message" attr:class=SECONDARY>"Start a direct message"</A>
                            </nav>
                        }.into_any(),
                        _ => view! {
                            <p class="flex justify-center gap-3">
                                <A href="/register" attr:class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-semibold text-white hover:bg-indigo-500">
                                    "Create an account"
                                </A>
                                <A href="/login" attr:class="rounded-md border border-slate-300 px-4 py-2 text-sm font-semibold hover:bg-slate-100 dark:border-slate-700 dark:hover:bg-slate-800">
                                    "Sign in"
                                </A>
                            </p>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
