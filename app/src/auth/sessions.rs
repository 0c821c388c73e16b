//! Device sessions: starting one, renewing it (refresh-token rotation with reuse detection), checking
//! it on every request, listing and revoking. A session is also its refresh-token family.

use super::cookies::{self, SessionCookies};
use super::tokens::{self, TokenError};
use super::{describe_user_agent, CurrentUser, SessionView};
use crate::chat::hub::Cached;
use crate::error::AppError;
use crate::model::{Role, SessionId, Timestamp, UserId};
use crate::protocol::CloseReason;
use crate::state::AppState;
use crate::store::{RefreshLookup, SessionRecord, StoreError, UserPatch, UserRecord};
use http::HeaderValue;

/// How long the token a session just rotated away from still renews it, once, to the same successor,
/// so two renewals racing with one token are not mistaken for a stolen token being replayed.
pub const REFRESH_REUSE_GRACE_MS: i64 = 10_000;
/// Sessions show when they were last used only this precisely.
const LAST_USED_GRANULARITY_MS: i64 = 10 * 60 * 1000;
/// Longest user agent kept with a session.
const USER_AGENT_MAX: usize = 256;

/// Who is calling, as far as sessions and throttles care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: String,
}

/// A signed-in user with the session the request belongs to, both as the store has them (read there,
/// or from the account cache, which forgets a record as soon as it changes).
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
        username: user.username.as_str().to_owned(),
        display_name: user.display_name.as_str().to_owned(),
        role: user.role,
        must_change_password: user.must_change_password,
        access_ttl_secs: state.auth.access_ttl_secs(),
        two_factor: user.has_two_factor(),
        avatar: user.avatar,
    }
}

/// The one check every way in goes through (a request, a renewal, a long-lived socket): the session is
/// neither revoked nor expired, and its account still exists and is enabled.
pub async fn live(
    state: &AppState,
    session: SessionRecord,
    now: Timestamp,
) -> Result<Authenticated, AppError> {
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Err(AppError::Unauthenticated);
    }
    let user = match state.accounts.user(session.user_id) {
        Some(user) => user,
        None => {
            let epoch = state.accounts.epoch();
            let user = state
                .store
                .user_by_id(session.user_id)
                .await?
                .ok_or(AppError::Unauthenticated)?;
            state.accounts.keep_user(epoch, &user);
            user
        }
    };
    if user.disabled {
        return Err(AppError::AccountDisabled);
    }
    Ok(Authenticated { user, session })
}

/// The session `id` of `user`, if it is still live (see [`live`]).
pub async fn live_by_id(
    state: &AppState,
    id: SessionId,
    user: UserId,
) -> Result<Authenticated, AppError> {
    let session = match state.accounts.session(id) {
        Some(session) => session,
        None => {
            let epoch = state.accounts.epoch();
            let session = state
                .store
                .session_by_id(id)
                .await?
                .ok_or(AppError::Unauthenticated)?;
            state.accounts.keep_session(epoch, &session);
            session
        }
    };
    if session.user_id != user {
        return Err(AppError::Unauthenticated);
    }
    live(state, session, Timestamp::now()).await
}

pub(super) async fn start(
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
        grace_claimed: false,
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
        auth.cookie_names,
        access_token.clone(),
        auth.tokens.ttl_secs(),
        refresh_token.clone(),
        auth.refresh_ttl_secs,
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
/// from last, presented once more within [`REFRESH_REUSE_GRACE_MS`]: that is two renewals racing (or a
/// renewal whose answer a navigation threw away), and it gets the same successor. A second such
/// presentation revokes the family.
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
                // The grace is single-use: a second late presentation is a replay.
                if is_racing_renewal(&session, &next_hash, now)
                    && state
                        .store
                        .claim_reuse_grace(session.id, &next_hash)
                        .await?
                {
                    state.hub.changed(Cached::Session(session.id));
                    let me = live(state, session, now).await?;
                    return Ok(issue(state, &me.user, me.session.id, next_token));
                }
                if session.revoked_at.is_none() {
                    state.store.revoke_session(session.id, now).await?;
                    state.hub.changed(Cached::Session(session.id));
                    state.hub.close_session(session.id, CloseReason::SignedOut);
                    tracing::warn!(session = %session.id, user = %session.user_id,
                        "a spent refresh token was presented again: session revoked");
                }
                return Err(AppError::Unauthenticated);
            }
            Some(RefreshLookup::Current(session)) => session,
        };
        let me = live(state, session, now).await?;
        let expires_at = now.plus_millis(state.auth.refresh_ttl_secs as i64 * 1000);
        if state
            .store
            .rotate_refresh(me.session.id, &presented, &next_hash, now, expires_at)
            .await?
        {
            state.hub.changed(Cached::Session(me.session.id));
            let patch = UserPatch {
                last_seen_at: Some(now),
                ..UserPatch::default()
            };
            let user = state.store.update_user(me.user.id, &patch).await?;
            state.hub.changed(Cached::Account(user.id));
            return Ok(issue(state, &user, me.session.id, next_token));
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
    live_by_id(state, claims.sid, claims.sub).await
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
        state.hub.changed(Cached::Session(id));
        state.hub.close_session(id, CloseReason::SignedOut);
        state.store.delete_push_subscriptions_of_session(id).await?;
        tracing::info!(session = %id, "signed out");
    }
    Ok(())
}

pub async fn list(state: &AppState, me: &Authenticated) -> Result<Vec<SessionView>, AppError> {
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
            last_used_at: Timestamp(
                s.last_used_at.millis()
                    - s.last_used_at.millis().rem_euclid(LAST_USED_GRANULARITY_MS),
            ),
            current: s.id == me.session.id,
        })
        .collect())
}

/// Revokes one of the caller's sessions; returns whether it was the current one.
pub async fn revoke(state: &AppState, me: &Authenticated, id: SessionId) -> Result<bool, AppError> {
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
    // Its live connections end now, on every instance, and its device gets no more pushes.
    state.hub.changed(Cached::Session(session.id));
    state.hub.close_session(session.id, CloseReason::SignedOut);
    state
        .store
        .delete_push_subscriptions_of_session(session.id)
        .await?;
    Ok(session.id == me.session.id)
}

/// Revokes every session of the caller except this one, and closes their sockets; returns how many.
pub async fn revoke_others(state: &AppState, me: &Authenticated) -> Result<u64, AppError> {
    revoke_all_of(
        state,
        me.user.id,
        Some(me.session.id),
        CloseReason::SignedOut,
    )
    .await
}

/// Revokes every session of `user` except `keep` and closes their sockets on every instance.
pub async fn revoke_all_of(
    state: &AppState,
    user: UserId,
    keep: Option<SessionId>,
    reason: CloseReason,
) -> Result<u64, AppError> {
    let revoked = state
        .store
        .revoke_user_sessions(user, keep, Timestamp::now())
        .await?;
    state.hub.changed(Cached::SessionsOf(user));
    state.hub.close_user(user, keep, reason);
    for subscription in state.store.push_subscriptions_of(user).await? {
        if Some(subscription.session_id) != keep {
            state
                .store
                .delete_push_subscription(&subscription.endpoint)
                .await?;
        }
    }
    Ok(revoked)
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
            grace_claimed: false,
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
