//! Shared server state, handed to SSR and server functions as Leptos context and to axum handlers as state.

use crate::auth::Auth;
use crate::chat::{hub::Hub, SendLimit};
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
    /// Per-user limit on new messages.
    pub send_limit: Arc<SendLimit>,
    /// The origin browsers use to reach us, e.g. `https://chat.example.com`.
    pub public_origin: Arc<str>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
