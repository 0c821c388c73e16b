use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

/// Shown for any path no route matches. During SSR it also sets the HTTP status to 404.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found" />
        <section class="mx-auto flex max-w-xl flex-1 flex-col justify-center gap-4 p-6 text-center">
            <p class="text-sm font-semibold text-indigo-600 dark:text-indigo-400">"404"</p>
            <h1 class="text-2xl font-semibold tracking-tight">"Page not found"</h1>
            <p class="text-slate-600 dark:text-slate-300">
                "There is nothing at this address. It may have moved, or the link may be mistyped."
            </p>
            <p>
                <A
                    href="/"
                    attr:class="inline-block rounded-md bg-indigo-600 px-4 py-2 font-medium text-white hover:bg-indigo-500"
                >
                    "Back to ML-CHAT"
                </A>
            </p>
        </section>
    }
}
