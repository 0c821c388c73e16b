//! `/threads`: the threads the reader follows (started, replied to, mentioned in, or followed by
//! hand), latest reply first, with how many replies are unread; each opens beside its room.

use crate::chat::live::Live;
use crate::chat::FollowedThread;
use crate::components::avatar::Avatar;
use crate::components::time::LocalTime;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub fn ThreadsPage() -> impl IntoView {
    let live = Live::get();
    // Read the list again on arrival (the sidebar keeps it current afterwards).
    Effect::new(move |_| live.follows_changed.update(|n| *n += 1));
    view! {
        <Title text="Threads" />
        <section class="mx-auto w-full max-w-3xl flex-1 overflow-y-auto p-4" aria-labelledby="threads-heading">
            <h1 id="threads-heading" class="mb-3 text-xl font-semibold">"Threads"</h1>
            {move || {
                let list = live.followed.get();
                if list.is_empty() {
                    view! {
                        <p class="text-sm text-slate-600 dark:text-slate-400">"No threads yet. Threads you start, reply to or are mentioned in show up here, with their new replies."</p>
                    }.into_any()
                } else {
                    view! {
                        <ol class="space-y-2" aria-label="Threads you follow">
                            {list.into_iter().map(|t| view! { <ThreadItem thread=t /> }).collect_view()}
                        </ol>
                    }.into_any()
                }
            }}
        </section>
    }
}

#[component]
fn ThreadItem(thread: FollowedThread) -> impl IntoView {
    let unread = thread.unread();
    let root = thread.root;
    let count = root.replies.as_ref().map_or(0, |r| r.count);
    let last = root.replies.as_ref().map(|r| r.last_reply_at);
    let href = format!("/rooms/{}?thread={}", root.room, root.id);
    let shape = if unread > 0 {
        "rounded-md border border-indigo-300 bg-indigo-50 p-3 dark:border-indigo-800 dark:bg-indigo-950"
    } else {
        "rounded-md border border-slate-200 p-3 dark:border-slate-700"
    };
    view! {
        <li
            class=shape
            data-testid="followed-thread"
            data-unread=unread.to_string()
        >
            <p class="flex flex-wrap items-baseline gap-x-2 text-sm">
                <Avatar user=root.author name=root.author_name.clone() picture=root.author_avatar small=true />
                <span class="font-semibold">{root.author_name.clone()}</span>
                <span class="text-slate-600 dark:text-slate-400">"in " {thread.room_name.clone()}</span>
                {(unread > 0).then(|| view! { <span class="rounded bg-indigo-700 px-1.5 text-xs font-semibold text-white" data-testid="thread-unread">{format!("{unread} unread")}</span> })}
            </p>
            {if root.deleted {
                view! { <p class="mt-1 text-sm italic text-slate-600 dark:text-slate-400">"This message was deleted."</p> }.into_any()
            } else {
                // Rendered from a markdown subset and sanitised on the server.
                view! { <div class="message-body mt-1 break-words text-sm" inner_html=root.body_html().into_owned()></div> }.into_any()
            }}
            <p class="mt-1 flex flex-wrap gap-x-2 text-xs text-slate-600 dark:text-slate-400">
                <A href=href attr:class="font-medium text-indigo-700 hover:underline dark:text-indigo-300">
                    {match count { 1 => "1 reply".to_owned(), n => format!("{n} replies") }}
                </A>
                {last.map(|at| view! { <span>"Last reply " <LocalTime at /></span> })}
            </p>
        </li>
    }
}
