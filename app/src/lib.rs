//! ML-CHAT: the Leptos application shared by the server (feature `ssr`) and the browser (feature
//! `hydrate`). Server-only modules sit behind `ssr`.
#![recursion_limit = "256"]

pub mod admin;
pub mod auth;
pub mod chat;
pub mod components;
pub mod domain;
pub mod error;
pub mod files;
pub mod model;
pub mod pages;
pub mod protocol;
pub mod push;
pub mod pwa;
pub mod routes;

#[cfg(feature = "ssr")]
pub mod csp;
#[cfg(feature = "ssr")]
pub mod metrics;
#[cfg(feature = "ssr")]
pub mod rate_limit;
#[cfg(feature = "ssr")]
pub mod request;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod store;

use components::layout::Layout;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, Lazy, SsrMode,
};
use pages::{
    home::HomePage, login::LoginPage, not_found::NotFound, register::RegisterPage, room::RoomPage,
    rooms::RoomsPage,
};
use routes::{
    AdminAuditRoute, AdminDashboardRoute, AdminRoomsRoute, AdminSearchRoute, AdminUsersRoute,
    MentionsRoute, ProfileRoute, SearchRoute, SessionsRoute, ThreadsRoute,
};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    csp::use_request_nonce();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <link rel="manifest" href="/manifest.webmanifest" />
                <link rel="apple-touch-icon" href="/icons/apple-touch-icon.png" />
                <meta name="theme-color" content="#4f46e5" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body class="h-full bg-white text-slate-900 antialiased dark:bg-slate-950 dark:text-slate-100">
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    pwa::register();
    let user = auth::UserContext::provide();
    components::time::ReaderClock::provide();
    let live = chat::live::Live::provide();
    keep_session_fresh(user, live);

    view! {
        <Stylesheet id="leptos" href="/pkg/mlchat.css" />
        // The tab title leads with what waits for the reader (read reactively by leptos_meta).
        <Title formatter=move |title: String| {
            let base = if title.is_empty() { "ML-CHAT".to_owned() } else { format!("{title} · ML-CHAT") };
            // Only the browser has a count; the server renders the title outside the page's state.
            let waiting = if cfg!(feature = "hydrate") { live.attention() } else { 0 };
            match waiting {
                0 => base,
                n => format!("({n}) {base}"),
            }
        } />
        // Pages are rendered whole before they are sent (`Async`): they then work without WebAssembly
        // too (streamed parts would need a script to be put in place), and hydrate what was sent.
        <Router>
            <Layout>
                <Routes fallback=|| view! { <NotFound /> }>
                    // The everyday pages are in the main bundle; the others (`routes`) are fetched
                    // when first shown. (With the everyday pages split too, release build of
                    // 2026-12-08: the room page needed 136 files, 883 KB gzip, against one file of
                    // 770 KB like this; /register needed 53 files, 495 KB.)
                    <Route path=path!("/") view=HomePage ssr=SsrMode::Async />
                    <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async />
                    <Route path=path!("/register") view=RegisterPage ssr=SsrMode::Async />
                    <Route path=path!("/rooms") view=RoomsPage ssr=SsrMode::Async />
                    <Route path=path!("/rooms/:id") view=RoomPage ssr=SsrMode::Async />
                    <Route path=path!("/profile") view={Lazy::<ProfileRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/sessions") view={Lazy::<SessionsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/mentions") view={Lazy::<MentionsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/threads") view={Lazy::<ThreadsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/search") view={Lazy::<SearchRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin") view={Lazy::<AdminDashboardRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/users") view={Lazy::<AdminUsersRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/rooms") view={Lazy::<AdminRoomsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/audit") view={Lazy::<AdminAuditRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/admin/search") view={Lazy::<AdminSearchRoute>::new()} ssr=SsrMode::Async />
                </Routes>
            </Layout>
        </Router>
    }
}

/// Marks `<body data-hydrated="true">` once the WASM app has taken over the server-rendered page:
/// the browser entry point (`frontend`) calls it when hydration has finished, including a lazy
/// route's, whose code may have had to be fetched first. The browser tests wait for it.
#[cfg(feature = "hydrate")]
pub fn mark_hydrated() {
    if let Some(body) = document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}

/// Opens the live connection. Its code (the websocket, and applying what the server sends) is a lazy
/// split: a page nobody is signed in to never fetches it.
#[leptos::lazy]
fn connect_live(live: chat::live::Live) {
    #[cfg(feature = "hydrate")]
    chat::live::connect(live);
    #[cfg(not(feature = "hydrate"))]
    let _ = live;
}

/// Once the browser knows who is signed in, it renews the access token before it runs out and opens
/// the live connection.
fn keep_session_fresh(user: auth::UserContext, live: chat::live::Live) {
    Effect::new(move |started: Option<bool>| {
        if started == Some(true) {
            return true;
        }
        if let Some(Ok(Some(me))) = user.0.get() {
            #[cfg(feature = "hydrate")]
            {
                auth::client::keep_fresh(me.access_ttl_secs);
                leptos::task::spawn_local(connect_live(live));
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (me, live);
            return true;
        }
        false
    });
}
