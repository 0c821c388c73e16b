//! Accounts: registration, signing in with a password, and the account's own changes (display name,
//! password).

use super::password;
use super::sessions::{self, Authenticated, ClientInfo, Issued};
use super::CurrentUser;
use crate::domain::{DisplayName, Username, PASSWORD_MAX};
use crate::error::AppError;
use crate::model::{Role, Timestamp, UserId};
use crate::protocol::CloseReason;
use crate::state::AppState;
use crate::store::{username_key, StoreError, UserPatch, UserRecord};
use std::time::Instant;

/// Longest username a login attempt may carry (anything longer cannot exist).
const LOGIN_NAME_MAX: usize = 256;

pub async fn register(
    state: &AppState,
    username: &str,
    display_name: &str,
    password: &str,
    client: &ClientInfo,
) -> Result<Issued, AppError> {
    let username = Username::parse(username)?;
    let display_name = DisplayName::parse(display_name, &username)?;
    let auth = &state.auth;
    auth.passwords
        .check_strength(
            "password",
            password.to_owned(),
            vec![
                username.as_str().to_owned(),
                display_name.as_str().to_owned(),
            ],
        )
        .await?;
    auth.registrations
        .check(&client.ip)
        .map_err(|retry_after_secs| AppError::TooManyAttempts { retry_after_secs })?;
    let user = UserRecord {
        id: UserId::new(),
        username,
        display_name,
        password_hash: auth.passwords.hash(password.to_owned()).await?,
        role: Role::User,
        disabled: false,
        must_change_password: false,
        created_at: Timestamp::now(),
        last_seen_at: Some(Timestamp::now()),
    };
    match state.store.create_user(&user).await {
        Err(StoreError::Duplicate(_)) => {
            return Err(AppError::invalid(
                "username",
                "That username is taken. Please choose another.",
            ))
        }
        other => other?,
    }
    tracing::info!(user = %user.id, "account registered");
    sessions::start(state, &user, client).await
}

pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    client: &ClientInfo,
) -> Result<Issued, AppError> {
    let username = username.trim();
    if username.is_empty()
        || username.len() > LOGIN_NAME_MAX
        || password.chars().count() > PASSWORD_MAX
    {
        return Err(AppError::BadCredentials);
    }
    let auth = &state.auth;
    let account_key = username_key(username);
    let now = Instant::now();
    auth.accounts
        .check(&account_key, now)
        .and(auth.ips.check(&client.ip, now))
        .map_err(|retry_after_secs| AppError::TooManyAttempts { retry_after_secs })?;

    // Always verify against some hash, so an unknown username takes as long as a wrong password.
    let found = state.store.user_by_username(username).await?;
    let stored_hash = found.as_ref().map(|u| u.password_hash.clone());
    let matches = auth
        .passwords
        .verify(password.to_owned(), stored_hash)
        .await?;
    let user = match found {
        Some(user) if matches => user,
        _ => {
            auth.accounts.record_failure(&account_key, now);
            auth.ips.record_failure(&client.ip, now);
            tracing::info!(ip = %client.ip, "failed login");
            return Err(AppError::BadCredentials);
        }
    };
    if user.disabled {
        return Err(AppError::AccountDisabled);
    }
    auth.accounts.record_success(&account_key);

    let mut patch = UserPatch {
        last_seen_at: Some(Timestamp::now()),
        ..UserPatch::default()
    };
    if password::needs_rehash(&user.password_hash) {
        patch.password_hash = Some(auth.passwords.hash(password.to_owned()).await?);
        tracing::info!(user = %user.id, "password hash upgraded to current parameters");
    }
    let user = state.store.update_user(user.id, &patch).await?;
    tracing::info!(user = %user.id, "signed in");
    sessions::start(state, &user, client).await
}

pub async fn update_display_name(
    state: &AppState,
    me: &Authenticated,
    display_name: &str,
) -> Result<CurrentUser, AppError> {
    let patch = UserPatch {
        display_name: Some(DisplayName::parse(display_name, &me.user.username)?),
        ..UserPatch::default()
    };
    let user = state.store.update_user(me.user.id, &patch).await?;
    Ok(sessions::current_user_view(state, &user))
}

/// Changes the password after checking the current one, then signs out every other session.
/// Returns how many sessions were signed out.
pub async fn change_password(
    state: &AppState,
    me: &Authenticated,
    current: &str,
    new: &str,
) -> Result<u64, AppError> {
    let auth = &state.auth;
    let account_key = me.user.username.key();
    let now = Instant::now();
    auth.accounts
        .check(&account_key, now)
        .map_err(|retry_after_secs| AppError::TooManyAttempts { retry_after_secs })?;
    let matches = current.chars().count() <= PASSWORD_MAX
        && auth
            .passwords
            .verify(current.to_owned(), Some(me.user.password_hash.clone()))
            .await?;
    if !matches {
        auth.accounts.record_failure(&account_key, now);
        return Err(AppError::invalid(
            "current_password",
            "Your current password is not correct.",
        ));
    }
    if current == new {
        return Err(AppError::invalid(
            "new_password",
            "Choose a password different from the current one.",
        ));
    }
    auth.passwords
        .check_strength(
            "new_password",
            new.to_owned(),
            vec![
                me.user.username.as_str().to_owned(),
                me.user.display_name.as_str().to_owned(),
            ],
        )
        .await?;
    let patch = UserPatch {
        password_hash: Some(auth.passwords.hash(new.to_owned()).await?),
        must_change_password: Some(false),
        ..UserPatch::default()
    };
    state.store.update_user(me.user.id, &patch).await?;
    let revoked = sessions::revoke_all_of(
        state,
        me.user.id,
        Some(me.session.id),
        CloseReason::SignedOut,
    )
    .await?;
    tracing::info!(user = %me.user.id, revoked, "password changed; other sessions signed out");
    Ok(revoked)
}
