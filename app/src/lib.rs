//! ML-CHAT: the Leptos application shared by the server (feature `ssr`) and the browser (feature
//! `hydrate`). Server-only modules sit behind `ssr`.
#![recursion_limit = "256"]

pub mod admin;
pub mod auth;
pub mod chat;
pub mod components;
pub mod domain;
pub mod error;
pub mod model;
pub mod pages;
pub mod protocol;

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
    path,
};
use pages::admin::{
    audit::AdminAuditPage, dashboard::AdminDashboardPage, rooms::AdminRoomsPage,
    users::AdminUsersPage,
};
use pages::{
    home::HomePage, login::LoginPage, not_found::NotFound, profile::ProfilePage,
    register::RegisterPage, room::RoomPage, rooms::RoomsPage, sessions::SessionsPage,
};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_page_security_headers();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
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

/// Sends this page's CSP, which allows exactly the inline scripts carrying this response's nonce.
#[cfg(feature = "ssr")]
fn set_page_security_headers() {
    use http::header::{HeaderValue, CONTENT_SECURITY_POLICY};
    let nonce = leptos::nonce::use_nonce().map(|n| n.to_string());
    let policy = csp::content_security_policy(nonce.as_deref());
    if let (Some(response), Ok(value)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        HeaderValue::from_str(&policy),
    ) {
        response.insert_header(CONTENT_SECURITY_POLICY, value);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    mark_hydrated();
    let user = auth::UserContext::provide();
    components::time::ReaderClock::provide();
    let live = chat::live::Live::provide();
    keep_session_fresh(user, live);

    view! {
        <Stylesheet id="leptos" href="/pkg/mlchat.css" />
        <Title formatter=|title: String| {
            if title.is_empty() { "ML-CHAT".to_owned() } else { format!("{title} · ML-CHAT") }
        } />
        <Router>
            <Layout>
                <Routes fallback=|| view! { <NotFound /> }>
                    <Route path=path!("/") view=HomePage />
                    <Route path=path!("/login") view=LoginPage />
                    <Route path=path!("/register") view=RegisterPage />
                    <Route path=path!("/profile") view=ProfilePage />
                    <Route path=path!("/sessions") view=SessionsPage />
                    <Route path=path!("/rooms") view=RoomsPage />
                    <Route path=path!("/rooms/:id") view=RoomPage />
                    <Route path=path!("/admin") view=AdminDashboardPage />
                    <Route path=path!("/admin/users") view=AdminUsersPage />
                    <Route path=path!("/admin/rooms") view=AdminRoomsPage />
                    <Route path=path!("/admin/audit") view=AdminAuditPage />
                </Routes>
            </Layout>
        </Router>
    }
}

/// Marks `<body data-hydrated="true">` once the WASM app has taken over the server-rendered page.
/// Effects never run during SSR, so the attribute only exists after hydration; the browser tests wait
/// for it.
fn mark_hydrated() {
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
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
                chat::live::connect(live);
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (me, live);
            return true;
        }
        false
    });
}
