//! What a server function (or a server-rendered page) knows about the request it serves: the shared
//! state, who is calling from where, and the session cookies. Also where its response cookies go, and
//! [`serve`] / [`serve_user`], the shape of every server function: take the context, call the domain,
//! answer with the error's HTTP status.

use crate::auth::cookies::SessionCookies;
use crate::auth::sessions::{self, Authenticated, ClientInfo};
use crate::error::{respond, AppError};
use crate::state::AppState;
use axum::extract::ConnectInfo;
use http::{header, request::Parts, HeaderValue};
use leptos::prelude::use_context;
use std::net::SocketAddr;

pub struct RequestContext {
    pub state: AppState,
    pub client: ClientInfo,
    pub cookies: SessionCookies,
    /// A browser posted a `<form>` itself (no WebAssembly yet, or none at all): it wants a page back.
    pub plain_form: bool,
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
        let plain_form = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
        Ok(Self {
            plain_form,
            client: client_info(&parts),
            cookies: SessionCookies::from_headers(&parts.headers, state.auth.cookie_names()),
            state,
        })
    }

    /// The signed-in caller, checked against the store. A caller with a temporary password gets
    /// `PasswordChangeRequired`: see [`RequestContext::user_with_temporary_password`].
    pub async fn user(&self) -> Result<Authenticated, AppError> {
        let me = self.user_with_temporary_password().await?;
        if me.user.must_change_password {
            return Err(AppError::PasswordChangeRequired);
        }
        Ok(me)
    }

    /// The signed-in caller, even one whose password an administrator reset: only for what such a
    /// caller may still do (read who they are and their profile, choose a new password).
    pub async fn user_with_temporary_password(&self) -> Result<Authenticated, AppError> {
        sessions::authenticate(&self.state, &self.cookies).await
    }

    /// After a plain form post succeeded, the page to show next (instead of the form it came from,
    /// where errors go back to).
    pub fn then_show(&self, path: &str) {
        if self.plain_form {
            leptos_axum::redirect(path);
        }
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

/// Runs the body of a server function with the request's context, and sets the HTTP status of the
/// answer from its error, so scripts see 401/403/429 rather than 500.
pub async fn serve<T, F>(body: F) -> Result<T, AppError>
where
    F: AsyncFnOnce(&RequestContext) -> Result<T, AppError>,
{
    let ctx = RequestContext::get().map_err(respond)?;
    match body(&ctx).await {
        Ok(answer) => Ok(answer),
        // A plain form post is sent back to its form, the error in the address (a `302`; an error
        // status would leave the browser on a JSON body).
        Err(error) if ctx.plain_form => Err(error),
        Err(error) => Err(respond(error)),
    }
}

/// [`serve`] for a signed-in caller (checked against the store first).
pub async fn serve_user<T, F>(body: F) -> Result<T, AppError>
where
    F: AsyncFnOnce(&RequestContext, Authenticated) -> Result<T, AppError>,
{
    serve(async |ctx| {
        let me = ctx.user().await?;
        body(ctx, me).await
    })
    .await
}

/// [`serve_user`] for the few calls a caller with a temporary password may make.
pub async fn serve_user_with_temporary_password<T, F>(body: F) -> Result<T, AppError>
where
    F: AsyncFnOnce(&RequestContext, Authenticated) -> Result<T, AppError>,
{
    serve(async |ctx| {
        let me = ctx.user_with_temporary_password().await?;
        body(ctx, me).await
    })
    .await
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
