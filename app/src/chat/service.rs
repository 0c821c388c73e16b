//! Rooms and messages: the rules, as plain async functions over the store and the hub. The HTTP server
//! functions and the websocket connection both call these.

use super::render::message_html;
use super::{MemberView, RoomSummary};
use crate::auth::service::Authenticated;
use crate::error::AppError;
use crate::model::{MemberRole, MessageId, RoomId, RoomKind, Timestamp, UserId};
use crate::protocol::{MessageView, ServerMsg, MAX_BODY_CHARS, MAX_NONCE_LEN};
use crate::state::AppState;
use crate::store::{
    direct_key, Appended, HistoryQuery, MembershipRecord, MessageRecord, NewMessage, RoomQuery,
    RoomRecord, StoreError, UserRecord, MAX_PAGE_SIZE,
};
use std::collections::HashMap;

pub const ROOM_NAME_MAX: usize = 64;
pub const ROOM_TOPIC_MAX: usize = 256;
/// Messages per history page.
pub const PAGE: u32 = 50;

/// A message body: not blank, at most 4,000 characters. Kept as written (spacing matters in code).
pub fn parse_body(body: &str) -> Result<String, AppError> {
    if body.trim().is_empty() {
        return Err(AppError::invalid("body", "A message cannot be empty."));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(AppError::invalid(
            "body",
            format!("A message has at most {MAX_BODY_CHARS} characters."),
        ));
    }
    Ok(body.to_owned())
}

/// A client nonce: 1-64 characters of letters, digits, `-` and `_`.
pub fn parse_nonce(nonce: &str) -> Result<String, AppError> {
    let ok = !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(nonce.to_owned())
    } else {
        Err(AppError::invalid(
            "nonce",
            "A nonce has 1 to 64 letters, digits, `-` or `_`.",
        ))
    }
}

pub fn parse_room_name(raw: &str) -> Result<String, AppError> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() || name.chars().count() > ROOM_NAME_MAX || name.chars().any(char::is_control)
    {
        return Err(AppError::invalid(
            "name",
            format!("A room name has 1 to {ROOM_NAME_MAX} characters."),
        ));
    }
    Ok(name)
}

pub fn parse_topic(raw: &str) -> Result<String, AppError> {
    let topic = raw.trim();
    if topic.chars().count() > ROOM_TOPIC_MAX || topic.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(AppError::invalid(
            "topic",
            format!("A topic has at most {ROOM_TOPIC_MAX} characters."),
        ));
    }
    Ok(topic.to_owned())
}

pub fn message_view(message: &MessageRecord, author_name: &str) -> MessageView {
    MessageView {
        id: message.id,
        room: message.room_id,
        seq: message.seq,
        author: message.author_id,
        author_name: author_name.to_owned(),
        html: if message.deleted_at.is_some() {
            String::new()
        } else {
            message_html(&message.body)
        },
        body: message.body.clone(),
        created_at: message.created_at,
        edited_at: message.edited_at,
        deleted: message.deleted_at.is_some(),
    }
}

/// Views for a batch of messages, looking each author up once.
pub async fn message_views(
    state: &AppState,
    messages: &[MessageRecord],
) -> Result<Vec<MessageView>, AppError> {
    let mut names: HashMap<UserId, String> = HashMap::new();
    let mut views = Vec::with_capacity(messages.len());
    for message in messages {
        let name = match names.get(&message.author_id) {
            Some(name) => name.clone(),
            None => {
                let name = state
                    .store
                    .user_by_id(message.author_id)
                    .await?
                    .map_or_else(|| "(deleted user)".to_owned(), |u| u.display_name);
                names.insert(message.author_id, name.clone());
                name
            }
        };
        views.push(message_view(message, &name));
    }
    Ok(views)
}

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

/// Stores a message (or finds the one this nonce already made) after checking the sender may post.
/// Broadcasting is the caller's job, after the ack.
pub async fn send(
    state: &AppState,
    me: &UserRecord,
    room: RoomId,
    nonce: &str,
    body: &str,
) -> Result<(Appended, MessageView), AppError> {
    let body = parse_body(body)?;
    let nonce = parse_nonce(nonce)?;
    postable_room(state, me.id, room).await?;
    let appended = state
        .store
        .append_message(&NewMessage {
            room_id: room,
            author_id: me.id,
            body,
            nonce,
            created_at: Timestamp::now(),
        })
        .await?;
    let view = message_view(&appended.message, &me.display_name);
    Ok((appended, view))
}

async fn own_message(
    state: &AppState,
    me: &UserRecord,
    id: MessageId,
) -> Result<MessageRecord, AppError> {
    let message = state
        .store
        .message_by_id(id)
        .await?
        .ok_or_else(|| AppError::not_found("That message"))?;
    if message.author_id != me.id {
        return Err(AppError::Forbidden);
    }
    if message.deleted_at.is_some() {
        return Err(AppError::not_found("That message"));
    }
    postable_room(state, me.id, message.room_id).await?;
    Ok(message)
}

/// Edits one of the caller's messages and tells the room.
pub async fn edit(
    state: &AppState,
    me: &UserRecord,
    id: MessageId,
    body: &str,
) -> Result<MessageView, AppError> {
    let body = parse_body(body)?;
    own_message(state, me, id).await?;
    let edited = state
        .store
        .edit_message(id, &body, Timestamp::now())
        .await?;
    let view = message_view(&edited, &me.display_name);
    state.hub.publish_room(
        edited.room_id,
        ServerMsg::Updated {
            message: view.clone(),
        },
    );
    Ok(view)
}

/// Deletes one of the caller's messages (a tombstone keeps its place) and tells the room.
pub async fn delete(
    state: &AppState,
    me: &UserRecord,
    id: MessageId,
) -> Result<MessageView, AppError> {
    own_message(state, me, id).await?;
    tombstone(state, id, &me.display_name).await
}

/// Deletes a message (its author's or, by moderation, anyone's) and shows the room the tombstone.
pub async fn tombstone(
    state: &AppState,
    id: MessageId,
    author_name: &str,
) -> Result<MessageView, AppError> {
    let deleted = state.store.delete_message(id, Timestamp::now()).await?;
    let view = message_view(&deleted, author_name);
    state.hub.publish_room(
        deleted.room_id,
        ServerMsg::Updated {
            message: view.clone(),
        },
    );
    Ok(view)
}

async fn summary(
    state: &AppState,
    user: UserId,
    room: &RoomRecord,
    member: bool,
) -> Result<RoomSummary, AppError> {
    let name = match (room.kind, &room.direct_key) {
        (RoomKind::Direct, Some(_)) => direct_peer_name(state, user, room.id).await?,
        _ => room.name.clone(),
    };
    Ok(RoomSummary {
        id: room.id,
        kind: room.kind,
        name,
        topic: room.topic.clone(),
        last_seq: state.store.last_seq(room.id).await?,
        read_seq: if member {
            state.store.read_marker(user, room.id).await?
        } else {
            0
        },
        member,
    })
}

async fn direct_peer_name(state: &AppState, me: UserId, room: RoomId) -> Result<String, AppError> {
    for member in state.store.list_members(room).await? {
        if member.user_id != me {
            if let Some(user) = state.store.user_by_id(member.user_id).await? {
                return Ok(user.display_name);
            }
        }
    }
    Ok("(just you)".to_owned())
}

/// The caller's rooms and direct messages, with unread information.
pub async fn my_rooms(state: &AppState, me: &Authenticated) -> Result<Vec<RoomSummary>, AppError> {
    let rooms = state.store.rooms_of_user(me.user.id).await?;
    let mut out = Vec::with_capacity(rooms.len());
    for room in rooms
        .iter()
        .filter(|r| !r.archived || r.kind == RoomKind::Direct)
    {
        out.push(summary(state, me.user.id, room, true).await?);
    }
    Ok(out)
}

/// Public rooms matching `search`, one page.
pub async fn browse(
    state: &AppState,
    me: &Authenticated,
    search: &str,
    offset: u64,
) -> Result<(Vec<RoomSummary>, u64), AppError> {
    let search = search.trim();
    if search.chars().count() > ROOM_NAME_MAX {
        return Err(AppError::invalid("search", "That search is too long."));
    }
    let page = state
        .store
        .list_rooms(&RoomQuery {
            kind: Some(RoomKind::Public),
            search: (!search.is_empty()).then(|| search.to_owned()),
            include_archived: false,
            offset,
            limit: 50,
        })
        .await?;
    let mut out = Vec::with_capacity(page.items.len());
    for room in &page.items {
        let member = state.store.membership(room.id, me.user.id).await?.is_some();
        out.push(summary(state, me.user.id, room, member).await?);
    }
    Ok((out, page.total))
}

pub async fn create_room(
    state: &AppState,
    me: &Authenticated,
    name: &str,
    topic: &str,
    private: bool,
) -> Result<RoomSummary, AppError> {
    let now = Timestamp::now();
    let room = RoomRecord {
        id: RoomId::new(),
        kind: if private {
            RoomKind::Private
        } else {
            RoomKind::Public
        },
        name: parse_room_name(name)?,
        topic: parse_topic(topic)?,
        created_by: me.user.id,
        created_at: now,
        archived: false,
        direct_key: None,
    };
    let owner = MembershipRecord {
        room_id: room.id,
        user_id: me.user.id,
        role: MemberRole::Owner,
        joined_at: now,
    };
    state.store.create_room(&room, &[owner]).await?;
    state.hub.follow(me.user.id, room.id);
    summary(state, me.user.id, &room, true).await
}

async fn add_member(state: &AppState, room: &RoomRecord, user: UserId) -> Result<(), AppError> {
    let member = MembershipRecord {
        room_id: room.id,
        user_id: user,
        role: MemberRole::Member,
        joined_at: Timestamp::now(),
    };
    match state.store.add_member(&member).await {
        Ok(()) | Err(StoreError::Duplicate(_)) => {}
        Err(e) => return Err(e.into()),
    }
    state.hub.follow(user, room.id);
    Ok(())
}

/// Joins a public room.
pub async fn join(
    state: &AppState,
    me: &Authenticated,
    room: RoomId,
) -> Result<RoomSummary, AppError> {
    let record = state
        .store
        .room_by_id(room)
        .await?
        .filter(|r| r.kind == RoomKind::Public && !r.archived)
        .ok_or_else(|| AppError::not_found("That room"))?;
    add_member(state, &record, me.user.id).await?;
    summary(state, me.user.id, &record, true).await
}

pub async fn leave(state: &AppState, me: &Authenticated, room: RoomId) -> Result<(), AppError> {
    match state.store.remove_member(room, me.user.id).await {
        Ok(()) | Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    state.hub.unfollow(me.user.id, room);
    Ok(())
}

/// Adds another user to a room the caller belongs to (public or private; not a direct room).
pub async fn invite(
    state: &AppState,
    me: &Authenticated,
    room: RoomId,
    username: &str,
) -> Result<MemberView, AppError> {
    let record = postable_room(state, me.user.id, room).await?;
    if record.kind == RoomKind::Direct {
        return Err(AppError::invalid(
            "username",
            "Direct messages are for two people.",
        ));
    }
    let invitee = state
        .store
        .user_by_username(username.trim())
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| AppError::invalid("username", "There is no user with that name."))?;
    add_member(state, &record, invitee.id).await?;
    Ok(member_view(state, &invitee, MemberRole::Member))
}

/// The direct-message room with `username`, created on first use; the same room every time.
pub async fn open_direct(
    state: &AppState,
    me: &Authenticated,
    username: &str,
) -> Result<RoomSummary, AppError> {
    let peer = state
        .store
        .user_by_username(username.trim())
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| AppError::invalid("username", "There is no user with that name."))?;
    if peer.id == me.user.id {
        return Err(AppError::invalid(
            "username",
            "Pick someone other than yourself.",
        ));
    }
    let key = direct_key(me.user.id, peer.id);
    let room = match state.store.direct_room(&key).await? {
        Some(room) => room,
        None => {
            let now = Timestamp::now();
            let room = RoomRecord {
                id: RoomId::new(),
                kind: RoomKind::Direct,
                name: String::new(),
                topic: String::new(),
                created_by: me.user.id,
                created_at: now,
                archived: false,
                direct_key: Some(key.clone()),
            };
            let members: Vec<MembershipRecord> = [me.user.id, peer.id]
                .into_iter()
                .map(|user_id| MembershipRecord {
                    room_id: room.id,
                    user_id,
                    role: MemberRole::Member,
                    joined_at: now,
                })
                .collect();
            match state.store.create_room(&room, &members).await {
                Ok(()) => {
                    state.hub.follow(me.user.id, room.id);
                    state.hub.follow(peer.id, room.id);
                    room
                }
                // Both opened it at the same moment: use the one that won.
                Err(StoreError::Duplicate(_)) => state
                    .store
                    .direct_room(&key)
                    .await?
                    .ok_or(AppError::Internal)?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    summary(state, me.user.id, &room, true).await
}

fn member_view(state: &AppState, user: &UserRecord, role: MemberRole) -> MemberView {
    MemberView {
        user: user.id,
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        role,
        presence: state.hub.presence(user.id),
    }
}

pub async fn members(
    state: &AppState,
    me: &Authenticated,
    room: RoomId,
) -> Result<Vec<MemberView>, AppError> {
    readable_room(state, me.user.id, room).await?;
    member_views(state, room).await
}

pub async fn member_views(state: &AppState, room: RoomId) -> Result<Vec<MemberView>, AppError> {
    let mut out = Vec::new();
    for member in state.store.list_members(room).await? {
        if let Some(user) = state.store.user_by_id(member.user_id).await? {
            out.push(member_view(state, &user, member.role));
        }
    }
    Ok(out)
}

/// One page of history, oldest first: the latest page, or the page before `before`.
pub async fn history(
    state: &AppState,
    me: &Authenticated,
    room: RoomId,
    before: Option<u64>,
) -> Result<Vec<MessageView>, AppError> {
    readable_room(state, me.user.id, room).await?;
    let query = match before {
        Some(seq) => HistoryQuery::before(seq, PAGE),
        None => HistoryQuery::latest(PAGE),
    };
    let messages = state.store.history(room, query).await?;
    message_views(state, &messages).await
}

/// Moves the caller's read marker forward and tells their other tabs and devices.
pub async fn mark_read(
    state: &AppState,
    user: UserId,
    room: RoomId,
    seq: u64,
) -> Result<u64, AppError> {
    if state.store.membership(room, user).await?.is_none() {
        return Err(AppError::Forbidden);
    }
    let last = state.store.last_seq(room).await?;
    let stored = state.store.mark_read(user, room, seq.min(last)).await?;
    state
        .hub
        .publish_user(user, ServerMsg::Read { room, seq: stored });
    Ok(stored)
}

/// The room page: the room (as the caller sees it), the latest history page and the members.
/// The room as it opens: summary, members and the latest messages, reaching back far enough to include
/// the first unread one (with a little context above it) when that fits in one store page.
pub async fn room_page(
    state: &AppState,
    me: &Authenticated,
    room: RoomId,
) -> Result<super::RoomPageData, AppError> {
    let record = readable_room(state, me.user.id, room).await?;
    let member = state.store.membership(room, me.user.id).await?.is_some();
    let room_summary = summary(state, me.user.id, &record, member).await?;
    Ok(super::RoomPageData {
        messages: message_views(state, &opening_page(state, &room_summary).await?).await?,
        members: member_views(state, room).await?,
        room: room_summary,
    })
}

async fn opening_page(
    state: &AppState,
    room: &RoomSummary,
) -> Result<Vec<MessageRecord>, AppError> {
    const CONTEXT: u64 = 5;
    let unread = room.last_seq.saturating_sub(room.read_seq);
    let limit = (unread + CONTEXT).clamp(u64::from(PAGE), u64::from(MAX_PAGE_SIZE));
    let limit = u32::try_from(limit).unwrap_or(MAX_PAGE_SIZE);
    Ok(state
        .store
        .history(room.id, HistoryQuery::latest(limit))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_nonces_are_checked() {
        assert!(parse_body("   ").is_err());
        assert!(parse_body(&"x".repeat(MAX_BODY_CHARS)).is_ok());
        assert!(parse_body(&"é".repeat(MAX_BODY_CHARS + 1)).is_err());
        assert_eq!(parse_body("  code\n  block ").unwrap(), "  code\n  block ");
        assert!(parse_nonce("abc-123_X").is_ok());
        for bad in ["", "has space", "{\"$gt\":\"\"}", &"n".repeat(65)] {
            assert!(parse_nonce(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_room_name("  general   chat ").unwrap(),
            "general chat"
        );
        assert!(parse_room_name(" ").is_err());
        assert!(parse_topic(&"t".repeat(257)).is_err());
    }
}
