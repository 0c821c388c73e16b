//! What a server function (or a server-rendered page) knows about the request it serves: the shared
//! state, who is calling from where, and the session cookies. Also where its response cookies go.

use crate::auth::cookies::SessionCookies;
use crate::auth::service::{self, Authenticated, ClientInfo};
use crate::error::AppError;
use crate::state::AppState;
use axum::extract::ConnectInfo;
use http::{header, request::Parts, HeaderValue};
use leptos::prelude::use_context;
use std::net::SocketAddr;

pub struct RequestContext {
    pub state: AppState,
    pub client: ClientInfo,
    pub cookies: SessionCookies,
}

impl RequestContext {
    pub fn get() -> Result<Self, AppError> {
        let state = use_context::<AppState>().ok_or_else(|| {
            tracing::error!("AppState is missing from the Leptos context");
            AppError::Internal
        })?;
        let parts = use_context::<Parts>().ok_or_else(|| {
            tracing::error!("request Parts are missing from the Leptos context");
            AppError::Internal
        })?;
        Ok(Self {
            client: client_info(&parts),
            cookies: SessionCookies::from_headers(&parts.headers),
            state,
        })
    }

    /// The signed-in caller, checked against the store.
    pub async fn user(&self) -> Result<Authenticated, AppError> {
        service::authenticate(&self.state, &self.cookies).await
    }

    /// Adds `Set-Cookie` headers to this response.
    pub fn set_cookies(&self, cookies: Vec<HeaderValue>) {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            for cookie in cookies {
                response.append_header(header::SET_COOKIE, cookie);
            }
        }
    }
}

/// The client's address as resolved by the server's proxy-aware layer (`TRUSTED_PROXIES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

/// The client's address and user agent. Behind a reverse proxy listed in `TRUSTED_PROXIES`, the address
/// comes from `X-Forwarded-For`; otherwise it is the TCP peer (see the README's deployment section).
pub fn client_info(parts: &Parts) -> ClientInfo {
    let ip = match parts.extensions.get::<ClientIp>() {
        Some(ClientIp(ip)) => ip.to_string(),
        None => parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string()),
    };
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    ClientInfo { ip, user_agent }
}
