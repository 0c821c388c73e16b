//! The room's member list with presence, and inviting people to it.

use crate::auth::authed;
use crate::chat::api::invite_to_room;
use crate::chat::live::Live;
use crate::chat::MemberView;
use crate::components::avatar::Avatar;
use crate::components::form::keep_typed;
use crate::error::AppError;
use crate::model::{RoomId, RoomKind};
use crate::protocol::{Presence, MAX_WATCH};

/// People the member list shows (and watches the presence of).
const SHOWN: usize = if MAX_WATCH < 100 { MAX_WATCH } else { 100 };
use leptos::prelude::*;

#[component]
pub(super) fn MemberList(
    room: RoomId,
    members: Memo<Vec<MemberView>>,
    kind: RoomKind,
) -> impl IntoView {
    let live = Live::get();
    // The list shows the first `SHOWN` people, each with live presence (the server is told to watch
    // them); the rest of a big room are counted.
    let shown =
        Memo::new(move |_| members.with(|m| m.iter().take(SHOWN).cloned().collect::<Vec<_>>()));
    let hidden = move || members.with(Vec::len).saturating_sub(SHOWN);
    Effect::new(move |_| {
        let users = shown.with(|m| m.iter().map(|m| m.user).collect());
        live.watch(room, users);
    });
    on_cleanup(move || live.watch(room, Vec::new()));
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
                <For each=move || shown.get() key=|m| m.user let:m>
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
                                <Avatar user=m.user name=m.display_name.clone() picture=m.avatar small=true />
                                <span class="truncate">{m.display_name.clone()}</span>
                                <span class="truncate text-xs text-slate-500 dark:text-slate-400">"@"{m.username.clone()}</span>
                            </li>
                        }
                    }
                </For>
            </ul>
            {move || (hidden() > 0).then(|| view! {
                <p class="mt-2 text-xs text-slate-600 dark:text-slate-400">{format!("and {} more", hidden())}</p>
            })}
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
