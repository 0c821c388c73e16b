//! The admin rules, as plain async functions over the store. Each one starts by checking that the caller
//! is an admin (the role as stored now, never as remembered by a token or a page), and each change ends
//! with exactly one audit entry naming who did what to which target from where.

use super::{AdminRoomRow, AdminUserRow, AuditRow, DashboardStats, TablePage, TABLE_PAGE};
use crate::auth::service::Authenticated;
use crate::chat::{service as chat, MemberView};
use crate::error::AppError;
use crate::model::{AuditId, MessageId, Role, RoomId, Timestamp, UserId};
use crate::protocol::CloseReason;
use crate::state::AppState;
use crate::store::{
    AuditEntry, AuditQuery, HistoryQuery, RoomPatch, RoomQuery, RoomRecord, UserPatch, UserQuery,
    UserRecord,
};

/// Longest search text accepted by the admin tables.
const SEARCH_MAX: usize = 64;
/// Temporary passwords: 16 characters from a 32-letter alphabet without look-alikes (80 bits).
const TEMP_PASSWORD_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// An admin acting through one request: who they are and where the request came from.
pub struct Actor<'a> {
    pub me: &'a Authenticated,
    pub ip: &'a str,
}

impl Actor<'_> {
    fn check(&self) -> Result<(), AppError> {
        self.me.require_admin()
    }

    async fn audit(
        &self,
        state: &AppState,
        action: &str,
        target: String,
        details: String,
    ) -> Result<(), AppError> {
        let entry = AuditEntry {
            id: AuditId::new(),
            at: Timestamp::now(),
            actor_id: Some(self.me.user.id),
            actor_name: self.me.user.username.clone(),
            action: action.to_owned(),
            target,
            ip: self.ip.to_owned(),
            details,
        };
        state.store.append_audit(&entry).await?;
        tracing::info!(actor = %self.me.user.username, action, target = %entry.target, "admin action");
        Ok(())
    }
}

/// Role and status changes that could remove the last admin run one at a time in this process, so two
/// admins demoting each other at once cannot both succeed here. (Across instances the window is one
/// store round trip; see the README.)
static ADMIN_CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn dashboard(state: &AppState, actor: &Actor<'_>) -> Result<DashboardStats, AppError> {
    actor.check()?;
    let users = state.store.user_stats().await?;
    let day_ago = Timestamp::now().plus_millis(-24 * 60 * 60 * 1000);
    let messages = state.store.message_stats(day_ago).await?;
    let (sockets_open, users_online) = state.hub.counts();
    Ok(DashboardStats {
        users_total: users.total,
        users_disabled: users.disabled,
        admins: users.admins,
        rooms: state.store.count_rooms().await?,
        messages_total: messages.total,
        messages_24h: messages.since,
        sockets_open: sockets_open as u64,
        users_online: users_online as u64,
        driver: state.store.driver().to_owned(),
    })
}

fn parse_search(search: &str) -> Result<Option<String>, AppError> {
    let search = search.trim();
    if search.chars().count() > SEARCH_MAX {
        return Err(AppError::invalid(
            "search",
            format!("Search for at most {SEARCH_MAX} characters."),
        ));
    }
    Ok((!search.is_empty()).then(|| search.to_owned()))
}

pub fn user_row(user: &UserRecord) -> AdminUserRow {
    AdminUserRow {
        id: user.id,
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        role: user.role,
        disabled: user.disabled,
        must_change_password: user.must_change_password,
        created_at: user.created_at,
        last_seen_at: user.last_seen_at,
    }
}

pub async fn users(
    state: &AppState,
    actor: &Actor<'_>,
    search: &str,
    offset: u64,
) -> Result<TablePage<AdminUserRow>, AppError> {
    actor.check()?;
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
    actor: &Actor<'_>,
    id: UserId,
    disabled: bool,
) -> Result<AdminUserRow, AppError> {
    actor.check()?;
    let _one_at_a_time = ADMIN_CHANGES.lock().await;
    let target = target_user(state, id).await?;
    if disabled {
        keep_an_admin(state, &target).await?;
    }
    let patch = UserPatch {
        disabled: Some(disabled),
        ..UserPatch::default()
    };
    let user = state.store.update_user(id, &patch).await?;
    let mut details = String::new();
    if disabled {
        let revoked = state
            .store
            .revoke_user_sessions(id, None, Timestamp::now())
            .await?;
        state.hub.close_user(id, None, CloseReason::Disabled);
        details = format!("{revoked} sessions signed out");
    }
    let action = if disabled {
        "user.disable"
    } else {
        "user.enable"
    };
    actor
        .audit(state, action, format!("user:{}", user.username), details)
        .await?;
    Ok(user_row(&user))
}

pub async fn set_role(
    state: &AppState,
    actor: &Actor<'_>,
    id: UserId,
    role: Role,
) -> Result<AdminUserRow, AppError> {
    actor.check()?;
    let _one_at_a_time = ADMIN_CHANGES.lock().await;
    let target = target_user(state, id).await?;
    if target.role == role {
        return Ok(user_row(&target));
    }
    if role == Role::User {
        keep_an_admin(state, &target).await?;
    }
    let patch = UserPatch {
        role: Some(role),
        ..UserPatch::default()
    };
    let user = state.store.update_user(id, &patch).await?;
    let action = match role {
        Role::Admin => "user.promote",
        Role::User => "user.demote",
    };
    actor
        .audit(
            state,
            action,
            format!("user:{}", user.username),
            String::new(),
        )
        .await?;
    Ok(user_row(&user))
}

/// Signs the user out everywhere (they can sign in again). Returns how many sessions ended.
pub async fn force_logout(
    state: &AppState,
    actor: &Actor<'_>,
    id: UserId,
) -> Result<u64, AppError> {
    actor.check()?;
    let target = target_user(state, id).await?;
    let revoked = state
        .store
        .revoke_user_sessions(id, None, Timestamp::now())
        .await?;
    state.hub.close_user(id, None, CloseReason::SignedOut);
    actor
        .audit(
            state,
            "user.force_logout",
            format!("user:{}", target.username),
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
    actor: &Actor<'_>,
    id: UserId,
) -> Result<String, AppError> {
    actor.check()?;
    let target = target_user(state, id).await?;
    let password = temporary_password();
    let patch = UserPatch {
        password_hash: Some(state.auth.passwords.hash(password.clone()).await?),
        must_change_password: Some(true),
        ..UserPatch::default()
    };
    state.store.update_user(id, &patch).await?;
    state
        .store
        .revoke_user_sessions(id, None, Timestamp::now())
        .await?;
    state.hub.close_user(id, None, CloseReason::SignedOut);
    actor
        .audit(
            state,
            "user.reset_password",
            format!("user:{}", target.username),
            String::new(),
        )
        .await?;
    Ok(password)
}

async fn room_row(state: &AppState, room: &RoomRecord) -> Result<AdminRoomRow, AppError> {
    let newest = state
        .store
        .history(room.id, HistoryQuery::latest(1))
        .await?;
    Ok(AdminRoomRow {
        id: room.id,
        name: room.name.clone(),
        kind: room.kind,
        archived: room.archived,
        members: state.store.list_members(room.id).await?.len() as u64,
        messages: newest.first().map_or(0, |m| m.seq),
        last_activity: newest.first().map_or(room.created_at, |m| m.created_at),
    })
}

pub async fn rooms(
    state: &AppState,
    actor: &Actor<'_>,
    search: &str,
    offset: u64,
) -> Result<TablePage<AdminRoomRow>, AppError> {
    actor.check()?;
    let query = RoomQuery {
        kind: None,
        search: parse_search(search)?,
        include_archived: true,
        offset,
        limit: TABLE_PAGE,
    };
    let page = state.store.list_rooms(&query).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for room in &page.items {
        items.push(room_row(state, room).await?);
    }
    Ok(TablePage {
        items,
        total: page.total,
        offset,
    })
}

pub async fn room_members(
    state: &AppState,
    actor: &Actor<'_>,
    id: RoomId,
) -> Result<Vec<MemberView>, AppError> {
    actor.check()?;
    chat::room_record(state, id).await?;
    chat::member_views(state, id).await
}

/// Archived rooms are read-only and hidden from browsing; members keep their history.
pub async fn set_archived(
    state: &AppState,
    actor: &Actor<'_>,
    id: RoomId,
    archived: bool,
) -> Result<AdminRoomRow, AppError> {
    actor.check()?;
    chat::room_record(state, id).await?;
    let patch = RoomPatch {
        archived: Some(archived),
        ..RoomPatch::default()
    };
    let room = state.store.update_room(id, &patch).await?;
    let action = if archived {
        "room.archive"
    } else {
        "room.unarchive"
    };
    actor
        .audit(state, action, room_target(&room), String::new())
        .await?;
    room_row(state, &room).await
}

fn room_target(room: &RoomRecord) -> String {
    format!("room:{} ({})", room.name, room.id)
}

/// Deletes a room with all its messages. `confirm_name` must repeat the room's name, so a slip of the
/// mouse on the wrong row deletes nothing.
pub async fn delete_room(
    state: &AppState,
    actor: &Actor<'_>,
    id: RoomId,
    confirm_name: &str,
) -> Result<(), AppError> {
    actor.check()?;
    let room = chat::room_record(state, id).await?;
    if confirm_name.trim() != room.name {
        return Err(AppError::invalid(
            "confirm_name",
            format!("Type the room's name, {}, to delete it.", room.name),
        ));
    }
    let members = state.store.list_members(id).await?;
    state.store.delete_room(id).await?;
    for member in &members {
        state.hub.unfollow(member.user_id, id);
    }
    actor
        .audit(
            state,
            "room.delete",
            room_target(&room),
            format!("{} members", members.len()),
        )
        .await
}

/// Deletes anyone's message; the room sees the tombstone live.
pub async fn delete_message(
    state: &AppState,
    actor: &Actor<'_>,
    id: MessageId,
) -> Result<(), AppError> {
    actor.check()?;
    let message = state
        .store
        .message_by_id(id)
        .await?
        .filter(|m| m.deleted_at.is_none())
        .ok_or_else(|| AppError::not_found("That message"))?;
    let room = chat::room_record(state, message.room_id).await?;
    let author = state.store.user_by_id(message.author_id).await?;
    let author_name = author.as_ref().map_or("", |a| a.display_name.as_str());
    chat::tombstone(state, id, author_name).await?;
    actor
        .audit(
            state,
            "message.delete",
            format!("message:{} in {}", message.seq, room_target(&room)),
            format!(
                "by {}",
                author
                    .as_ref()
                    .map_or("a deleted user", |a| a.username.as_str())
            ),
        )
        .await
}

pub async fn audit_log(
    state: &AppState,
    actor: &Actor<'_>,
    who: &str,
    action: &str,
    offset: u64,
) -> Result<TablePage<AuditRow>, AppError> {
    actor.check()?;
    let action = action.trim();
    if !action.is_empty() && !super::AUDIT_ACTIONS.iter().any(|(a, _)| *a == action) {
        return Err(AppError::invalid("action", "Pick an action from the list."));
    }
    let query = AuditQuery {
        actor: parse_search(who)?,
        action: (!action.is_empty()).then(|| action.to_owned()),
        offset,
        limit: TABLE_PAGE,
    };
    let page = state.store.list_audit(&query).await?;
    Ok(TablePage {
        items: page
            .items
            .into_iter()
            .map(|e| AuditRow {
                id: e.id,
                at: e.at,
                actor: e.actor_name,
                action: e.action,
                target: e.target,
                ip: e.ip,
                details: e.details,
            })
            .collect(),
        total: page.total,
        offset,
    })
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

    #[test]
    fn search_text_is_trimmed_and_bounded() {
        assert_eq!(parse_search("  ana ").unwrap().as_deref(), Some("ana"));
        assert_eq!(parse_search("   ").unwrap(), None);
        assert!(parse_search(&"x".repeat(65)).is_err());
    }
}
