//! `/admin/...`: the admin panel. Every page sits in [`AdminFrame`], which shows an "admins only" notice
//! to anyone else (the server's page guard also answers 403 for them). Hiding is not protection: every
//! server function behind these pages checks the role again in the store.

pub mod audit;
pub mod dashboard;
pub mod rooms;
pub mod search;
pub mod users;

use crate::admin::TablePage;
use crate::auth::UserContext;
use crate::error::AppError;
use crate::model::Role;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

pub const BUTTON: &str = "rounded-md border border-slate-300 px-2 py-1 text-xs font-medium hover:bg-slate-100 disabled:opacity-50 dark:border-slate-700 dark:hover:bg-slate-800";
pub const DANGER_BUTTON: &str = "rounded-md border border-red-300 px-2 py-1 text-xs font-medium text-red-700 hover:bg-red-50 disabled:opacity-50 dark:border-red-800 dark:text-red-300 dark:hover:bg-red-950";
pub const INPUT: &str = "w-full rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm dark:border-slate-700 dark:bg-slate-900 sm:w-64";
const TABLE: &str = "w-full min-w-[40rem] text-left text-sm";
const HEAD_ROW: &str =
    "border-b border-slate-200 text-xs uppercase text-slate-600 dark:border-slate-800 dark:text-slate-400";
pub const ROW: &str = "border-b border-slate-100 align-top dark:border-slate-900";

#[component]
pub fn AdminFrame(title: &'static str, children: ChildrenFn) -> impl IntoView {
    let user = UserContext::get().0;
    let children = StoredValue::new(children);
    view! {
        <Title text=title />
        <Suspense fallback=|| view! { <p class="p-6 text-sm text-slate-600 dark:text-slate-400">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match user.await {
                    Ok(Some(me)) if me.role == Role::Admin => view! {
                        <div class="mx-auto w-full max-w-5xl space-y-4 px-4 py-6">
                            <AdminNav />
                            <h1 class="text-2xl font-semibold tracking-tight">{title}</h1>
                            {children.with_value(|c| c())}
                        </div>
                    }.into_any(),
                    _ => view! { <Forbidden /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn AdminNav() -> impl IntoView {
    let link = "rounded-md px-3 py-1.5 text-sm hover:bg-slate-100 aria-[current=page]:bg-indigo-100 aria-[current=page]:font-semibold dark:hover:bg-slate-800 dark:aria-[current=page]:bg-indigo-950";
    view! {
        <nav aria-label="Admin" class="flex flex-wrap gap-1 border-b border-slate-200 pb-2 dark:border-slate-800">
            <A href="/admin" exact=true attr:class=link>"Dashboard"</A>
            <A href="/admin/users" attr:class=link>"Users"</A>
            <A href="/admin/rooms" attr:class=link>"Rooms"</A>
            <A href="/admin/search" attr:class=link>"Search"</A>
            <A href="/admin/audit" attr:class=link>"Audit log"</A>
        </nav>
    }
}

#[component]
pub fn Forbidden() -> impl IntoView {
    view! {
        <Title text="Admins only" />
        <section class="mx-auto flex max-w-xl flex-1 flex-col justify-center gap-4 p-6 text-center">
            <p class="text-sm font-semibold text-red-600 dark:text-red-400">"403"</p>
            <h1 class="text-2xl font-semibold tracking-tight">"Admins only"</h1>
            <p class="text-slate-600 dark:text-slate-300">"This part of ML-CHAT is for administrators."</p>
            <p>
                <A href="/" attr:class="inline-block rounded-md bg-indigo-600 px-4 py-2 font-medium text-white hover:bg-indigo-500">
                    "Back to ML-CHAT"
                </A>
            </p>
        </section>
    }
}

/// One page of an admin list as a table: a header row, one row per item (drawn by `row`), the range
/// with previous/next buttons that move `offset`, and the error if the page could not be loaded.
#[component]
pub fn AdminTable<T, R, V>(
    /// The table's accessible name.
    label: &'static str,
    headers: &'static [&'static str],
    page: Resource<Result<TablePage<T>, AppError>>,
    offset: RwSignal<u64>,
    row: R,
) -> impl IntoView
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    R: Fn(T) -> V + Copy + Send + Sync + 'static,
    V: IntoView + 'static,
{
    view! {
        <Transition fallback=|| view! { <p class="text-sm text-slate-600 dark:text-slate-400">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(page) => view! {
                        <div class="overflow-x-auto">
                            <table class=TABLE aria-label=label>
                                <thead>
                                    <tr class=HEAD_ROW>
                                        {headers.iter().map(|h| view! { <th class="py-2 pr-3">{*h}</th> }).collect_view()}
                                    </tr>
                                </thead>
                                <tbody>{page.items.clone().into_iter().map(row).collect_view()}</tbody>
                            </table>
                        </div>
                        <Pager page offset />
                    }.into_any(),
                    Err(e) => view! { <p role="alert" class="text-sm text-red-600 dark:text-red-400">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// "26–50 of 73" with previous/next buttons that move `offset` by one page.
#[component]
fn Pager<T: Clone + Send + Sync + 'static>(
    page: TablePage<T>,
    offset: RwSignal<u64>,
) -> impl IntoView {
    let step = u64::from(crate::admin::TABLE_PAGE);
    let has_next = page.has_next();
    let at_start = page.offset == 0;
    view! {
        <div class="flex items-center justify-between gap-2 text-sm text-slate-600 dark:text-slate-400">
            <span data-testid="range">{page.range_label()}</span>
            <span class="flex gap-2">
                <button type="button" class=BUTTON disabled=at_start on:click=move |_| offset.update(|o| *o = o.saturating_sub(step))>"Previous"</button>
                <button type="button" class=BUTTON disabled=!has_next on:click=move |_| offset.update(|o| *o += step)>"Next"</button>
            </span>
        </div>
    }
}

/// A search box that applies as you type and goes back to the first page.
#[component]
pub fn SearchBox(
    label: &'static str,
    search: RwSignal<String>,
    offset: RwSignal<u64>,
) -> impl IntoView {
    view! {
        <label class="block text-sm">
            <span class="sr-only">{label}</span>
            <input
                type="search"
                placeholder=label
                aria-label=label
                maxlength="64"
                class=INPUT
                prop:value=move || search.get()
                on:input=move |ev| {
                    search.set(event_target_value(&ev));
                    offset.set(0);
                }
            />
        </label>
    }
}

/// The error of the last action, if any.
pub fn error_line(error: RwSignal<Option<AppError>>) -> impl IntoView {
    move || {
        error.get().map(|e| {
            view! {
                <p role="alert" class="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800 dark:border-red-900 dark:bg-red-950 dark:text-red-200">
                    {e.to_string()}
                </p>
            }
        })
    }
}
