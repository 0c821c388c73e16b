//! `/admin/audit`: every admin action, newest first, filtered by who and what. Read-only: the app has
//! no way to edit or delete an entry.

use super::{AdminFrame, AdminTable, SearchBox, INPUT, ROW};
use crate::admin::api::admin_audit;
use crate::admin::{AuditAction, AuditRow};
use crate::auth::authed;
use crate::components::time::LocalTime;
use leptos::prelude::*;

#[component]
pub fn AdminAuditPage() -> impl IntoView {
    view! {
        <AdminFrame title="Audit log">
            <AuditTable />
        </AdminFrame>
    }
}

#[component]
fn AuditTable() -> impl IntoView {
    let actor = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    let offset = RwSignal::new(0u64);
    let entries = Resource::new(
        move || (actor.get(), action.get(), offset.get()),
        |(actor, action, offset)| {
            authed(move || admin_audit(actor.clone(), action.clone(), offset))
        },
    );
    view! {
        <div class="flex flex-wrap gap-2">
            <SearchBox label="Actor username" search=actor offset />
            <label class="block text-sm">
                <span class="sr-only">"Action"</span>
                <select
                    aria-label="Action"
                    class=INPUT
                    on:change=move |ev| {
                        action.set(event_target_value(&ev));
                        offset.set(0);
                    }
                >
                    <option value="">"All actions"</option>
                    {AuditAction::ALL.iter().map(|a| view! { <option value=a.as_str()>{a.label()}</option> }).collect_view()}
                </select>
            </label>
        </div>
        <AdminTable
            label="Audit log"
            headers=&["Time", "Actor", "Action", "Target", "IP", "Details"]
            page=entries
            offset
            row=|e: AuditRow| { let action = e.action.clone(); view! {
                <tr class=ROW data-action=action>
                    <td class="py-2 pr-3 whitespace-nowrap"><LocalTime at=e.at /></td>
                    <td class="py-2 pr-3">{e.actor}</td>
                    <td class="py-2 pr-3 font-mono text-xs">{e.action}</td>
                    <td class="py-2 pr-3 break-all">{e.target}</td>
                    <td class="py-2 pr-3">{e.ip}</td>
                    <td class="py-2">{e.details}</td>
                </tr>
            }}
        />
    }
}
