//! Pictures served from `/api/files`, which needs a live access cookie: one asked for in the moment the
//! cookie ran out (before the page renewed it) fails with 401, and a browser never asks again by itself.

/// For an `<img>`'s `error` event: renews the session (shared with any renewal in flight) and asks for
/// the picture once more; a second failure is left as it is.
pub fn retry_after_renewal(event: &leptos::ev::Event) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let Some(img) = event
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        else {
            return;
        };
        if img.has_attribute("data-retried") {
            return;
        }
        let _ = img.set_attribute("data-retried", "");
        leptos::task::spawn_local(async move {
            if crate::auth::client::renew().await.is_ok() {
                if let Some(src) = img.get_attribute("src") {
                    let again = if src.contains('?') {
                        "&again"
                    } else {
                        "?again"
                    };
                    let _ = img.set_attribute("src", &format!("{src}{again}"));
                }
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = event;
}
