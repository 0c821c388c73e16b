//! Moderating rooms and messages: list every room, see its members, archive or restore it, delete it
//! (after its name is typed), delete anyone's message.

use super::actor::{parse_search, Admin};
use super::{AdminRoomRow, AuditAction, TablePage, TABLE_PAGE};
use crate::chat::{access, messages, rooms, MemberView};
use crate::error::AppError;
use crate::model::{MessageId, RoomId};
use crate::state::AppState;
use crate::store::{HistoryQuery, RoomPatch, RoomQuery, RoomRecord};

async fn room_row(state: &AppState, room: &RoomRecord) -> Result<AdminRoomRow, AppError> {
    let newest = state
        .store
        .history(room.id, HistoryQuery::latest(1))
        .await?;
    Ok(AdminRoomRow {
        id: room.id,
        name: room.name.as_str().to_owned(),
        kind: room.kind,
        archived: room.archived,
        members: state.store.list_members(room.id).await?.len() as u64,
        messages: newest.first().map_or(0, |m| m.seq),
        last_activity: newest.first().map_or(room.created_at, |m| m.created_at),
    })
}

fn target(room: &RoomRecord) -> String {
    format!("room:{} ({})", room.name, room.id)
}

pub async fn list(
    state: &AppState,
    admin: &Admin<'_>,
    search: &str,
    offset: u64,
) -> Result<TablePage<AdminRoomRow>, AppError> {
    admin.check()?;
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

pub async fn members(
    state: &AppState,
    admin: &Admin<'_>,
    id: RoomId,
) -> Result<Vec<MemberView>, AppError> {
    admin.check()?;
    access::room_record(state, id).await?;
    rooms::member_views(state, id).await
}

/// Archived rooms are read-only and hidden from browsing; members keep their history.
pub async fn set_archived(
    state: &AppState,
    admin: &Admin<'_>,
    id: RoomId,
    archived: bool,
) -> Result<AdminRoomRow, AppError> {
    admin.check()?;
    access::room_record(state, id).await?;
    let patch = RoomPatch {
        archived: Some(archived),
        ..RoomPatch::default()
    };
    let room = state.store.update_room(id, &patch).await?;
    let action = if archived {
        AuditAction::Archive
    } else {
        AuditAction::Unarchive
    };
    admin
        .audit(state, action, target(&room), String::new())
        .await?;
    room_row(state, &room).await
}

/// Deletes a room with all its messages. `confirm_name` must repeat the room's name, so a slip of the
/// mouse on the wrong row deletes nothing.
pub async fn delete(
    state: &AppState,
    admin: &Admin<'_>,
    id: RoomId,
    confirm_name: &str,
) -> Result<(), AppError> {
    admin.check()?;
    let room = access::room_record(state, id).await?;
    if confirm_name.trim() != room.name.as_str() {
        return Err(AppError::invalid(
            "confirm_name",
            format!("Type the room's name, {}, to delete it.", room.name),
        ));
    }
    let members = state.store.list_members(id).await?;
    // The files first: once the room is gone, nobody could be checked as able to read them.
    state.store.delete_room_files(id).await?;
    state.store.delete_room(id).await?;
    for member in &members {
        state.hub.unfollow(member.user_id, id);
    }
    admin
        .audit(
            state,
            AuditAction::DeleteRoom,
            target(&room),
            format!("{} members", members.len()),
        )
        .await
}

/// Deletes anyone's message; the room sees the tombstone live.
pub async fn delete_message(
    state: &AppState,
    admin: &Admin<'_>,
    id: MessageId,
) -> Result<(), AppError> {
    admin.check()?;
    let message = state
        .store
        .message_by_id(id)
        .await?
        .filter(|m| m.deleted_at.is_none())
        .ok_or_else(|| AppError::not_found("That message"))?;
    let room = access::room_record(state, message.room_id).await?;
    let author = state.store.user_by_id(message.author_id).await?;
    messages::tombstone(state, id).await?;
    admin
        .audit(
            state,
            AuditAction::DeleteMessage,
            format!("message:{} in {}", message.seq, target(&room)),
            format!(
                "by {}",
                author
                    .as_ref()
                    .map_or("a deleted user", |a| a.username.as_str())
            ),
        )
        .await
}
