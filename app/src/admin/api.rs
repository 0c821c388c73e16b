//! Admin server functions at stable paths under `/api/admin` (listed in the README). Each one only
//! unpacks the request and calls the admin rules, which check the caller's role in the store. A normal
//! user and a guest both get `403 forbidden`: signing in would not help the guest. (An expired access
//! token still answers `401 session_expired`, so an admin's browser renews it and repeats the call.)

use super::{AdminRoomRow, AdminUserRow, AuditRow, DashboardStats, TablePage};
use crate::chat::MemberView;
use crate::error::AppError;
use crate::model::{MessageId, Role, RoomId, Timestamp, UserId};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

#[cfg(feature = "ssr")]
use crate::admin::{actor::Admin, audit, dashboard, rooms, users, AuditAction};
#[cfg(feature = "ssr")]
use crate::state::AppState;

/// Runs `act` as the signed-in caller, from the request's address.
#[cfg(feature = "ssr")]
async fn as_admin<T, F>(act: F) -> Result<T, AppError>
where
    F: AsyncFnOnce(&AppState, &Admin<'_>) -> Result<T, AppError>,
{
    crate::request::serve(async |ctx| {
        let me = ctx.user().await.map_err(|e| match e {
            AppError::Unauthenticated => AppError::Forbidden,
            other => other,
        })?;
        let admin = Admin {
            me: &me,
            ip: &ctx.client.ip,
        };
        act(&ctx.state, &admin).await
    })
    .await
}

/// Totals for the dashboard.
#[server(prefix = "/api", endpoint = "admin/stats", input = GetUrl)]
pub async fn admin_stats() -> Result<DashboardStats, AppError> {
    as_admin(async |state, admin| dashboard::stats(state, admin).await).await
}

/// Users whose username or display name contains `search`, 25 at a time from `offset`.
#[server(prefix = "/api", endpoint = "admin/users", input = GetUrl)]
pub async fn admin_users(search: String, offset: u64) -> Result<TablePage<AdminUserRow>, AppError> {
    as_admin(async |state, admin| users::list(state, admin, &search, offset).await).await
}

/// Disables (signing the user out everywhere at once) or re-enables an account.
#[server(prefix = "/api", endpoint = "admin/users/disable")]
pub async fn admin_set_disabled(user: UserId, disabled: bool) -> Result<AdminUserRow, AppError> {
    as_admin(async |state, admin| users::set_disabled(state, admin, user, disabled).await).await
}

/// Promotes to admin or demotes to user. The last enabled admin cannot be demoted.
#[server(prefix = "/api", endpoint = "admin/users/role")]
pub async fn admin_set_role(user: UserId, role: Role) -> Result<AdminUserRow, AppError> {
    as_admin(async |state, admin| users::set_role(state, admin, user, role).await).await
}

/// Signs the user out of every session; returns how many ended.
#[server(prefix = "/api", endpoint = "admin/users/logout")]
pub async fn admin_force_logout(user: UserId) -> Result<u64, AppError> {
    as_admin(async |state, admin| users::force_logout(state, admin, user).await).await
}

/// Sets a temporary password (returned once) that the user must change at the next login.
#[server(prefix = "/api", endpoint = "admin/users/reset-password")]
pub async fn admin_reset_password(user: UserId) -> Result<String, AppError> {
    as_admin(async |state, admin| users::reset_password(state, admin, user).await).await
}

/// Turns two-factor sign-in off for the user (who lost their authenticator and recovery codes).
#[server(prefix = "/api", endpoint = "admin/users/reset-two-factor")]
pub async fn admin_reset_two_factor(user: UserId) -> Result<AdminUserRow, AppError> {
    as_admin(async |state, admin| users::reset_two_factor(state, admin, user).await).await
}

/// Rooms of every kind whose name contains `search`, archived ones included, 25 at a time.
#[server(prefix = "/api", endpoint = "admin/rooms", input = GetUrl)]
pub async fn admin_rooms(search: String, offset: u64) -> Result<TablePage<AdminRoomRow>, AppError> {
    as_admin(async |state, admin| rooms::list(state, admin, &search, offset).await).await
}

#[server(prefix = "/api", endpoint = "admin/rooms/members", input = GetUrl)]
pub async fn admin_room_members(room: RoomId) -> Result<Vec<MemberView>, AppError> {
    as_admin(async |state, admin| rooms::members(state, admin, room).await).await
}

/// Archives (read-only, hidden from browsing) or restores a room.
#[server(prefix = "/api", endpoint = "admin/rooms/archive")]
pub async fn admin_set_archived(room: RoomId, archived: bool) -> Result<AdminRoomRow, AppError> {
    as_admin(async |state, admin| rooms::set_archived(state, admin, room, archived).await).await
}

/// Deletes a room and everything in it; `confirm_name` must repeat its name.
#[server(prefix = "/api", endpoint = "admin/rooms/delete")]
pub async fn admin_delete_room(room: RoomId, confirm_name: String) -> Result<(), AppError> {
    as_admin(async |state, admin| rooms::delete(state, admin, room, &confirm_name).await).await
}

/// Deletes anyone's message (moderation); the room sees the tombstone live.
#[server(prefix = "/api", endpoint = "admin/messages/delete")]
pub async fn admin_delete_message(message: MessageId) -> Result<(), AppError> {
    as_admin(async |state, admin| rooms::delete_message(state, admin, message).await).await
}

/// Moderators' search over every room (archived ones and direct messages too), audited: same query
/// language and pages as `/api/search`.
#[server(prefix = "/api", endpoint = "admin/search", input = GetUrl)]
pub async fn admin_search_messages(
    q: String,
    before_at: Option<Timestamp>,
    before_id: Option<MessageId>,
) -> Result<Vec<crate::chat::SearchHit>, AppError> {
    as_admin(async |state, admin| {
        admin.check()?;
        let before = before_at.zip(before_id);
        let hits =
            crate::chat::search::search_everywhere(state, admin.me.user.id, &q, before).await?;
        let page = if before.is_some() {
            "a further page"
        } else {
            "the first page"
        };
        admin
            .audit(
                state,
                AuditAction::SearchMessages,
                "all rooms".to_owned(),
                format!("{q:?}: {page}, {} results", hits.len()),
            )
            .await?;
        Ok(hits)
    })
    .await
}

/// The audit log, newest first, filtered by actor username and action, 25 at a time.
#[server(prefix = "/api", endpoint = "admin/audit", input = GetUrl)]
pub async fn admin_audit(
    actor: String,
    action: String,
    offset: u64,
) -> Result<TablePage<AuditRow>, AppError> {
    as_admin(async |state, admin| {
        admin.check()?;
        let actor = super::actor::parse_search(&actor)?;
        audit::page(&state.store, actor, &action, offset).await
    })
    .await
}
