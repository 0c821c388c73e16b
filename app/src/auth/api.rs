//! The account and session endpoints, as server functions at stable paths under `/api` (listed in the
//! README). Inputs are form-encoded (`application/x-www-form-urlencoded`) and answers are JSON; errors
//! are a JSON `AppError` with a matching HTTP status. Each function only unpacks the request and calls
//! `auth::service`.

use super::{CurrentUser, SessionView};
use crate::error::AppError;
use crate::model::SessionId;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

#[cfg(feature = "ssr")]
use crate::{auth::service, error::respond, request::RequestContext};

/// Creates an account and signs it in on this device.
#[server(prefix = "/api", endpoint = "auth/register")]
pub async fn register(
    username: String,
    display_name: String,
    password: String,
) -> Result<CurrentUser, AppError> {
    async {
        let ctx = RequestContext::get()?;
        let issued =
            service::register(&ctx.state, &username, &display_name, &password, &ctx.client).await?;
        ctx.set_cookies(issued.cookies);
        Ok(issued.user)
    }
    .await
    .map_err(respond)
}

/// Signs in with a username (any letter case) and password.
#[server(prefix = "/api", endpoint = "auth/login")]
pub async fn login(username: String, password: String) -> Result<CurrentUser, AppError> {
    async {
        let ctx = RequestContext::get()?;
        let issued = service::login(&ctx.state, &username, &password, &ctx.client).await?;
        ctx.set_cookies(issued.cookies);
        Ok(issued.user)
    }
    .await
    .map_err(respond)
}

/// Revokes this device's session and removes its cookies.
#[server(prefix = "/api", endpoint = "auth/logout")]
pub async fn logout() -> Result<(), AppError> {
    async {
        let ctx = RequestContext::get()?;
        let result = service::logout(&ctx.state, &ctx.cookies).await;
        ctx.set_cookies(ctx.state.auth.clear_cookies());
        result
    }
    .await
    .map_err(respond)
}

/// Exchanges the refresh cookie for a new access token and a new refresh token.
#[server(prefix = "/api", endpoint = "auth/refresh")]
pub async fn refresh_session() -> Result<CurrentUser, AppError> {
    async {
        let ctx = RequestContext::get()?;
        match service::refresh(&ctx.state, ctx.cookies.refresh.as_deref()).await {
            Ok(issued) => {
                ctx.set_cookies(issued.cookies);
                Ok(issued.user)
            }
            Err(error) => {
                if matches!(error, AppError::Unauthenticated | AppError::AccountDisabled) {
                    ctx.set_cookies(ctx.state.auth.clear_cookies());
                }
                Err(error)
            }
        }
    }
    .await
    .map_err(respond)
}

/// The signed-in user, or `null` for a guest. `SessionExpired` means: refresh, then ask again.
#[server(prefix = "/api", endpoint = "auth/me", input = GetUrl)]
pub async fn get_current_user() -> Result<Option<CurrentUser>, AppError> {
    async {
        let ctx = RequestContext::get()?;
        match ctx.user().await {
            Ok(me) => Ok(Some(service::current_user_view(&ctx.state, &me.user))),
            Err(AppError::Unauthenticated) => Ok(None),
            Err(other) => Err(other),
        }
    }
    .await
    .map_err(respond)
}

/// The caller's active sessions, most recently used first.
#[server(prefix = "/api", endpoint = "auth/sessions", input = GetUrl)]
pub async fn list_sessions() -> Result<Vec<SessionView>, AppError> {
    async {
        let ctx = RequestContext::get()?;
        let me = ctx.user().await?;
        service::list_sessions(&ctx.state, &me).await
    }
    .await
    .map_err(respond)
}

/// Signs out one of the caller's sessions (this one included).
#[server(prefix = "/api", endpoint = "auth/sessions/revoke")]
pub async fn revoke_session(id: SessionId) -> Result<(), AppError> {
    async {
        let ctx = RequestContext::get()?;
        let me = ctx.user().await?;
        if service::revoke_session(&ctx.state, &me, id).await? {
            ctx.set_cookies(ctx.state.auth.clear_cookies());
        }
        Ok(())
    }
    .await
    .map_err(respond)
}

/// Signs out every session of the caller except this one; answers how many.
#[server(prefix = "/api", endpoint = "auth/sessions/revoke-others")]
pub async fn revoke_other_sessions() -> Result<u64, AppError> {
    async {
        let ctx = RequestContext::get()?;
        let me = ctx.user().await?;
        service::revoke_other_sessions(&ctx.state, &me).await
    }
    .await
    .map_err(respond)
}

/// Changes the caller's display name.
#[server(prefix = "/api", endpoint = "account/profile")]
pub async fn update_profile(display_name: String) -> Result<CurrentUser, AppError> {
    async {
        let ctx = RequestContext::get()?;
        let me = ctx.user().await?;
        service::update_display_name(&ctx.state, &me, &display_name).await
    }
    .await
    .map_err(respond)
}

/// Changes the caller's password; every other session is signed out. Answers how many.
#[server(prefix = "/api", endpoint = "account/password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<u64, AppError> {
    async {
        let ctx = RequestContext::get()?;
        let me = ctx.user().await?;
        service::change_password(&ctx.state, &me, &current_password, &new_password).await
    }
    .await
    .map_err(respond)
}
