//! Messages: the one owner of "durable write, then broadcast". Sending, editing and deleting each take
//! from the sender's budget, are persisted, and only then published to the room (on every instance).
//! Reading history and turning records into what clients see live here too.

use super::access::{postable_room, readable_room};
use super::render::message_html;
use crate::auth::sessions::Authenticated;
use crate::domain::{MessageBody, Nonce};
use crate::error::AppError;
use crate::model::{MessageId, RoomId, Timestamp, UserId};
use crate::protocol::{MessageView, ServerMsg};
use crate::state::AppState;
use crate::store::{Appended, HistoryQuery, MessageRecord, NewMessage, UserRecord};
use std::collections::hash_map::{Entry, HashMap};

/// Messages per history page.
pub const PAGE: u32 = 50;

/// Who wrote a message, as readers see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub display_name: String,
    pub username: String,
}

impl Author {
    pub fn of(user: &UserRecord) -> Self {
        Self {
            display_name: user.display_name.as_str().to_owned(),
            username: user.username.as_str().to_owned(),
        }
    }

    fn deleted() -> Self {
        Self {
            display_name: "(deleted user)".to_owned(),
            username: String::new(),
        }
    }
}

pub fn message_view(message: &MessageRecord, author: &Author) -> MessageView {
    MessageView {
        id: message.id,
        room: message.room_id,
        seq: message.seq,
        author: message.author_id,
        author_name: author.display_name.clone(),
        author_username: author.username.clone(),
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

async fn author(state: &AppState, id: UserId) -> Result<Author, AppError> {
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

/// Stores a message (or finds the one this nonce already made) and, if it is new, publishes it to the
/// room. The caller's ack may follow: the sender's own copy reaches it through its inbox, which its
/// connection reads only after answering the command.
pub async fn send(
    state: &AppState,
    me: &UserRecord,
    room: RoomId,
    nonce: &str,
    body: &str,
) -> Result<Appended, AppError> {
    let body = MessageBody::parse(body)?;
    let nonce = Nonce::parse(nonce)?;
    spend_budget(state, me)?;
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
    // A retried nonce made nothing new: the room already has it.
    if appended.created {
        let view = message_view(&appended.message, &Author::of(me));
        state
            .hub
            .publish_room(room, ServerMsg::Message { message: view });
    }
    Ok(appended)
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
    own_message(state, me, id).await?;
    let edited = state
        .store
        .edit_message(id, &body, Timestamp::now())
        .await?;
    Ok(publish_update(state, &edited, &Author::of(me)))
}

/// Deletes one of the caller's messages (a tombstone keeps its place) and tells the room.
pub async fn delete(
    state: &AppState,
    me: &UserRecord,
    id: MessageId,
) -> Result<MessageView, AppError> {
    spend_budget(state, me)?;
    own_message(state, me, id).await?;
    let deleted = state.store.delete_message(id, Timestamp::now()).await?;
    Ok(publish_update(state, &deleted, &Author::of(me)))
}

/// Deletes anyone's message (moderation; the caller has checked the right to) and shows the room the
/// tombstone.
pub async fn tombstone(state: &AppState, id: MessageId) -> Result<MessageView, AppError> {
    let deleted = state.store.delete_message(id, Timestamp::now()).await?;
    let author = author(state, deleted.author_id).await?;
    Ok(publish_update(state, &deleted, &author))
}

fn publish_update(state: &AppState, message: &MessageRecord, author: &Author) -> MessageView {
    let view = message_view(message, author);
    state.hub.publish_room(
        message.room_id,
        ServerMsg::Updated {
            message: view.clone(),
        },
    );
    view
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
