//! Rooms and memberships: room rows with name and direct-pair indexes, members by room and rooms by
//! user. Deleting a room removes everything that belongs to it in the same transaction.

use super::rows::*;
use super::{decode, encode, get_row, paginate, unavailable, EmbeddedStore, MAX_ID};
use crate::model::{RoomId, UserId};
use crate::store::{
    InvitationRecord, MembershipRecord, Page, RoomPatch, RoomQuery, RoomRecord, RoomStore,
    StoreError, StoreResult,
};
use async_trait::async_trait;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

fn load_room<T: ReadableTable<&'static str, &'static [u8]>>(
    rooms: &T,
    id: &str,
) -> StoreResult<Option<RoomRecord>> {
    Ok(get_row::<RoomRow, _>(rooms, id)?.map(Into::into))
}

fn put_room(txn: &WriteTransaction, room: &RoomRecord) -> StoreResult<()> {
    let row = encode(&RoomRow::from(room))?;
    let mut rooms = txn.open_table(ROOMS).map_err(unavailable)?;
    rooms
        .insert(room.id.to_string().as_str(), row.as_slice())
        .map_err(unavailable)?;
    Ok(())
}

fn put_member(txn: &WriteTransaction, member: &MembershipRecord) -> StoreResult<()> {
    let (room, user) = (member.room_id.to_string(), member.user_id.to_string());
    let row = encode(&MemberRow::from(member))?;
    let mut members = txn.open_table(MEMBERS).map_err(unavailable)?;
    members
        .insert((room.as_str(), user.as_str()), row.as_slice())
        .map_err(unavailable)?;
    let mut user_rooms = txn.open_table(USER_ROOMS).map_err(unavailable)?;
    user_rooms
        .insert((user.as_str(), room.as_str()), ())
        .map_err(unavailable)?;
    Ok(())
}

/// Removes every row of `table` whose key `matches`.
fn remove_matching<K, V, F>(
    txn: &WriteTransaction,
    table: TableDefinition<'static, K, V>,
    matches: F,
) -> StoreResult<()>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    F: for<'f> Fn(K::SelfType<'f>) -> bool,
{
    let mut t = txn.open_table(table).map_err(unavailable)?;
    t.retain(|k, _| !matches(k)).map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl RoomStore for EmbeddedStore {
    async fn create_room(
        &self,
        room: &RoomRecord,
        members: &[MembershipRecord],
    ) -> StoreResult<()> {
        let (room, members) = (room.clone(), members.to_vec());
        self.write(move |txn| {
            let id = room.id.to_string();
            {
                let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
                if rooms.get(id.as_str()).map_err(unavailable)?.is_some() {
                    return Err(StoreError::Duplicate("room"));
                }
            }
            if let Some(key) = &room.direct_key {
                let mut direct = txn.open_table(DIRECT_ROOMS).map_err(unavailable)?;
                if direct.get(key.as_str()).map_err(unavailable)?.is_some() {
                    return Err(StoreError::Duplicate("direct room"));
                }
                direct
                    .insert(key.as_str(), id.as_str())
                    .map_err(unavailable)?;
            }
            put_room(txn, &room)?;
            let mut names = txn.open_table(ROOM_NAMES).map_err(unavailable)?;
            names
                .insert(
                    (room.name.as_str().to_lowercase().as_str(), id.as_str()),
                    (),
                )
                .map_err(unavailable)?;
            drop(names);
            for member in &members {
                put_member(txn, member)?;
            }
            Ok(())
        })
        .await
    }

    async fn room_by_id(&self, id: RoomId) -> StoreResult<Option<RoomRecord>> {
        self.get(move |txn| {
            let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
            load_room(&rooms, &id.to_string())
        })
        .await
    }

    async fn direct_room(&self, key: &str) -> StoreResult<Option<RoomRecord>> {
        let key = key.to_owned();
        self.get(move |txn| {
            let direct = txn.open_table(DIRECT_ROOMS).map_err(unavailable)?;
            let Some(id) = direct.get(key.as_str()).map_err(unavailable)? else {
                return Ok(None);
            };
            let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
            load_room(&rooms, id.value())
        })
        .await
    }

    async fn update_room(&self, id: RoomId, patch: &RoomPatch) -> StoreResult<RoomRecord> {
        let patch = patch.clone();
        self.write(move |txn| {
            let key = id.to_string();
            let room = {
                let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
                load_room(&rooms, &key)?
            };
            let mut room = room.ok_or(StoreError::NotFound("room"))?;
            if let Some(name) = patch.name {
                let mut names = txn.open_table(ROOM_NAMES).map_err(unavailable)?;
                names
                    .remove((room.name.as_str().to_lowercase().as_str(), key.as_str()))
                    .map_err(unavailable)?;
                names
                    .insert((name.as_str().to_lowercase().as_str(), key.as_str()), ())
                    .map_err(unavailable)?;
                room.name = name;
            }
            if let Some(topic) = patch.topic {
                room.topic = topic;
            }
            if let Some(archived) = patch.archived {
                room.archived = archived;
            }
            put_room(txn, &room)?;
            Ok(room)
        })
        .await
    }

    async fn delete_room(&self, id: RoomId) -> StoreResult<()> {
        self.write(move |txn| {
            let key = id.to_string();
            let room = {
                let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
                load_room(&rooms, &key)?
            };
            let room = room.ok_or(StoreError::NotFound("room"))?;
            txn.open_table(ROOMS)
                .map_err(unavailable)?
                .remove(key.as_str())
                .map_err(unavailable)?;
            txn.open_table(ROOM_NAMES)
                .map_err(unavailable)?
                .remove((room.name.as_str().to_lowercase().as_str(), key.as_str()))
                .map_err(unavailable)?;
            if let Some(direct_key) = &room.direct_key {
                txn.open_table(DIRECT_ROOMS)
                    .map_err(unavailable)?
                    .remove(direct_key.as_str())
                    .map_err(unavailable)?;
            }
            let k = key.as_str();
            // Tables keyed by room first are cleared by range; the user-first ones need the members
            // (user_rooms) or, for read markers of people who already left, a scan (rare admin action).
            let mut member_ids = Vec::new();
            {
                let mut members = txn.open_table(MEMBERS).map_err(unavailable)?;
                for entry in members.range((k, "")..(k, MAX_ID)).map_err(unavailable)? {
                    let (key, _) = entry.map_err(unavailable)?;
                    member_ids.push(key.value().1.to_owned());
                }
                members
                    .retain_in((k, "")..(k, MAX_ID), |_, _| false)
                    .map_err(unavailable)?;
            }
            {
                let mut user_rooms = txn.open_table(USER_ROOMS).map_err(unavailable)?;
                for user in &member_ids {
                    user_rooms.remove((user.as_str(), k)).map_err(unavailable)?;
                }
            }
            remove_matching(txn, READ_MARKERS, |(_, r)| r == k)?;
            remove_matching(txn, NOTIFY_LEVELS, |(_, r)| r == k)?;
            {
                let mut invitations = txn.open_table(INVITATIONS).map_err(unavailable)?;
                let mut invitees = Vec::new();
                for entry in invitations
                    .range((k, "")..(k, MAX_ID))
                    .map_err(unavailable)?
                {
                    let (key, _) = entry.map_err(unavailable)?;
                    invitees.push(key.value().1.to_owned());
                }
                invitations
                    .retain_in((k, "")..(k, MAX_ID), |_, _| false)
                    .map_err(unavailable)?;
                let mut by_user = txn.open_table(USER_INVITATIONS).map_err(unavailable)?;
                for user in &invitees {
                    by_user.remove((user.as_str(), k)).map_err(unavailable)?;
                }
            }
            txn.open_table(NONCES)
                .map_err(unavailable)?
                .retain_in((k, "", "")..(k, MAX_ID, ""), |_, _| false)
                .map_err(unavailable)?;
            // Collect the room's message ids before the messages go, to clean the id and time indexes,
            // and the roots of its threads.
            let mut ids = Vec::new();
            let mut roots = std::collections::HashSet::new();
            {
                let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
                for entry in messages
                    .range((k, 0u64)..=(k, u64::MAX))
                    .map_err(unavailable)?
                {
                    let (_, row) = entry.map_err(unavailable)?;
                    let message: MessageRow = decode(row.value())?;
                    if message.replies.is_some() {
                        roots.insert(message.id.to_string());
                    }
                    if let Some((root, _, _)) = message.thread {
                        roots.insert(root.to_string());
                    }
                    ids.push((
                        message.id.to_string(),
                        message.created_at.0,
                        message.mentions.clone(),
                    ));
                }
            }
            super::threads::purge_room_threads(txn, k, roots)?;
            super::search::unindex_room(txn, k)?;
            txn.open_table(MESSAGES)
                .map_err(unavailable)?
                .retain_in((k, 0u64)..=(k, u64::MAX), |_, _| false)
                .map_err(unavailable)?;
            let mut by_id = txn.open_table(MESSAGE_IDS).map_err(unavailable)?;
            let mut by_time = txn.open_table(MESSAGE_TIMES).map_err(unavailable)?;
            for (message_id, at, mentioned) in &ids {
                super::messages::unindex_mentions(txn, mentioned, *at, message_id, k)?;
                by_id.remove(message_id.as_str()).map_err(unavailable)?;
                by_time
                    .remove((*at, message_id.as_str()))
                    .map_err(unavailable)?;
            }
            txn.open_table(ROOM_SEQ)
                .map_err(unavailable)?
                .remove(k)
                .map_err(unavailable)?;
            txn.open_table(MESSAGE_REVS)
                .map_err(unavailable)?
                .retain_in((k, 0u64)..=(k, u64::MAX), |_, _| false)
                .map_err(unavailable)?;
            txn.open_table(ROOM_REV)
                .map_err(unavailable)?
                .remove(k)
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn list_rooms(&self, query: &RoomQuery) -> StoreResult<Page<RoomRecord>> {
        let query = query.clone();
        self.read(move |txn| {
            let names = txn.open_table(ROOM_NAMES).map_err(unavailable)?;
            let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
            let needle = query.search.as_deref().map(str::to_lowercase);
            let mut matches = Vec::new();
            for entry in names.iter().map_err(unavailable)? {
                let (key, _) = entry.map_err(unavailable)?;
                let (name_lower, id) = key.value();
                if needle.as_deref().is_some_and(|n| !name_lower.contains(n)) {
                    continue;
                }
                let room = load_room(&rooms, id)?
                    .ok_or_else(|| StoreError::Corrupt("room name index points nowhere".into()))?;
                if query.kind.is_some_and(|k| k != room.kind) {
                    continue;
                }
                if room.archived && !query.include_archived {
                    continue;
                }
                matches.push(room);
            }
            Ok(paginate(matches, query.offset, query.limit))
        })
        .await
    }

    async fn count_rooms(&self) -> StoreResult<u64> {
        self.read(|txn| {
            txn.open_table(ROOMS)
                .map_err(unavailable)?
                .len()
                .map_err(unavailable)
        })
        .await
    }

    async fn add_member(&self, member: &MembershipRecord) -> StoreResult<()> {
        let member = member.clone();
        self.write(move |txn| {
            let (room, user) = (member.room_id.to_string(), member.user_id.to_string());
            {
                let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
                if rooms.get(room.as_str()).map_err(unavailable)?.is_none() {
                    return Err(StoreError::NotFound("room"));
                }
                let members = txn.open_table(MEMBERS).map_err(unavailable)?;
                if members
                    .get((room.as_str(), user.as_str()))
                    .map_err(unavailable)?
                    .is_some()
                {
                    return Err(StoreError::Duplicate("membership"));
                }
            }
            put_member(txn, &member)
        })
        .await
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<()> {
        self.write(move |txn| {
            let (room, user) = (room.to_string(), user.to_string());
            let mut members = txn.open_table(MEMBERS).map_err(unavailable)?;
            if members
                .remove((room.as_str(), user.as_str()))
                .map_err(unavailable)?
                .is_none()
            {
                return Err(StoreError::NotFound("membership"));
            }
            let mut user_rooms = txn.open_table(USER_ROOMS).map_err(unavailable)?;
            user_rooms
                .remove((user.as_str(), room.as_str()))
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> StoreResult<Option<MembershipRecord>> {
        self.get(move |txn| {
            let members = txn.open_table(MEMBERS).map_err(unavailable)?;
            let (room, user) = (room.to_string(), user.to_string());
            match members
                .get((room.as_str(), user.as_str()))
                .map_err(unavailable)?
            {
                Some(row) => Ok(Some(decode::<MemberRow>(row.value())?.into())),
                None => Ok(None),
            }
        })
        .await
    }

    async fn members_among(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        let users = users.to_vec();
        self.get(move |txn| {
            let members = txn.open_table(MEMBERS).map_err(unavailable)?;
            let room = room.to_string();
            let mut seen = std::collections::HashSet::new();
            let mut found = Vec::new();
            for user in users {
                let key = user.to_string();
                if seen.insert(user)
                    && members
                        .get((room.as_str(), key.as_str()))
                        .map_err(unavailable)?
                        .is_some()
                {
                    found.push(user);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn list_members(&self, room: RoomId) -> StoreResult<Vec<MembershipRecord>> {
        self.read(move |txn| {
            let members = txn.open_table(MEMBERS).map_err(unavailable)?;
            let room = room.to_string();
            let mut list = Vec::new();
            for entry in members
                .range((room.as_str(), "")..(room.as_str(), MAX_ID))
                .map_err(unavailable)?
            {
                let (_, row) = entry.map_err(unavailable)?;
                list.push(MembershipRecord::from(decode::<MemberRow>(row.value())?));
            }
            list.sort_by(|a, b| {
                a.joined_at
                    .cmp(&b.joined_at)
                    .then(a.user_id.cmp(&b.user_id))
            });
            Ok(list)
        })
        .await
    }

    async fn add_invitation(&self, invitation: &InvitationRecord) -> StoreResult<()> {
        let row = encode(&InvitationRow::from(invitation))?;
        let (room, user) = (
            invitation.room_id.to_string(),
            invitation.user_id.to_string(),
        );
        self.write(move |txn| {
            {
                let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
                if rooms.get(room.as_str()).map_err(unavailable)?.is_none() {
                    return Err(StoreError::NotFound("room"));
                }
            }
            let mut invitations = txn.open_table(INVITATIONS).map_err(unavailable)?;
            let key = (room.as_str(), user.as_str());
            if invitations.get(key).map_err(unavailable)?.is_some() {
                return Err(StoreError::Duplicate("invitation"));
            }
            invitations
                .insert(key, row.as_slice())
                .map_err(unavailable)?;
            let mut by_user = txn.open_table(USER_INVITATIONS).map_err(unavailable)?;
            by_user
                .insert((user.as_str(), room.as_str()), ())
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn invitations_of(&self, user: UserId) -> StoreResult<Vec<InvitationRecord>> {
        self.read(move |txn| {
            let by_user = txn.open_table(USER_INVITATIONS).map_err(unavailable)?;
            let invitations = txn.open_table(INVITATIONS).map_err(unavailable)?;
            let user = user.to_string();
            let mut list = Vec::new();
            for entry in by_user
                .range((user.as_str(), "")..(user.as_str(), MAX_ID))
                .map_err(unavailable)?
            {
                let (key, _) = entry.map_err(unavailable)?;
                let room = key.value().1;
                if let Some(row) = invitations
                    .get((room, user.as_str()))
                    .map_err(unavailable)?
                {
                    list.push(InvitationRecord::from(decode::<InvitationRow>(
                        row.value(),
                    )?));
                }
            }
            list.sort_by(|a, b| a.at.cmp(&b.at).then(a.room_id.cmp(&b.room_id)));
            Ok(list)
        })
        .await
    }

    async fn remove_invitation(&self, room: RoomId, user: UserId) -> StoreResult<bool> {
        self.write(move |txn| {
            let (room, user) = (room.to_string(), user.to_string());
            let mut invitations = txn.open_table(INVITATIONS).map_err(unavailable)?;
            let removed = invitations
                .remove((room.as_str(), user.as_str()))
                .map_err(unavailable)?
                .is_some();
            drop(invitations);
            let mut by_user = txn.open_table(USER_INVITATIONS).map_err(unavailable)?;
            by_user
                .remove((user.as_str(), room.as_str()))
                .map_err(unavailable)?;
            Ok(removed)
        })
        .await
    }

    async fn rooms_of_user(&self, user: UserId) -> StoreResult<Vec<RoomRecord>> {
        self.read(move |txn| {
            let user_rooms = txn.open_table(USER_ROOMS).map_err(unavailable)?;
            let rooms = txn.open_table(ROOMS).map_err(unavailable)?;
            let user = user.to_string();
            let mut list = Vec::new();
            for entry in user_rooms
                .range((user.as_str(), "")..(user.as_str(), MAX_ID))
                .map_err(unavailable)?
            {
                let (key, _) = entry.map_err(unavailable)?;
                if let Some(room) = load_room(&rooms, key.value().1)? {
                    list.push(room);
                }
            }
            list.sort_by(|a, b| {
                a.name
                    .as_str()
                    .to_lowercase()
                    .cmp(&b.name.as_str().to_lowercase())
                    .then(a.id.cmp(&b.id))
            });
            Ok(list)
        })
        .await
    }
}
