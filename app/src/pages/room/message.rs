//! One message in the timeline: avatar, author, local time, body, reactions, and what the reader may
//! do with it (edit in place, delete after an in-page confirmation, react, moderate).

use super::{PendingDelete, RoomUi};
use crate::auth::authed;
use crate::chat::api::message_edits;
use crate::chat::live::Live;
use crate::chat::EditView;
use crate::components::attachments::Attachments;
use crate::components::avatar::Avatar;
use crate::components::emoji_picker::EmojiPicker;
use crate::components::time::LocalTime;
use crate::model::{MessageId, UserId};
use crate::protocol::{ClientMsg, MessageView, ReactionView};
use leptos::prelude::*;

const ACTION: &str = "rounded px-1 text-slate-700 hover:underline dark:text-slate-300";

#[component]
pub(super) fn MessageRow(
    message: MessageView,
    /// Draws the "New messages" line above this one.
    unread_from_here: bool,
    /// Follows a message of the same author: the name is left to screen readers.
    #[prop(optional)]
    continued: bool,
    /// Shown in the thread panel (as its root or a reply), not in the room's timeline.
    #[prop(optional)]
    in_thread: bool,
    /// The message the room was opened at (a search result): it stands out.
    #[prop(optional)]
    highlighted: bool,
) -> impl IntoView {
    let ui = RoomUi::get();
    let own = ui.my_id == Some(message.author);
    let id = message.id;
    let moderate = ui.admin && !own && !message.deleted;
    let editing = Memo::new(move |_| ui.editing.get() == Some(id));
    let picking = Memo::new(move |_| ui.picking.get() == Some(id));
    let can_react = !message.deleted;
    let can_start_thread = !in_thread && !message.deleted && message.thread.is_none();
    let summary = (!in_thread).then(|| message.replies.clone()).flatten();
    let shared_from = (!in_thread)
        .then_some(message.thread)
        .flatten()
        .map(|t| t.root);
    let mentions_me = ui.my_id.is_some_and(|me| message.mentions.contains(&me));
    let shape = match (continued, mentions_me) {
        (false, false) => "group relative mt-1 flex gap-2 rounded-md px-2 py-1 hover:bg-slate-50 dark:hover:bg-slate-900",
        (true, false) => "group relative flex gap-2 rounded-md px-2 py-0.5 hover:bg-slate-50 dark:hover:bg-slate-900",
        // Mentions of the reader stand out: a tinted row with a bar on its edge.
        (false, true) => "group relative mt-1 flex gap-2 rounded-md border-l-4 border-amber-500 bg-amber-50 px-2 py-1 dark:bg-amber-950",
        (true, true) => "group relative flex gap-2 rounded-md border-l-4 border-amber-500 bg-amber-50 px-2 py-0.5 dark:bg-amber-950",
    };
    let ask_delete = {
        let author = message.author_name.clone();
        move |as_admin: bool| {
            ui.confirm_delete.set(Some(PendingDelete {
                id,
                author: author.clone(),
                as_admin,
            }))
        }
    };
    let ask_delete_admin = ask_delete.clone();
    let body = message.body.clone();
    let body_html = message.body_html().into_owned();
    view! {
        {unread_from_here.then(|| view! {
            <p class="flex items-center gap-2 py-1 text-xs font-medium text-red-700 dark:text-red-400" data-testid="unread-divider">
                <span class="h-px flex-1 bg-red-300"></span>"New messages"<span class="h-px flex-1 bg-red-300"></span>
            </p>
        })}
        <article
            id=(!in_thread).then(|| format!("msg-{}", message.seq))
            class=shape
            data-seq=message.seq
            data-mentions-me=mentions_me.then_some("true")
            data-continued=continued.then_some("true")
            data-highlighted=highlighted.then_some("true")
            class:ring-2=highlighted
            class:ring-indigo-500=highlighted
        >
            <div class="w-8 shrink-0">
                {(!continued).then(|| view! { <Avatar user=message.author name=message.author_name.clone() picture=message.author_avatar /> })}
            </div>
            <div class="min-w-0 flex-1">
                <p class="flex flex-wrap items-baseline gap-x-2 text-sm">
                    <span class=if continued { "sr-only" } else { "font-semibold" }>{message.author_name.clone()}</span>
                    {(!message.author_username.is_empty()).then(|| view! {
                        <span class=if continued { "sr-only" } else { "text-xs text-slate-600 dark:text-slate-400" } data-testid="author-username">"@"{message.author_username.clone()}</span>
                    })}
                    <LocalTime at=message.created_at class="text-xs text-slate-600 dark:text-slate-400" />
                    {mentions_me.then(|| view! { <span class="text-xs font-semibold text-amber-900 dark:text-amber-200">"Mentions you"</span> })}
                    {(message.edited_at.is_some() && !message.deleted).then(|| view! { <EditedMark id /> })}
                    <span class="ml-auto flex gap-1 text-xs opacity-0 focus-within:opacity-100 group-hover:opacity-100 group-focus-within:opacity-100">
                        {can_react.then(|| view! {
                            <button type="button" class=ACTION aria-haspopup="dialog" aria-expanded=move || picking.get().to_string()
                                on:click=move |_| ui.picking.update(|p| *p = if *p == Some(id) { None } else { Some(id) })
                            >"Add reaction"</button>
                        })}
                        {can_start_thread.then(|| view! {
                            <button type="button" class=ACTION on:click=move |_| ui.show_thread.run(Some(id))>"Reply in thread"</button>
                        })}
                        {(own && !message.deleted).then(|| view! {
                            <button type="button" class=ACTION on:click=move |_| ui.editing.set(Some(id))>"Edit"</button>
                            <button type="button" class="rounded px-1 text-red-700 hover:underline dark:text-red-400" on:click=move |_| ask_delete(false)>"Delete"</button>
                        })}
                        {moderate.then(|| view! {
                            <button type="button" class="rounded px-1 text-red-700 hover:underline dark:text-red-400" on:click=move |_| ask_delete_admin(true)>"Delete (admin)"</button>
                        })}
                    </span>
                </p>
                {move || if message.deleted {
                    view! { <p class="text-sm italic text-slate-600 dark:text-slate-400">"This message was deleted."</p> }.into_any()
                } else if editing.get() {
                    view! { <InlineEditor id body=body.clone() /> }.into_any()
                } else {
                    // Rendered from a markdown subset and sanitised on the server.
                    view! { <div class="message-body break-words text-sm" inner_html=body_html.clone()></div> }.into_any()
                }}
                {(!message.files.is_empty()).then(|| view! { <Attachments files=message.files.clone() /> })}
                {(!message.reactions.is_empty()).then(|| view! { <Reactions id reactions=message.reactions.clone() /> })}
                {summary.map(|replies| view! { <ThreadSummary root=id replies /> })}
                {shared_from.map(|root| view! {
                    <p class="text-xs text-slate-600 dark:text-slate-400">
                        "Replied in a thread · "
                        <button type="button" class="text-indigo-700 hover:underline dark:text-indigo-300" on:click=move |_| ui.show_thread.run(Some(root))>"View thread"</button>
                    </p>
                })}
                {move || picking.get().then(|| view! {
                    <EmojiPicker
                        on_pick=Callback::new(move |emoji: &'static str| {
                            ui.picking.set(None);
                            react(id, emoji, true);
                        })
                        on_close=Callback::new(move |_| ui.picking.set(None))
                    />
                })}
            </div>
        </article>
    }
}

/// Under a thread's root in the timeline: how many replies, from whom, when the last came; opens the
/// thread.
#[component]
fn ThreadSummary(root: MessageId, replies: crate::protocol::RepliesView) -> impl IntoView {
    let ui = RoomUi::get();
    let live = Live::get();
    let who = move || {
        live.members.with(|rooms| {
            let members = rooms.get(&ui.room);
            replies
                .repliers
                .iter()
                .rev()
                .filter_map(|u| {
                    if Some(*u) == ui.my_id {
                        return Some("you".to_owned());
                    }
                    members?
                        .iter()
                        .find(|m| m.user == *u)
                        .map(|m| m.display_name.clone())
                })
                .take(3)
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    let count = match replies.count {
        1 => "1 reply".to_owned(),
        n => format!("{n} replies"),
    };
    view! {
        <button
            type="button"
            data-testid="thread-summary"
            class="mt-1 flex flex-wrap items-baseline gap-x-2 rounded-md border border-slate-200 px-2 py-0.5 text-left text-xs hover:bg-slate-100 dark:border-slate-700 dark:hover:bg-slate-800"
            on:click=move |_| ui.show_thread.run(Some(root))
        >
            <span class="font-semibold text-indigo-700 dark:text-indigo-300">{count}</span>
            <span class="text-slate-700 dark:text-slate-300" data-testid="thread-repliers">{who}</span>
            <span class="text-slate-600 dark:text-slate-400">"Last reply " <LocalTime at=replies.last_reply_at /></span>
        </button>
    }
}

fn react(id: MessageId, emoji: &str, on: bool) {
    Live::get().transmit(ClientMsg::React {
        id,
        emoji: emoji.to_owned(),
        on,
    });
}

/// The message's reactions: each emoji with its count; the reader's own are pressed, and clicking
/// one toggles the reader's. Who reacted is in the label (screen readers) and the title (hover).
#[component]
fn Reactions(id: MessageId, reactions: Vec<ReactionView>) -> impl IntoView {
    let ui = RoomUi::get();
    let live = Live::get();
    let names = move |users: &[UserId]| -> String {
        live.members.with(|rooms| {
            let members = rooms.get(&ui.room);
            users
                .iter()
                .map(|u| {
                    if Some(*u) == ui.my_id {
                        return "you".to_owned();
                    }
                    members
                        .and_then(|list| list.iter().find(|m| m.user == *u))
                        .map_or_else(|| "someone who left".to_owned(), |m| m.display_name.clone())
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    view! {
        <ul class="mt-1 flex flex-wrap gap-1" aria-label="Reactions">
            {reactions.into_iter().map(|r| {
                let mine = ui.my_id.is_some_and(|me| r.users.contains(&me));
                let count = r.users.len();
                let who = names(&r.users);
                let label = format!("{} {count}: {who}", r.emoji);
                let emoji = r.emoji.clone();
                view! {
                    <li>
                        <button
                            type="button"
                            aria-pressed=mine.to_string()
                            aria-label=label
                            title=who
                            data-testid="reaction"
                            class=if mine {
                                "rounded-full border border-indigo-500 bg-indigo-50 px-2 text-xs text-indigo-900 dark:bg-indigo-950 dark:text-indigo-100"
                            } else {
                                "rounded-full border border-slate-300 px-2 text-xs text-slate-800 dark:border-slate-600 dark:text-slate-200"
                            }
                            on:click=move |_| react(id, &emoji, !mine)
                        >
                            {r.emoji.clone()} " " {count}
                        </button>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

/// Edits a message in place: Enter saves, Shift+Enter breaks the line, Escape cancels; focus goes
/// back to the composer either way.
#[component]
fn InlineEditor(id: MessageId, body: String) -> impl IntoView {
    let ui = RoomUi::get();
    let live = Live::get();
    let text = RwSignal::new(body.clone());
    let field = NodeRef::<leptos::html::Textarea>::new();
    Effect::new(move |_| {
        if let Some(el) = field.get() {
            let _ = el.focus();
            let end = el.value().len() as u32;
            let _ = el.set_selection_range(end, end);
        }
    });
    let done = move || {
        ui.editing.set(None);
        if let Some(composer) = ui.composer.get_untracked() {
            let _ = composer.focus();
        }
    };
    let save = move || {
        let new = text.get_untracked();
        if !new.trim().is_empty() && new != body {
            live.transmit(ClientMsg::Edit { id, body: new });
        }
        done();
    };
    let save_click = save.clone();
    view! {
        <div class="mt-1">
            <textarea
                node_ref=field
                aria-label="Edit message"
                rows="2"
                prop:value=move || text.get()
                on:input:target=move |ev| text.set(ev.target().value())
                on:keydown=move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
                    "Enter" if !ev.shift_key() => {
                        ev.prevent_default();
                        save();
                    }
                    "Escape" => {
                        ev.prevent_default();
                        done();
                    }
                    _ => {}
                }
                class="w-full resize-y rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-600 dark:bg-slate-900"
            ></textarea>
            <p class="text-xs text-slate-600 dark:text-slate-400">
                "Enter to save, Escape to cancel. "
                <button type="button" class="underline" on:click=move |_| save_click()>"Save"</button>
                " "
                <button type="button" class="underline" on:click=move |_| done()>"Cancel"</button>
            </p>
        </div>
    }
}

/// "(edited)", which opens the earlier versions.
#[component]
fn EditedMark(id: MessageId) -> impl IntoView {
    let open = RwSignal::new(false);
    let versions = RwSignal::new(None::<Result<Vec<EditView>, String>>);
    let toggle = move |_| {
        let opening = !open.get_untracked();
        open.set(opening);
        if opening {
            leptos::task::spawn_local(async move {
                let found = authed(move || message_edits(id)).await;
                versions.set(Some(found.map_err(|e| e.to_string())));
            });
        }
    };
    view! {
        <button type="button" class="text-xs text-slate-600 underline-offset-2 hover:underline dark:text-slate-400" aria-expanded=move || open.get().to_string() on:click=toggle>
            "(edited)"
        </button>
        {move || open.get().then(|| view! {
            <div class="basis-full rounded-md border border-slate-200 p-2 text-xs dark:border-slate-700" role="region" aria-label="Earlier versions">
                {move || match versions.get() {
                    None => view! { <p>"Loading…"</p> }.into_any(),
                    Some(Err(e)) => view! { <p role="alert">{e}</p> }.into_any(),
                    Some(Ok(list)) if list.is_empty() => view! { <p>"No earlier versions are kept."</p> }.into_any(),
                    Some(Ok(list)) => view! {
                        <ol class="space-y-1">
                            {list.into_iter().map(|v| view! {
                                <li>
                                    <span class="whitespace-pre-wrap break-words">{v.body}</span>
                                    " "
                                    <span class="text-slate-600 dark:text-slate-400">"(replaced " <LocalTime at=v.replaced_at /> ")"</span>
                                </li>
                            }).collect_view()}
                        </ol>
                    }.into_any(),
                }}
            </div>
        })}
    }
}
