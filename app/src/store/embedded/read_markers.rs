//! Read markers: the last sequence each user has read in each room, keyed by (user, room).

use super::rows::*;
use super::{parse_id, unavailable, EmbeddedStore, MAX_ID};
use crate::model::{NotifyLevel, RoomId, UserId};
use crate::store::{ReadMarker, ReadMarkerStore, StoreError, StoreResult};
use async_trait::async_trait;
use redb::ReadableTable;

#[async_trait]
impl ReadMarkerStore for EmbeddedStore {
    async fn mark_read(&self, user: UserId, room: RoomId, seq: u64) -> StoreResult<u64> {
        self.write(move |txn| {
            let (user, room) = (user.to_string(), room.to_string());
            let mut markers = txn.open_table(READ_MARKERS).map_err(unavailable)?;
            let key = (user.as_str(), room.as_str());
            let current = markers
                .get(key)
                .map_err(unavailable)?
                .map_or(0, |g| g.value());
            if seq > current {
                markers.insert(key, seq).map_err(unavailable)?;
                Ok(seq)
            } else {
                Ok(current)
            }
        })
        .await
    }

    async fn read_marker(&self, user: UserId, room: RoomId) -> StoreResult<u64> {
        self.get(move |txn| {
            let markers = txn.open_table(READ_MARKERS).map_err(unavailable)?;
            let (user, room) = (user.to_string(), room.to_string());
            let found = markers
                .get((user.as_str(), room.as_str()))
                .map_err(unavailable)?;
            Ok(found.map_or(0, |g| g.value()))
        })
        .await
    }

    async fn read_markers(&self, user: UserId) -> StoreResult<Vec<ReadMarker>> {
        self.read(move |txn| {
            let markers = txn.open_table(READ_MARKERS).map_err(unavailable)?;
            let user = user.to_string();
            let mut list = Vec::new();
            for entry in markers
                .range((user.as_str(), "")..(user.as_str(), MAX_ID))
                .map_err(unavailable)?
            {
                let (key, seq) = entry.map_err(unavailable)?;
                list.push(ReadMarker {
                    room_id: parse_id(key.value().1)?,
                    seq: seq.value(),
                });
            }
            Ok(list)
        })
        .await
    }

    async fn notify_level(&self, user: UserId, room: RoomId) -> StoreResult<NotifyLevel> {
        self.get(move |txn| {
            let levels = txn.open_table(NOTIFY_LEVELS).map_err(unavailable)?;
            let (user, room) = (user.to_string(), room.to_string());
            let found = levels
                .get((user.as_str(), room.as_str()))
                .map_err(unavailable)?;
            match found {
                None => Ok(NotifyLevel::default()),
                Some(raw) => NotifyLevel::parse(raw.value())
                    .ok_or_else(|| StoreError::Corrupt(format!("notify level {:?}", raw.value()))),
            }
        })
        .await
    }

    async fn set_notify_level(
        &self,
        user: UserId,
        room: RoomId,
        level: NotifyLevel,
    ) -> StoreResult<()> {
        self.write(move |txn| {
            let mut levels = txn.open_table(NOTIFY_LEVELS).map_err(unavailable)?;
            let (user, room) = (user.to_string(), room.to_string());
            let key = (user.as_str(), room.as_str());
            if level == NotifyLevel::default() {
                levels.remove(key).map_err(unavailable)?;
            } else {
                levels.insert(key, level.as_str()).map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }
}
