//! The top bar's search box ("Search messages"): a plain GET form to `/search`, so it works before
//! the page hydrates; `/` or Ctrl+K (⌘K) focuses it from anywhere outside a text field.

use crate::auth::UserContext;
use crate::model::RoomId;
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

#[component]
pub fn SearchBox() -> impl IntoView {
    let user = UserContext::get().0;
    let field = NodeRef::<leptos::html::Input>::new();
    let query = use_query_map();
    let navigate = use_navigate();
    let submit = search_on_submit(field, None, navigate);
    let _shortcut = window_event_listener(leptos::ev::keydown, move |ev| {
        let command = (ev.ctrl_key() || ev.meta_key()) && ev.key().eq_ignore_ascii_case("k");
        let slash = ev.key() == "/" && !ev.ctrl_key() && !ev.meta_key() && !typing_somewhere();
        if !(command || slash) {
            return;
        }
        if let Some(input) = field.get_untracked() {
            ev.prevent_default();
            let _ = input.focus();
            input.select();
        }
    });
    view! {
        <Transition fallback=|| ()>
            {move || {
                let submit = submit.clone();
                Suspend::new(async move {
                matches!(user.await, Ok(Some(_))).then(|| view! {
                    <form method="get" action="/search" role="search" class="min-w-0 max-w-md flex-1" on:submit=submit>
                        <input
                            node_ref=field
                            type="search"
                            name="q"
                            aria-label="Search messages"
                            placeholder="Search messages (/)"
                            maxlength=crate::domain::search::MAX_QUERY_CHARS.to_string()
                            value=move || query.with_untracked(|q| q.get("q").unwrap_or_default())
                            class="w-full rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm dark:border-slate-600 dark:bg-slate-950"
                        />
                    </form>
                })
            })}}
        </Transition>
    }
}

/// The room header's "Search this room": the same search, in that room only.
#[component]
pub fn RoomSearchBox(room: RoomId) -> impl IntoView {
    let field = NodeRef::<leptos::html::Input>::new();
    let submit = search_on_submit(field, Some(room), use_navigate());
    view! {
        <form method="get" action="/search" role="search" class="w-40" on:submit=submit>
            <input type="hidden" name="room" value=room.to_string() />
            <input
                node_ref=field
                type="search"
                name="q"
                aria-label="Search this room"
                placeholder="Search this room"
                maxlength=crate::domain::search::MAX_QUERY_CHARS.to_string()
                class="w-full rounded-md border border-slate-300 bg-white px-2 py-1 text-xs dark:border-slate-600 dark:bg-slate-950"
            />
        </form>
    }
}

/// Once the app is live, searching is a navigation inside it (the socket stays up); before, the
/// form's own GET does the same.
fn search_on_submit(
    field: NodeRef<leptos::html::Input>,
    room: Option<RoomId>,
    navigate: impl Fn(&str, leptos_router::NavigateOptions) + Clone + 'static,
) -> impl Fn(leptos::ev::SubmitEvent) + Clone + 'static {
    move |ev: leptos::ev::SubmitEvent| {
        let Some(input) = field.get_untracked() else {
            return;
        };
        ev.prevent_default();
        let q = crate::domain::text::percent_encode(&input.value());
        let path = match room {
            Some(room) => format!("/search?q={q}&room={room}"),
            None => format!("/search?q={q}"),
        };
        navigate(&path, Default::default());
    }
}

#[cfg(feature = "hydrate")]
const RECENT_KEY: &str = "mlchat.recent-searches";
/// Recent searches kept per browser.
const RECENT_KEPT: usize = 8;

/// This browser's recent searches, newest first (nothing outside the browser or without storage).
pub fn recent_searches() -> Vec<String> {
    #[cfg(feature = "hydrate")]
    {
        window()
            .local_storage()
            .ok()
            .flatten()
            .and_then(|s| s.get_item(RECENT_KEY).ok().flatten())
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    Vec::new()
}

/// Puts `q` first among this browser's recent searches.
pub fn remember_search(q: &str) {
    let q = q.trim();
    if q.is_empty() {
        return;
    }
    let mut list = recent_searches();
    list.retain(|old| old != q);
    list.insert(0, q.to_owned());
    list.truncate(RECENT_KEPT);
    #[cfg(feature = "hydrate")]
    if let (Some(storage), Ok(json)) = (
        window().local_storage().ok().flatten(),
        serde_json::to_string(&list),
    ) {
        let _ = storage.set_item(RECENT_KEY, &json);
    }
}

/// Whether focus is in a field where `/` is typing, not a shortcut.
fn typing_somewhere() -> bool {
    #[cfg(feature = "hydrate")]
    {
        let Some(active) = document().active_element() else {
            return false;
        };
        let tag = active.tag_name().to_ascii_lowercase();
        tag == "input"
            || tag == "textarea"
            || tag == "select"
            || active.has_attribute("contenteditable")
    }
    #[cfg(not(feature = "hydrate"))]
    {
        false
    }
}
