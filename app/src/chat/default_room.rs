//! The room every new account joins, as in Campfire and Slack: a fresh install creates it (named by
//! `DEFAULT_ROOM`, "general" unless set; empty for none), and each registration joins it while it is
//! public and not archived. Admins archive it to stop that. Its id is fixed, so instances starting
//! together on one fresh database create it once.

use super::rooms::add_member;
use crate::domain::{RoomName, RoomTopic};
use crate::error::AppError;
use crate::model::{RoomId, RoomKind, Timestamp, UserId};
use crate::state::AppState;
use crate::store::{DynStore, RoomRecord, StoreError};

/// The default room's id, the same on every install.
pub fn id() -> RoomId {
    RoomId::from_uuid(uuid::Uuid::from_u128(
        0x0195_0000_0000_7000_8000_0000_0000_0001,
    ))
}

/// On a store with no accounts yet, creates the default room named `name` (nothing when `name` is
/// empty). `true` if this call created it.
pub async fn create_on_fresh_install(store: &DynStore, name: &str) -> Result<bool, AppError> {
    if name.trim().is_empty() || store.user_stats().await?.total > 0 {
        return Ok(false);
    }
    let room = RoomRecord {
        id: id(),
        kind: RoomKind::Public,
        name: RoomName::parse(name)?,
        topic: RoomTopic::parse("Everyone who joins is here. Say hello!")?,
        // Made by the install itself, not by a person.
        created_by: UserId::from_uuid(uuid::Uuid::nil()),
        created_at: Timestamp::now(),
        archived: false,
        direct_key: None,
    };
    match store.create_room(&room, &[]).await {
        Ok(()) => Ok(true),
        // Another instance on the same database made it first.
        Err(StoreError::Duplicate(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Makes a new account a member of the default room, if there is one people may still join.
pub async fn join(state: &AppState, user: UserId) -> Result<(), AppError> {
    match state.store.room_by_id(id()).await? {
        Some(room) if room.kind == RoomKind::Public && !room.archived => {
            add_member(state, &room, user).await
        }
        _ => Ok(()),
    }
}
