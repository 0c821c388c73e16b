//! Rooms and memberships: who may read and post where, the caller's rooms and the public ones,
//! creating, joining, leaving, inviting, direct messages, members, the room page and read markers.

use super::access::{postable_room, readable_room, room_record};
use super::messages::{message_views, PAGE};
use super::{InvitationView, MemberView, RoomPageData, RoomSummary};
use crate::auth::sessions::Authenticated;
use crate::domain::{RoomName, RoomTopic, ROOM_NAME_MAX};
use crate::error::AppError;
use crate::model::{MemberRole, NotifyLevel, RoomId, RoomKind, Timestamp, UserId};
use crate::protocol::ServerMsg;
use crate::state::AppState;
use crate::store::{
    direct_key, HistoryQuery, InvitationRecord, MembershipRecord, MessageRecord, RoomQuery,
    RoomRecord, StoreError, UserRecord, MAX_PAGE_SIZE,
};

async fn summary(
    state: &AppState,
    user: UserId,
    room: &RoomRecord,
    member: bool,
) -> Result<RoomSummary, AppError> {
    let name = match (room.kind, &room.direct_key) {
        (RoomKind::Direct, Some(_)) => direct_peer_name(state, user, room.id).await?,
        _ => room.name.as_str().to_owned(),
    };
    let read_seq = if member {
        state.store.read_marker(user, room.id).await?
    } else {
        0
    };
    Ok(RoomSummary {
        id: room.id,
        kind: room.kind,
        name,
        topic: room.topic.as_str().to_owned(),
        last_seq: state.store.last_seq(room.id).await?,
        read_seq,
        mentions: if member {
            state.store.count_mentions(user, room.id, read_seq).await?
        } else {
            0
        },
        notify: if member {
            state.store.notify_level(user, room.id).await?
        } else {
            NotifyLevel::default()
        },
        member,
    })
}

pub(super) async fn direct_peer_name(
    state: &AppState,
    me: UserId,
    room: RoomId,
) -> Result<String, AppError> {
    for member in state.store.list_members(room).await? {
        if member.user_id != me {
            if let Some(user) = state.store.user_by_id(member.user_id).await? {
                return Ok(user.display_name.into_string());
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
    let (name, topic) = (RoomName::parse(name)?, RoomTopic::parse(topic)?);
    state.limits.room_action(me.user.id)?;
    let room = RoomRecord {
        id: RoomId::new(),
        kind: if private {
            RoomKind::Private
        } else {
            RoomKind::Public
        },
        name,
        topic,
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

pub(super) async fn add_member(
    state: &AppState,
    room: &RoomRecord,
    user: UserId,
) -> Result<(), AppError> {
    let member = MembershipRecord {
        room_id: room.id,
        user_id: user,
        role: MemberRole::Member,
        joined_at: Timestamp::now(),
    };
    match state.store.add_member(&member).await {
        Ok(()) => {}
        // A member already: nothing changed.
        Err(StoreError::Duplicate(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    state.hub.follow(user, room.id);
    if let Some(record) = state.store.user_by_id(user).await? {
        let member = member_view(state, &record, MemberRole::Member);
        state.hub.publish_room(
            room.id,
            ServerMsg::MemberJoined {
                room: room.id,
                member,
            },
        );
    }
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
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    state.hub.unfollow(me.user.id, room);
    state.hub.publish_room(
        room,
        ServerMsg::MemberLeft {
            room,
            user: me.user.id,
        },
    );
    Ok(())
}

/// Invites another user to a room the caller belongs to (public or private; not a direct room). They
/// become a member only when they accept; they hear about the invitation at once.
pub async fn invite(
    state: &AppState,
    me: &Authenticated,
    room: RoomId,
    username: &str,
) -> Result<InvitationView, AppError> {
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
    if state.store.membership(room, invitee.id).await?.is_some() {
        return Err(AppError::invalid(
            "username",
            format!("{} is a member already.", invitee.display_name),
        ));
    }
    state.limits.room_action(me.user.id)?;
    let invitation = InvitationRecord {
        room_id: room,
        user_id: invitee.id,
        invited_by: me.user.id,
        at: Timestamp::now(),
    };
    match state.store.add_invitation(&invitation).await {
        // Invited twice: still one invitation.
        Ok(()) | Err(StoreError::Duplicate(_)) => {}
        Err(e) => return Err(e.into()),
    }
    state
        .hub
        .publish_user(invitee.id, ServerMsg::InvitationsChanged);
    Ok(InvitationView {
        room: room_summary_for(&record),
        invited_by: member_view(state, &me.user, MemberRole::Member),
        invitee: member_view(state, &invitee, MemberRole::Member),
        at: invitation.at,
    })
}

fn room_summary_for(room: &RoomRecord) -> RoomSummary {
    RoomSummary {
        id: room.id,
        kind: room.kind,
        name: room.name.as_str().to_owned(),
        topic: room.topic.as_str().to_owned(),
        last_seq: 0,
        read_seq: 0,
        mentions: 0,
        notify: NotifyLevel::default(),
        member: false,
    }
}

/// The caller's open invitations, oldest first (rooms deleted meanwhile left out).
pub async fn invitations(
    state: &AppState,
    me: &Authenticated,
) -> Result<Vec<InvitationView>, AppError> {
    let mut out = Vec::new();
    for invitation in state.store.invitations_of(me.user.id).await? {
        let Some(room) = state.store.room_by_id(invitation.room_id).await? else {
            continue;
        };
        let Some(inviter) = state.store.user_by_id(invitation.invited_by).await? else {
            continue;
        };
        out.push(InvitationView {
            room: room_summary_for(&room),
            invited_by: member_view(state, &inviter, MemberRole::Member),
            invitee: member_view(state, &me.user, MemberRole::Member),
            at: invitation.at,
        });
    }
    Ok(out)
}

/// Accepts an invitation: the caller becomes a member and the room shows up live.
pub async fn accept_invitation(
    state: &AppState,
    me: &Authenticated,
    room: RoomId,
) -> Result<RoomSummary, AppError> {
    let invited = state
        .store
        .invitations_of(me.user.id)
        .await?
        .iter()
        .any(|i| i.room_id == room);
    if !invited {
        return Err(AppError::not_found("That invitation"));
    }
    let record = room_record(state, room).await?;
    // Member first, invitation gone second: a failure in between leaves an invitation that can be
    // accepted again, never a lost one.
    add_member(state, &record, me.user.id).await?;
    state.store.remove_invitation(room, me.user.id).await?;
    state
        .hub
        .publish_user(me.user.id, ServerMsg::InvitationsChanged);
    summary(state, me.user.id, &record, true).await
}

/// Declines an invitation (declining one that is gone is fine).
pub async fn decline_invitation(
    state: &AppState,
    me: &Authenticated,
    room: RoomId,
) -> Result<(), AppError> {
    if state.store.remove_invitation(room, me.user.id).await? {
        state
            .hub
            .publish_user(me.user.id, ServerMsg::InvitationsChanged);
    }
    Ok(())
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
            state.limits.room_action(me.user.id)?;
            let now = Timestamp::now();
            let room = RoomRecord {
                id: RoomId::new(),
                kind: RoomKind::Direct,
                name: RoomName::direct(),
                topic: RoomTopic::default(),
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
        username: user.username.as_str().to_owned(),
        display_name: user.display_name.as_str().to_owned(),
        avatar: user.avatar,
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

/// Sets what the caller hears about a room they are in.
pub async fn set_notify(
    state: &AppState,
    user: UserId,
    room: RoomId,
    level: &str,
) -> Result<NotifyLevel, AppError> {
    let level = NotifyLevel::parse(level)
        .ok_or_else(|| AppError::invalid("level", "Choose all, mentions or nothing."))?;
    if state.store.membership(room, user).await?.is_none() {
        return Err(AppError::Forbidden);
    }
    state.store.set_notify_level(user, room, level).await?;
    Ok(level)
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

/// The room as it opens: summary, members and the latest messages, reaching back far enough to include
/// the first unread one (with a little context above it) when that fits in one store page.
pub async fn room_page(
    state: &AppState,
    me: &Authenticated,
    room: RoomId,
    at: Option<u64>,
) -> Result<RoomPageData, AppError> {
    let record = readable_room(state, me.user.id, room).await?;
    let member = state.store.membership(room, me.user.id).await?.is_some();
    let room_summary = summary(state, me.user.id, &record, member).await?;
    // Read before the messages: they are at least this current, so resuming from it misses nothing.
    let rev = state.store.room_revision(room).await?;
    Ok(RoomPageData {
        rev,
        messages: message_views(state, &opening_page(state, &room_summary, at).await?).await?,
        members: member_views(state, room).await?,
        room: room_summary,
    })
}

async fn opening_page(
    state: &AppState,
    room: &RoomSummary,
    at: Option<u64>,
) -> Result<Vec<MessageRecord>, AppError> {
    const CONTEXT: u64 = 5;
    // Opened at a message (a search result, a link): the messages on both sides of it.
    if let Some(at) = at.filter(|at| (1..=room.last_seq).contains(at)) {
        let half = PAGE / 2;
        let mut around = state
            .store
            .history(room.id, HistoryQuery::before(at + 1, half))
            .await?;
        around.extend(
            state
                .store
                .history(room.id, HistoryQuery::after(at, half))
                .await?,
        );
        return Ok(around);
    }
    let unread = room.last_seq.saturating_sub(room.read_seq);
    let limit = (unread + CONTEXT).clamp(u64::from(PAGE), u64::from(MAX_PAGE_SIZE));
    let limit = u32::try_from(limit).unwrap_or(MAX_PAGE_SIZE);
    Ok(state
        .store
        .history(room.id, HistoryQuery::latest(limit))
        .await?)
}
