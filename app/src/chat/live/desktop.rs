//! Desktop notifications (the Notifications API) while the app is open in a background tab: asked for
//! from a button, never on page load, and shown only for what the room's notification level allows.

use crate::protocol::MessageView;

#[cfg(feature = "hydrate")]
type Navigate = std::rc::Rc<dyn Fn(&str)>;

#[cfg(feature = "hydrate")]
thread_local! {
    /// The router's navigation, once the layout has mounted: a click opens the room in the app
    /// rather than loading the page again.
    static NAVIGATE: std::cell::RefCell<Option<Navigate>> =
        const { std::cell::RefCell::new(None) };
}

/// Gives notification clicks the router's navigation (called once, inside the router).
pub fn open_with(navigate: impl Fn(&str) + 'static) {
    #[cfg(feature = "hydrate")]
    NAVIGATE.with(|slot| *slot.borrow_mut() = Some(std::rc::Rc::new(navigate)));
    #[cfg(not(feature = "hydrate"))]
    let _ = navigate;
}

/// Whether the browser can show notifications and the reader has not decided yet (the button asks).
pub fn can_ask() -> bool {
    #[cfg(feature = "hydrate")]
    {
        use web_sys::{Notification, NotificationPermission};
        has_api() && Notification::permission() == NotificationPermission::Default
    }
    #[cfg(not(feature = "hydrate"))]
    false
}

/// Whether notifications are allowed.
pub fn allowed() -> bool {
    #[cfg(feature = "hydrate")]
    {
        use web_sys::{Notification, NotificationPermission};
        has_api() && Notification::permission() == NotificationPermission::Granted
    }
    #[cfg(not(feature = "hydrate"))]
    false
}

#[cfg(feature = "hydrate")]
fn has_api() -> bool {
    js_sys::Reflect::has(&leptos::prelude::window(), &"Notification".into()).unwrap_or(false)
}

/// Asks the browser for permission (it shows its own prompt); `done` runs with the answer.
pub fn ask(done: impl FnOnce(bool) + 'static) {
    #[cfg(feature = "hydrate")]
    {
        let Ok(promise) = web_sys::Notification::request_permission() else {
            return done(false);
        };
        leptos::task::spawn_local(async move {
            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
            done(allowed());
        });
    }
    #[cfg(not(feature = "hydrate"))]
    done(false)
}

/// The page that shows `message`: its room, or its thread for a reply only there.
#[cfg(feature = "hydrate")]
fn where_it_is(message: &MessageView) -> String {
    match message.thread {
        Some(t) if !t.in_room => format!("/rooms/{}?thread={}", message.room, t.root),
        _ => format!("/rooms/{}", message.room),
    }
}

/// Clicking the notification brings the tab forward on `href`.
#[cfg(feature = "hydrate")]
fn open_on_click(shown: &web_sys::Notification, href: String) {
    use wasm_bindgen::JsCast;
    let onclick = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
        let window = leptos::prelude::window();
        let _ = window.focus();
        let location = window.location();
        let here = location.pathname().unwrap_or_default() + &location.search().unwrap_or_default();
        if here == href {
            return;
        }
        match NAVIGATE.with(|slot| slot.borrow().clone()) {
            Some(navigate) => navigate(&href),
            None => {
                let _ = location.assign(&href);
            }
        }
    });
    shown.set_onclick(Some(onclick.as_ref().unchecked_ref()));
    // The browser holds the notification, and with it the handler, for as long as it shows.
    onclick.forget();
}

/// Shows `message` as a desktop notification when the tab is in the background and they are allowed.
pub fn notify_if_hidden(message: &MessageView, room_name: Option<&str>) {
    #[cfg(feature = "hydrate")]
    {
        if !allowed() || !leptos::prelude::document().hidden() {
            return;
        }
        let title = match room_name {
            Some(room) => format!("{} in {room}", message.author_name),
            None => message.author_name.clone(),
        };
        let options = web_sys::NotificationOptions::new();
        let body: String = if message.deleted {
            String::new()
        } else {
            message.body.chars().take(200).collect()
        };
        options.set_body(&body);
        // One notification per room: a newer one replaces the last.
        options.set_tag(&message.room.to_string());
        if let Ok(shown) = web_sys::Notification::new_with_options(&title, &options) {
            open_on_click(&shown, where_it_is(message));
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (message, room_name);
}
