//! The application frame: a top bar, a sidebar for rooms and a main pane. On narrow screens the sidebar
//! folds away behind a menu button.

use crate::auth::{api::logout, authed, UserContext};
use crate::chat::{
    api::{accept_invitation, decline_invitation, my_invitations, my_rooms, my_threads},
    live::{Link, Live},
    InvitationView, RoomSummary,
};
use crate::error::AppError;
use crate::model::{RoomId, RoomKind};
use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let (sidebar_open, set_sidebar_open) = signal(false);

    let main_ref = NodeRef::<leptos::html::Main>::new();
    let navigate = leptos_router::hooks::use_navigate();
    crate::chat::live::desktop::open_with(move |href| navigate(href, Default::default()));
    // Escape folds the sidebar away again on narrow screens.
    let _escape = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Escape" && sidebar_open.get_untracked() {
            set_sidebar_open.set(false);
        }
    });

    view! {
        <div class="flex h-full flex-col">
            <a
                href="#main"
                // The router would take the click as a navigation: move the focus itself.
                on:click=move |ev| {
                    ev.prevent_default();
                    if let Some(main) = main_ref.get() {
                        let _ = main.focus();
                    }
                }
                class="sr-only z-50 rounded-md bg-white px-3 py-2 text-sm font-medium text-indigo-700 shadow focus:not-sr-only focus:absolute focus:left-2 focus:top-2 dark:bg-slate-900 dark:text-indigo-300"
            >
                "Skip to main content"
            </a>
            <header class="flex h-14 shrink-0 items-center gap-2 border-b border-slate-200 bg-white px-2 sm:gap-3 sm:px-4 dark:border-slate-800 dark:bg-slate-900">
                <button
                    type="button"
                    class="rounded-md p-2 text-slate-600 hover:bg-slate-100 md:hidden dark:text-slate-300 dark:hover:bg-slate-800"
                    aria-label="Toggle the room list"
                    aria-controls="sidebar"
                    aria-expanded=move || sidebar_open.get().to_string()
                    on:click=move |_| set_sidebar_open.update(|open| *open = !*open)
                >
                    <svg class="h-5 w-5" viewBox="0 0 20 20" fill="currentColor" aria-hidden="true">
                        <path d="M3 5h14v2H3zm0 4h14v2H3zm0 4h14v2H3z" />
                    </svg>
                </button>
                <A href="/" attr:class="flex shrink-0 items-center gap-2 font-semibold tracking-tight">
                    <img src="/favicon.svg" alt="ML-CHAT" class="h-7 w-7" />
                    // On a phone the logo alone leaves room for the account links.
                    <span class="hidden sm:inline" aria-hidden="true">"ML-CHAT"</span>
                </A>
                <super::search_box::SearchBox />
                <div class="ml-auto flex items-center gap-2">
                    <LinkStatus />
                    <UserMenu />
                </div>
            </header>
            <div class="relative flex min-h-0 flex-1">
                <nav
                    id="sidebar"
                    aria-label="Rooms"
                    class=move || {
                        let base = "absolute inset-y-0 left-0 z-20 w-64 shrink-0 flex-col gap-6 overflow-y-auto border-r border-slate-200 bg-slate-50 p-4 md:static md:flex dark:border-slate-800 dark:bg-slate-900";
                        if sidebar_open.get() { format!("{base} flex") } else { format!("{base} hidden") }
                    }
                >
                    <RoomList />
                </nav>
                <main node_ref=main_ref id="main" tabindex="-1" class="flex min-w-0 flex-1 flex-col overflow-y-auto focus:outline-none">
                    {children()}
                </main>
            </div>
        </div>
    }
}

/// The user's rooms and direct messages with live unread counts; for guests, a hint.
#[component]
fn RoomList() -> impl IntoView {
    let user = UserContext::get().0;
    let live = Live::get();
    let rooms = Resource::new(move || live.rooms_changed.get(), |_| authed(my_rooms));
    let invitations = Resource::new(move || live.rooms_changed.get(), |_| authed(my_invitations));
    let heading =
        "mb-2 text-xs font-semibold uppercase tracking-wide text-slate-500 dark:text-slate-400";
    let empty = "text-sm text-slate-500 dark:text-slate-400";
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let signed_in = matches!(user.await, Ok(Some(_)));
                if !signed_in {
                    return view! {
                        <section>
                            <h2 class=heading>"Rooms"</h2>
                            <p class=empty>"Sign in to see your rooms."</p>
                        </section>
                        <section>
                            <h2 class=heading>"Direct messages"</h2>
                            <p class=empty>"Your conversations will be listed here."</p>
                        </section>
                    }
                    .into_any();
                }
                let list = rooms.await.unwrap_or_default();
                let invited = invitations.await.unwrap_or_default();
                live.seed_rooms(&list);
                let (direct, groups): (Vec<RoomSummary>, Vec<RoomSummary>) =
                    list.into_iter().partition(|r| r.kind == RoomKind::Direct);
                view! {
                    {(!invited.is_empty()).then(|| view! {
                        <section aria-labelledby="invitations-heading">
                            <h2 id="invitations-heading" class=heading>"Invitations"</h2>
                            <ul class="space-y-2">{invited.into_iter().map(|i| view! { <Invitation invitation=i /> }).collect_view()}</ul>
                        </section>
                    })}
                    <MentionsLink />
                    <ThreadsLink />
                    <section>
                        <div class="mb-2 flex items-center justify-between">
                            <h2 class=heading>"Rooms"</h2>
                            <A href="/rooms" attr:class="text-xs font-medium text-indigo-600 hover:underline dark:text-indigo-400">
                                "Browse / new"
                            </A>
                        </div>
                        {if groups.is_empty() {
                            view! { <p class=empty>"Rooms you join will be listed here."</p> }.into_any()
                        } else {
                            view! { <ul class="space-y-0.5">{groups.into_iter().map(|r| view! { <RoomLink room=r /> }).collect_view()}</ul> }.into_any()
                        }}
                    </section>
                    <section>
                        <h2 class=heading>"Direct messages"</h2>
                        {if direct.is_empty() {
                            view! { <p class=empty>"Your conversations will be listed here."</p> }.into_any()
                        } else {
                            view! { <ul class="space-y-0.5">{direct.into_iter().map(|r| view! { <RoomLink room=r /> }).collect_view()}</ul> }.into_any()
                        }}
                    </section>
                }
                .into_any()
            })}
        </Transition>
    }
}

/// The Mentions view, with how many mentions are unread; and, where the browser can show desktop
/// notifications and the reader has not chosen yet, the button that asks.
#[component]
fn MentionsLink() -> impl IntoView {
    let live = Live::get();
    // Only the browser knows; set after hydration so both renders agree first.
    let askable = RwSignal::new(false);
    Effect::new(move |_| askable.set(crate::chat::live::desktop::can_ask()));
    let ask = move |_| {
        crate::chat::live::desktop::ask(move |_| askable.set(false));
    };
    view! {
        {move || askable.get().then(|| view! {
            <button type="button" class="mb-1 w-full rounded-md border border-slate-300 px-2 py-1 text-left text-xs dark:border-slate-600" on:click=ask>
                "Enable desktop notifications"
            </button>
        })}
        <A href="/mentions" attr:class="flex items-center justify-between gap-2 rounded-md px-2 py-1.5 text-sm font-medium hover:bg-slate-200 aria-[current=page]:bg-indigo-100 dark:hover:bg-slate-800 dark:aria-[current=page]:bg-indigo-950">
            "Mentions"
            {move || {
                let n = live.all_unread_mentions();
                (n > 0).then(|| view! {
                    <span class="rounded-full bg-red-700 px-1.5 text-xs font-semibold text-white">
                        <span class="sr-only">", "</span>{n}<span class="sr-only">" unread"</span>
                    </span>
                })
            }}
        </A>
    }
}

/// The Threads view, with how many replies in followed threads are unread. Keeps the followed list
/// (read again whenever the reader may have started following one).
#[component]
fn ThreadsLink() -> impl IntoView {
    let live = Live::get();
    let user = UserContext::get().0;
    Effect::new(move |_| {
        let _ = live.follows_changed.get();
        leptos::task::spawn_local(async move {
            if !matches!(user.await, Ok(Some(_))) {
                return;
            }
            load_followed_threads(live).await;
        });
    });
    view! {
        <A href="/threads" attr:class="flex items-center justify-between gap-2 rounded-md px-2 py-1.5 text-sm font-medium hover:bg-slate-200 aria-[current=page]:bg-indigo-100 dark:hover:bg-slate-800 dark:aria-[current=page]:bg-indigo-950">
            "Threads"
            {move || {
                let n = live.all_thread_unread();
                (n > 0).then(|| view! {
                    <span class="rounded-full bg-indigo-700 px-1.5 text-xs font-semibold text-white" data-testid="threads-unread">
                        <span class="sr-only">", "</span>{n}<span class="sr-only">" unread"</span>
                    </span>
                })
            }}
        </A>
    }
}

/// Reads the threads the reader follows into `live`. A lazy function (its own WASM file with
/// `cargo leptos build --split`): decoding their root messages is needed by no page's first render.
#[leptos::lazy]
async fn load_followed_threads(live: Live) {
    if let Ok(list) = authed(my_threads).await {
        live.followed.set(list);
    }
}

/// Accepts (`true`) or declines an invitation. Lazy like [`load_followed_threads`]: only a click
/// needs it.
#[leptos::lazy]
async fn answer_invitation(room: RoomId, accept: bool) -> Result<Option<RoomId>, AppError> {
    if accept {
        authed(move || accept_invitation(room))
            .await
            .map(|joined| Some(joined.id))
    } else {
        authed(move || decline_invitation(room))
            .await
            .map(|()| None)
    }
}

/// One open invitation, with its answers.
#[component]
fn Invitation(invitation: InvitationView) -> impl IntoView {
    let live = Live::get();
    let navigate = leptos_router::hooks::use_navigate();
    let room = invitation.room.id;
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let accept = move |_| {
        busy.set(true);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match answer_invitation(room, true).await {
                Ok(joined) => {
                    live.rooms_changed.update(|v| *v += 1);
                    if let Some(joined) = joined {
                        navigate(&format!("/rooms/{joined}"), Default::default());
                    }
                }
                Err(e) => error.set(Some(e.to_string())),
            }
            busy.set(false);
        });
    };
    let decline = move |_| {
        busy.set(true);
        leptos::task::spawn_local(async move {
            if let Err(e) = answer_invitation(room, false).await {
                error.set(Some(e.to_string()));
            }
            live.rooms_changed.update(|v| *v += 1);
            busy.set(false);
        });
    };
    let name = invitation.room.name.clone();
    view! {
        <li class="rounded-md border border-slate-200 p-2 text-sm dark:border-slate-700" data-testid="invitation">
            <p class="truncate font-medium">{name.clone()}</p>
            <p class="truncate text-xs text-slate-600 dark:text-slate-400">
                "from " {invitation.invited_by.display_name.clone()} " @" {invitation.invited_by.username.clone()}
            </p>
            <div class="mt-1 flex gap-2">
                <button type="button" class="rounded-md bg-indigo-600 px-2 py-0.5 text-xs font-medium text-white disabled:opacity-60" disabled=busy on:click=accept aria-label=format!("Accept the invitation to {name}")>"Accept"</button>
                <button type="button" class="rounded-md border border-slate-300 px-2 py-0.5 text-xs dark:border-slate-600 disabled:opacity-60" disabled=busy on:click=decline aria-label=format!("Decline the invitation to {name}")>"Decline"</button>
            </div>
            {move || error.get().map(|e| view! { <p role="alert" class="mt-1 text-xs text-red-600 dark:text-red-400">{e}</p> })}
        </li>
    }
}

#[component]
fn RoomLink(room: RoomSummary) -> impl IntoView {
    let live = Live::get();
    let id = room.id;
    // A muted room shows no unread count, only mentions.
    let unread = move || {
        if live.notify_level(id).shows_unread() {
            live.unread(id)
        } else {
            0
        }
    };
    let mentions = move || live.unread_mentions(id);
    let muted = move || live.notify_level(id) == crate::model::NotifyLevel::Nothing;
    let prefix = match room.kind {
        RoomKind::Public => "#",
        RoomKind::Private => "🔒",
        RoomKind::Direct => "@",
    };
    view! {
        <li>
            <A
                href=format!("/rooms/{id}")
                attr:class="flex items-center justify-between gap-2 rounded-md px-2 py-1.5 text-sm hover:bg-slate-200 aria-[current=page]:bg-indigo-100 aria-[current=page]:font-semibold dark:hover:bg-slate-800 dark:aria-[current=page]:bg-indigo-950"
            >
                <span class="truncate">
                    <span class="mr-1 text-slate-600 dark:text-slate-400" aria-hidden="true">{prefix}</span>
                    {room.name.clone()}
                </span>
                <span class="flex shrink-0 gap-1">
                    {move || muted().then(|| view! {
                        <span class="text-xs text-slate-600 dark:text-slate-400" data-testid="muted">
                            <span aria-hidden="true">"🔕"</span><span class="sr-only">" muted"</span>
                        </span>
                    })}
                    {move || {
                        let n = mentions();
                        (n > 0).then(|| view! {
                            <span class="rounded-full bg-red-700 px-1.5 text-xs font-semibold text-white" data-testid="mention-badge">
                                "@" {n}
                                <span class="sr-only">{if n == 1 { " mention" } else { " mentions" }}</span>
                            </span>
                        })
                    }}
                    {move || {
                        let n = unread();
                        (n > 0)
                            .then(|| {
                                view! {
                                    <span class="rounded-full bg-indigo-600 px-1.5 text-xs font-semibold text-white">
                                        <span data-testid="unread">{n}</span>
                                        <span class="sr-only">" unread"</span>
                                    </span>
                                }
                            })
                    }}
                </span>
            </A>
        </li>
    }
}

/// Right side of the top bar: the signed-in user's links, or sign-in links for guests.
#[component]
fn UserMenu() -> impl IntoView {
    let user = UserContext::get().0;
    let link = "whitespace-nowrap rounded-md px-1.5 py-1.5 text-sm text-slate-700 hover:bg-slate-100 sm:px-2 dark:text-slate-200 dark:hover:bg-slate-800";
    // A real form, so signing out works even before the page has hydrated.
    let sign_out = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        crate::auth::client::signing_out();
        leptos::task::spawn_local(async move {
            // Whatever the answer, the cookies are gone or invalid afterwards; a full load resets the app.
            let _ = logout().await;
            let _ = window().location().assign("/login");
        });
    };
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match user.await {
                    Ok(Some(me)) => view! {
                        <nav aria-label="Account" class="flex items-center gap-1">
                            <span class="hidden max-w-40 truncate px-2 text-sm font-medium sm:inline" data-testid="current-user">
                                {me.display_name}
                            </span>
                            {(me.role == crate::model::Role::Admin).then(|| view! { <A href="/admin" attr:class=link>"Admin"</A> })}
                            <A href="/profile" attr:class=link>"Profile"</A>
                            <A href="/sessions" attr:class=link>"Sessions"</A>
                            <form method="post" action="/api/auth/logout" on:submit=sign_out>
                                <button type="submit" class=link>"Sign out"</button>
                            </form>
                        </nav>
                    }.into_any(),
                    _ => view! {
                        <nav aria-label="Account" class="flex items-center gap-1">
                            <A href="/login" attr:class=link>"Sign in"</A>
                            <A href="/register" attr:class="rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500">
                                "Create account"
                            </A>
                        </nav>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The live connection's state, for signed-in users.
#[component]
fn LinkStatus() -> impl IntoView {
    let live = Live::get();
    let user = UserContext::get().0;
    let dot = move || match live.link.get() {
        Link::Online => "h-2 w-2 rounded-full bg-emerald-500",
        Link::Connecting => "h-2 w-2 rounded-full bg-amber-400",
        Link::Offline => "h-2 w-2 rounded-full bg-red-500",
    };
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                matches!(user.await, Ok(Some(_))).then(|| view! {
                    <span
                        class="flex items-center gap-1.5 text-xs text-slate-500 dark:text-slate-400"
                        role="status"
                        data-testid="link-status"
                        data-link=move || format!("{:?}", live.link.get()).to_lowercase()
                    >
                        <span class=dot aria-hidden="true"></span>
                        <span class="hidden sm:inline">{move || live.link.get().label()}</span>
                    </span>
                })
            })}
        </Transition>
    }
}
