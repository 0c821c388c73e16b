//! Read markers: one document per (user, room), moved forward with `$max` so it never goes back.

use super::errors::{duplicate_key_message, store_error};
use super::rows::{collect, decode, decode_found, seq_to_db, ReadMarkerRow};
use super::MongoStore;
use crate::model::{NotifyLevel, RoomId, UserId};
use crate::store::{ReadMarker, ReadMarkerStore, StoreError, StoreResult};
use async_trait::async_trait;
use mongodb::bson::doc;
use mongodb::options::ReturnDocument;

#[async_trait]
impl ReadMarkerStore for MongoStore {
    async fn mark_read(&self, user: UserId, room: RoomId, seq: u64) -> StoreResult<u64> {
        let filter = doc! { "user_id": user.to_string(), "room_id": room.to_string() };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let marked = self
                .read_markers
                .find_one_and_update(filter.clone(), doc! { "$max": { "seq": seq_to_db(seq) } })
                .upsert(true)
                .return_document(ReturnDocument::After)
                .await;
            match marked {
                Ok(Some(doc)) => return decode::<ReadMarkerRow>(doc).map(|marker| marker.seq),
                Ok(None) => {
                    return Err(StoreError::Unavailable(
                        "marking read: upsert returned no document".into(),
                    ))
                }
                // Two first marks raced to insert the marker; the next try updates the winner's.
                Err(err) if duplicate_key_message(&err).is_some() && attempt < 3 => continue,
                Err(err) => return Err(store_error("marking read", &err)),
            }
        }
    }

    async fn read_marker(&self, user: UserId, room: RoomId) -> StoreResult<u64> {
        let filter = doc! { "user_id": user.to_string(), "room_id": room.to_string() };
        let marker = decode_found::<ReadMarkerRow>(self.read_markers.find_one(filter).await)?;
        Ok(marker.map_or(0, |m| m.seq))
    }

    async fn read_markers(&self, user: UserId) -> StoreResult<Vec<ReadMarker>> {
        collect::<ReadMarkerRow>(
            self.read_markers
                .find(doc! { "user_id": user.to_string() })
                .sort(doc! { "room_id": 1 })
                .await,
        )
        .await
    }

    /// Kept in the read marker's document (`notify`), which is created at 0 if there is none yet.
    async fn notify_level(&self, user: UserId, room: RoomId) -> StoreResult<NotifyLevel> {
        let filter = doc! { "user_id": user.to_string(), "room_id": room.to_string() };
        let found = self
            .read_markers
            .find_one(filter)
            .projection(doc! { "notify": 1 })
            .await
            .map_err(|e| store_error("reading notify level", &e))?;
        match found.as_ref().and_then(|d| d.get_str("notify").ok()) {
            None => Ok(NotifyLevel::default()),
            Some(raw) => NotifyLevel::parse(raw)
                .ok_or_else(|| StoreError::Corrupt(format!("notify level {raw:?}"))),
        }
    }

    async fn set_notify_level(
        &self,
        user: UserId,
        room: RoomId,
        level: NotifyLevel,
    ) -> StoreResult<()> {
        let filter = doc! { "user_id": user.to_string(), "room_id": room.to_string() };
        let update = doc! {
            "$set": { "notify": level.as_str() },
            "$setOnInsert": { "seq": 0_i64 },
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .read_markers
                .update_one(filter.clone(), update.clone())
                .upsert(true)
                .await
            {
                Ok(_) => return Ok(()),
                // Raced another first write of the marker; the next try updates it.
                Err(err) if duplicate_key_message(&err).is_some() && attempt < 3 => continue,
                Err(err) => return Err(store_error("setting notify level", &err)),
            }
        }
    }
}
