//! The push endpoints, as server functions under `/api/push` (listed in the README). Each only
//! unpacks the request and calls `push::subscriptions`.

use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

#[cfg(feature = "ssr")]
use crate::{push::subscriptions, request::serve_user};

/// The server's VAPID public key (base64url), which browsers subscribe with.
#[server(prefix = "/api", endpoint = "push/key", input = GetUrl)]
pub async fn push_key() -> Result<String, AppError> {
    serve_user(async |ctx, _me| Ok(ctx.state.push.public_key().to_owned())).await
}

/// Turns push notifications on for this device: the parts of `PushSubscription.toJSON()`.
#[server(prefix = "/api", endpoint = "push/subscribe")]
pub async fn push_subscribe(
    endpoint: String,
    p256dh: String,
    auth: String,
) -> Result<(), AppError> {
    serve_user(async |ctx, me| {
        subscriptions::subscribe(&ctx.state, &me, &endpoint, &p256dh, &auth).await
    })
    .await
}

/// Turns push notifications off for the device with this endpoint.
#[server(prefix = "/api", endpoint = "push/unsubscribe")]
pub async fn push_unsubscribe(endpoint: String) -> Result<(), AppError> {
    serve_user(async |ctx, me| subscriptions::unsubscribe(&ctx.state, &me, &endpoint).await).await
}
