//! The first administrators: `server admin create|promote` and `ADMIN_USERNAME`/`ADMIN_PASSWORD` on
//! the first start. Each change is audited as done by `system`.

use super::audit::{self, AuditActor};
use super::AuditAction;
use crate::auth::password::Passwords;
use crate::domain::{DisplayName, Username};
use crate::error::AppError;
use crate::model::{Role, Timestamp, UserId};
use crate::store::{DynStore, StoreError, UserPatch, UserRecord};

/// What an admin bootstrap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminBootstrap {
    Created,
    Promoted,
    AlreadyAdmin,
}

/// Why creating an admin did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateAdminError {
    /// The username is taken (perhaps by another instance creating the same admin at this moment).
    #[error("`{0}` already exists; promote it instead.")]
    Exists(String),
    #[error(transparent)]
    Failed(#[from] AppError),
}

/// Creates a new admin account. Usernames are unique in the store, so two instances racing to create
/// the same admin end with one account (the loser gets `Exists`).
pub async fn create_admin(
    store: &DynStore,
    passwords: &Passwords,
    username: &str,
    password: &str,
    display_name: Option<&str>,
) -> Result<AdminBootstrap, CreateAdminError> {
    let username = Username::parse(username)?;
    let display_name = DisplayName::parse(display_name.unwrap_or(""), &username)?;
    passwords
        .check_strength(
            "password",
            password.to_owned(),
            vec![
                username.as_str().to_owned(),
                display_name.as_str().to_owned(),
            ],
        )
        .await?;
    let user = UserRecord {
        id: UserId::new(),
        username: username.clone(),
        display_name,
        password_hash: passwords.hash(password.to_owned()).await?,
        role: Role::Admin,
        disabled: false,
        must_change_password: false,
        created_at: Timestamp::now(),
        last_seen_at: None,
        totp_secret: None,
        totp_pending: None,
        totp_last_step: 0,
        recovery_hashes: Vec::new(),
        avatar: None,
    };
    match store.create_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Duplicate(_)) => {
            return Err(CreateAdminError::Exists(username.into_string()))
        }
        Err(e) => return Err(AppError::from(e).into()),
    }
    audit_system(store, AuditAction::CreateAdmin, &username).await?;
    Ok(AdminBootstrap::Created)
}

/// Gives an existing account the admin role.
pub async fn promote_to_admin(
    store: &DynStore,
    username: &str,
) -> Result<AdminBootstrap, AppError> {
    let user = store
        .user_by_username(username.trim())
        .await?
        .ok_or_else(|| AppError::not_found(&format!("User `{}`", username.trim())))?;
    if user.role == Role::Admin {
        return Ok(AdminBootstrap::AlreadyAdmin);
    }
    let patch = UserPatch {
        role: Some(Role::Admin),
        ..UserPatch::default()
    };
    store.update_user(user.id, &patch).await?;
    audit_system(store, AuditAction::Promote, &user.username).await?;
    Ok(AdminBootstrap::Promoted)
}

/// `ADMIN_USERNAME`/`ADMIN_PASSWORD` on first start: creates the admin only while the instance has no
/// users at all, so a later restart never resets or re-creates anything.
pub async fn bootstrap_admin_if_empty(
    store: &DynStore,
    passwords: &Passwords,
    username: &str,
    password: &str,
) -> Result<Option<AdminBootstrap>, AppError> {
    if store.user_stats().await?.total > 0 {
        return Ok(None);
    }
    match create_admin(store, passwords, username, password, None).await {
        Ok(outcome) => Ok(Some(outcome)),
        // Another instance created it at the same moment.
        Err(CreateAdminError::Exists(_)) => promote_to_admin(store, username).await.map(Some),
        Err(CreateAdminError::Failed(e)) => Err(e),
    }
}

async fn audit_system(
    store: &DynStore,
    action: AuditAction,
    username: &Username,
) -> Result<(), AppError> {
    audit::record(
        store,
        &AuditActor::System,
        action,
        format!("user:{username}"),
        "admin bootstrap".to_owned(),
    )
    .await
}
