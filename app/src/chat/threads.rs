//! Threads: replies stored with their root (see `store::ThreadLink`), the root's summary kept up to
//! date after each reply, and who follows a thread (its author, everyone who replied, everyone a reply
//! mentioned): the Threads view lists those with what each follower has not read yet.

use super::access::{postable_room, readable_room};
use super::mentions::{room_as_seen, Seen};
use super::messages::{author, message_view, message_views};
use super::{FollowedThread, ThreadPage};
use crate::auth::sessions::Authenticated;
use crate::error::AppError;
use crate::model::{FileId, MessageId, RoomId, Timestamp};
use crate::protocol::ServerMsg;
use crate::state::AppState;
use crate::store::{Appended, MessageChange, MessageRecord, UserRecord};
use std::collections::HashMap;

/// Replies per page of a thread panel.
pub const PAGE: u32 = 50;

/// Sends a reply (`text`: nonce and body) to `root` in `room` (also to the room's timeline with
/// `also_in_room`): checked like any message, under a root it may go under, then the root's summary and the followers.
pub async fn send_reply(
    state: &AppState,
    me: &UserRecord,
    room: RoomId,
    text: (&str, &str),
    (root, also_in_room): (MessageId, bool),
    files: (&[FileId], &[String]),
) -> Result<Appended, AppError> {
    postable_room(state, me.id, room).await?;
    let root = root_for_reply(state, room, root).await?;
    let thread = Some((root.id, also_in_room));
    let appended = super::messages::send(state, me, room, text, thread, files).await?;
    // Also on a retry: a summary a crash left behind is brought up to date.
    after_reply(state, me, &root, &appended.message).await?;
    Ok(appended)
}

/// The root a reply in `room` may go under: a message of that room that is not deleted and not a
/// reply itself (threads do not nest).
pub async fn root_for_reply(
    state: &AppState,
    room: RoomId,
    root: MessageId,
) -> Result<MessageRecord, AppError> {
    let record = state
        .store
        .message_by_id(root)
        .await?
        .filter(|m| m.room_id == room)
        .ok_or_else(|| AppError::not_found("That message"))?;
    if record.deleted_at.is_some() {
        return Err(AppError::invalid("thread", "That message was deleted."));
    }
    if record.thread.is_some() {
        return Err(AppError::invalid(
            "thread",
            "Replies go in the thread of the message that started it.",
        ));
    }
    Ok(record)
}

/// After a reply is stored: the root's summary (published like any change), and the followers. The
/// replier has read the thread up to their reply; the root's author and the people it mentions have
/// not. Safe to repeat (a retried send runs it again).
pub async fn after_reply(
    state: &AppState,
    me: &UserRecord,
    root: &MessageRecord,
    reply: &MessageRecord,
) -> Result<(), AppError> {
    let count = state.store.count_replies(root.id).await?;
    let change = MessageChange::Replied {
        user: me.id,
        at: reply.created_at,
        count,
    };
    let changed = state.store.change_message(root.id, &change).await?;
    if changed.changed {
        let author = author(state, root.author_id).await?;
        let message = message_view(&changed.message, &author);
        state
            .hub
            .publish_room(root.room_id, ServerMsg::Updated { message });
    }
    let (room, now) = (root.room_id, Timestamp::now());
    state
        .store
        .follow_thread(me.id, root.id, room, count, now)
        .await?;
    state.store.mark_thread_read(me.id, root.id, count).await?;
    if root.author_id != me.id {
        state
            .store
            .follow_thread(root.author_id, root.id, room, 0, now)
            .await?;
    }
    for user in reply.mentions.iter().filter(|u| **u != me.id) {
        let read = count.saturating_sub(1);
        state
            .store
            .follow_thread(*user, root.id, room, read, now)
            .await?;
    }
    Ok(())
}

/// A thread's root and replies (the newest page, or the one before reply revision `before`), if the
/// reader may read its room.
pub async fn thread_page(
    state: &AppState,
    me: &Authenticated,
    root: MessageId,
    before: Option<u64>,
) -> Result<ThreadPage, AppError> {
    let record = readable_root(state, me, root).await?;
    let replies = state.store.thread_replies(root, before, PAGE).await?;
    let more = replies.len() as u32 == PAGE;
    let following = state.store.thread_follow(me.user.id, root).await?.is_some();
    let author = author(state, record.author_id).await?;
    Ok(ThreadPage {
        root: message_view(&record, &author),
        replies: message_views(state, &replies).await?,
        following,
        more,
    })
}

/// The threads the reader follows in rooms they are still in, latest reply first.
pub async fn followed(
    state: &AppState,
    me: &Authenticated,
) -> Result<Vec<FollowedThread>, AppError> {
    let follows = state.store.followed_threads(me.user.id).await?;
    let mut rooms: HashMap<RoomId, Seen> = HashMap::new();
    let mut kept = Vec::new();
    for follow in follows {
        let seen = match rooms.get(&follow.room) {
            Some(seen) => seen.clone(),
            None => {
                let seen = room_as_seen(state, me, follow.room).await?;
                rooms.insert(follow.room, seen.clone());
                seen
            }
        };
        let Some((room_name, _)) = seen else { continue };
        let Some(root) = state.store.message_by_id(follow.root).await? else {
            continue;
        };
        kept.push((root, room_name, follow.read));
    }
    kept.sort_by_key(|(root, _, _)| {
        std::cmp::Reverse(root.replies.as_ref().map(|r| r.last_reply_at))
    });
    let records: Vec<MessageRecord> = kept.iter().map(|(m, _, _)| m.clone()).collect();
    let views = message_views(state, &records).await?;
    Ok(views
        .into_iter()
        .zip(kept)
        .map(|(root, (_, room_name, read))| FollowedThread {
            root,
            room_name,
            read,
        })
        .collect())
}

/// Follows (`on`) or stops following a thread in a room the reader may read. A new follow starts
/// with every reply there is read.
pub async fn set_following(
    state: &AppState,
    me: &Authenticated,
    root: MessageId,
    on: bool,
) -> Result<bool, AppError> {
    if !on {
        state.store.unfollow_thread(me.user.id, root).await?;
        return Ok(false);
    }
    let record = readable_root(state, me, root).await?;
    let read = record.replies.map_or(0, |r| r.count);
    state
        .store
        .follow_thread(me.user.id, root, record.room_id, read, Timestamp::now())
        .await?;
    Ok(true)
}

/// The reader has seen `read` replies of a thread they follow.
pub async fn mark_read(
    state: &AppState,
    me: &Authenticated,
    root: MessageId,
    read: u64,
) -> Result<(), AppError> {
    state.store.mark_thread_read(me.user.id, root, read).await?;
    Ok(())
}

/// A thread's root (a message that is not itself a reply) in a room the reader can read.
async fn readable_root(
    state: &AppState,
    me: &Authenticated,
    root: MessageId,
) -> Result<MessageRecord, AppError> {
    let record = state
        .store
        .message_by_id(root)
        .await?
        .filter(|m| m.thread.is_none())
        .ok_or_else(|| AppError::not_found("That thread"))?;
    readable_room(state, me.user.id, record.room_id).await?;
    Ok(record)
}
