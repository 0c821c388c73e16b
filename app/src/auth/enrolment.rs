//! Turning two-factor sign-in on and off from the profile page, and an admin's reset.

use super::accounts;
use super::sessions::Authenticated;
use super::sign_in::code_is_right;
use super::tokens;
use super::two_factor;
use super::TwoFactorSetup;
use crate::chat::hub::Cached;
use crate::domain::PASSWORD_MAX;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::UserPatch;
use std::time::Instant;

/// Starts enrolment: a fresh secret, kept as pending until a code from the app confirms it.
pub async fn begin(state: &AppState, me: &Authenticated) -> Result<TwoFactorSetup, AppError> {
    if me.user.has_two_factor() {
        return Err(AppError::invalid(
            "code",
            "Two-factor sign-in is on already. Turn it off first to set up another app.",
        ));
    }
    let secret = two_factor::new_secret();
    let patch = UserPatch {
        totp_pending: Some(Some(secret.clone())),
        ..UserPatch::default()
    };
    accounts::update_user(state, me.user.id, &patch).await?;
    let uri = two_factor::otpauth_uri(&secret, me.user.username.as_str());
    let qr_svg = two_factor::qr_svg(&uri).ok_or(AppError::Internal)?;
    Ok(TwoFactorSetup {
        qr_svg,
        key: two_factor::grouped(&secret),
        uri,
    })
}

/// Confirms enrolment with a code from the app; turns two-factor sign-in on and answers the recovery
/// codes, once (only their hashes are kept).
pub async fn confirm(
    state: &AppState,
    me: &Authenticated,
    code: &str,
) -> Result<Vec<String>, AppError> {
    let Some(pending) = me.user.totp_pending.clone() else {
        return Err(AppError::invalid(
            "code",
            "Start the set-up first: no app is waiting to be confirmed.",
        ));
    };
    let attempt = state
        .auth
        .per_device
        .reserve(
            &format!("{}#enrol@session:{}", me.user.username.key(), me.session.id),
            Instant::now(),
        )
        .map_err(|retry_after_secs| AppError::TooManyAttempts { retry_after_secs })?;
    let Some(step) = two_factor::matching_step(&pending, code, tokens::now_secs()) else {
        attempt.failed(Instant::now());
        return Err(AppError::invalid(
            "code",
            "That code does not match. Check the app shows ML-CHAT and enter its current code.",
        ));
    };
    attempt.succeeded();
    let codes = two_factor::new_recovery_codes();
    let hashes = codes
        .iter()
        .filter_map(|c| two_factor::normalise_recovery_code(c))
        .map(|c| state.auth.two_factor.recovery_hash(&c))
        .collect();
    let patch = UserPatch {
        totp_secret: Some(Some(pending)),
        totp_pending: Some(None),
        recovery_hashes: Some(hashes),
        ..UserPatch::default()
    };
    accounts::update_user(state, me.user.id, &patch).await?;
    // The code that confirmed it is used.
    state.store.use_totp_step(me.user.id, step).await?;
    state.hub.changed(Cached::Account(me.user.id));
    tracing::info!(user = %me.user.id, "two-factor sign-in turned on");
    Ok(codes)
}

/// Turns two-factor sign-in off: needs the password and a code (or a recovery code).
pub async fn disable(
    state: &AppState,
    me: &Authenticated,
    password: &str,
    code: &str,
) -> Result<(), AppError> {
    if !me.user.has_two_factor() {
        return Ok(());
    }
    let auth = &state.auth;
    let attempt = auth
        .per_device
        .reserve(
            &format!(
                "{}#disable@session:{}",
                me.user.username.key(),
                me.session.id
            ),
            Instant::now(),
        )
        .map_err(|retry_after_secs| AppError::TooManyAttempts { retry_after_secs })?;
    let password_ok = password.chars().count() <= PASSWORD_MAX
        && auth
            .passwords
            .verify(password.to_owned(), Some(me.user.password_hash.clone()))
            .await?;
    if !password_ok {
        attempt.failed(Instant::now());
        return Err(AppError::invalid(
            "password",
            "Your password is not correct.",
        ));
    }
    if !code_is_right(state, &me.user, code).await? {
        attempt.failed(Instant::now());
        return Err(AppError::invalid(
            "code",
            "That code is not right. Enter the current code from your app, or a recovery code.",
        ));
    }
    attempt.succeeded();
    let patch = UserPatch {
        totp_secret: Some(None),
        totp_pending: Some(None),
        recovery_hashes: Some(Vec::new()),
        ..UserPatch::default()
    };
    accounts::update_user(state, me.user.id, &patch).await?;
    tracing::info!(user = %me.user.id, "two-factor sign-in turned off");
    Ok(())
}
