//! Rooms and memberships. Without multi-document transactions (standalone servers have none), room
//! creation undoes itself by hand if adding the members fails, and a membership added to a room deleted
//! at the same moment is removed again.

use super::errors::{describe, OrUnavailable};
use super::indexes::DIRECT_KEY_INDEX;
use super::query::contains_any;
use super::rows::{collect, decode_found, encode, page, InvitationRow, MembershipRow, RoomRow};
use super::MongoStore;
use crate::model::{RoomId, UserId};
use crate::store::{
    InvitationRecord, MembershipRecord, Page, RoomPatch, RoomQuery, RoomRecord, RoomStore,
    StoreError, StoreResult,
};
use async_trait::async_trait;
use mongodb::bson::{doc, Document};
use mongodb::options::ReturnDocument;

#[async_trait]
impl RoomStore for MongoStore {
    async fn create_room(
        &self,
        room: &RoomRecord,
        members: &[MembershipRecord],
    ) -> StoreResult<()> {
        let doc = encode(&RoomRow::from_record(room), "room")?;
        self.rooms
            .insert_one(doc)
            .await
            .or_duplicate("creating room", |index| {
                if index == DIRECT_KEY_INDEX {
                    "direct room"
                } else {
                    "room"
                }
            })?;
        if members.is_empty() {
            return Ok(());
        }
        let docs = members
            .iter()
            .map(|m| encode(&MembershipRow::from_record(m), "membership"))
            .collect::<StoreResult<Vec<_>>>()?;
        let inserted = self
            .memberships
            .insert_many(docs)
            .await
            .or_duplicate("adding room members", |_| "membership");
        if let Err(err) = inserted {
            // No multi-document transaction (standalone servers have none): undo by hand.
            let room_id = room.id.to_string();
            let undone = match self
                .memberships
                .delete_many(doc! { "room_id": &room_id })
                .await
            {
                Ok(_) => self
                    .rooms
                    .delete_one(doc! { "_id": &room_id })
                    .await
                    .map(drop),
                Err(e) => Err(e),
            };
            if let Err(e) = undone {
                tracing::warn!(room = %room_id, error = %describe(&e), "could not undo a half-created room");
            }
            return Err(err);
        }
        Ok(())
    }

    async fn room_by_id(&self, id: RoomId) -> StoreResult<Option<RoomRecord>> {
        decode_found::<RoomRow>(self.rooms.find_one(doc! { "_id": id.to_string() }).await)
    }

    async fn direct_room(&self, key: &str) -> StoreResult<Option<RoomRecord>> {
        decode_found::<RoomRow>(self.rooms.find_one(doc! { "direct_key": key }).await)
    }

    async fn update_room(&self, id: RoomId, patch: &RoomPatch) -> StoreResult<RoomRecord> {
        let mut set = Document::new();
        if let Some(name) = &patch.name {
            set.insert("name", name.as_str());
            set.insert("name_key", name.as_str().to_lowercase());
        }
        if let Some(topic) = &patch.topic {
            set.insert("topic", topic.as_str());
        }
        if let Some(archived) = patch.archived {
            set.insert("archived", archived);
        }
        let filter = doc! { "_id": id.to_string() };
        let found = if set.is_empty() {
            self.rooms.find_one(filter).await
        } else {
            self.rooms
                .find_one_and_update(filter, doc! { "$set": set })
                .return_document(ReturnDocument::After)
                .await
        };
        decode_found::<RoomRow>(found)?.ok_or(StoreError::NotFound("room"))
    }

    async fn delete_room(&self, id: RoomId) -> StoreResult<()> {
        let id = id.to_string();
        // The room goes first, so add_member can no longer attach anything to it.
        let deleted = self
            .rooms
            .delete_one(doc! { "_id": &id })
            .await
            .or_unavailable("deleting room")?;
        if deleted.deleted_count == 0 {
            return Err(StoreError::NotFound("room"));
        }
        self.seq_hints.forget(&id);
        self.rev_hints.forget(&id);
        let by_room = doc! { "room_id": &id };
        for collection in [
            &self.memberships,
            &self.invitations,
            &self.messages,
            &self.read_markers,
            &self.thread_follows,
        ] {
            collection
                .delete_many(by_room.clone())
                .await
                .or_unavailable("deleting room contents")?;
        }
        Ok(())
    }

    async fn list_rooms(&self, query: &RoomQuery) -> StoreResult<Page<RoomRecord>> {
        let mut filter = Document::new();
        if let Some(kind) = query.kind {
            filter.insert("kind", kind.as_str());
        }
        if !query.include_archived {
            filter.insert("archived", false);
        }
        if let Some(text) = &query.search {
            filter.extend(contains_any(&["name_key"], text));
        }
        page::<RoomRow>(
            &self.rooms,
            filter,
            doc! { "name_key": 1, "_id": 1 },
            query.offset,
            query.limit,
        )
        .await
    }

    async fn count_rooms(&self) -> StoreResult<u64> {
        self.rooms
            .count_documents(Document::new())
            .await
            .or_unavailable("counting rooms")
    }

    async fn add_member(&self, member: &MembershipRecord) -> StoreResult<()> {
        let room_id = member.room_id.to_string();
        if !self.room_exists(&room_id).await? {
            return Err(StoreError::NotFound("room"));
        }
        let doc = encode(&MembershipRow::from_record(member), "membership")?;
        self.memberships
            .insert_one(doc)
            .await
            .or_duplicate("adding member", |_| "membership")?;
        // The room may have been deleted between the check and the insert: do not leave an orphan.
        if !self.room_exists(&room_id).await? {
            let filter = doc! { "room_id": &room_id, "user_id": member.user_id.to_string() };
            self.memberships
                .delete_one(filter)
                .await
                .or_unavailable("removing orphan membership")?;
            return Err(StoreError::NotFound("room"));
        }
        Ok(())
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<()> {
        let removed = self
            .memberships
            .delete_one(doc! { "room_id": room.to_string(), "user_id": user.to_string() })
            .await
            .or_unavailable("removing member")?;
        if removed.deleted_count == 0 {
            return Err(StoreError::NotFound("membership"));
        }
        Ok(())
    }

    async fn membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> StoreResult<Option<MembershipRecord>> {
        let filter = doc! { "room_id": room.to_string(), "user_id": user.to_string() };
        decode_found::<MembershipRow>(self.memberships.find_one(filter).await)
    }

    async fn members_among(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        let ids: Vec<String> = users.iter().map(ToString::to_string).collect();
        let filter = doc! { "room_id": room.to_string(), "user_id": { "$in": ids } };
        let found: std::collections::HashSet<UserId> =
            collect::<MembershipRow>(self.memberships.find(filter).await)
                .await?
                .into_iter()
                .map(|m| m.user_id)
                .collect();
        let mut seen = std::collections::HashSet::new();
        Ok(users
            .iter()
            .copied()
            .filter(|u| found.contains(u) && seen.insert(*u))
            .collect())
    }

    async fn list_members(&self, room: RoomId) -> StoreResult<Vec<MembershipRecord>> {
        collect::<MembershipRow>(
            self.memberships
                .find(doc! { "room_id": room.to_string() })
                .sort(doc! { "joined_at": 1, "user_id": 1 })
                .await,
        )
        .await
    }

    async fn add_invitation(&self, invitation: &InvitationRecord) -> StoreResult<()> {
        let room_id = invitation.room_id.to_string();
        if !self.room_exists(&room_id).await? {
            return Err(StoreError::NotFound("room"));
        }
        let doc = encode(&InvitationRow::from_record(invitation), "invitation")?;
        self.invitations
            .insert_one(doc)
            .await
            .or_duplicate("inviting", |_| "invitation")?;
        // The room may have been deleted between the check and the insert: do not leave an orphan.
        if !self.room_exists(&room_id).await? {
            self.remove_invitation(invitation.room_id, invitation.user_id)
                .await?;
            return Err(StoreError::NotFound("room"));
        }
        Ok(())
    }

    async fn invitations_of(&self, user: UserId) -> StoreResult<Vec<InvitationRecord>> {
        collect::<InvitationRow>(
            self.invitations
                .find(doc! { "user_id": user.to_string() })
                .sort(doc! { "at": 1, "room_id": 1 })
                .await,
        )
        .await
    }

    async fn remove_invitation(&self, room: RoomId, user: UserId) -> StoreResult<bool> {
        let removed = self
            .invitations
            .delete_one(doc! { "room_id": room.to_string(), "user_id": user.to_string() })
            .await
            .or_unavailable("removing invitation")?;
        Ok(removed.deleted_count > 0)
    }

    async fn rooms_of_user(&self, user: UserId) -> StoreResult<Vec<RoomRecord>> {
        let memberships = collect::<MembershipRow>(
            self.memberships
                .find(doc! { "user_id": user.to_string() })
                .await,
        )
        .await?;
        if memberships.is_empty() {
            return Ok(Vec::new());
        }
        let room_ids: Vec<String> = memberships.iter().map(|m| m.room_id.to_string()).collect();
        collect::<RoomRow>(
            self.rooms
                .find(doc! { "_id": { "$in": room_ids } })
                .sort(doc! { "name_key": 1, "_id": 1 })
                .await,
        )
        .await
    }
}

impl MongoStore {
    pub(super) async fn room_exists(&self, id: &str) -> StoreResult<bool> {
        let found = self
            .rooms
            .find_one(doc! { "_id": id })
            .projection(doc! { "_id": 1 })
            .await
            .or_unavailable("finding room")?;
        Ok(found.is_some())
    }
}
