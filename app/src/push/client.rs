//! The browser's side of web push: ask for permission (only when the person presses the button),
//! subscribe through the service worker's `PushManager` with the server's VAPID key, and hand the
//! subscription to the server; or take it back. `PushManager` is reached through `Reflect`, which
//! keeps web-sys' feature list short.

use super::api::{push_key, push_subscribe, push_unsubscribe};
use crate::auth::authed;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// Where this device stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    /// No service workers, push or notifications here (or the app is not installed as a worker yet).
    Unsupported,
    /// The person (or the browser's settings) blocked notifications for this site.
    Blocked,
    Off,
    On,
}

fn get(target: &JsValue, key: &str) -> Result<JsValue, String> {
    Reflect::get(target, &key.into()).map_err(|e| format!("{key}: {e:?}"))
}

async fn call(target: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, String> {
    let function: js_sys::Function = get(target, method)?
        .dyn_into()
        .map_err(|_| format!("{method} is not a function"))?;
    let array: js_sys::Array = args.iter().collect();
    let answer = function
        .apply(target, &array)
        .map_err(|e| format!("{method}: {e:?}"))?;
    match answer.dyn_into::<Promise>() {
        Ok(promise) => JsFuture::from(promise).await.map_err(describe),
        Err(value) => Ok(value),
    }
}

/// A rejected promise's reason, in words.
fn describe(error: JsValue) -> String {
    get(&error, "message")
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

/// How long to wait for the app's service worker to be active (it may be installing on a first
/// visit); a browser that never runs it (blocked, private mode) is told so instead of waiting on.
const WORKER_WAIT_MS: u32 = 10_000;

/// The service worker's push manager, once the worker is active.
async fn push_manager() -> Result<JsValue, String> {
    use futures::future::{select, Either};
    let window = leptos::prelude::window();
    let navigator: JsValue = window.navigator().into();
    let workers = get(&navigator, "serviceWorker")?;
    if workers.is_undefined() || get(&window, "PushManager")?.is_undefined() {
        return Err("unsupported".to_owned());
    }
    let ready = JsFuture::from(
        get(&workers, "ready")?
            .dyn_into::<Promise>()
            .map_err(|_| "serviceWorker.ready is not a promise".to_owned())?,
    );
    let timeout = gloo_timers::future::TimeoutFuture::new(WORKER_WAIT_MS);
    let registration = match select(ready, timeout).await {
        Either::Left((ready, _)) => ready.map_err(describe)?,
        Either::Right(_) => return Err("the app's service worker is not running".to_owned()),
    };
    get(&registration, "pushManager")
}

fn permission() -> web_sys::NotificationPermission {
    web_sys::Notification::permission()
}

pub async fn state() -> DeviceState {
    if get(&leptos::prelude::window(), "Notification").is_ok_and(|n| n.is_undefined()) {
        return DeviceState::Unsupported;
    }
    if permission() == web_sys::NotificationPermission::Denied {
        return DeviceState::Blocked;
    }
    let Ok(manager) = push_manager().await else {
        return DeviceState::Unsupported;
    };
    match call(&manager, "getSubscription", &[]).await {
        Ok(subscription)
            if !subscription.is_null()
                && permission() == web_sys::NotificationPermission::Granted =>
        {
            DeviceState::On
        }
        _ => DeviceState::Off,
    }
}

/// Asks for permission, subscribes and tells the server. Errors are sentences for the page.
pub async fn enable() -> Result<(), String> {
    let asked = JsFuture::from(
        web_sys::Notification::request_permission()
            .map_err(|_| "This browser cannot show notifications.".to_owned())?,
    )
    .await
    .map_err(describe)?;
    if asked.as_string().as_deref() != Some("granted") {
        return Err("Notifications are blocked for this site: allow them in the browser's site settings, then try again.".to_owned());
    }
    let key = authed(push_key).await.map_err(|e| e.to_string())?;
    let key = URL_SAFE_NO_PAD
        .decode(key)
        .map_err(|_| "The server's push key is unreadable.".to_owned())?;
    let manager = push_manager()
        .await
        .map_err(|_| "This browser cannot receive push notifications.".to_owned())?;
    let options = Object::new();
    Reflect::set(&options, &"userVisibleOnly".into(), &true.into()).map_err(describe)?;
    Reflect::set(
        &options,
        &"applicationServerKey".into(),
        &Uint8Array::from(key.as_slice()),
    )
    .map_err(describe)?;
    let subscription = call(&manager, "subscribe", &[options.into()])
        .await
        .map_err(|e| {
            format!("The browser's push service did not answer ({e}). Try again later.")
        })?;
    let json = call(&subscription, "toJSON", &[]).await?;
    let keys = get(&json, "keys")?;
    let text =
        |value: Result<JsValue, String>| value.ok().and_then(|v| v.as_string()).unwrap_or_default();
    let (endpoint, p256dh, auth) = (
        text(get(&json, "endpoint")),
        text(get(&keys, "p256dh")),
        text(get(&keys, "auth")),
    );
    if let Err(error) =
        authed(move || push_subscribe(endpoint.clone(), p256dh.clone(), auth.clone())).await
    {
        // The server would not keep it: do not leave the browser subscribed for nothing.
        let _ = call(&subscription, "unsubscribe", &[]).await;
        return Err(error.to_string());
    }
    Ok(())
}

/// Takes this device's subscription back, on the server and in the browser.
pub async fn disable() -> Result<(), String> {
    let manager = push_manager().await?;
    let subscription = call(&manager, "getSubscription", &[]).await?;
    if subscription.is_null() {
        return Ok(());
    }
    let endpoint = get(&subscription, "endpoint")?
        .as_string()
        .unwrap_or_default();
    authed(move || push_unsubscribe(endpoint.clone()))
        .await
        .map_err(|e| e.to_string())?;
    call(&subscription, "unsubscribe", &[]).await.map(|_| ())
}
