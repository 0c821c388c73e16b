//! `/admin/rooms`: find rooms; see members; archive or restore; delete after typing the room's name.

use super::{error_line, AdminFrame, AdminTable, SearchBox, BUTTON, DANGER_BUTTON, ROW};
use crate::admin::api::{admin_delete_room, admin_room_members, admin_rooms, admin_set_archived};
use crate::admin::AdminRoomRow;
use crate::auth::authed;
use crate::components::dialog::ConfirmDialog;
use crate::components::form::Notice;
use crate::components::time::LocalTime;
use crate::error::AppError;
use crate::model::RoomId;
use leptos::prelude::*;

#[component]
pub fn AdminRoomsPage() -> impl IntoView {
    view! {
        <AdminFrame title="Rooms">
            <RoomsTable />
        </AdminFrame>
    }
}

#[component]
fn RoomsTable() -> impl IntoView {
    let search = RwSignal::new(String::new());
    let offset = RwSignal::new(0u64);
    let version = RwSignal::new(0u32);
    let rooms = Resource::new(
        move || (search.get(), offset.get(), version.get()),
        |(search, offset, _)| authed(move || admin_rooms(search.clone(), offset)),
    );
    let error = RwSignal::new(None::<AppError>);
    let notice = RwSignal::new(None::<String>);
    let shown_members = RwSignal::new(None::<RoomId>);

    let archive = move |room: AdminRoomRow| {
        error.set(None);
        notice.set(None);
        let archived = !room.archived;
        leptos::task::spawn_local(async move {
            match authed(move || admin_set_archived(room.id, archived)).await {
                Ok(r) => notice.set(Some(format!(
                    "{} is {}.",
                    r.name,
                    if r.archived {
                        "archived (read-only, hidden from browsing)"
                    } else {
                        "active again"
                    }
                ))),
                Err(e) => error.set(Some(e)),
            }
            version.update(|v| *v += 1);
        });
    };
    // Deleting asks in the page, and waits for the room's name to be typed.
    let deleting = RwSignal::new(None::<AdminRoomRow>);
    let delete = move |room: AdminRoomRow| {
        error.set(None);
        notice.set(None);
        deleting.set(Some(room));
    };
    let on_close = Callback::new(move |confirmed: bool| {
        let Some(room) = deleting.get_untracked() else {
            return;
        };
        deleting.set(None);
        if !confirmed {
            return;
        }
        leptos::task::spawn_local(async move {
            let typed = room.name.clone();
            match authed(move || admin_delete_room(room.id, typed.clone())).await {
                Ok(()) => notice.set(Some(format!("Deleted {}.", room.name))),
                Err(e) => error.set(Some(e)),
            }
            version.update(|v| *v += 1);
        });
    });
    let open = Signal::derive(move || deleting.with(Option::is_some));
    let title = Signal::derive(move || {
        deleting.with(|r| {
            r.as_ref()
                .map(|r| format!("Delete “{}” for everyone?", r.name))
                .unwrap_or_default()
        })
    });
    let detail = Signal::derive(move || {
        deleting.with(|r| {
            r.as_ref()
                .map(|r| {
                    format!(
                        "Its {} messages and its members go with it. This cannot be undone.",
                        r.messages
                    )
                })
                .unwrap_or_default()
        })
    });
    let name = Signal::derive(move || {
        deleting.with(|r| r.as_ref().map(|r| r.name.clone()).unwrap_or_default())
    });

    view! {
        <ConfirmDialog open title detail confirm_label="Delete room" on_close type_to_confirm=name />
        <SearchBox label="Search rooms" search offset />
        {error_line(error)}
        <Notice message=notice />
        <AdminTable
            label="Rooms"
            headers=&["Room", "Kind", "Members", "Messages", "Last activity", "Actions"]
            page=rooms
            offset
            row=move |room: AdminRoomRow| {
                let id = room.id;
                let (for_archive, for_delete) = (room.clone(), room.clone());
                view! {
                    <tr class=ROW data-room=room.name.clone()>
                        <td class="py-2 pr-3 font-medium">
                            {room.name.clone()}
                            {room.archived.then(|| view! { <span class="ml-2 rounded bg-slate-200 px-1.5 text-xs dark:bg-slate-800">"archived"</span> })}
                        </td>
                        <td class="py-2 pr-3">{room.kind.as_str()}</td>
                        <td class="py-2 pr-3">{room.members}</td>
                        <td class="py-2 pr-3">{room.messages}</td>
                        <td class="py-2 pr-3 whitespace-nowrap"><LocalTime at=room.last_activity /></td>
                        <td class="py-2">
                            <div class="flex flex-wrap gap-1">
                                <button type="button" class=BUTTON on:click=move |_| shown_members.update(|s| *s = if *s == Some(id) { None } else { Some(id) })>"Members"</button>
                                <button type="button" class=BUTTON on:click=move |_| archive(for_archive.clone())>
                                    {if room.archived { "Unarchive" } else { "Archive" }}
                                </button>
                                <button type="button" class=DANGER_BUTTON on:click=move |_| delete(for_delete.clone())>"Delete"</button>
                            </div>
                            {move || (shown_members.get() == Some(id)).then(|| view! { <RoomMembers room=id /> })}
                        </td>
                    </tr>
                }
            }
        />
    }
}

#[component]
fn RoomMembers(room: RoomId) -> impl IntoView {
    let members = Resource::new(
        move || room,
        |room| authed(move || admin_room_members(room)),
    );
    view! {
        <Suspense fallback=|| view! { <p class="text-xs text-slate-600 dark:text-slate-400">"Loading members…"</p> }>
            {move || Suspend::new(async move {
                match members.await {
                    Ok(list) => view! {
                        <ul class="mt-2 space-y-0.5 text-xs" aria-label="Room members">
                            {list.into_iter().map(|m| view! {
                                <li>{m.display_name}" (@"{m.username}") · "{m.role.as_str()}</li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(e) => view! { <p role="alert" class="text-xs text-red-600 dark:text-red-400">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}
