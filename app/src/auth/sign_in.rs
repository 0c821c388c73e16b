//! Signing in: the password step, and for accounts with two-factor sign-in the code step. Every check
//! of a secret (password, code) is reserved with the throttles before it runs (see `auth::throttle`):
//! on a device the account signed in on before (its device cookie), only that device's own failures
//! count; otherwise the account's failures from strangers and the address's failures count too.

use super::accounts::{self, new_device_cookie};
use super::cookies::{self, SessionCookies};
use super::password;
use super::sessions::{self, ClientInfo, Issued};
use super::throttle::Attempt;
use super::tokens;
use super::two_factor;
use crate::chat::hub::Cached;
use crate::domain::PASSWORD_MAX;
use crate::error::AppError;
use crate::model::Timestamp;
use crate::rate_limit::address_key;
use crate::state::AppState;
use crate::store::{username_key, UserPatch, UserRecord};
use http::HeaderValue;
use std::time::Instant;

/// Longest username a login attempt may carry (anything longer cannot exist).
const LOGIN_NAME_MAX: usize = 256;

/// How a correct password ends.
pub enum SignIn {
    /// Signed in: the session and its cookies.
    Done(Issued),
    /// The account also needs a code: this cookie carries the sign-in to the code step.
    CodeNeeded { challenge: HeaderValue },
}

/// The attempts one check holds: this device's (or address's), and for strangers also the account's
/// and the address's.
struct Attempts<'a> {
    own: Attempt<'a>,
    others: Vec<Attempt<'a>>,
}

impl Attempts<'_> {
    fn failed(self) {
        let now = Instant::now();
        self.own.failed(now);
        self.others.into_iter().for_each(|a| a.failed(now));
    }

    /// A success starts this device afresh; the account-wide and address counts are not reset by it
    /// (one right guess among many must not wipe the record of the others).
    fn succeeded(self) {
        self.own.succeeded();
    }
}

/// Reserves the attempts for checking a secret of `account` (`what` tells passwords and codes
/// apart, so each has its own count).
fn reserve<'a>(
    state: &'a AppState,
    account: &str,
    what: &str,
    device: Option<&str>,
    client: &ClientInfo,
) -> Result<Attempts<'a>, AppError> {
    let auth = &state.auth;
    let address = address_key(&client.ip);
    let now = Instant::now();
    let wait = |retry_after_secs| AppError::TooManyAttempts { retry_after_secs };
    let own = match device {
        Some(device) => format!("{account}{what}@device:{device}"),
        None => format!("{account}{what}@{address}"),
    };
    let own = auth.per_device.reserve(&own, now).map_err(wait)?;
    let others = if device.is_some() {
        Vec::new()
    } else {
        vec![
            auth.per_account
                .reserve(&format!("{account}{what}"), now)
                .map_err(wait)?,
            auth.per_address
                .reserve(&format!("{address}{what}"), now)
                .map_err(wait)?,
        ]
    };
    Ok(Attempts { own, others })
}

/// The password step.
pub async fn with_password(
    state: &AppState,
    username: &str,
    password: &str,
    client: &ClientInfo,
    cookies: &SessionCookies,
) -> Result<SignIn, AppError> {
    let username = username.trim();
    if username.is_empty()
        || username.len() > LOGIN_NAME_MAX
        || password.chars().count() > PASSWORD_MAX
    {
        return Err(AppError::BadCredentials);
    }
    let auth = &state.auth;
    // Who it is (cheap, no hashing yet), and whether this browser is one of theirs.
    let found = state.store.user_by_username(username).await?;
    let device = known_device(state, found.as_ref(), cookies);
    let attempts = reserve(
        state,
        &username_key(username),
        "",
        device.as_deref(),
        client,
    )?;

    // Always verify against some hash, so an unknown username takes as long as a wrong password.
    let stored_hash = found.as_ref().map(|u| u.password_hash.clone());
    let matches = auth
        .passwords
        .verify(password.to_owned(), stored_hash)
        .await?;
    let user = match found {
        Some(user) if matches => user,
        _ => {
            attempts.failed();
            tracing::info!(ip = %client.ip, "failed login");
            return Err(AppError::BadCredentials);
        }
    };
    attempts.succeeded();
    if user.disabled {
        return Err(AppError::AccountDisabled);
    }
    let mut patch = UserPatch::default();
    if password::needs_rehash(&user.password_hash) {
        patch.password_hash = Some(auth.passwords.hash(password.to_owned()).await?);
        tracing::info!(user = %user.id, "password hash upgraded to current parameters");
    }
    if user.has_two_factor() {
        if patch != UserPatch::default() {
            accounts::update_user(state, user.id, &patch).await?;
        }
        let value = auth.two_factor.challenge(user.id, tokens::now_secs());
        return Ok(SignIn::CodeNeeded {
            challenge: cookies::challenge(
                auth.cookie_names,
                value,
                two_factor::CHALLENGE_SECS as i64,
            ),
        });
    }
    finish(state, user, patch, client, device.is_some())
        .await
        .map(SignIn::Done)
}

/// The code step: a code from the authenticator app (or a recovery code) for the sign-in the
/// challenge cookie carries.
pub async fn with_code(
    state: &AppState,
    code: &str,
    client: &ClientInfo,
    cookies: &SessionCookies,
) -> Result<Issued, AppError> {
    let auth = &state.auth;
    let user_id = cookies
        .challenge
        .as_deref()
        .and_then(|c| auth.two_factor.challenged_user(c, tokens::now_secs()))
        .ok_or_else(|| {
            AppError::invalid(
                "code",
                "That sign-in has expired. Enter your password again.",
            )
        })?;
    let user = state
        .store
        .user_by_id(user_id)
        .await?
        .filter(|u| u.has_two_factor())
        .ok_or(AppError::Unauthenticated)?;
    if user.disabled {
        return Err(AppError::AccountDisabled);
    }
    let device = known_device(state, Some(&user), cookies);
    let attempts = reserve(
        state,
        &user.username.key(),
        "#code",
        device.as_deref(),
        client,
    )?;
    if !code_is_right(state, &user, code).await? {
        attempts.failed();
        tracing::info!(ip = %client.ip, "wrong sign-in code");
        return Err(AppError::invalid(
            "code",
            "That code is not right. Enter the current code from your app, or a recovery code.",
        ));
    }
    attempts.succeeded();
    let mut issued = finish(state, user, UserPatch::default(), client, device.is_some()).await?;
    issued
        .cookies
        .push(cookies::challenge(auth.cookie_names, String::new(), 0));
    Ok(issued)
}

/// Whether `code` is the account's current TOTP code (never one used before) or one of its unused
/// recovery codes (which it then uses up).
pub async fn code_is_right(
    state: &AppState,
    user: &UserRecord,
    code: &str,
) -> Result<bool, AppError> {
    let Some(secret) = user.totp_secret.as_deref() else {
        return Ok(false);
    };
    if let Some(step) = two_factor::matching_step(secret, code, tokens::now_secs()) {
        let used = state.store.use_totp_step(user.id, step).await?;
        state.hub.changed(Cached::Account(user.id));
        return Ok(used);
    }
    match two_factor::normalise_recovery_code(code) {
        Some(normalised) => {
            let hash = state.auth.two_factor.recovery_hash(&normalised);
            let used = state.store.use_recovery_code(user.id, &hash).await?;
            state.hub.changed(Cached::Account(user.id));
            if used {
                tracing::info!(user = %user.id, "a recovery code was used");
            }
            Ok(used)
        }
        None => Ok(false),
    }
}

/// The device id, if the request carries a device cookie of `user`.
fn known_device(
    state: &AppState,
    user: Option<&UserRecord>,
    cookies: &SessionCookies,
) -> Option<String> {
    user.zip(cookies.device.as_deref())
        .and_then(|(user, cookie)| state.auth.devices.device_of(cookie, user.id))
}

async fn finish(
    state: &AppState,
    user: UserRecord,
    mut patch: UserPatch,
    client: &ClientInfo,
    known_device: bool,
) -> Result<Issued, AppError> {
    patch.last_seen_at = Some(Timestamp::now());
    let user = accounts::update_user(state, user.id, &patch).await?;
    tracing::info!(user = %user.id, "signed in");
    let mut issued = sessions::start(state, &user, client).await?;
    if !known_device {
        issued.cookies.push(new_device_cookie(state, &user));
    }
    Ok(issued)
}
