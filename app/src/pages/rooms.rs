//! `/rooms`: create a room, start a direct message, browse and join public rooms.

use crate::auth::authed;
use crate::chat::api::{browse_rooms, create_room, join_room, open_direct};
use crate::chat::RoomSummary;
use crate::components::form::{field_error, keep_typed, Card, FormError, SubmitButton, TextField};
use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

#[component]
pub fn RoomsPage() -> impl IntoView {
    view! {
        <Title text="Rooms" />
        <div class="mx-auto w-full max-w-2xl space-y-6 px-4 py-8">
            <h1 class="text-2xl font-semibold tracking-tight">"Rooms"</h1>
            <CreateRoomForm />
            <DirectMessageForm />
            <BrowseRooms />
        </div>
    }
}

#[component]
fn CreateRoomForm() -> impl IntoView {
    let name = RwSignal::new(String::new());
    let topic = RwSignal::new(String::new());
    let private = RwSignal::new(false);
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let navigate = use_navigate();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let (n, t, p) = (
            name.get_untracked(),
            topic.get_untracked(),
            private.get_untracked(),
        );
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match authed(move || create_room(n.clone(), t.clone(), p)).await {
                Ok(room) => navigate(&format!("/rooms/{}", room.id), Default::default()),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <Card title="New room" anchor="new-room">
            <form on:submit=on_submit class="space-y-4" novalidate>
                <FormError error />
                <TextField label="Room name" name="name" value=name error=field_error(error, "name") maxlength=64 />
                <TextField label="Topic" name="topic" value=topic error=field_error(error, "topic") maxlength=256 />
                <label class="flex items-center gap-2 text-sm">
                    <input type="checkbox" bind:checked=private />
                    "Private (members join by invitation)"
                </label>
                <SubmitButton label="Create room" busy_label="Creating…" busy />
            </form>
        </Card>
    }
}

#[component]
fn DirectMessageForm() -> impl IntoView {
    let username = RwSignal::new(String::new());
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let navigate = use_navigate();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        error.set(None);
        let who = username.get_untracked();
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match authed(move || open_direct(who.clone())).await {
                Ok(room) => navigate(&format!("/rooms/{}", room.id), Default::default()),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <Card title="Direct message" anchor="direct-message">
            <form on:submit=on_submit class="space-y-4" novalidate>
                <FormError error />
                <TextField label="Username" name="username" value=username error=field_error(error, "username") maxlength=32 />
                <SubmitButton label="Open conversation" busy_label="Opening…" busy />
            </form>
        </Card>
    }
}

#[component]
fn BrowseRooms() -> impl IntoView {
    let search = RwSignal::new(String::new());
    let search_input = NodeRef::<leptos::html::Input>::new();
    keep_typed(search_input, search);
    let query = RwSignal::new(String::new());
    let found = Resource::new(
        move || query.get(),
        |q| authed(move || browse_rooms(q.clone(), 0)),
    );
    let error = RwSignal::new(None::<AppError>);
    let navigate = use_navigate();
    let join = move |room: RoomSummary| {
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match authed(move || join_room(room.id)).await {
                Ok(room) => navigate(&format!("/rooms/{}", room.id), Default::default()),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    view! {
        <Card title="Public rooms" anchor="public-rooms">
            <form class="mb-4 flex gap-2" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); query.set(search.get_untracked()); }>
                <input
                    type="search"
                    aria-label="Search public rooms"
                    placeholder="Search by name"
                    node_ref=search_input
                    value=search.get_untracked()
                    on:input:target=move |ev| search.set(ev.target().value())
                    class="min-w-0 flex-1 rounded-md border border-slate-300 bg-white px-3 py-2 text-sm dark:border-slate-700 dark:bg-slate-900"
                />
                <button type="submit" class="rounded-md border border-slate-300 px-3 py-2 text-sm dark:border-slate-700">"Search"</button>
            </form>
            <FormError error />
            <Transition fallback=|| view! { <p class="text-sm text-slate-600 dark:text-slate-400">"Loading…"</p> }>
                {move || {
                let join = join.clone();
                Suspend::new(async move {
                    match found.await {
                        Ok((rooms, _total)) if rooms.is_empty() => view! { <p class="text-sm text-slate-600 dark:text-slate-400">"No public rooms match."</p> }.into_any(),
                        Ok((rooms, _total)) => view! {
                            <ul class="divide-y divide-slate-200 dark:divide-slate-800" aria-label="Public rooms">
                                {rooms.into_iter().map(|room| {
                                    let r = room.clone();
                                    let join = join.clone();
                                    view! {
                                        <li class="flex items-center justify-between gap-3 py-2">
                                            <div class="min-w-0">
                                                <p class="truncate font-medium">{format!("#{}", room.name)}</p>
                                                <p class="truncate text-xs text-slate-600 dark:text-slate-400">{room.topic.clone()}</p>
                                            </div>
                                            {if room.member {
                                                view! { <A href=format!("/rooms/{}", room.id) attr:class="text-sm text-indigo-600 hover:underline dark:text-indigo-400">"Open"</A> }.into_any()
                                            } else {
                                                view! { <button type="button" on:click=move |_| join(r.clone()) class="rounded-md bg-indigo-600 px-3 py-1 text-sm text-white">"Join"</button> }.into_any()
                                            }}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <p role="alert" class="text-sm text-red-600 dark:text-red-400">{e.to_string()}</p> }.into_any(),
                    }
                })
                }}
            </Transition>
        </Card>
    }
}
