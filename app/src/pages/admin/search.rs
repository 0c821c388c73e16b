//! `/admin/search`: moderators search every room (archived ones and direct messages too); every
//! search is in the audit log.

use super::{AdminFrame, INPUT};
use crate::pages::search::{Scope, SearchHelp, SearchResults};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn AdminSearchPage() -> impl IntoView {
    let query = use_query_map();
    let q = Memo::new(move |_| query.with(|m| m.get("q").unwrap_or_default()));
    let room = Memo::new(|_| None);
    view! {
        <AdminFrame title="Search all messages">
            <form method="get" action="/admin/search" role="search" class="flex flex-wrap items-center gap-2">
                <input type="search" name="q" aria-label="Search all messages" class=INPUT
                    value=move || q.get_untracked() />
                <button type="submit" class=super::BUTTON>"Search"</button>
            </form>
            <p class="text-xs text-slate-600 dark:text-slate-400">"Every room, including private rooms and direct messages. Each search is recorded in the audit log."</p>
            <SearchHelp />
            <SearchResults q room scope=Scope::Everywhere />
        </AdminFrame>
    }
}
