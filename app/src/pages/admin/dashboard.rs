//! `/admin`: instance totals, refreshed every few seconds.

use super::AdminFrame;
use crate::admin::api::admin_stats;
use crate::admin::DashboardStats;
use crate::auth::authed;
use leptos::prelude::*;

/// How often the numbers refresh while the page is open.
const REFRESH_MS: u64 = 5_000;

#[component]
pub fn AdminDashboardPage() -> impl IntoView {
    view! {
        <AdminFrame title="Admin dashboard">
            <Dashboard />
        </AdminFrame>
    }
}

#[component]
fn Dashboard() -> impl IntoView {
    let tick = RwSignal::new(0u64);
    let stats = Resource::new(move || tick.get(), |_| authed(admin_stats));
    #[cfg(feature = "hydrate")]
    {
        if let Ok(handle) = set_interval_with_handle(
            move || tick.update(|t| *t += 1),
            std::time::Duration::from_millis(REFRESH_MS),
        ) {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = REFRESH_MS;
    view! {
        <Transition fallback=|| view! { <p class="text-sm text-slate-600 dark:text-slate-400">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match stats.await {
                    Ok(s) => view! { <StatCards stats=s /> }.into_any(),
                    Err(e) => view! { <p role="alert" class="text-sm text-red-600 dark:text-red-400">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn StatCards(stats: DashboardStats) -> impl IntoView {
    let cards = [
        ("users", "Users", stats.users_total.to_string()),
        (
            "disabled",
            "Disabled users",
            stats.users_disabled.to_string(),
        ),
        ("admins", "Admins", stats.admins.to_string()),
        ("rooms", "Rooms", stats.rooms.to_string()),
        ("messages", "Messages", stats.messages_total.to_string()),
        (
            "messages-24h",
            "Messages, last 24 h",
            stats.messages_24h.to_string(),
        ),
        (
            "sockets",
            "Open connections",
            stats.sockets_open.to_string(),
        ),
        ("online", "Users online", stats.users_online.to_string()),
        ("driver", "Storage", stats.driver.clone()),
    ];
    view! {
        <dl class="grid grid-cols-2 gap-3 sm:grid-cols-3">
            {cards.into_iter().map(|(id, label, value)| view! {
                <div class="rounded-lg border border-slate-200 p-4 dark:border-slate-800">
                    <dt class="text-xs uppercase text-slate-600 dark:text-slate-400">{label}</dt>
                    <dd class="mt-1 text-2xl font-semibold" data-testid=format!("stat-{id}")>{value}</dd>
                </div>
            }).collect_view()}
        </dl>
        <p class="text-xs text-slate-600 dark:text-slate-400">"Connections and online users count this server instance. Refreshes every 5 seconds."</p>
    }
}
