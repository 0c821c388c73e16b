//! Turning push on and off for one device: the subscription `PushManager.subscribe` gave, checked
//! (an https push service on a public address, a P-256 key, a 16-byte secret) and kept with the
//! caller's session.

use super::endpoint;
use crate::auth::sessions::Authenticated;
use crate::chat::hub::Cached;
use crate::error::AppError;
use crate::model::Timestamp;
use crate::state::AppState;
use crate::store::PushSubscriptionRecord;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Devices one person may have push notifications on.
pub const MAX_PER_USER: usize = 10;

fn key_bytes(field: &'static str, encoded: &str, len: usize) -> Result<Vec<u8>, AppError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded.trim().trim_end_matches('='))
        .map_err(|_| AppError::invalid(field, "That is not a base64url key."))?;
    if bytes.len() != len {
        return Err(AppError::invalid(
            field,
            format!("That key should be {len} bytes."),
        ));
    }
    Ok(bytes)
}

fn spend(state: &AppState, me: &Authenticated) -> Result<(), AppError> {
    state
        .push
        .changes
        .check(&me.user.id)
        .map_err(|retry_after_secs| AppError::RateLimited { retry_after_secs })
}

pub async fn subscribe(
    state: &AppState,
    me: &Authenticated,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
) -> Result<(), AppError> {
    spend(state, me)?;
    endpoint::checked(endpoint, state.push.reach())?;
    let p256dh = key_bytes("p256dh", p256dh, 65)?;
    if p256::PublicKey::from_sec1_bytes(&p256dh).is_err() {
        return Err(AppError::invalid(
            "p256dh",
            "That is not a P-256 public key.",
        ));
    }
    let auth = key_bytes("auth", auth, 16)?;
    let record = PushSubscriptionRecord {
        endpoint: endpoint.to_owned(),
        user_id: me.user.id,
        session_id: me.session.id,
        p256dh,
        auth,
        created_at: Timestamp::now(),
    };
    state
        .store
        .save_push_subscription(&record, MAX_PER_USER)
        .await?;
    // The planners on every instance must now consider this person (a removal needs no notice: a
    // planner that still counts someone finds no subscription and skips them).
    state.hub.changed(Cached::PushSubscribers);
    Ok(())
}

/// Turns push off for the device with this endpoint, if it is the caller's.
pub async fn unsubscribe(
    state: &AppState,
    me: &Authenticated,
    endpoint: &str,
) -> Result<(), AppError> {
    spend(state, me)?;
    let mine = state
        .store
        .push_subscriptions_of(me.user.id)
        .await?
        .iter()
        .any(|s| s.endpoint == endpoint);
    if mine {
        state.store.delete_push_subscription(endpoint).await?;
        state.hub.changed(Cached::PushSubscribers);
    }
    Ok(())
}
