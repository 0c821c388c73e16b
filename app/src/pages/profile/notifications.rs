//! The profile page's "Notifications on this device" card: web push for this browser, turned on
//! only when the person presses the button (the browser asks for permission then, never on load).

use crate::components::form::{Card, Notice};
use leptos::prelude::*;

/// What the card knows about this device; `Checking` until the page has hydrated and asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// The server renders `Checking`; the browser finds out the rest.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Device {
    Checking,
    Unsupported,
    Blocked,
    Off,
    On,
}

#[cfg(feature = "hydrate")]
fn from_client(state: crate::push::client::DeviceState) -> Device {
    use crate::push::client::DeviceState;
    match state {
        DeviceState::Unsupported => Device::Unsupported,
        DeviceState::Blocked => Device::Blocked,
        DeviceState::Off => Device::Off,
        DeviceState::On => Device::On,
    }
}

#[component]
pub fn NotificationsCard() -> impl IntoView {
    let device = RwSignal::new(Device::Checking);
    let busy = RwSignal::new(false);
    let notice = RwSignal::new(None::<String>);
    let problem = RwSignal::new(None::<String>);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            device.set(from_client(crate::push::client::state().await));
        });
    });
    let toggle = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        notice.set(None);
        problem.set(None);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            use crate::push::client;
            let turning_on = device.get_untracked() != Device::On;
            let done = if turning_on {
                client::enable().await
            } else {
                client::disable().await
            };
            match done {
                Ok(()) => notice.set(Some(
                    if turning_on {
                        "Notifications are on for this device. You get them for new messages while ML-CHAT is not open here."
                    } else {
                        "Notifications are off for this device."
                    }
                    .to_owned(),
                )),
                Err(error) => problem.set(Some(error)),
            }
            device.set(from_client(client::state().await));
            busy.set(false);
        });
    };
    let label = move || match (busy.get(), device.get()) {
        (true, _) => "Working…",
        (false, Device::On) => "Turn off notifications on this device",
        _ => "Enable notifications on this device",
    };
    let explanation = move || {
        match device.get() {
        Device::Checking => "Checking this browser…",
        Device::Unsupported => "This browser cannot receive push notifications from ML-CHAT.",
        Device::Blocked => "Notifications are blocked for this site. Allow them in the browser's site settings to turn them on.",
        Device::Off => "Get a notification for new messages (as each room's notification level allows) while ML-CHAT is not open on this device.",
        Device::On => "This device gets notifications for new messages while ML-CHAT is not open on it.",
    }
    };
    view! {
        <Card title="Notifications on this device" region=true>
            <div class="space-y-4">
                <Notice message=notice />
                {move || problem.get().map(|p| view! {
                    <p role="alert" class="text-sm text-red-700 dark:text-red-400">{p}</p>
                })}
                <p class="text-sm text-slate-600 dark:text-slate-300" data-testid="push-state">{explanation}</p>
                <button
                    type="button"
                    on:click=toggle
                    disabled=move || busy.get() || matches!(device.get(), Device::Checking | Device::Unsupported | Device::Blocked)
                    class="inline-flex justify-center rounded-md bg-indigo-600 px-4 py-2 text-sm font-semibold text-white shadow-sm hover:bg-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500/50 disabled:opacity-60"
                >
                    {label}
                </button>
            </div>
        </Card>
    }
}
