//! `/rooms/:id`: one room. Server-rendered with its latest messages, then live: new messages, edits,
//! deletions, typing and presence arrive over the websocket; scrolling up loads older history.

use crate::admin::api::admin_delete_message;
use crate::auth::{authed, UserContext};
use crate::chat::api::{
    invite_to_room, join_room, leave_room, room_history, room_members, room_page,
};
use crate::chat::live::Live;
use crate::chat::{timeline, MemberView, RoomPageData};
use crate::components::form::keep_typed;
use crate::components::time::{self, LocalTime, ReaderClock};
use crate::error::AppError;
use crate::model::{RoomId, RoomKind, Timestamp};
use crate::protocol::{ClientMsg, MessageView, Presence, MAX_BODY_CHARS};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

#[component]
pub fn RoomPage() -> impl IntoView {
    let params = use_params_map();
    let room_id =
        Memo::new(move |_| params.with(|p| p.get("id").and_then(|s| s.parse::<RoomId>().ok())));
    let data = Resource::new(
        move || room_id.get(),
        |id| async move {
            match id {
                Some(id) => authed(move || room_page(id)).await,
                None => Err(AppError::not_found("That room")),
            }
        },
    );
    let live = Live::get();
    let user = UserContext::get().0;
    view! {
        <Suspense fallback=|| view! { <p class="p-6 text-sm text-slate-600 dark:text-slate-400">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let me = user.await.ok().flatten();
                let my_id = me.as_ref().map(|u| u.id);
                let admin = me.is_some_and(|u| u.role == crate::model::Role::Admin);
                match data.await {
                    Ok(page) => {
                        live.seed_messages(page.room.id, page.messages.clone());
                        view! { <RoomView page my_id admin /> }.into_any()
                    }
                    Err(e) => view! {
                        <Title text="Room not found" />
                        <div class="p-6">
                            <h1 class="text-xl font-semibold">"This room is not available"</h1>
                            <p class="mt-2 text-sm text-slate-600 dark:text-slate-400">{e.to_string()}</p>
                        </div>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn RoomView(
    page: RoomPageData,
    my_id: Option<crate::model::UserId>,
    /// Admins may delete anyone's message here (moderation).
    admin: bool,
) -> impl IntoView {
    let live = Live::get();
    let room = page.room.clone();
    let id = room.id;
    live.members.update(|map| {
        map.insert(id, page.members.clone());
    });
    let members = Memo::new(move |_| {
        live.members
            .with(|map| map.get(&id).cloned())
            .unwrap_or_default()
    });
    let member = RwSignal::new(room.member);
    let loading_older = RwSignal::new(false);
    let no_more = RwSignal::new(page.messages.first().is_none_or(|m| m.seq <= 1));
    // When more is unread than the opening page holds, everything shown is unread: start at its top.
    let first_loaded = page.messages.first().map_or(1, |m| m.seq);
    let first_unread =
        (room.read_seq < room.last_seq).then_some((room.read_seq + 1).max(first_loaded));

    let messages = Memo::new(move |_| {
        live.messages
            .with(|map| {
                map.get(&id)
                    .map(|list| list.values().cloned().collect::<Vec<_>>())
            })
            .unwrap_or_default()
    });
    // Days are the reader's once the page knows its clock (the server's render uses UTC days).
    let clock = ReaderClock::get();
    let rows = Memo::new(move |_| {
        let local_days = clock.now().is_some();
        messages.with(|list| {
            timeline::rows(list, |at| {
                if local_days {
                    time::local(at).day()
                } else {
                    time::Local::new(at, 0).day()
                }
            })
        })
    });
    let pending = Memo::new(move |_| {
        live.pending.with(|p| {
            p.iter()
                .filter(|x| x.room == id)
                .cloned()
                .collect::<Vec<_>>()
        })
    });

    // Viewing the room marks it read as messages arrive.
    Effect::new(move |_| {
        let _ = live.last_seq.with(|m| m.get(&id).copied());
        if member.get_untracked() {
            live.mark_read(id);
        }
    });
    // Open at the first unread message, or at the bottom; follow new messages while at the bottom.
    Effect::new(move |opened: Option<bool>| {
        let _ = messages.get();
        let _ = pending.get();
        scroll_after_render(
            opened.is_none().then_some(first_unread).flatten(),
            opened.is_none(),
        );
        true
    });

    let load_older = move || {
        if loading_older.get_untracked() || no_more.get_untracked() {
            return;
        }
        let Some(oldest) = messages.with_untracked(|m| m.first().map(|m| m.seq)) else {
            return;
        };
        loading_older.set(true);
        leptos::task::spawn_local(async move {
            if let Ok(page) = authed(move || room_history(id, Some(oldest))).await {
                if page.first().is_none_or(|m| m.seq <= 1) {
                    no_more.set(true);
                }
                keep_scroll_position(move || live.seed_messages(id, page));
            }
            loading_older.set(false);
        });
    };

    let navigate = use_navigate();
    let leave = move |_| {
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            if authed(move || leave_room(id)).await.is_ok() {
                navigate("/", Default::default());
            }
        });
    };
    let join = move |_| {
        leptos::task::spawn_local(async move {
            if authed(move || join_room(id)).await.is_ok() {
                member.set(true);
                // The list now holds the person who just joined (the live `member_joined` may
                // reach this page before or after; either way the list is whole).
                if let Ok(list) = authed(move || room_members(id)).await {
                    live.members.update(|map| {
                        map.insert(id, list);
                    });
                }
            }
        });
    };

    let title = match room.kind {
        RoomKind::Direct => format!("@{}", room.name),
        RoomKind::Private => format!("🔒 {}", room.name),
        RoomKind::Public => format!("#{}", room.name),
    };
    view! {
        <Title text=room.name.clone() />
        <div class="flex min-h-0 flex-1">
            <section class="flex min-w-0 flex-1 flex-col" aria-label="Conversation">
                <header class="flex flex-wrap items-center gap-x-3 gap-y-1 border-b border-slate-200 px-4 py-2 dark:border-slate-800">
                    <h1 class="truncate text-lg font-semibold">{title}</h1>
                    <p class="min-w-0 flex-1 truncate text-sm text-slate-600 dark:text-slate-400">{room.topic.clone()}</p>
                    {move || if member.get() {
                        (room.kind != RoomKind::Direct).then(|| view! {
                            <button type="button" on:click=leave.clone() class="text-sm text-slate-600 dark:text-slate-400 hover:underline">"Leave"</button>
                        }).into_any()
                    } else {
                        view! { <button type="button" on:click=join class="rounded-md bg-indigo-600 px-3 py-1 text-sm text-white">"Join room"</button> }.into_any()
                    }}
                </header>
                <div
                    id="messages"
                    class="min-h-0 flex-1 space-y-1 overflow-y-auto px-4 py-3"
                    aria-label="Messages"
                    on:scroll=move |_| {
                        if message_pane_scroll_top() < 80.0 {
                            load_older();
                        }
                    }
                >
                    {move || loading_older.get().then(|| view! { <p class="text-center text-xs text-slate-600 dark:text-slate-400">"Loading older messages…"</p> })}
                    {move || no_more.get().then(|| view! { <p class="text-center text-xs text-slate-600 dark:text-slate-400">"This is the beginning of the room."</p> })}
                    <For each=move || rows.get() key=|r| (r.message.seq, r.message.edited_at, r.message.deleted, r.starts_day, r.continued) let:row>
                        {row.starts_day.then(|| view! { <DayHeading at=row.message.created_at /> })}
                        <MessageRow unread_from_here=Some(row.message.seq) == first_unread continued=row.continued message=row.message my_id admin />
                    </For>
                    <For each=move || pending.get() key=|p| (p.nonce.clone(), p.failed.clone(), p.retrying) let:p>
                        <div class="rounded-md px-2 py-1 text-slate-600 dark:text-slate-400" data-testid="pending-message">
                            <p class="whitespace-pre-wrap break-words">{p.body.clone()}</p>
                            {match p.failed.clone() {
                                Some(reason) => {
                                    let nonce = p.nonce.clone();
                                    view! {
                                        <p role="alert" class="text-xs text-red-600 dark:text-red-400">
                                            {reason} " "
                                            <button type="button" class="underline" on:click=move |_| live.retry(&nonce)>"Retry"</button>
                                        </p>
                                    }.into_any()
                                }
                                None if p.retrying => view! {
                                    <p role="status" class="text-xs text-amber-800 dark:text-amber-300">
                                        "Can't send right now. It will be sent as soon as the server can store it."
                                    </p>
                                }.into_any(),
                                None => view! { <p class="text-xs">"Sending…"</p> }.into_any(),
                            }}
                        </div>
                    </For>
                </div>
                <TypingLine room=id />
                {move || member.get().then(|| view! { <Composer room=id /> })}
            </section>
            <MemberList room=id members kind=room.kind />
        </div>
    }
}

/// The heading above a day's first message: "Today", "Yesterday", a date.
#[component]
fn DayHeading(at: Timestamp) -> impl IntoView {
    let clock = ReaderClock::get();
    let text = move || match clock.now() {
        Some(now) => time::day_heading(time::local(at), now),
        None => at.format_utc()[..10].to_owned(),
    };
    view! {
        <h2 class="flex items-center gap-3 pt-3 pb-1 text-xs font-semibold text-slate-600 dark:text-slate-400" data-testid="day-heading">
            <span class="h-px flex-1 bg-slate-200 dark:bg-slate-800" aria-hidden="true"></span>
            {text}
            <span class="h-px flex-1 bg-slate-200 dark:bg-slate-800" aria-hidden="true"></span>
        </h2>
    }
}

#[component]
fn MessageRow(
    message: MessageView,
    my_id: Option<crate::model::UserId>,
    /// Draws the "New messages" line above this one.
    unread_from_here: bool,
    /// Follows a message of the same author: the name is left to screen readers.
    #[prop(optional)]
    continued: bool,
    admin: bool,
) -> impl IntoView {
    let live = Live::get();
    let own = my_id == Some(message.author);
    let (id, body) = (message.id, message.body.clone());
    let moderate = admin && !own && !message.deleted;
    let author = message.author_name.clone();
    let remove_as_admin = move |_| {
        let question = format!("Delete this message by {author} for everyone, as an admin?");
        if window().confirm_with_message(&question).unwrap_or(false) {
            leptos::task::spawn_local(async move {
                if let Err(e) = authed(move || admin_delete_message(id)).await {
                    let _ = window().alert_with_message(&e.to_string());
                }
            });
        }
    };
    let edit = move |_| {
        let Ok(Some(text)) = window().prompt_with_message_and_default("Edit message", &body) else {
            return;
        };
        if !text.trim().is_empty() {
            live.transmit(ClientMsg::Edit { id, body: text });
        }
    };
    let delete = move |_| {
        if window()
            .confirm_with_message("Delete this message?")
            .unwrap_or(false)
        {
            live.transmit(ClientMsg::Delete { id });
        }
    };
    view! {
        {unread_from_here.then(|| view! {
            <p class="flex items-center gap-2 py-1 text-xs font-medium text-red-600 dark:text-red-400" data-testid="unread-divider">
                <span class="h-px flex-1 bg-red-300"></span>"New messages"<span class="h-px flex-1 bg-red-300"></span>
            </p>
        })}
        <article
            id=format!("msg-{}", message.seq)
            class=if continued { "group rounded-md px-2 py-0.5 hover:bg-slate-50 dark:hover:bg-slate-900" } else { "group mt-1 rounded-md px-2 py-1 hover:bg-slate-50 dark:hover:bg-slate-900" }
            data-seq=message.seq
            data-continued=continued.then_some("true")
        >
            <p class="flex items-baseline gap-2 text-sm">
                <span class=if continued { "sr-only" } else { "font-semibold" }>{message.author_name.clone()}</span>
                {(!message.author_username.is_empty()).then(|| view! {
                    <span class=if continued { "sr-only" } else { "text-xs text-slate-500 dark:text-slate-400" } data-testid="author-username">"@"{message.author_username.clone()}</span>
                })}
                <LocalTime at=message.created_at class="text-xs text-slate-600 dark:text-slate-400" />
                {message.edited_at.is_some().then(|| view! { <span class="text-xs text-slate-600 dark:text-slate-400">"(edited)"</span> })}
                {moderate.then(|| view! {
                    <span class="ml-auto hidden gap-2 text-xs group-hover:flex group-focus-within:flex">
                        <button type="button" class="text-red-600 hover:underline dark:text-red-400" on:click=remove_as_admin.clone()>"Delete (admin)"</button>
                    </span>
                })}
                {(own && !message.deleted).then(|| view! {
                    <span class="ml-auto hidden gap-2 text-xs group-hover:flex group-focus-within:flex">
                        <button type="button" class="text-slate-600 dark:text-slate-400 hover:underline" on:click=edit.clone()>"Edit"</button>
                        <button type="button" class="text-red-600 hover:underline dark:text-red-400" on:click=delete>"Delete"</button>
                    </span>
                })}
            </p>
            {if message.deleted {
                view! { <p class="text-sm italic text-slate-600 dark:text-slate-400">"This message was deleted."</p> }.into_any()
            } else {
                // Rendered from a markdown subset and sanitised on the server.
                view! { <div class="message-body break-words text-sm" inner_html=message.html.clone()></div> }.into_any()
            }}
        </article>
    }
}

#[component]
fn TypingLine(room: RoomId) -> impl IntoView {
    let live = Live::get();
    let text = move || {
        let names = live.typists(room);
        match names.as_slice() {
            [] => String::new(),
            [one] => format!("{one} is typing…"),
            [a, b] => format!("{a} and {b} are typing…"),
            [a, b, rest @ ..] => format!("{a}, {b} and {} others are typing…", rest.len()),
        }
    };
    view! { <p class="h-5 px-4 text-xs text-slate-600 dark:text-slate-400" aria-live="polite" data-testid="typing">{text}</p> }
}

#[component]
fn Composer(room: RoomId) -> impl IntoView {
    let live = Live::get();
    let text = RwSignal::new(String::new());
    let textarea = NodeRef::<leptos::html::Textarea>::new();
    keep_typed(textarea, text);
    let last_typing = StoredValue::new(0.0f64);
    let send = move || {
        let body = text.get_untracked();
        if body.trim().is_empty() {
            return;
        }
        live.send(room, body);
        text.set(String::new());
        last_typing.set_value(0.0);
        live.transmit(ClientMsg::Typing {
            room,
            active: false,
        });
    };
    let too_long = move || text.with(|t| t.chars().count() > MAX_BODY_CHARS);
    view! {
        <form
            class="flex items-end gap-2 border-t border-slate-200 p-3 dark:border-slate-800"
            on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); if !too_long() { send(); } }
        >
            <textarea
                aria-label="Message"
                placeholder="Write a message (Enter to send, Shift+Enter for a new line)"
                rows="2"
                node_ref=textarea
                on:input:target=move |ev| {
                    text.set(ev.target().value());
                    let now = live.now.get_untracked();
                    if now - last_typing.get_value() > 3000.0 {
                        last_typing.set_value(now.max(1.0));
                        live.transmit(ClientMsg::Typing { room, active: true });
                    }
                }
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" && !ev.shift_key() {
                        ev.prevent_default();
                        if !too_long() { send(); }
                    }
                }
                class="min-h-10 flex-1 resize-y rounded-md border border-slate-300 bg-white px-3 py-2 text-sm dark:border-slate-700 dark:bg-slate-900"
            ></textarea>
            <button type="submit" class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-semibold text-white disabled:opacity-60" disabled=too_long>
                "Send"
            </button>
        </form>
        {move || too_long().then(|| view! { <p role="alert" class="px-3 pb-2 text-xs text-red-600 dark:text-red-400">{format!("A message has at most {MAX_BODY_CHARS} characters.")}</p> })}
    }
}

#[component]
fn MemberList(room: RoomId, members: Memo<Vec<MemberView>>, kind: RoomKind) -> impl IntoView {
    let live = Live::get();
    let invitee = RwSignal::new(String::new());
    let invitee_input = NodeRef::<leptos::html::Input>::new();
    keep_typed(invitee_input, invitee);
    let error = RwSignal::new(None::<AppError>);
    let invited = RwSignal::new(None::<String>);
    let invite = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let who = invitee.get_untracked();
        leptos::task::spawn_local(async move {
            match authed(move || invite_to_room(room, who.clone())).await {
                Ok(invitation) => {
                    invited.set(Some(format!(
                        "Invited {}. They join when they accept.",
                        invitation.invitee.display_name
                    )));
                    invitee.set(String::new());
                    error.set(None);
                }
                Err(e) => {
                    invited.set(None);
                    error.set(Some(e));
                }
            }
        });
    };
    view! {
        <aside class="hidden w-56 shrink-0 overflow-y-auto border-l border-slate-200 p-3 lg:block dark:border-slate-800" aria-label="Members">
            <h2 class="mb-2 text-xs font-semibold uppercase tracking-wide text-slate-600 dark:text-slate-400">"Members"</h2>
            <ul class="space-y-1">
                <For each=move || members.get() key=|m| m.user let:m>
                    {
                        let user = m.user;
                        let presence = move || live.presence.with(|p| p.get(&user).copied()).unwrap_or(m.presence);
                        view! {
                            <li class="flex items-center gap-2 text-sm" data-presence=move || format!("{:?}", presence()).to_lowercase()>
                                <span
                                    class=move || format!("h-2 w-2 rounded-full {}", match presence() {
                                        Presence::Online => "bg-emerald-500",
                                        Presence::Away => "bg-amber-400",
                                        Presence::Offline => "bg-slate-300 dark:bg-slate-600",
                                    })
                                    role="img"
                                    aria-label=move || format!("{:?}", presence()).to_lowercase()
                                ></span>
                                <span class="truncate">{m.display_name.clone()}</span>
                                <span class="truncate text-xs text-slate-500 dark:text-slate-400">"@"{m.username.clone()}</span>
                            </li>
                        }
                    }
                </For>
            </ul>
            {(kind != RoomKind::Direct).then(|| view! {
                <form class="mt-4 space-y-2" on:submit=invite>
                    <input
                        aria-label="Invite by username"
                        placeholder="Invite by username"
                        node_ref=invitee_input
                        value=invitee.get_untracked()
                        on:input:target=move |ev| invitee.set(ev.target().value())
                        class="w-full rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900"
                    />
                    <button type="submit" class="w-full rounded-md border border-slate-300 px-2 py-1 text-sm dark:border-slate-700">"Invite"</button>
                    {move || error.get().map(|e| view! { <p role="alert" class="text-xs text-red-600 dark:text-red-400">{e.to_string()}</p> })}
                    {move || invited.get().map(|notice| view! { <p role="status" class="text-xs text-emerald-700 dark:text-emerald-400">{notice}</p> })}
                </form>
            })}
        </aside>
    }
}

fn message_pane_scroll_top() -> f64 {
    document()
        .get_element_by_id("messages")
        .map(|e| e.scroll_top() as f64)
        .unwrap_or(f64::MAX)
}

/// Applies `change` (which adds older messages above) without moving what the reader sees.
fn keep_scroll_position(change: impl FnOnce()) {
    let pane = document().get_element_by_id("messages");
    let before = pane.as_ref().map(|p| p.scroll_height()).unwrap_or(0);
    change();
    request_animation_frame(move || {
        if let Some(pane) = pane {
            let grown = pane.scroll_height() - before;
            pane.set_scroll_top(pane.scroll_top() + grown);
        }
    });
}

/// After the next render: on first open, jump to `first_unread` (or the bottom); later, stay at the
/// bottom if the reader was there.
fn scroll_after_render(first_unread: Option<u64>, opening: bool) {
    let Some(pane) = document().get_element_by_id("messages") else {
        return;
    };
    let at_bottom = pane.scroll_height() - pane.scroll_top() - pane.client_height() < 120;
    request_animation_frame(move || {
        if opening {
            if let Some(el) =
                first_unread.and_then(|seq| document().get_element_by_id(&format!("msg-{seq}")))
            {
                el.scroll_into_view();
                return;
            }
        }
        if opening || at_bottom {
            pane.set_scroll_top(pane.scroll_height());
        }
    });
}
