//! The account and session endpoints, as server functions at stable paths under `/api` (listed in the
//! README). Inputs are form-encoded (`application/x-www-form-urlencoded`) and answers are JSON; errors
//! are a JSON `AppError` with a matching HTTP status. Each function only unpacks the request and calls
//! `auth::accounts` or `auth::sessions`.

use super::{CurrentUser, SessionView, TwoFactorSetup};
use crate::error::AppError;
use crate::model::SessionId;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

#[cfg(feature = "ssr")]
use crate::auth::sign_in::{self, SignIn};
#[cfg(feature = "ssr")]
use crate::{
    auth::{accounts, enrolment, sessions},
    request::{serve, serve_user, serve_user_with_temporary_password},
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
        ctx.then_show("/");
        Ok(issued.user)
    })
    .await
}

/// Signs in with a username (any letter case) and password. For an account with two-factor sign-in
/// the answer is `second_factor_required`, with a challenge cookie for `auth/login/code`.
#[server(prefix = "/api", endpoint = "auth/login")]
pub async fn login(username: String, password: String) -> Result<CurrentUser, AppError> {
    serve(async |ctx| {
        match sign_in::with_password(&ctx.state, &username, &password, &ctx.client, &ctx.cookies)
            .await?
        {
            SignIn::Done(issued) => {
                ctx.set_cookies(issued.cookies);
                ctx.then_show("/");
                Ok(issued.user)
            }
            SignIn::CodeNeeded { challenge } => {
                ctx.set_cookies(vec![challenge]);
                Err(AppError::SecondFactorRequired)
            }
        }
    })
    .await
}

/// Revokes this device's session and removes its cookies.
#[server(prefix = "/api", endpoint = "auth/logout")]
pub async fn logout() -> Result<(), AppError> {
    serve(async |ctx| {
        let result = sessions::logout(&ctx.state, &ctx.cookies).await;
        ctx.set_cookies(ctx.state.auth.clear_cookies());
        // Signed out before the page hydrated: the form posted itself, so go where the script would.
        ctx.then_show("/login");
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
    serve(async |ctx| match ctx.user_with_temporary_password().await {
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
    serve_user_with_temporary_password(async |ctx, me| {
        accounts::update_display_name(&ctx.state, &me, &display_name).await
    })
    .await
}

/// Changes the caller's password; every other session is signed out. Answers how many.
#[server(prefix = "/api", endpoint = "account/password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<u64, AppError> {
    serve_user_with_temporary_password(async |ctx, me| {
        accounts::change_password(&ctx.state, &me, &current_password, &new_password).await
    })
    .await
}

/// The second sign-in step: a code from the authenticator app, or a recovery code.
#[server(prefix = "/api", endpoint = "auth/login/code")]
pub async fn login_with_code(code: String) -> Result<CurrentUser, AppError> {
    serve(async |ctx| {
        let issued = sign_in::with_code(&ctx.state, &code, &ctx.client, &ctx.cookies).await?;
        ctx.set_cookies(issued.cookies);
        Ok(issued.user)
    })
    .await
}

/// Starts setting up two-factor sign-in: the QR code and key for an authenticator app.
#[server(prefix = "/api", endpoint = "account/two-factor/begin")]
pub async fn begin_two_factor() -> Result<TwoFactorSetup, AppError> {
    serve_user(async |ctx, me| enrolment::begin(&ctx.state, &me).await).await
}

/// Confirms the set-up with a code from the app; answers the recovery codes, once.
#[server(prefix = "/api", endpoint = "account/two-factor/confirm")]
pub async fn confirm_two_factor(code: String) -> Result<Vec<String>, AppError> {
    serve_user(async |ctx, me| enrolment::confirm(&ctx.state, &me, &code).await).await
}

/// Turns two-factor sign-in off (the password and a code are needed).
#[server(prefix = "/api", endpoint = "account/two-factor/disable")]
pub async fn disable_two_factor(password: String, code: String) -> Result<(), AppError> {
    serve_user(async |ctx, me| enrolment::disable(&ctx.state, &me, &password, &code).await).await
}
