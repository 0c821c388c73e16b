//! Managing accounts: list, disable or enable, promote or demote, sign out everywhere, reset the
//! password or two-factor sign-in. The last enabled admin can be neither demoted nor disabled.

use super::actor::{parse_search, Admin};
use super::{AdminUserRow, AuditAction, TablePage, TABLE_PAGE};
use crate::auth::{accounts, sessions};
use crate::error::AppError;
use crate::model::{Role, UserId};
use crate::protocol::CloseReason;
use crate::state::AppState;
use crate::store::{UserPatch, UserQuery, UserRecord};

/// Temporary passwords: 16 characters from a 32-letter alphabet without look-alikes (80 bits).
const TEMP_PASSWORD_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Role and status changes that could remove the last admin run one at a time in this process, so two
/// admins demoting each other at once cannot both succeed here. (Across instances the window is one
/// store round trip; see the README.)
static ADMIN_CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn user_row(user: &UserRecord) -> AdminUserRow {
    AdminUserRow {
        id: user.id,
        username: user.username.as_str().to_owned(),
        display_name: user.display_name.as_str().to_owned(),
        role: user.role,
        disabled: user.disabled,
        must_change_password: user.must_change_password,
        two_factor: user.has_two_factor(),
        created_at: user.created_at,
        last_seen_at: user.last_seen_at,
    }
}

fn target(user: &UserRecord) -> String {
    format!("user:{}", user.username)
}

pub async fn list(
    state: &AppState,
    admin: &Admin<'_>,
    search: &str,
    offset: u64,
) -> Result<TablePage<AdminUserRow>, AppError> {
    admin.check()?;
    let query = UserQuery {
        search: parse_search(search)?,
        offset,
        limit: TABLE_PAGE,
    };
    let page = state.store.list_users(&query).await?;
    Ok(TablePage {
        items: page.items.iter().map(user_row).collect(),
        total: page.total,
        offset,
    })
}

async fn target_user(state: &AppState, id: UserId) -> Result<UserRecord, AppError> {
    state
        .store
        .user_by_id(id)
        .await?
        .ok_or_else(|| AppError::not_found("That user"))
}

/// Refuses a change that would leave no enabled admin.
async fn keep_an_admin(state: &AppState, target: &UserRecord) -> Result<(), AppError> {
    let active_admin = target.role == Role::Admin && !target.disabled;
    if active_admin && state.store.user_stats().await?.admins <= 1 {
        return Err(AppError::invalid(
            "user",
            "This is the last admin. Promote someone else first.",
        ));
    }
    Ok(())
}

/// Disables (signing out every session and closing every socket at once) or re-enables an account.
pub async fn set_disabled(
    state: &AppState,
    admin: &Admin<'_>,
    id: UserId,
    disabled: bool,
) -> Result<AdminUserRow, AppError> {
    admin.check()?;
    let _one_at_a_time = ADMIN_CHANGES.lock().await;
    let target_user = target_user(state, id).await?;
    if disabled {
        keep_an_admin(state, &target_user).await?;
    }
    let patch = UserPatch {
        disabled: Some(disabled),
        ..UserPatch::default()
    };
    let user = accounts::update_user(state, id, &patch).await?;
    let (action, details) = if disabled {
        let revoked = sessions::revoke_all_of(state, id, None, CloseReason::Disabled).await?;
        (
            AuditAction::Disable,
            format!("{revoked} sessions signed out"),
        )
    } else {
        (AuditAction::Enable, String::new())
    };
    admin.audit(state, action, target(&user), details).await?;
    Ok(user_row(&user))
}

pub async fn set_role(
    state: &AppState,
    admin: &Admin<'_>,
    id: UserId,
    role: Role,
) -> Result<AdminUserRow, AppError> {
    admin.check()?;
    let _one_at_a_time = ADMIN_CHANGES.lock().await;
    let current = target_user(state, id).await?;
    if current.role == role {
        return Ok(user_row(&current));
    }
    if role == Role::User {
        keep_an_admin(state, &current).await?;
    }
    let patch = UserPatch {
        role: Some(role),
        ..UserPatch::default()
    };
    let user = accounts::update_user(state, id, &patch).await?;
    let action = match role {
        Role::Admin => AuditAction::Promote,
        Role::User => AuditAction::Demote,
    };
    admin
        .audit(state, action, target(&user), String::new())
        .await?;
    Ok(user_row(&user))
}

/// Signs the user out everywhere (they can sign in again). Returns how many sessions ended.
pub async fn force_logout(
    state: &AppState,
    admin: &Admin<'_>,
    id: UserId,
) -> Result<u64, AppError> {
    admin.check()?;
    let user = target_user(state, id).await?;
    let revoked = sessions::revoke_all_of(state, id, None, CloseReason::SignedOut).await?;
    admin
        .audit(
            state,
            AuditAction::ForceLogout,
            target(&user),
            format!("{revoked} sessions signed out"),
        )
        .await?;
    Ok(revoked)
}

pub fn temporary_password() -> String {
    let bytes: [u8; 16] = rand::random();
    let letters: String = bytes
        .iter()
        .map(|b| char::from(TEMP_PASSWORD_ALPHABET[usize::from(b % 32)]))
        .collect();
    // Groups of four are easier to read out or type.
    letters
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// Sets a temporary password, signs the user out everywhere and makes them choose a new password at
/// their next login. The temporary password is returned once, to the admin, and never stored in clear.
pub async fn reset_password(
    state: &AppState,
    admin: &Admin<'_>,
    id: UserId,
) -> Result<String, AppError> {
    admin.check()?;
    let user = target_user(state, id).await?;
    let password = temporary_password();
    let patch = UserPatch {
        password_hash: Some(state.auth.passwords.hash(password.clone()).await?),
        must_change_password: Some(true),
        ..UserPatch::default()
    };
    accounts::update_user(state, id, &patch).await?;
    sessions::revoke_all_of(state, id, None, CloseReason::SignedOut).await?;
    admin
        .audit(
            state,
            AuditAction::ResetPassword,
            target(&user),
            String::new(),
        )
        .await?;
    Ok(password)
}

/// Turns two-factor sign-in off for someone who lost their phone and their recovery codes; they can
/// sign in with the password alone and set it up again. Their sessions end, as after a password reset.
pub async fn reset_two_factor(
    state: &AppState,
    admin: &Admin<'_>,
    id: UserId,
) -> Result<AdminUserRow, AppError> {
    admin.check()?;
    let current = target_user(state, id).await?;
    if !current.has_two_factor() && current.totp_pending.is_none() {
        return Ok(user_row(&current));
    }
    let patch = UserPatch {
        totp_secret: Some(None),
        totp_pending: Some(None),
        recovery_hashes: Some(Vec::new()),
        ..UserPatch::default()
    };
    let user = accounts::update_user(state, id, &patch).await?;
    let revoked = sessions::revoke_all_of(state, id, None, CloseReason::SignedOut).await?;
    admin
        .audit(
            state,
            AuditAction::ResetTwoFactor,
            target(&user),
            format!("{revoked} sessions signed out"),
        )
        .await?;
    Ok(user_row(&user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_passwords_are_long_random_and_readable() {
        let a = temporary_password();
        let b = temporary_password();
        assert_ne!(a, b);
        assert_eq!(a.len(), 19, "{a}");
        assert_eq!(a.split('-').count(), 4);
        assert!(a
            .bytes()
            .all(|c| c == b'-' || TEMP_PASSWORD_ALPHABET.contains(&c)));
    }
}
