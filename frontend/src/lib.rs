//! Browser entry point. `cargo leptos` builds this crate to WASM; the generated JS calls `hydrate`.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Hydration is asynchronous: a lazy route (`app::routes`) opened directly needs its own WASM
    // file, fetched while the rest waits. `hydrate_from_async` starts Leptos' executor itself.
    wasm_bindgen_futures::spawn_local(async {
        let app = leptos::mount::hydrate_from_async(
            leptos::prelude::document()
                .body()
                .expect("a page has a body"),
            app::App,
        )
        .await;
        // The app lives as long as the page.
        app.forget();
        app::mark_hydrated();
    });
}
