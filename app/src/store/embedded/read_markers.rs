//! Read markers: the last sequence each user has read in each room, keyed by (user, room).

use super::rows::*;
use super::{parse_id, unavailable, EmbeddedStore, MAX_ID};
use crate::model::{RoomId, UserId};
use crate::store::{ReadMarker, ReadMarkerStore, StoreResult};
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
}
