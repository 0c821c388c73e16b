//! `/sessions`: the devices signed in to this account; sign out one or all others.

use crate::auth::api::{list_sessions, logout, revoke_other_sessions, revoke_session};
use crate::auth::{authed, SessionView};
use crate::components::form::{FormError, Notice};
use crate::components::time::LocalTime;
use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SessionsPage() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let sessions = Resource::new(move || version.get(), |_| authed(list_sessions));
    let error = RwSignal::new(None::<AppError>);
    let notice = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let revoke_others = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        notice.set(None);
        leptos::task::spawn_local(async move {
            match authed(revoke_other_sessions).await {
                Ok(n) => notice.set(Some(match n {
                    0 => "There were no other sessions.".to_owned(),
                    1 => "Signed out 1 other session.".to_owned(),
                    n => format!("Signed out {n} other sessions."),
                })),
                Err(e) => error.set(Some(e)),
            }
            version.update(|v| *v += 1);
            busy.set(false);
        });
    };

    let revoke_one = move |session: SessionView| {
        error.set(None);
        notice.set(None);
        leptos::task::spawn_local(async move {
            if session.current {
                #[cfg(feature = "hydrate")]
                crate::auth::client::signing_out();
                let _ = logout().await;
                let _ = window().location().assign("/login");
                return;
            }
            match authed(move || revoke_session(session.id)).await {
                Ok(()) => notice.set(Some(format!("Signed out {}.", session.device))),
                Err(e) => error.set(Some(e)),
            }
            version.update(|v| *v += 1);
        });
    };

    view! {
        <Title text="Sessions" />
        <div class="mx-auto w-full max-w-2xl space-y-6 px-4 py-8">
            <div class="flex flex-wrap items-center justify-between gap-3">
                <h1 class="text-2xl font-semibold tracking-tight">"Sessions"</h1>
                <button
                    type="button"
                    on:click=revoke_others
                    disabled=move || busy.get()
                    class="rounded-md border border-red-300 px-3 py-2 text-sm font-medium text-red-700 hover:bg-red-50 disabled:opacity-60 dark:border-red-800 dark:text-red-300 dark:hover:bg-red-950"
                >
                    "Sign out all other sessions"
                </button>
            </div>
            <p class="text-sm text-slate-600 dark:text-slate-400">
                "Every device or browser where you are signed in. Sign out any you do not recognise, then change your password."
            </p>
            <FormError error />
            <Notice message=notice />
            <Transition fallback=|| view! { <p class="text-sm text-slate-600 dark:text-slate-400">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match sessions.await {
                        Ok(list) => view! {
                            <ul class="divide-y divide-slate-200 rounded-lg border border-slate-200 dark:divide-slate-800 dark:border-slate-800" aria-label="Active sessions">
                                {list.into_iter().map(|s| view! { <SessionRow session=s on_revoke=revoke_one /> }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <p role="alert" class="text-sm text-red-600 dark:text-red-400">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

#[component]
fn SessionRow(
    session: SessionView,
    on_revoke: impl Fn(SessionView) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let current = session.current;
    let row = session.clone();
    view! {
        <li class="flex flex-wrap items-center justify-between gap-3 p-4" data-current=current.to_string()>
            <div class="min-w-0 space-y-1">
                <p class="font-medium">
                    {session.device.clone()}
                    {current.then(|| view! {
                        <span class="ml-2 rounded-full bg-emerald-100 px-2 py-0.5 text-xs font-medium text-emerald-800 dark:bg-emerald-900 dark:text-emerald-200">
                            "This device"
                        </span>
                    })}
                </p>
                <p class="truncate text-xs text-slate-500 dark:text-slate-400" title=session.user_agent.clone()>
                    {format!("IP {} · signed in ", session.ip)}<LocalTime at=session.created_at />" · last active "<LocalTime at=session.last_used_at />
                </p>
            </div>
            <button
                type="button"
                on:click=move |_| on_revoke(row.clone())
                class="rounded-md border border-slate-300 px-3 py-1.5 text-sm hover:bg-slate-100 dark:border-slate-700 dark:hover:bg-slate-800"
            >
                {if current { "Sign out" } else { "Revoke" }}
            </button>
        </li>
    }
}
