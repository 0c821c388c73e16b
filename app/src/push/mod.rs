//! Web push notifications (RFC 8030, payloads encrypted per RFC 8291, the server identified per RFC
//! 8292): a person turns them on per device from the profile page; the browser's subscription is
//! stored with the session that made it; a new message wakes the members it concerns (per their
//! room's notification level) who have no visible connection, and clicking the notification opens
//! the room at the message. The service worker (`pwa::worker`) shows them.

pub mod api;
#[cfg(feature = "hydrate")]
pub mod client;
#[cfg(feature = "ssr")]
pub mod endpoint;
#[cfg(feature = "ssr")]
mod sender;
#[cfg(feature = "ssr")]
pub mod subscriptions;
#[cfg(feature = "ssr")]
mod vapid;

#[cfg(feature = "ssr")]
pub use sender::{payload, Push, PushJob, PushPayload};
#[cfg(feature = "ssr")]
pub use vapid::VapidKeys;
