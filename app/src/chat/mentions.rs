//! The Mentions view: messages that mention the reader, newest first, only from rooms they are in now,
//! each marked unread when it comes after their read marker there.

use super::messages::message_views;
use super::MentionView;
use crate::auth::sessions::Authenticated;
use crate::error::AppError;
use crate::model::{MessageId, RoomId, RoomKind, Timestamp};
use crate::state::AppState;
use crate::store::{MentionCursor, MessageRecord};
use std::collections::HashMap;

use super::MENTIONS_PAGE as PAGE;
/// Store pages read at most to fill one page (mentions from rooms left since are skipped).
const MAX_SCANS: usize = 10;

/// What the reader may see of one room: its name for them and their read marker, or nothing.
pub(super) type Seen = Option<(String, u64)>;

pub async fn my_mentions(
    state: &AppState,
    me: &Authenticated,
    before: Option<(Timestamp, MessageId)>,
) -> Result<Vec<MentionView>, AppError> {
    let user = me.user.id;
    let mut cursor = before.map(|(created_at, id)| MentionCursor { created_at, id });
    let mut rooms: HashMap<RoomId, Seen> = HashMap::new();
    let mut kept: Vec<(MessageRecord, String, bool)> = Vec::new();
    for _ in 0..MAX_SCANS {
        let page = state.store.mentions_of(user, cursor, PAGE as u32).await?;
        let Some(last) = page.last() else { break };
        cursor = Some(MentionCursor {
            created_at: last.created_at,
            id: last.id,
        });
        let full = page.len() == PAGE;
        for message in page {
            let seen = match rooms.get(&message.room_id) {
                Some(seen) => seen.clone(),
                None => {
                    let seen = room_as_seen(state, me, message.room_id).await?;
                    rooms.insert(message.room_id, seen.clone());
                    seen
                }
            };
            if let Some((name, read)) = seen {
                let unread = message.seq > read;
                kept.push((message, name, unread));
            }
        }
        if kept.len() >= PAGE || !full {
            break;
        }
    }
    kept.truncate(PAGE);
    let records: Vec<MessageRecord> = kept.iter().map(|(m, _, _)| m.clone()).collect();
    let views = message_views(state, &records).await?;
    Ok(views
        .into_iter()
        .zip(kept)
        .map(|(message, (_, room_name, unread))| MentionView {
            message,
            room_name,
            unread,
        })
        .collect())
}

/// The room's name and the reader's read marker, if they are a member now (leaving a room takes its
/// mentions out of the view).
pub(super) async fn room_as_seen(
    state: &AppState,
    me: &Authenticated,
    room: RoomId,
) -> Result<Seen, AppError> {
    if state.store.membership(room, me.user.id).await?.is_none() {
        return Ok(None);
    }
    let Some(record) = state.store.room_by_id(room).await? else {
        return Ok(None);
    };
    let name = match record.kind {
        RoomKind::Direct => super::rooms::direct_peer_name(state, me.user.id, room).await?,
        _ => record.name.into_string(),
    };
    let read = state.store.read_marker(me.user.id, room).await?;
    Ok(Some((name, read)))
}
