//! The account and session endpoints, as server functions at stable paths under `/api` (listed in the
//! README). Inputs are form-encoded (`application/x-www-form-urlencoded`) and answers are JSON; errors
//! are a JSON `AppError` with a matching HTTP status. Each function only unpacks the request and calls
//! `auth::accounts` or `auth::sessions`.

use super::{CurrentUser, SessionView};
use crate::error::AppError;
use crate::model::SessionId;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

#[cfg(feature = "ssr")]
use crate::{
    auth::{accounts, sessions},
    request::{serve, serve_user},
};

/// Creates an account and signs it in on this device.
#[server(prefix = "/api", endpoint = "auth/register")]
pub async fn register(
    username: String,
    display_name: String,
    password: String,
) -> Result<CurrentUser, AppError> {
    serve(async |ctx| {
        let issued =
            accounts::register(&ctx.state, &username, &display_name, &password, &ctx.client)
                .await?;
        ctx.set_cookies(issued.cookies);
        Ok(issued.user)
    })
    .await
}

/// Signs in with a username (any letter case) and password.
#[server(prefix = "/api", endpoint = "auth/login")]
pub async fn login(username: String, password: String) -> Result<CurrentUser, AppError> {
    serve(async |ctx| {
        let issued = accounts::login(&ctx.state, &username, &password, &ctx.client).await?;
        ctx.set_cookies(issued.cookies);
        Ok(issued.user)
    })
    .await
}

/// Revokes this device's session and removes its cookies.
#[server(prefix = "/api", endpoint = "auth/logout")]
pub async fn logout() -> Result<(), AppError> {
    serve(async |ctx| {
        let result = sessions::logout(&ctx.state, &ctx.cookies).await;
        ctx.set_cookies(ctx.state.auth.clear_cookies());
        result
    })
    .await
}

/// Exchanges the refresh cookie for a new access token and a new refresh token.
#[server(prefix = "/api", endpoint = "auth/refresh")]
pub async fn refresh_session() -> Result<CurrentUser, AppError> {
    serve(
        async |ctx| match sessions::refresh(&ctx.state, ctx.cookies.refresh.as_deref()).await {
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
        },
    )
    .await
}

/// The signed-in user, or `null` for a guest. `SessionExpired` means: refresh, then ask again.
#[server(prefix = "/api", endpoint = "auth/me", input = GetUrl)]
pub async fn get_current_user() -> Result<Option<CurrentUser>, AppError> {
    serve(async |ctx| match ctx.user().await {
        Ok(me) => Ok(Some(sessions::current_user_view(&ctx.state, &me.user))),
        Err(AppError::Unauthenticated) => Ok(None),
        Err(other) => Err(other),
    })
    .await
}

/// The caller's active sessions, most recently used first.
#[server(prefix = "/api", endpoint = "auth/sessions", input = GetUrl)]
pub async fn list_sessions() -> Result<Vec<SessionView>, AppError> {
    serve_user(async |ctx, me| sessions::list(&ctx.state, &me).await).await
}

/// Signs out one of the caller's sessions (this one included).
#[server(prefix = "/api", endpoint = "auth/sessions/revoke")]
pub async fn revoke_session(id: SessionId) -> Result<(), AppError> {
    serve_user(async |ctx, me| {
        if sessions::revoke(&ctx.state, &me, id).await? {
            ctx.set_cookies(ctx.state.auth.clear_cookies());
        }
        Ok(())
    })
    .await
}

/// Signs out every session of the caller except this one; answers how many.
#[server(prefix = "/api", endpoint = "auth/sessions/revoke-others")]
pub async fn revoke_other_sessions() -> Result<u64, AppError> {
    serve_user(async |ctx, me| sessions::revoke_others(&ctx.state, &me).await).await
}

/// Changes the caller's display name.
#[server(prefix = "/api", endpoint = "account/profile")]
pub async fn update_profile(display_name: String) -> Result<CurrentUser, AppError> {
    serve_user(async |ctx, me| accounts::update_display_name(&ctx.state, &me, &display_name).await)
        .await
}

/// Changes the caller's password; every other session is signed out. Answers how many.
#[server(prefix = "/api", endpoint = "account/password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<u64, AppError> {
    serve_user(async |ctx, me| {
        accounts::change_password(&ctx.state, &me, &current_password, &new_password).await
    })
    .await
}
