//! Shared server state, handed to SSR and server functions as Leptos context and to axum handlers as state.

use crate::auth::Auth;
use crate::chat::{hub::Hub, socket_limits::SocketLimits, ChatLimits};
use crate::metrics::Metrics;
use crate::store::DynStore;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub store: DynStore,
    pub metrics: Arc<Metrics>,
    /// Token keys, password hashing and login throttles.
    pub auth: Arc<Auth>,
    /// Who follows which room, who is online; fans events out to connections.
    pub hub: Arc<Hub>,
    /// Sessions and accounts as authentication reads them (forgotten when the hub says they changed).
    pub accounts: Arc<crate::auth::cache::AccountCache>,
    /// Per-person budgets: messages, typing, presence, room changes.
    pub limits: Arc<ChatLimits>,
    /// Live connections per person and per client address.
    pub sockets: Arc<SocketLimits>,
    /// Upload limits (largest file, quota, rate).
    pub uploads: Arc<crate::files::Uploads>,
    /// Web push: the VAPID keys and the queue of pushes to send.
    pub push: Arc<crate::push::Push>,
    /// The origin browsers use to reach us, e.g. `https://chat.example.com`.
    pub public_origin: Arc<str>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// A whole `AppState` on a fresh embedded store, for unit tests of the rules and the connection.
#[cfg(test)]
pub mod testing {
    use super::*;
    use crate::auth::{Auth, AuthSettings};
    use crate::chat::hub::DEFAULT_QUEUE;

    /// The state and the directory its store lives in (dropped with the test).
    pub async fn state() -> (AppState, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::store::open(&crate::store::StoreSettings::Embedded {
            data_dir: dir.path().to_path_buf(),
        })
        .await
        .expect("an embedded store");
        let auth = Auth::new(AuthSettings {
            jwt_secret: b"unit-test-secret-0123456789abcdefghij".to_vec(),
            access_ttl_secs: 900,
            refresh_ttl_secs: 3600,
            secure_cookies: false,
            registrations_per_ip_per_hour: 1000,
        });
        let hub = Hub::new(DEFAULT_QUEUE);
        let state = AppState {
            leptos_options: LeptosOptions::builder().output_name("test").build(),
            store,
            metrics: Arc::new(Metrics::new()),
            auth: Arc::new(auth),
            accounts: crate::auth::cache::AccountCache::watching(
                &hub,
                crate::auth::cache::DEFAULT_MAX_AGE,
            ),
            hub,
            limits: Arc::new(ChatLimits::new(1_000_000, 1_000_000)),
            sockets: SocketLimits::new(100, 100),
            uploads: Arc::new(crate::files::Uploads::new(
                crate::files::DEFAULT_MAX_UPLOAD_BYTES,
                crate::files::DEFAULT_QUOTA_BYTES,
            )),
            push: crate::push::Push::new(
                crate::push::VapidKeys::from_private_key(
                    &crate::push::VapidKeys::generate_private_key(),
                    "mailto:test@localhost",
                )
                .expect("a generated VAPID key"),
                crate::push::endpoint::Reach::AlsoLoopback,
            ),
            public_origin: "http://localhost".into(),
        };
        (state, dir)
    }
}
