//! Searching messages: only in rooms the reader is a member of now (leaving a room takes its
//! messages out of their results; deleted messages are never found), with the query's filters
//! resolved here and its exact rule (phrases) applied to what the store finds.

use super::messages::message_views;
use super::{SearchHit, SEARCH_PAGE as PAGE};
use crate::auth::sessions::Authenticated;
use crate::domain::SearchQuery;
use crate::error::AppError;
use crate::model::{MessageId, RoomId, RoomKind, Timestamp, UserId};
use crate::state::AppState;
use crate::store::{
    MentionCursor, MessageRecord, RoomQuery, SearchFilter, MAX_PAGE_SIZE, MAX_SEARCH_ROOMS,
};
use std::collections::HashMap;

/// Store pages read at most to fill one page (phrases can reject what the words found).
const MAX_SCANS: usize = 5;

/// One page of results for `q` in the reader's rooms (or only `room`, when they are in it), newest
/// first, after `before` (the last result of the previous page).
pub async fn search(
    state: &AppState,
    me: &Authenticated,
    q: &str,
    room: Option<RoomId>,
    before: Option<(Timestamp, MessageId)>,
) -> Result<Vec<SearchHit>, AppError> {
    let query = SearchQuery::parse(q).map_err(|e| AppError::invalid("q", e.0))?;
    state.limits.search(me.user.id)?;
    let mut names: HashMap<RoomId, String> = HashMap::new();
    for record in state.store.rooms_of_user(me.user.id).await? {
        let name = match record.kind {
            RoomKind::Direct => {
                super::rooms::direct_peer_name(state, me.user.id, record.id).await?
            }
            _ => record.name.into_string(),
        };
        names.insert(record.id, name);
    }
    if let Some(room) = room {
        names.retain(|id, _| *id == room);
    }
    find(state, &query, names, before).await
}

/// Moderators' search: every room, archived ones and direct messages included (the caller audits it).
pub async fn search_everywhere(
    state: &AppState,
    admin: UserId,
    q: &str,
    before: Option<(Timestamp, MessageId)>,
) -> Result<Vec<SearchHit>, AppError> {
    let query = SearchQuery::parse(q).map_err(|e| AppError::invalid("q", e.0))?;
    state.limits.search(admin)?;
    let mut names: HashMap<RoomId, String> = HashMap::new();
    let mut offset = 0;
    while names.len() < MAX_SEARCH_ROOMS {
        let page = state
            .store
            .list_rooms(&RoomQuery {
                kind: None,
                search: None,
                include_archived: true,
                offset,
                limit: MAX_PAGE_SIZE,
            })
            .await?;
        if page.items.is_empty() {
            break;
        }
        offset += page.items.len() as u64;
        for record in page.items {
            let name = match record.kind {
                RoomKind::Direct => "a direct message".to_owned(),
                _ => record.name.into_string(),
            };
            names.insert(record.id, name);
        }
    }
    find(state, &query, names, before).await
}

/// Runs `query` over the rooms named in `names` (id to the name shown with results).
async fn find(
    state: &AppState,
    query: &SearchQuery,
    mut names: HashMap<RoomId, String>,
    before: Option<(Timestamp, MessageId)>,
) -> Result<Vec<SearchHit>, AppError> {
    if let Some(wanted) = &query.room {
        names.retain(|_, name| name.eq_ignore_ascii_case(wanted));
    }
    let author = match &query.from {
        Some(username) => match state.store.user_by_username(username).await? {
            Some(user) => Some(user.id),
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    let mut rooms: Vec<RoomId> = names.keys().copied().collect();
    rooms.sort();
    rooms.truncate(MAX_SEARCH_ROOMS);
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    let mut filter = SearchFilter {
        rooms,
        terms: query.terms.clone(),
        prefix: query.prefix.clone(),
        author,
        after: query.after,
        until: query.before,
        before: before.map(|(created_at, id)| MentionCursor { created_at, id }),
    };
    let mut kept: Vec<MessageRecord> = Vec::new();
    for _ in 0..MAX_SCANS {
        let page = state.store.search_messages(&filter, PAGE as u32).await?;
        let full = page.len() == PAGE;
        let Some(last) = page.last() else { break };
        filter.before = Some(MentionCursor {
            created_at: last.created_at,
            id: last.id,
        });
        kept.extend(page.into_iter().filter(|m| query.matches(&m.body)));
        if kept.len() >= PAGE || !full {
            break;
        }
    }
    kept.truncate(PAGE);
    let views = message_views(state, &kept).await?;
    Ok(views
        .into_iter()
        .map(|message| SearchHit {
            room_name: names.get(&message.room).cloned().unwrap_or_default(),
            message,
        })
        .collect())
}
