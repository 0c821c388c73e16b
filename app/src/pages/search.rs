//! `/search?q=…`: messages matching the query in the reader's rooms, newest first, the matching words
//! marked; each result opens its room at the message (or its thread). The query is the address, so
//! the page works from the top bar's plain form without WebAssembly too.

use crate::admin::api::admin_search_messages;
use crate::auth::authed;
use crate::chat::api::search_messages;
use crate::chat::{SearchHit, SEARCH_PAGE};
use crate::components::avatar::Avatar;
use crate::components::time::LocalTime;
use crate::domain::search::{normalize, SearchQuery};
use crate::domain::text::percent_encode;
use crate::error::AppError;
use crate::model::{MessageId, RoomId, Timestamp};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

/// Where a search looks: the reader's rooms (or one of them), or, for moderators, every room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Mine,
    Everywhere,
}

async fn fetch(
    scope: Scope,
    q: String,
    room: Option<RoomId>,
    before: Option<(Timestamp, MessageId)>,
) -> Result<Vec<SearchHit>, AppError> {
    let (at, id) = (before.map(|b| b.0), before.map(|b| b.1));
    match scope {
        Scope::Mine => authed(move || search_messages(q.clone(), room, at, id)).await,
        Scope::Everywhere => authed(move || admin_search_messages(q.clone(), at, id)).await,
    }
}

#[component]
pub fn SearchPage() -> impl IntoView {
    let query = use_query_map();
    let q = Memo::new(move |_| query.with(|m| m.get("q").unwrap_or_default()));
    let room = Memo::new(move |_| query.with(|m| m.get("room").and_then(|r| r.parse().ok())));
    // Effects run in the browser only: the search is kept among this browser's recent ones.
    Effect::new(move |_| crate::components::search_box::remember_search(&q.get()));
    view! {
        <Title text="Search" />
        <section class="mx-auto w-full max-w-3xl flex-1 overflow-y-auto p-4" aria-labelledby="search-heading">
            <h1 id="search-heading" class="mb-1 text-xl font-semibold">"Search"</h1>
            <SearchHelp />
            <FilterPicker q room />
            {move || room.get().map(|_| view! {
                <p class="mb-2 text-sm">
                    "In one room only. "
                    <A href=move || format!("/search?q={}", percent_encode(&q.get())) attr:class="text-indigo-700 hover:underline dark:text-indigo-300">"Search all your rooms"</A>
                </p>
            })}
            <SearchResults q room scope=Scope::Mine />
            <RecentSearches />
        </section>
    }
}

/// The filters as controls: a room, links only, a date range. Each choice rewrites the query (the
/// room as the `room` parameter, so names with spaces work) and searches again.
#[component]
fn FilterPicker(q: Memo<String>, room: Memo<Option<RoomId>>) -> impl IntoView {
    let navigate = leptos_router::hooks::use_navigate();
    let rooms = Resource::new(|| (), |_| authed(crate::chat::api::my_rooms));
    let go = move |q: String, room: Option<RoomId>| {
        let mut path = format!("/search?q={}", percent_encode(q.trim()));
        if let Some(room) = room {
            path.push_str(&format!("&room={room}"));
        }
        navigate(&path, Default::default());
    };
    // The query without the filter named `key`, then with `value` for it (none: just removed).
    let with_filter = move |key: &str, value: Option<String>| {
        let mut kept: Vec<String> = q
            .get_untracked()
            .split_whitespace()
            .filter(|w| !w.to_lowercase().starts_with(&format!("{key}:")))
            .map(str::to_owned)
            .collect();
        if let Some(value) = value {
            kept.insert(0, format!("{key}:{value}"));
        }
        // Still typing a prefix? Keep the last word whole once a filter is picked.
        format!("{} ", kept.join(" "))
    };
    let has = move |key: &str| {
        q.with(|q| {
            q.split_whitespace().find_map(|w| {
                w.to_lowercase()
                    .strip_prefix(&format!("{key}:"))
                    .map(str::to_owned)
            })
        })
    };
    let pick_room = {
        let go = go.clone();
        move |ev: leptos::ev::Event| go(q.get_untracked(), event_target_value(&ev).parse().ok())
    };
    let toggle_link = {
        let go = go.clone();
        move |ev: leptos::ev::Event| {
            let on = event_target_checked(&ev);
            go(
                with_filter("has", on.then(|| "link".to_owned())),
                room.get_untracked(),
            )
        }
    };
    let date = move |key: &'static str| {
        let go = go.clone();
        move |ev: leptos::ev::Event| {
            let value = event_target_value(&ev);
            go(
                with_filter(key, (!value.is_empty()).then_some(value)),
                room.get_untracked(),
            )
        }
    };
    let label = "flex items-center gap-1 text-xs text-slate-700 dark:text-slate-300";
    let field = "rounded-md border border-slate-300 bg-white px-2 py-0.5 text-xs dark:border-slate-600 dark:bg-slate-950";
    view! {
        <div class="mb-3 flex flex-wrap items-center gap-3" role="group" aria-label="Filters">
            <label class=label>"Room"
                <select class=field on:change=pick_room>
                    <option value="" selected=move || room.get().is_none()>"All my rooms"</option>
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            rooms.await.unwrap_or_default().into_iter().map(|r| {
                                let id = r.id;
                                view! { <option value=id.to_string() selected=move || room.get() == Some(id)>{r.name}</option> }
                            }).collect_view()
                        })}
                    </Transition>
                </select>
            </label>
            <label class=label>
                <input type="checkbox" prop:checked=move || has("has").is_some() on:change=toggle_link />
                "Has a link"
            </label>
            <label class=label>"After"
                <input type="date" class=field prop:value=move || has("after").unwrap_or_default() on:change=date("after") />
            </label>
            <label class=label>"Before"
                <input type="date" class=field prop:value=move || has("before").unwrap_or_default() on:change=date("before") />
            </label>
        </div>
    }
}

/// This browser's recent searches, each a link to run it again (read once the page is live).
#[component]
fn RecentSearches() -> impl IntoView {
    let recent = RwSignal::new(Vec::<String>::new());
    Effect::new(move |_| recent.set(crate::components::search_box::recent_searches()));
    view! {
        {move || (!recent.get().is_empty()).then(|| view! {
            <nav aria-label="Recent searches" class="mt-4 text-sm">
                <h2 class="mb-1 text-xs font-semibold text-slate-600 dark:text-slate-400">"Recent searches"</h2>
                <ul class="flex flex-wrap gap-2">
                    {recent.get().into_iter().map(|q| view! {
                        <li><A href=format!("/search?q={}", percent_encode(&q)) attr:class="text-indigo-700 hover:underline dark:text-indigo-300">{q.clone()}</A></li>
                    }).collect_view()}
                </ul>
            </nav>
        })}
    }
}

/// How to write a query.
#[component]
pub fn SearchHelp() -> impl IntoView {
    view! {
        <p class="mb-3 text-xs text-slate-600 dark:text-slate-400">
            "Every word must match; the last one also as the start of a word. Quote a phrase, or narrow with "
            <code>"in:#room"</code>", "<code>"from:@user"</code>", "<code>"before:2026-12-01"</code>", "
            <code>"after:2026-11-01"</code>", "<code>"has:link"</code>"."
        </p>
    }
}

/// The results of `q` (pages of `SEARCH_PAGE`, "More results" for the next), or why there are none.
#[component]
pub fn SearchResults(q: Memo<String>, room: Memo<Option<RoomId>>, scope: Scope) -> impl IntoView {
    let first = Resource::new(
        move || (q.get(), room.get()),
        move |(q, room)| async move {
            if q.trim().is_empty() {
                return Ok(Vec::new());
            }
            fetch(scope, q, room, None).await
        },
    );
    let older = RwSignal::new(Vec::<SearchHit>::new());
    let more = RwSignal::new(false);
    let load_more = move |last: Option<SearchHit>| {
        let Some(last) = last else { return };
        let (q, room) = (q.get_untracked(), room.get_untracked());
        leptos::task::spawn_local(async move {
            let before = Some((last.message.created_at, last.message.id));
            if let Ok(page) = fetch(scope, q, room, before).await {
                more.set(page.len() == SEARCH_PAGE);
                older.update(|list| list.extend(page));
            }
        });
    };
    view! {
        <Suspense fallback=|| view! { <p class="text-sm text-slate-600 dark:text-slate-400">"Searching…"</p> }>
            {move || Suspend::new(async move {
                let words = SearchQuery::parse(&q.get_untracked()).map(|p| Marks { words: p.highlights(), prefix: p.prefix }).unwrap_or_default();
                match first.await {
                    Err(e) => view! { <p role="alert" class="text-sm text-red-700 dark:text-red-400">{e.to_string()}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="text-sm text-slate-600 dark:text-slate-400" data-testid="no-results">
                            {if q.get_untracked().trim().is_empty() { "Type what you are looking for in the search box.".to_owned() } else { format!("No messages match \u{201c}{}\u{201d}.", q.get_untracked()) }}
                        </p>
                    }.into_any(),
                    Ok(list) => {
                        more.set(list.len() == SEARCH_PAGE);
                        older.set(Vec::new());
                        let shown = words.clone();
                        view! {
                            <ol class="space-y-2" aria-label="Search results">
                                {list.iter().cloned().map(|hit| view! { <Hit hit words=words.clone() /> }).collect_view()}
                                <For each=move || older.get() key=|h| h.message.id let:hit>
                                    <Hit hit words=shown.clone() />
                                </For>
                            </ol>
                            {move || more.get().then(|| {
                                let list = list.clone();
                                view! {
                                    <button type="button" class="mt-3 rounded-md border border-slate-300 px-3 py-1 text-sm dark:border-slate-600"
                                        on:click=move |_| load_more(older.with_untracked(|o| o.last().cloned()).or_else(|| list.last().cloned()))
                                    >"More results"</button>
                                }
                            })}
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// What to mark in results: whole words, and the prefix being typed.
#[derive(Debug, Clone, Default)]
struct Marks {
    words: Vec<String>,
    prefix: Option<String>,
}

#[component]
fn Hit(hit: SearchHit, words: Marks) -> impl IntoView {
    let m = hit.message;
    let href = match m.thread {
        Some(t) if !t.in_room => format!("/rooms/{}?thread={}", m.room, t.root),
        _ => format!("/rooms/{}?at={}", m.room, m.seq),
    };
    let pieces = highlighted(&m.body, &words);
    view! {
        <li class="rounded-md border border-slate-200 dark:border-slate-700" data-testid="search-result">
            <A href=href attr:class="block rounded-md p-3 hover:bg-slate-50 dark:hover:bg-slate-900">
                <span class="flex flex-wrap items-baseline gap-x-2 text-sm">
                    <Avatar user=m.author name=m.author_name.clone() picture=m.author_avatar small=true />
                    <span class="font-semibold">{m.author_name.clone()}</span>
                    <span class="text-slate-600 dark:text-slate-400">"in " {hit.room_name.clone()}</span>
                    <LocalTime at=m.created_at class="text-xs text-slate-600 dark:text-slate-400" />
                </span>
                <span class="mt-1 block whitespace-pre-wrap break-words text-sm">
                    {pieces.into_iter().map(|(text, hit)| if hit {
                        view! { <mark class="rounded bg-amber-200 px-0.5 text-slate-900 dark:bg-amber-700 dark:text-white">{text}</mark> }.into_any()
                    } else {
                        text.into_any()
                    }).collect_view()}
                </span>
            </A>
        </li>
    }
}

/// `body` cut into runs, each marked when it is one of the words (or starts with the prefix); as
/// plain text, so nothing in a message is markup here.
fn highlighted(body: &str, marks: &Marks) -> Vec<(String, bool)> {
    let (words, prefix) = (&marks.words, marks.prefix.as_ref());
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<(String, bool)>| {
        if word.is_empty() {
            return;
        }
        let norm = normalize(word);
        let hit = words.contains(&norm) || prefix.is_some_and(|p| norm.starts_with(p.as_str()));
        out.push((std::mem::take(word), hit));
    };
    for c in body.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            match out.last_mut() {
                Some((text, false)) => text.push(c),
                _ => out.push((c.to_string(), false)),
            }
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::{highlighted, Marks};

    #[test]
    fn matching_words_are_marked_ignoring_case_and_accents() {
        let marks = Marks {
            words: vec!["cafe".to_owned(), "pla".to_owned()],
            prefix: Some("pla".to_owned()),
        };
        let runs = highlighted("Café plans, cafeteria!", &marks);
        let marked: Vec<&str> = runs.iter().filter(|r| r.1).map(|r| r.0.as_str()).collect();
        assert_eq!(marked, ["Café", "plans"]);
        let text: String = runs.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(text, "Café plans, cafeteria!");
    }
}
