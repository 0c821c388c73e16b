//! The account and session rules, as plain async functions over the store. Server functions and the
//! page guard call these; nothing here knows about HTTP beyond the cookie values it returns.

use super::cookies::{self, SessionCookies};
use super::password::{self, Passwords};
use super::throttle::{LoginThrottle, RegistrationLimit};
use super::tokens::{self, AccessTokens, RefreshChain, TokenError};
use super::validate::{self, PASSWORD_MAX};
use super::{describe_user_agent, CurrentUser, SessionView};
use crate::error::AppError;
use crate::model::{AuditId, Role, SessionId, Timestamp, UserId};
use crate::protocol::CloseReason;
use crate::state::AppState;
use crate::store::{
    username_key, AuditEntry, DynStore, RefreshLookup, SessionRecord, StoreError, UserPatch,
    UserRecord,
};
use http::HeaderValue;
use std::time::Instant;

/// Failed logins allowed per account before the first lockout (then 1 min, 5 min, 15 min, 1 h).
pub const ACCOUNT_FREE_FAILURES: u32 = 4;
/// Failed logins allowed per IP address before the first lockout: higher, since many people can share
/// one address.
pub const IP_FREE_FAILURES: u32 = 19;
/// How long the token a session just rotated away from still renews it (to the same successor), so
/// two renewals racing with one token are not mistaken for a stolen token being replayed.
pub const REFRESH_REUSE_GRACE_MS: i64 = 20_000;
/// Longest user agent kept with a session.
const USER_AGENT_MAX: usize = 256;

pub struct AuthSettings {
    pub jwt_secret: Vec<u8>,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// Cookies get `Secure` when users reach us over https.
    pub secure_cookies: bool,
    pub registrations_per_ip_per_hour: u32,
}

/// Everything authentication needs besides the store, built once at start-up.
pub struct Auth {
    tokens: AccessTokens,
    refresh_chain: RefreshChain,
    pub passwords: Passwords,
    accounts: LoginThrottle,
    ips: LoginThrottle,
    registrations: RegistrationLimit,
    secure_cookies: bool,
    refresh_ttl_secs: u64,
}

impl Auth {
    pub fn new(settings: AuthSettings) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            tokens: AccessTokens::new(&settings.jwt_secret, settings.access_ttl_secs),
            refresh_chain: RefreshChain::new(&settings.jwt_secret),
            passwords: Passwords::new(cpus * 2),
            accounts: LoginThrottle::new(ACCOUNT_FREE_FAILURES),
            ips: LoginThrottle::new(IP_FREE_FAILURES),
            registrations: RegistrationLimit::new(settings.registrations_per_ip_per_hour),
            secure_cookies: settings.secure_cookies,
            refresh_ttl_secs: settings.refresh_ttl_secs,
        }
    }

    /// `Set-Cookie` values that sign the browser out.
    pub fn clear_cookies(&self) -> Vec<HeaderValue> {
        cookies::clear(self.secure_cookies)
    }
}

/// Who is calling, as far as sessions and throttles care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: String,
}

/// A signed-in user with the session the request belongs to, both freshly read from the store.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: UserRecord,
    pub session: SessionRecord,
}

impl Authenticated {
    /// Roles come from the store on every call, never from the token.
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.user.role == Role::Admin {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

/// A session that was just started or renewed: who it is for, and the cookies that carry it.
pub struct Issued {
    pub user: CurrentUser,
    pub session: SessionId,
    pub access_token: String,
    pub refresh_token: String,
    pub cookies: Vec<HeaderValue>,
}

pub fn current_user_view(state: &AppState, user: &UserRecord) -> CurrentUser {
    CurrentUser {
        id: user.id,
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        role: user.role,
        must_change_password: user.must_change_password,
        access_ttl_secs: state.auth.tokens.ttl_secs(),
    }
}

pub async fn register(
    state: &AppState,
    username: &str,
    display_name: &str,
    password: &str,
    client: &ClientInfo,
) -> Result<Issued, AppError> {
    let username = validate::parse_username(username)?;
    let display_name = validate::parse_display_name(display_name, &username)?;
    let auth = &state.auth;
    auth.passwords
        .check_strength(
            "password",
            password.to_owned(),
            vec![username.clone(), display_name.clone()],
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
    start_session(state, &user, client).await
}

pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    client: &ClientInfo,
) -> Result<Issued, AppError> {
    let username = username.trim();
    if username.is_empty() || username.len() > 256 || password.chars().count() > PASSWORD_MAX {
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
    start_session(state, &user, client).await
}

async fn start_session(
    state: &AppState,
    user: &UserRecord,
    client: &ClientInfo,
) -> Result<Issued, AppError> {
    let now = Timestamp::now();
    let refresh_token = tokens::new_refresh_token();
    let session = SessionRecord {
        id: SessionId::new(),
        user_id: user.id,
        refresh_hash: tokens::hash_refresh_token(&refresh_token),
        created_at: now,
        last_used_at: now,
        expires_at: now.plus_millis(state.auth.refresh_ttl_secs as i64 * 1000),
        revoked_at: None,
        user_agent: client.user_agent.chars().take(USER_AGENT_MAX).collect(),
        ip: client.ip.clone(),
    };
    state.store.create_session(&session).await?;
    Ok(issue(state, user, session.id, refresh_token))
}

fn issue(state: &AppState, user: &UserRecord, session: SessionId, refresh_token: String) -> Issued {
    let auth = &state.auth;
    let access_token = auth.tokens.issue(user.id, session, tokens::now_secs());
    let cookies = cookies::issue(
        access_token.clone(),
        auth.tokens.ttl_secs(),
        refresh_token.clone(),
        auth.refresh_ttl_secs,
        auth.secure_cookies,
    );
    Issued {
        user: current_user_view(state, user),
        session,
        access_token,
        refresh_token,
        cookies,
    }
}

/// Rotates the refresh token: the presented one is spent, its successor is issued with a new access
/// token. Presenting a spent token again revokes its whole session (family), so a stolen token is only
/// good until either party uses it twice. The one exception is the token the session rotated away
/// from last, within [`REFRESH_REUSE_GRACE_MS`]: that is two renewals racing (or a renewal whose
/// answer a navigation threw away), and both get the same successor.
pub async fn refresh(state: &AppState, refresh_token: Option<&str>) -> Result<Issued, AppError> {
    let token = refresh_token
        .filter(|t| tokens::is_refresh_token_shaped(t))
        .ok_or(AppError::Unauthenticated)?;
    let presented = tokens::hash_refresh_token(token);
    let next_token = state.auth.refresh_chain.next(token);
    let next_hash = tokens::hash_refresh_token(&next_token);
    let now = Timestamp::now();
    // Twice at most: a rotation racing ours can land between our read and our write, and then the
    // second look finds the token just spent (and its successor ours).
    for _ in 0..2 {
        let session = match state.store.find_refresh(&presented).await? {
            None => return Err(AppError::Unauthenticated),
            Some(RefreshLookup::Spent(session)) => {
                if is_racing_renewal(&session, &next_hash, now) {
                    let user = live_session_user(state, &session, now).await?;
                    return Ok(issue(state, &user, session.id, next_token));
                }
                if session.revoked_at.is_none() {
                    state.store.revoke_session(session.id, now).await?;
                    state.hub.close_session(session.id, CloseReason::SignedOut);
                    tracing::warn!(session = %session.id, user = %session.user_id,
                        "a spent refresh token was presented again: session revoked");
                }
                return Err(AppError::Unauthenticated);
            }
            Some(RefreshLookup::Current(session)) => session,
        };
        let user = live_session_user(state, &session, now).await?;
        let expires_at = now.plus_millis(state.auth.refresh_ttl_secs as i64 * 1000);
        if state
            .store
            .rotate_refresh(session.id, &presented, &next_hash, now, expires_at)
            .await?
        {
            let patch = UserPatch {
                last_seen_at: Some(now),
                ..UserPatch::default()
            };
            let user = state.store.update_user(user.id, &patch).await?;
            return Ok(issue(state, &user, session.id, next_token));
        }
    }
    Err(AppError::Unauthenticated)
}

/// Whether a spent token is the one `session` rotated away from last (its current token is the spent
/// token's successor), presented again within the grace period of that rotation.
fn is_racing_renewal(session: &SessionRecord, successor_hash: &str, now: Timestamp) -> bool {
    session.refresh_hash == successor_hash
        && session.revoked_at.is_none()
        && now.millis() - session.last_used_at.millis() <= REFRESH_REUSE_GRACE_MS
}

/// The user of a session that may still be renewed: not revoked, not expired, account enabled.
async fn live_session_user(
    state: &AppState,
    session: &SessionRecord,
    now: Timestamp,
) -> Result<UserRecord, AppError> {
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Err(AppError::Unauthenticated);
    }
    let user = state
        .store
        .user_by_id(session.user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if user.disabled {
        return Err(AppError::AccountDisabled);
    }
    Ok(user)
}

/// Checks the access token, then the session and the user in the store (so a revoked session or a
/// disabled account stops working at once, not when the token runs out).
pub async fn authenticate(
    state: &AppState,
    cookies: &SessionCookies,
) -> Result<Authenticated, AppError> {
    // Without a usable access token, a refresh cookie means "renew and try again".
    let renewable = if cookies.refresh.is_some() {
        AppError::SessionExpired
    } else {
        AppError::Unauthenticated
    };
    let Some(access) = cookies.access.as_deref() else {
        return Err(renewable);
    };
    let claims = match state.auth.tokens.verify(access) {
        Ok(claims) => claims,
        Err(TokenError::Expired) => return Err(AppError::SessionExpired),
        Err(TokenError::Invalid) => return Err(renewable),
    };
    let now = Timestamp::now();
    let session = state
        .store
        .session_by_id(claims.sid)
        .await?
        .filter(|s| s.user_id == claims.sub && s.revoked_at.is_none() && s.expires_at > now)
        .ok_or(AppError::Unauthenticated)?;
    let user = state
        .store
        .user_by_id(claims.sub)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if user.disabled {
        return Err(AppError::AccountDisabled);
    }
    Ok(Authenticated { user, session })
}

/// Revokes the session the cookies belong to, if any. Signing out twice is fine.
pub async fn logout(state: &AppState, cookies: &SessionCookies) -> Result<(), AppError> {
    let now = Timestamp::now();
    let mut session = None;
    if let Some(token) = cookies
        .refresh
        .as_deref()
        .filter(|t| tokens::is_refresh_token_shaped(t))
    {
        session = match state
            .store
            .find_refresh(&tokens::hash_refresh_token(token))
            .await?
        {
            Some(RefreshLookup::Current(s) | RefreshLookup::Spent(s)) => Some(s.id),
            None => None,
        };
    }
    if session.is_none() {
        if let Some(access) = cookies.access.as_deref() {
            session = state.auth.tokens.verify(access).ok().map(|c| c.sid);
        }
    }
    if let Some(id) = session {
        match state.store.revoke_session(id, now).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        state.hub.close_session(id, CloseReason::SignedOut);
        tracing::info!(session = %id, "signed out");
    }
    Ok(())
}

pub async fn list_sessions(
    state: &AppState,
    me: &Authenticated,
) -> Result<Vec<SessionView>, AppError> {
    let sessions = state
        .store
        .list_user_sessions(me.user.id, Timestamp::now())
        .await?;
    Ok(sessions
        .into_iter()
        .map(|s| SessionView {
            id: s.id,
            device: describe_user_agent(&s.user_agent),
            user_agent: s.user_agent,
            ip: s.ip,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            current: s.id == me.session.id,
        })
        .collect())
}

/// Revokes one of the caller's sessions; returns whether it was the current one.
pub async fn revoke_session(
    state: &AppState,
    me: &Authenticated,
    id: SessionId,
) -> Result<bool, AppError> {
    let session = state
        .store
        .session_by_id(id)
        .await?
        .filter(|s| s.user_id == me.user.id)
        .ok_or_else(|| AppError::not_found("That session"))?;
    state
        .store
        .revoke_session(session.id, Timestamp::now())
        .await?;
    Ok(session.id == me.session.id)
}

/// Revokes every session of the caller except this one; returns how many.
pub async fn revoke_other_sessions(state: &AppState, me: &Authenticated) -> Result<u64, AppError> {
    let revoked = state
        .store
        .revoke_user_sessions(me.user.id, Some(me.session.id), Timestamp::now())
        .await?;
    state
        .hub
        .close_user(me.user.id, Some(me.session.id), CloseReason::SignedOut);
    Ok(revoked)
}

pub async fn update_display_name(
    state: &AppState,
    me: &Authenticated,
    display_name: &str,
) -> Result<CurrentUser, AppError> {
    let display_name = validate::parse_display_name(display_name, &me.user.username)?;
    let patch = UserPatch {
        display_name: Some(display_name),
        ..UserPatch::default()
    };
    let user = state.store.update_user(me.user.id, &patch).await?;
    Ok(current_user_view(state, &user))
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
    let account_key = username_key(&me.user.username);
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
            vec![me.user.username.clone(), me.user.display_name.clone()],
        )
        .await?;
    let patch = UserPatch {
        password_hash: Some(auth.passwords.hash(new.to_owned()).await?),
        must_change_password: Some(false),
        ..UserPatch::default()
    };
    state.store.update_user(me.user.id, &patch).await?;
    let revoked = state
        .store
        .revoke_user_sessions(me.user.id, Some(me.session.id), Timestamp::now())
        .await?;
    state
        .hub
        .close_user(me.user.id, Some(me.session.id), CloseReason::SignedOut);
    tracing::info!(user = %me.user.id, revoked, "password changed; other sessions signed out");
    Ok(revoked)
}

/// What an admin bootstrap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminBootstrap {
    Created,
    Promoted,
    AlreadyAdmin,
}

/// Creates a new admin account. Usernames are unique in the store, so two instances racing to create
/// the same admin end with one account (the loser gets `Duplicate`).
pub async fn create_admin(
    store: &DynStore,
    passwords: &Passwords,
    username: &str,
    password: &str,
    display_name: Option<&str>,
) -> Result<AdminBootstrap, AppError> {
    let username = validate::parse_username(username)?;
    let display_name = validate::parse_display_name(display_name.unwrap_or(""), &username)?;
    passwords
        .check_strength(
            "password",
            password.to_owned(),
            vec![username.clone(), display_name.clone()],
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
    };
    match store.create_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Duplicate(_)) => {
            return Err(AppError::invalid(
                "username",
                format!("`{username}` already exists; promote it instead."),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    audit_system(store, "user.create_admin", &username).await?;
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
    audit_system(store, "user.promote", &user.username).await?;
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
        Err(AppError::Invalid { field, .. }) if field == "username" => {
            promote_to_admin(store, username).await.map(Some)
        }
        Err(e) => Err(e),
    }
}

async fn audit_system(store: &DynStore, action: &str, username: &str) -> Result<(), AppError> {
    let entry = AuditEntry {
        id: AuditId::new(),
        at: Timestamp::now(),
        actor_id: None,
        actor_name: "system".to_owned(),
        action: action.to_owned(),
        target: format!("user:{username}"),
        ip: String::new(),
        details: "admin bootstrap".to_owned(),
    };
    Ok(store.append_audit(&entry).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotated_at(at: i64, current: &str) -> SessionRecord {
        SessionRecord {
            id: SessionId::new(),
            user_id: UserId::new(),
            refresh_hash: current.to_owned(),
            created_at: Timestamp(0),
            last_used_at: Timestamp(at),
            expires_at: Timestamp(i64::MAX),
            revoked_at: None,
            user_agent: String::new(),
            ip: String::new(),
        }
    }

    #[test]
    fn only_the_last_spent_token_within_the_grace_period_is_a_racing_renewal() {
        let session = rotated_at(1_000, "successor");
        assert!(is_racing_renewal(&session, "successor", Timestamp(1_000)));
        assert!(is_racing_renewal(
            &session,
            "successor",
            Timestamp(1_000 + REFRESH_REUSE_GRACE_MS)
        ));
        assert!(
            !is_racing_renewal(
                &session,
                "successor",
                Timestamp(1_001 + REFRESH_REUSE_GRACE_MS)
            ),
            "too late: a replay"
        );
        assert!(
            !is_racing_renewal(&session, "another", Timestamp(1_000)),
            "an older token: a replay"
        );
        let revoked = SessionRecord {
            revoked_at: Some(Timestamp(1_000)),
            ..session
        };
        assert!(!is_racing_renewal(&revoked, "successor", Timestamp(1_000)));
    }
}
