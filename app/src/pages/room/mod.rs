//! `/rooms/:id`: one room. Server-rendered with its latest messages, then live: new messages, edits,
//! deletions, typing and presence arrive over the websocket; scrolling up loads older history.

use crate::admin::api::admin_delete_message;
use crate::auth::{authed, UserContext};
use crate::chat::api::{
    join_room, leave_room, room_history, room_members, room_page, set_room_notify,
};
use crate::chat::live::Live;
use crate::chat::{timeline, RoomPageData};
use crate::components::dialog::ConfirmDialog;
use crate::components::time::{self, ReaderClock};
use crate::error::AppError;
use crate::model::{MessageId, RoomId, RoomKind, Timestamp, UserId};
use crate::protocol::ClientMsg;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

mod composer;
mod members;
mod message;
mod thread;
mod uploads;

use composer::Composer;
use members::MemberList;
use message::MessageRow;
use thread::ThreadPanel;

/// A deletion waiting for the reader's confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PendingDelete {
    pub id: MessageId,
    pub author: String,
    /// Moderation: someone else's message, deleted by an admin.
    pub as_admin: bool,
}

/// What the parts of one open room share: who is reading, and which message is being edited, has
/// its emoji picker open, or waits for a delete confirmation.
#[derive(Clone, Copy)]
pub(super) struct RoomUi {
    pub room: RoomId,
    pub my_id: Option<UserId>,
    /// Admins may delete anyone's message here (moderation).
    pub admin: bool,
    pub editing: RwSignal<Option<MessageId>>,
    pub picking: RwSignal<Option<MessageId>>,
    pub confirm_delete: RwSignal<Option<PendingDelete>>,
    /// Where focus returns after editing.
    pub composer: NodeRef<leptos::html::Textarea>,
    /// Opens a message's thread beside the room (`Some`), or closes it; the address says which
    /// (`?thread=`), so a thread can be linked to and the Back button closes it.
    pub show_thread: Callback<Option<MessageId>>,
}

impl RoomUi {
    pub fn get() -> Self {
        expect_context::<Self>()
    }
}

#[component]
pub fn RoomPage() -> impl IntoView {
    let params = use_params_map();
    let room_id =
        Memo::new(move |_| params.with(|p| p.get("id").and_then(|s| s.parse::<RoomId>().ok())));
    // `?at=<seq>` opens the room at that message (a search result), with the messages around it.
    let query = use_query_map();
    let at = Memo::new(move |_| query.with(|q| q.get("at").and_then(|s| s.parse::<u64>().ok())));
    let data = Resource::new(
        move || (room_id.get(), at.get()),
        |(id, at)| async move {
            match id {
                Some(id) => authed(move || room_page(id, at)).await,
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
                        live.open_room(page.room.id, page.messages.clone(), page.rev);
                        let at = at.get_untracked();
                        view! { <RoomView page my_id admin at /> }.into_any()
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
    /// Opened at this message: shown highlighted, scrolled to.
    at: Option<u64>,
) -> impl IntoView {
    let live = Live::get();
    let room = page.room.clone();
    let id = room.id;
    let query = use_query_map();
    let thread_open = Memo::new(move |_| {
        query.with(|q| q.get("thread").and_then(|s| s.parse::<MessageId>().ok()))
    });
    let opened_at = at.map(|seq| format!("at={seq}&")).unwrap_or_default();
    let to_thread = use_navigate();
    let ui = RoomUi {
        room: id,
        my_id,
        admin,
        editing: RwSignal::new(None),
        picking: RwSignal::new(None),
        confirm_delete: RwSignal::new(None),
        composer: NodeRef::new(),
        show_thread: Callback::new(move |root: Option<MessageId>| {
            // Keeps the message the room was opened at (changing it would load the room again).
            let path = match root {
                Some(root) => format!("/rooms/{id}?{opened_at}thread={root}"),
                None => format!("/rooms/{id}?{opened_at}"),
            };
            let path = path.trim_end_matches(['?', '&']);
            to_thread(path, Default::default());
        }),
    };
    provide_context(ui);
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
                .filter(|x| x.room == id && x.thread.is_none())
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
            opened.is_none().then_some(at.or(first_unread)).flatten(),
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
            if let Ok(page) = authed(move || room_history(id, Some(oldest), None)).await {
                if page.first().is_none_or(|m| m.seq <= 1) {
                    no_more.set(true);
                }
                keep_scroll_position(move || live.seed_messages(id, page));
            }
            loading_older.set(false);
        });
    };

    // Opened at an older message: the messages after `seq`, up to the next ones already here.
    let load_newer = move |seq: u64| {
        leptos::task::spawn_local(async move {
            if let Ok(page) = authed(move || room_history(id, None, Some(seq))).await {
                live.seed_messages(id, page);
            }
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
                // Messages sent between loading the page and joining reached no one here: the
                // newest page, read now that the join is in effect, fills that gap (later ones
                // arrive live).
                if let Ok(page) = authed(move || room_history(id, None, None)).await {
                    live.seed_messages(id, page);
                }
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
                    {move || member.get().then(|| view! { <crate::components::search_box::RoomSearchBox room=id /> })}
                    {move || member.get().then(|| view! { <NotifyChoice room=id /> })}
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
                    <For each=move || rows.get() key=|r| (r.message.seq, r.message.rev, r.starts_day, r.continued, r.gap_after) let:row>
                        {row.starts_day.then(|| view! { <DayHeading at=row.message.created_at /> })}
                        {
                            let seq = row.message.seq;
                            view! {
                                <MessageRow unread_from_here=Some(seq) == first_unread continued=row.continued highlighted=Some(seq) == at message=row.message />
                                {row.gap_after.then(|| view! {
                                    <p class="py-1 text-center">
                                        <button type="button" class="rounded-md border border-slate-300 px-3 py-0.5 text-xs dark:border-slate-600" on:click=move |_| load_newer(seq)>"Show newer messages"</button>
                                    </p>
                                })}
                            }
                        }
                    </For>
                    <For each=move || pending.get() key=|p| (p.nonce.clone(), p.failed.clone(), p.retrying) let:p>
                        <PendingItem pending=p />
                    </For>
                </div>
                <TypingLine room=id />
                {move || member.get().then(|| view! { <Composer room=id /> })}
            </section>
            {move || match thread_open.get() {
                Some(root) => view! { <ThreadPanel root member=member.into() /> }.into_any(),
                None => view! { <MemberList room=id members kind=room.kind /> }.into_any(),
            }}
            <DeleteConfirmation />
        </div>
    }
}

/// A message typed here and not yet stored: sending, waiting for the server, or refused (retry).
#[component]
fn PendingItem(pending: crate::chat::live::Pending) -> impl IntoView {
    let live = Live::get();
    view! {
        <div class="rounded-md px-2 py-1 text-slate-600 dark:text-slate-400" data-testid="pending-message">
            <p class="whitespace-pre-wrap break-words">{pending.body.clone()}</p>
            {(!pending.files.is_empty()).then(|| view! { <crate::components::attachments::Attachments files=pending.files.clone() /> })}
            {match pending.failed.clone() {
                Some(reason) => {
                    let nonce = pending.nonce.clone();
                    view! {
                        <p role="alert" class="text-xs text-red-600 dark:text-red-400">
                            {reason} " "
                            <button type="button" class="underline" on:click=move |_| live.retry(&nonce)>"Retry"</button>
                        </p>
                    }.into_any()
                }
                None if pending.retrying => view! {
                    <p role="status" class="text-xs text-amber-800 dark:text-amber-300">
                        "Can't send right now. It will be sent as soon as the server can store it."
                    </p>
                }.into_any(),
                None => view! { <p class="text-xs">"Sending…"</p> }.into_any(),
            }}
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

/// What the reader hears about this room: all messages, mentions only, or nothing.
#[component]
fn NotifyChoice(room: RoomId) -> impl IntoView {
    let live = Live::get();
    let error = RwSignal::new(None::<String>);
    let choose = move |ev: leptos::ev::Event| {
        let Some(level) = crate::model::NotifyLevel::parse(&event_target_value(&ev)) else {
            return;
        };
        let before = live.notify_level(room);
        live.notify.update(|m| {
            m.insert(room, level);
        });
        leptos::task::spawn_local(async move {
            let saved = authed(move || set_room_notify(room, level.as_str().to_owned())).await;
            match saved {
                Ok(_) => error.set(None),
                Err(e) => {
                    live.notify.update(|m| {
                        m.insert(room, before);
                    });
                    error.set(Some(e.to_string()));
                }
            }
        });
    };
    let current = move || live.notify_level(room);
    view! {
        <label class="flex items-center gap-1 text-sm text-slate-700 dark:text-slate-300">
            "Notifications"
            <select
                class="rounded-md border border-slate-300 bg-white px-1 py-0.5 text-sm dark:border-slate-600 dark:bg-slate-900"
                on:change=choose
                prop:value=move || current().as_str()
            >
                <option value="all" selected=move || current() == crate::model::NotifyLevel::All>"All messages"</option>
                <option value="mentions" selected=move || current() == crate::model::NotifyLevel::Mentions>"Mentions only"</option>
                <option value="nothing" selected=move || current() == crate::model::NotifyLevel::Nothing>"Nothing (muted)"</option>
            </select>
        </label>
        {move || error.get().map(|e| view! { <p role="alert" class="text-xs text-red-700 dark:text-red-400">{e}</p> })}
    }
}

/// Asks before a message is deleted, in the page.
#[component]
fn DeleteConfirmation() -> impl IntoView {
    let ui = RoomUi::get();
    let live = Live::get();
    let open = Signal::derive(move || ui.confirm_delete.with(Option::is_some));
    let title = Signal::derive(move || {
        ui.confirm_delete.with(|p| match p {
            Some(p) if p.as_admin => format!("Delete this message by {} for everyone?", p.author),
            _ => "Delete this message?".to_owned(),
        })
    });
    let detail = Signal::derive(move || {
        ui.confirm_delete.with(|p| match p {
            Some(p) if p.as_admin => "As an admin you can remove anyone's message. The room sees that a message was deleted.".to_owned(),
            _ => "Everyone in the room will see that a message was deleted. This cannot be undone.".to_owned(),
        })
    });
    let error = RwSignal::new(None::<String>);
    let on_close = Callback::new(move |confirmed: bool| {
        let Some(pending) = ui.confirm_delete.get_untracked() else {
            return;
        };
        ui.confirm_delete.set(None);
        if !confirmed {
            return;
        }
        let id = pending.id;
        if pending.as_admin {
            leptos::task::spawn_local(async move {
                if let Err(e) = authed(move || admin_delete_message(id)).await {
                    error.set(Some(e.to_string()));
                }
            });
        } else {
            live.transmit(ClientMsg::Delete { id });
        }
    });
    view! {
        <ConfirmDialog open title detail confirm_label="Delete" on_close />
        {move || error.get().map(|e| view! { <p role="alert" class="fixed bottom-4 right-4 rounded-md bg-red-700 px-3 py-2 text-sm text-white">{e}</p> })}
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
