//! Who may do what in a room: read it (members; anyone signed in for public rooms) and post in it
//! (members of rooms that are not archived). Private rooms stay invisible to non-members.

use crate::error::AppError;
use crate::model::{RoomId, RoomKind, UserId};
use crate::state::AppState;
use crate::store::RoomRecord;

/// The room, or `not_found`.
pub async fn room_record(state: &AppState, room: RoomId) -> Result<RoomRecord, AppError> {
    state
        .store
        .room_by_id(room)
        .await?
        .ok_or_else(|| AppError::not_found("That room"))
}

/// The room, if `user` may read it: members always; anyone signed in for public rooms.
pub async fn readable_room(
    state: &AppState,
    user: UserId,
    room: RoomId,
) -> Result<RoomRecord, AppError> {
    let record = room_record(state, room).await?;
    if record.kind == RoomKind::Public && !record.archived {
        return Ok(record);
    }
    if state.store.membership(room, user).await?.is_some() {
        return Ok(record);
    }
    // Private rooms stay invisible to non-members.
    Err(AppError::not_found("That room"))
}

/// The room, if `user` is a member who may post in it.
pub async fn postable_room(
    state: &AppState,
    user: UserId,
    room: RoomId,
) -> Result<RoomRecord, AppError> {
    let record = room_record(state, room).await?;
    if state.store.membership(room, user).await?.is_none() {
        return Err(AppError::Forbidden);
    }
    if record.archived {
        return Err(AppError::invalid(
            "room",
            "This room is archived and read-only.",
        ));
    }
    Ok(record)
}
