//! `/mentions`: messages that mention the reader, newest first, with unread ones marked; each opens its
//! room.

use crate::auth::authed;
use crate::chat::api::my_mentions;
use crate::chat::live::Live;
use crate::chat::MentionView;
use crate::components::avatar::Avatar;
use crate::components::time::LocalTime;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub fn MentionsPage() -> impl IntoView {
    let live = Live::get();
    // Read again whenever a new mention arrives.
    let first = Resource::new(
        move || live.all_unread_mentions(),
        |_| authed(|| my_mentions(None, None)),
    );
    let older = RwSignal::new(Vec::<MentionView>::new());
    let more = RwSignal::new(true);
    let load_older = move |last: Option<MentionView>| {
        let Some(last) = last else { return };
        leptos::task::spawn_local(async move {
            let (at, id) = (last.message.created_at, last.message.id);
            if let Ok(page) = authed(move || my_mentions(Some(at), Some(id))).await {
                more.set(page.len() == crate::chat::MENTIONS_PAGE);
                older.update(|list| list.extend(page));
            }
        });
    };
    view! {
        <Title text="Mentions" />
        <section class="mx-auto w-full max-w-3xl flex-1 overflow-y-auto p-4" aria-labelledby="mentions-heading">
            <h1 id="mentions-heading" class="mb-3 text-xl font-semibold">"Mentions"</h1>
            <Suspense fallback=|| view! { <p class="text-sm text-slate-600 dark:text-slate-400">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match first.await {
                        Err(e) => view! { <p role="alert" class="text-sm text-red-700 dark:text-red-400">{e.to_string()}</p> }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <p class="text-sm text-slate-600 dark:text-slate-400">"Nobody has mentioned you yet. When someone writes @ and your username, it shows up here."</p>
                        }.into_any(),
                        Ok(list) => {
                            more.set(list.len() == crate::chat::MENTIONS_PAGE);
                            older.set(Vec::new());
                            view! {
                                <ol class="space-y-2" aria-label="Messages that mention you">
                                    {list.iter().cloned().map(|m| view! { <MentionItem mention=m /> }).collect_view()}
                                    <For each=move || older.get() key=|m| m.message.id let:m>
                                        <MentionItem mention=m />
                                    </For>
                                </ol>
                                {move || more.get().then(|| {
                                    let list = list.clone();
                                    view! {
                                        <button type="button" class="mt-3 rounded-md border border-slate-300 px-3 py-1 text-sm dark:border-slate-600"
                                            on:click=move |_| load_older(older.with_untracked(|o| o.last().cloned()).or_else(|| list.last().cloned()))
                                        >"Older mentions"</button>
                                    }
                                })}
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn MentionItem(mention: MentionView) -> impl IntoView {
    let m = mention.message;
    view! {
        <li
            class=if mention.unread { "rounded-md border border-red-300 bg-red-50 p-3 dark:border-red-800 dark:bg-red-950" } else { "rounded-md border border-slate-200 p-3 dark:border-slate-700" }
            data-testid="mention"
            data-unread=mention.unread.to_string()
        >
            <p class="flex flex-wrap items-baseline gap-x-2 text-sm">
                <Avatar user=m.author name=m.author_name.clone() picture=m.author_avatar small=true />
                <span class="font-semibold">{m.author_name.clone()}</span>
                <span class="text-slate-600 dark:text-slate-400">"in"</span>
                <A href=match m.thread {
                    Some(t) => format!("/rooms/{}?thread={}", m.room, t.root),
                    None => format!("/rooms/{}", m.room),
                } attr:class="font-medium text-indigo-700 hover:underline dark:text-indigo-300">{mention.room_name.clone()}</A>
                <LocalTime at=m.created_at class="text-xs text-slate-600 dark:text-slate-400" />
                {mention.unread.then(|| view! { <span class="rounded bg-red-700 px-1.5 text-xs font-semibold text-white">"Unread"</span> })}
            </p>
            // Rendered from a markdown subset and sanitised on the server.
            <div class="message-body mt-1 break-words text-sm" inner_html=m.body_html().into_owned()></div>
        </li>
    }
}
