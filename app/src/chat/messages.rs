//! Messages: the one owner of "durable write, then broadcast". Sending, editing, deleting and reacting
//! each take from the sender's budget, are persisted (a change under the room's next revision), and
//! only then published to the room (on every instance). Reading history and turning records into what
//! clients see live here too.

use super::access::{postable_room, readable_room};
use super::render::rich_html;
use crate::auth::sessions::Authenticated;
use crate::domain::{mentions, Emoji, MessageBody, Nonce};
use crate::error::AppError;
use crate::model::{FileId, MemberRole, MessageId, Role, RoomId, Timestamp, UserId};
use crate::protocol::{MessageView, ReactionView, RepliesView, ServerMsg, ThreadRef};
use crate::push::PushJob;
use crate::state::AppState;
use crate::store::{
    Appended, Changed, HistoryQuery, MessageChange, MessageRecord, NewMessage, StoreError,
    UserRecord,
};
use std::collections::hash_map::{Entry, HashMap};

/// Messages per history page.
pub const PAGE: u32 = 50;
/// In rooms with more members than this, only owners and admins may notify everyone with `@room`.
pub const ROOM_MENTION_FREE_UP_TO: usize = 50;
/// Usernames looked up per message; more are left as text.
const MAX_NAMED_MENTIONS: usize = 50;

/// Who wrote a message, as readers see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub display_name: String,
    pub username: String,
    pub avatar: Option<FileId>,
}

impl Author {
    pub fn of(user: &UserRecord) -> Self {
        Self {
            display_name: user.display_name.as_str().to_owned(),
            username: user.username.as_str().to_owned(),
            avatar: user.avatar,
        }
    }

    fn deleted() -> Self {
        Self {
            display_name: "(deleted user)".to_owned(),
            username: String::new(),
            avatar: None,
        }
    }
}

pub fn message_view(message: &MessageRecord, author: &Author) -> MessageView {
    MessageView {
        id: message.id,
        room: message.room_id,
        seq: message.seq,
        rev: message.rev,
        author: message.author_id,
        author_name: author.display_name.clone(),
        author_username: author.username.clone(),
        author_avatar: author.avatar,
        html: if message.deleted_at.is_some() {
            String::new()
        } else {
            rich_html(&message.body)
        },
        body: message.body.clone(),
        created_at: message.created_at,
        edited_at: message.edited_at,
        deleted: message.deleted_at.is_some(),
        mentions: message.mentions.clone(),
        reactions: message
            .reactions
            .iter()
            .map(|r| ReactionView {
                emoji: r.emoji.clone(),
                users: r.users.clone(),
            })
            .collect(),
        thread: message.thread.map(|t| ThreadRef {
            root: t.root,
            in_room: t.in_room,
            at_rev: t.at_rev,
        }),
        replies: message.replies.as_ref().map(|r| RepliesView {
            count: r.count,
            last_reply_at: r.last_reply_at,
            repliers: r.repliers.clone(),
        }),
        files: message.files.clone(),
    }
}

/// Views for a batch of messages, looking each author up once.
pub async fn message_views(
    state: &AppState,
    messages: &[MessageRecord],
) -> Result<Vec<MessageView>, AppError> {
    let mut authors: HashMap<UserId, Author> = HashMap::new();
    let mut views = Vec::with_capacity(messages.len());
    for message in messages {
        let author = match authors.entry(message.author_id) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => slot.insert(author(state, message.author_id).await?),
        };
        views.push(message_view(message, author));
    }
    Ok(views)
}

pub(super) async fn author(state: &AppState, id: UserId) -> Result<Author, AppError> {
    Ok(state
        .store
        .user_by_id(id)
        .await?
        .map_or_else(Author::deleted, |u| Author::of(&u)))
}

/// Takes one action from the sender's budget of messages (sends, edits and deletions share it).
fn spend_budget(state: &AppState, me: &UserRecord) -> Result<(), AppError> {
    state.limits.message(me.id)
}

/// Stores a message (or finds the one this nonce already made) with the `files` uploaded for it and,
/// if it is new, publishes it to the room. A reply (`thread`) goes through `threads::send_reply`,
/// which checks its root first. The caller's ack may follow: the sender's own copy reaches it
/// through its inbox, which its connection reads only after answering the command.
pub async fn send(
    state: &AppState,
    me: &UserRecord,
    room: RoomId,
    (nonce, body): (&str, &str),
    thread: Option<(MessageId, bool)>,
    (files, alts): (&[FileId], &[String]),
) -> Result<Appended, AppError> {
    let body = if files.is_empty() {
        MessageBody::parse(body)?
    } else {
        MessageBody::parse_beside_files(body)?
    };
    let nonce = Nonce::parse(nonce)?;
    spend_budget(state, me)?;
    postable_room(state, me.id, room).await?;
    let attached = crate::files::attachable(state, me, room, &nonce, (files, alts)).await?;
    let mentioned = resolve_mentions(state, me, room, &body).await?;
    let appended = state
        .store
        .append_message(&NewMessage {
            room_id: room,
            author_id: me.id,
            body,
            nonce,
            created_at: Timestamp::now(),
            mentions: mentioned,
            thread,
            files: attached,
        })
        .await?;
    if !files.is_empty() {
        attach(state, me, &appended, files).await?;
    }
    // A retried nonce made nothing new: the room already has it.
    if appended.created {
        let view = message_view(&appended.message, &Author::of(me));
        state
            .hub
            .publish_room(room, ServerMsg::Message { message: view });
        state.push.enqueue(PushJob {
            room,
            message: appended.message.id,
            seq: appended.message.seq,
            thread_only: thread.and_then(|(root, in_room)| (!in_room).then_some(root)),
            author: me.id,
            author_name: me.display_name.as_str().to_owned(),
            text: appended.message.body.as_str().to_owned(),
            has_files: !files.is_empty(),
            mentions: appended.message.mentions.clone(),
        });
    }
    Ok(appended)
}

/// Marks the files as the message's (so they are kept, and go with it). For a new message that
/// cannot have them (the same upload sent twice at once), the message is taken back: it must not
/// show files that are not its own. A retried send finds them its own already, or completes what a
/// crash cut short.
async fn attach(
    state: &AppState,
    me: &UserRecord,
    appended: &Appended,
    files: &[FileId],
) -> Result<(), AppError> {
    let message = &appended.message;
    let Err(e) = state
        .store
        .attach_files(message.id, message.room_id, me.id, files)
        .await
    else {
        return Ok(());
    };
    if !appended.created {
        tracing::warn!(message = %message.id, error = %e, "a retried send could not attach its files");
        return Ok(());
    }
    state
        .store
        .delete_message(message.id, Timestamp::now())
        .await?;
    Err(match e {
        StoreError::NotFound(_) => AppError::invalid(
            "files",
            "One of these files was sent in another message already.",
        ),
        other => other.into(),
    })
}

/// The members `body` mentions: those named (`@username`), and everyone for `@room`, which only the
/// room's owners and admins may use once the room has more than `ROOM_MENTION_FREE_UP_TO` members.
/// Names of people outside the room stay text; nobody is notified of their own words.
async fn resolve_mentions(
    state: &AppState,
    me: &UserRecord,
    room: RoomId,
    body: &MessageBody,
) -> Result<Vec<UserId>, AppError> {
    let found = mentions(body.as_str());
    if found.usernames.is_empty() && !found.room {
        return Ok(Vec::new());
    }
    let members = state.store.list_members(room).await?;
    let mut out = Vec::new();
    if found.room {
        let owner = members
            .iter()
            .any(|m| m.user_id == me.id && m.role == MemberRole::Owner);
        if !may_notify_everyone(members.len(), owner, me.role == Role::Admin) {
            return Err(AppError::invalid(
                "body",
                format!(
                    "Only the room's owners and admins can notify everyone (@room) in a room of more than {ROOM_MENTION_FREE_UP_TO} people."
                ),
            ));
        }
        out.extend(members.iter().map(|m| m.user_id));
    }
    for name in found.usernames.iter().take(MAX_NAMED_MENTIONS) {
        if let Some(user) = state.store.user_by_username(name).await? {
            if members.iter().any(|m| m.user_id == user.id) {
                out.push(user.id);
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|u| *u != me.id && seen.insert(*u));
    Ok(out)
}

/// Whether someone may use `@room` in a room of `members` people.
pub fn may_notify_everyone(members: usize, owner: bool, admin: bool) -> bool {
    members <= ROOM_MENTION_FREE_UP_TO || owner || admin
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
    let body = MessageBody::parse(body)?;
    spend_budget(state, me)?;
    let message = own_message(state, me, id).await?;
    let mentions = resolve_mentions(state, me, message.room_id, &body).await?;
    let at = Timestamp::now();
    let change = MessageChange::Edit { body, at, mentions };
    let changed = state.store.change_message(id, &change).await?;
    Ok(publish_change(state, &changed, &Author::of(me)))
}

/// Deletes one of the caller's messages (a tombstone keeps its place) and tells the room.
pub async fn delete(
    state: &AppState,
    me: &UserRecord,
    id: MessageId,
) -> Result<MessageView, AppError> {
    spend_budget(state, me)?;
    let message = own_message(state, me, id).await?;
    // The files first: a deleted message must not leave them readable.
    if !message.files.is_empty() {
        state.store.delete_message_files(id).await?;
    }
    let change = MessageChange::Delete {
        at: Timestamp::now(),
    };
    let changed = state.store.change_message(id, &change).await?;
    Ok(publish_change(state, &changed, &Author::of(me)))
}

/// Deletes anyone's message (moderation; the caller has checked the right to) and shows the room the
/// tombstone.
pub async fn tombstone(state: &AppState, id: MessageId) -> Result<MessageView, AppError> {
    state.store.delete_message_files(id).await?;
    let change = MessageChange::Delete {
        at: Timestamp::now(),
    };
    let changed = state.store.change_message(id, &change).await?;
    let author = author(state, changed.message.author_id).await?;
    Ok(publish_change(state, &changed, &author))
}

/// Adds (`on`) or removes the caller's reaction on a message in a room they may post in, and tells
/// the room. Reactions share the budget of messages.
pub async fn react(
    state: &AppState,
    me: &UserRecord,
    id: MessageId,
    emoji: &str,
    on: bool,
) -> Result<MessageView, AppError> {
    let emoji = Emoji::parse(emoji)?;
    spend_budget(state, me)?;
    let message = state
        .store
        .message_by_id(id)
        .await?
        .filter(|m| m.deleted_at.is_none())
        .ok_or_else(|| AppError::not_found("That message"))?;
    postable_room(state, me.id, message.room_id).await?;
    let change = MessageChange::React {
        user: me.id,
        emoji,
        on,
    };
    let changed = state.store.change_message(id, &change).await?;
    let author = author(state, changed.message.author_id).await?;
    Ok(publish_change(state, &changed, &author))
}

/// Tells the room about a change that took a revision (one that changed nothing took none, and
/// there is nothing to tell).
fn publish_change(state: &AppState, changed: &Changed, author: &Author) -> MessageView {
    let view = message_view(&changed.message, author);
    if changed.changed {
        state.hub.publish_room(
            changed.message.room_id,
            ServerMsg::Updated {
                message: view.clone(),
            },
        );
    }
    view
}

/// The earlier versions of a message in a room the caller can read, oldest first.
pub async fn edit_history(
    state: &AppState,
    me: &Authenticated,
    id: MessageId,
) -> Result<Vec<super::EditView>, AppError> {
    let message = state
        .store
        .message_by_id(id)
        .await?
        .ok_or_else(|| AppError::not_found("That message"))?;
    readable_room(state, me.user.id, message.room_id).await?;
    Ok(message
        .edits
        .into_iter()
        .map(|e| super::EditView {
            body: e.body,
            replaced_at: e.replaced_at,
        })
        .collect())
}

/// One page of history, oldest first: the latest page, or the page before `before`.
pub async fn history(
    state: &AppState,
    me: &Authenticated,
    room: RoomId,
    before: Option<u64>,
    after: Option<u64>,
) -> Result<Vec<MessageView>, AppError> {
    readable_room(state, me.user.id, room).await?;
    let query = match (before, after) {
        (Some(seq), _) => HistoryQuery::before(seq, PAGE),
        (None, Some(seq)) => HistoryQuery::after(seq, PAGE),
        (None, None) => HistoryQuery::latest(PAGE),
    };
    let messages = state.store.history(room, query).await?;
    message_views(state, &messages).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owners_and_admins_notify_everyone_in_big_rooms() {
        assert!(may_notify_everyone(ROOM_MENTION_FREE_UP_TO, false, false));
        assert!(!may_notify_everyone(
            ROOM_MENTION_FREE_UP_TO + 1,
            false,
            false
        ));
        assert!(may_notify_everyone(5000, true, false));
        assert!(may_notify_everyone(5000, false, true));
    }
}
