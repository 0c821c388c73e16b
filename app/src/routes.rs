//! The pages that are off the everyday path (the admin panel, the profile, sessions, search, mentions
//! and threads), as lazy routes: with `cargo leptos build --split`, each one's WebAssembly is a
//! separate file that the browser fetches when it first shows the page, so the bundle every visitor
//! downloads first carries only the everyday pages (sign-in, registration, the room list and rooms).
//!
//! Nothing changes for the server: it renders these pages as before (a lazy view is ready at once
//! there) and names the files they need in `<link rel="preload">` tags, so a page opened directly
//! fetches its file alongside the main bundle and hydrates what was sent.
//!
//! Each route is a unit struct: its `data()` starts nothing, because every page here loads its own
//! data when it is built.

use crate::pages;
use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};

/// `/profile`: display name, picture, password, two-factor sign-in and notifications.
pub struct ProfileRoute;

#[lazy_route]
impl LazyRoute for ProfileRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <pages::profile::ProfilePage /> }.into_any()
    }
}

/// `/sessions`: the devices signed in to this account.
pub struct SessionsRoute;

#[lazy_route]
impl LazyRoute for SessionsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <pages::sessions::SessionsPage /> }.into_any()
    }
}

/// `/mentions`: messages that mention the reader.
pub struct MentionsRoute;

#[lazy_route]
impl LazyRoute for MentionsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <pages::mentions::MentionsPage /> }.into_any()
    }
}

/// `/threads`: the threads the reader follows.
pub struct ThreadsRoute;

#[lazy_route]
impl LazyRoute for ThreadsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <pages::threads::ThreadsPage /> }.into_any()
    }
}

/// `/search`: messages in the reader's rooms.
pub struct SearchRoute;

#[lazy_route]
impl LazyRoute for SearchRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <pages::search::SearchPage /> }.into_any()
    }
}

/// `/admin`: the dashboard.
pub struct AdminDashboardRoute;

#[lazy_route]
impl LazyRoute for AdminDashboardRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <pages::admin::dashboard::AdminDashboardPage /> }.into_any()
    }
}

/// `/admin/users`.
pub struct AdminUsersRoute;

#[lazy_route]
impl LazyRoute for AdminUsersRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <pages::admin::users::AdminUsersPage /> }.into_any()
    }
}

/// `/admin/rooms`.
pub struct AdminRoomsRoute;

#[lazy_route]
impl LazyRoute for AdminRoomsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <pages::admin::rooms::AdminRoomsPage /> }.into_any()
    }
}

/// `/admin/audit`.
pub struct AdminAuditRoute;

#[lazy_route]
impl LazyRoute for AdminAuditRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <pages::admin::audit::AdminAuditPage /> }.into_any()
    }
}

/// `/admin/search`: every room, for moderators.
pub struct AdminSearchRoute;

#[lazy_route]
impl LazyRoute for AdminSearchRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <pages::admin::search::AdminSearchPage /> }.into_any()
    }
}
