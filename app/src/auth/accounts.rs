//! Accounts: registration, signing in with a password, and the account's own changes (display name,
//! password).

use super::cookies;
use super::sessions::{self, Authenticated, ClientInfo, Issued};
use super::CurrentUser;
use crate::chat::hub::Cached;
use crate::domain::{confusable, DisplayName, Username, PASSWORD_MAX};
use crate::error::AppError;
use crate::model::{Role, Timestamp, UserId};
use crate::protocol::CloseReason;
use crate::rate_limit::address_key;
use crate::state::AppState;
use crate::store::{StoreError, UserPatch, UserRecord};
use std::time::Instant;

/// Writes `patch` to the account and tells every instance to forget what it cached of it: the way
/// accounts change while the server runs (role, disabled, password, two-factor, names).
pub async fn update_user(
    state: &AppState,
    id: UserId,
    patch: &UserPatch,
) -> Result<UserRecord, AppError> {
    let user = state.store.update_user(id, patch).await?;
    state.hub.changed(Cached::Account(id));
    Ok(user)
}

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
    // The cheap check first: the strength check runs on the blocking pool.
    auth.registrations
        .check(&address_key(&client.ip))
        .map_err(|retry_after_secs| AppError::TooManyAttempts { retry_after_secs })?;
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
    // A taken username says so (the store's unique index decides a race below).
    if state
        .store
        .user_by_username(username.as_str())
        .await?
        .is_some()
    {
        return Err(username_taken());
    }
    not_someone_else(state, &display_name, None).await?;
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
        totp_secret: None,
        totp_pending: None,
        totp_last_step: 0,
        recovery_hashes: Vec::new(),
        avatar: None,
    };
    match state.store.create_user(&user).await {
        Err(StoreError::Duplicate(_)) => return Err(username_taken()),
        other => other?,
    }
    tracing::info!(user = %user.id, "account registered");
    // The account exists either way: a store hiccup here costs only the automatic join.
    if let Err(error) = crate::chat::default_room::join(state, user.id).await {
        tracing::warn!(%error, "a new account could not join the default room");
    }
    let mut issued = sessions::start(state, &user, client).await?;
    issued.cookies.push(new_device_cookie(state, &user));
    Ok(issued)
}

fn username_taken() -> AppError {
    AppError::invalid("username", "That username is taken. Please choose another.")
}

/// Refuses a display name that would pass for another account's username (the same, or a
/// look-alike), since messages show display names.
async fn not_someone_else(
    state: &AppState,
    name: &DisplayName,
    me: Option<UserId>,
) -> Result<(), AppError> {
    let look_alikes = state
        .store
        .users_named_like(&confusable::skeleton(name.as_str()))
        .await?;
    if look_alikes.iter().any(|user| Some(user.id) != me) {
        return Err(AppError::invalid(
            "display_name",
            "That name looks like another person's username. Please choose another.",
        ));
    }
    Ok(())
}

/// This browser's device cookie for `user`.
pub(super) fn new_device_cookie(state: &AppState, user: &UserRecord) -> http::HeaderValue {
    let auth = &state.auth;
    cookies::device(auth.cookie_names, auth.devices.issue(user.id))
}

pub async fn update_display_name(
    state: &AppState,
    me: &Authenticated,
    display_name: &str,
) -> Result<CurrentUser, AppError> {
    let display_name = DisplayName::parse(display_name, &me.user.username)?;
    not_someone_else(state, &display_name, Some(me.user.id)).await?;
    let patch = UserPatch {
        display_name: Some(display_name),
        ..UserPatch::default()
    };
    let user = update_user(state, me.user.id, &patch).await?;
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
    // Counted for this signed-in session alone: strangers' failed logins never lock its owner out.
    let key = format!("{}@session:{}", me.user.username.key(), me.session.id);
    let attempt = auth
        .per_device
        .reserve(&key, Instant::now())
        .map_err(|retry_after_secs| AppError::TooManyAttempts { retry_after_secs })?;
    let matches = current.chars().count() <= PASSWORD_MAX
        && auth
            .passwords
            .verify(current.to_owned(), Some(me.user.password_hash.clone()))
            .await?;
    if !matches {
        attempt.failed(Instant::now());
        return Err(AppError::invalid(
            "current_password",
            "Your current password is not correct.",
        ));
    }
    attempt.succeeded();
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
    update_user(state, me.user.id, &patch).await?;
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
