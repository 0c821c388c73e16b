//! The installable app: a web app manifest (`public/manifest.webmanifest`), and a service worker that
//! keeps the app's own files (CSS, WebAssembly, JavaScript, icons, the offline page) for when the
//! device is offline. It never keeps pages or API answers (they are people's data). Its script is
//! served with the build's version in it, so a deployment is a new worker: it installs the new
//! files, drops the old ones and takes over open pages at once.

#[cfg(feature = "ssr")]
mod worker;
#[cfg(feature = "ssr")]
pub use worker::*;

/// Registers the service worker (in the browser, once the app is live).
pub fn register() {
    #[cfg(feature = "hydrate")]
    leptos::prelude::Effect::new(move |_| {
        let container = leptos::prelude::window().navigator().service_worker();
        // A browser without service workers (or a private window refusing them) just stays online-only.
        let _ = container.register("/sw.js");
    });
}
