//! The search index: (room, term, created at, message id), written in the same transaction as the
//! message (a stored message is findable at once; an edit or deletion takes its old words out with
//! it). A term's entries in a room read newest first backwards; the rooms are merged by time.

use super::rows::*;
use super::{decode, unavailable, EmbeddedStore};
use crate::domain::index_terms;
use crate::model::Timestamp;
use crate::store::{
    clamp_limit, MessageRecord, SearchFilter, SearchStore, StoreError, StoreResult,
};
use async_trait::async_trait;
use redb::{Database, ReadableTable, ReadableTableMetadata, WriteTransaction};

/// Above every term (terms are words in any script).
const MAX_TERM: &str = "\u{10FFFF}";

/// Index entries one search reads per room at most (a prefix of one common letter pair in a huge
/// room stops here rather than reading the room whole).
const MAX_SCAN_PER_ROOM: usize = 20_000;

/// Adds a message's words to the index (nothing for a deleted one).
pub(super) fn index_message(txn: &WriteTransaction, message: &MessageRecord) -> StoreResult<()> {
    if message.deleted_at.is_some() {
        return Ok(());
    }
    let (room, id) = (message.room_id.to_string(), message.id.to_string());
    let mut index = txn.open_table(SEARCH_TERMS).map_err(unavailable)?;
    for term in index_terms(&message.body) {
        index
            .insert(
                (
                    room.as_str(),
                    term.as_str(),
                    message.created_at.0,
                    id.as_str(),
                ),
                (),
            )
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Takes the words of `body` (a message's text as it was indexed) out of the index.
pub(super) fn unindex_message(
    txn: &WriteTransaction,
    room: &str,
    (at, id): (Timestamp, &str),
    body: &str,
) -> StoreResult<()> {
    let mut index = txn.open_table(SEARCH_TERMS).map_err(unavailable)?;
    for term in index_terms(body) {
        index
            .remove((room, term.as_str(), at.0, id))
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Removes a deleted room's index.
pub(super) fn unindex_room(txn: &WriteTransaction, room: &str) -> StoreResult<()> {
    txn.open_table(SEARCH_TERMS)
        .map_err(unavailable)?
        .retain_in(
            (room, "", i64::MIN, "")..(room, MAX_TERM, i64::MIN, ""),
            |_, _| false,
        )
        .map_err(unavailable)
}

/// Indexes every message once, for a store written before the index existed.
pub(super) fn backfill(db: &Database) -> StoreResult<()> {
    let txn = db.begin_write().map_err(unavailable)?;
    {
        let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
        let index = txn.open_table(SEARCH_TERMS).map_err(unavailable)?;
        if !index.is_empty().map_err(unavailable)? || messages.is_empty().map_err(unavailable)? {
            return Ok(());
        }
        drop(index);
        for entry in messages.iter().map_err(unavailable)? {
            let (_, row) = entry.map_err(unavailable)?;
            let message: MessageRecord = decode::<MessageRow>(row.value())?.into();
            index_message(&txn, &message)?;
        }
    }
    txn.commit().map_err(unavailable)
}

/// The search index table, read-only.
type Index = redb::ReadOnlyTable<(&'static str, &'static str, i64, &'static str), ()>;
/// (created at, message id): entries of one term in one room sort by it.
type Entry = (i64, String);

/// Distinct words with a prefix in one room that a search follows entry by entry; a prefix of more
/// words than this is checked on the candidates' text instead.
const MAX_PREFIX_WORDS: usize = 64;
/// Index seeks one room's matches may take per search (two common words that rarely meet stop here
/// rather than walking the room whole).
const MAX_SEEKS_PER_ROOM: usize = 20_000;

type Key = (&'static str, &'static str, i64, &'static str);

/// Entries a cursor steps over one by one before it seeks afresh: most skips in a join are short,
/// and a seek (a new descent of the tree) costs several steps.
const STEPS_BEFORE_SEEK: usize = 8;

/// One term's entries in one room, read downwards from the newest.
struct TermCursor<'a> {
    term: String,
    /// Stands on `head`; `None` before the first seek.
    iter: Option<redb::Range<'a, Key, ()>>,
    head: Option<Entry>,
    exhausted: bool,
}

impl<'a> TermCursor<'a> {
    fn new(term: String) -> Self {
        Self {
            term,
            iter: None,
            head: None,
            exhausted: false,
        }
    }

    /// The newest entry at or below `bound` (strictly below when `inclusive` is false). Bounds only
    /// ever go down, so what the cursor passed is never needed again.
    fn seek(
        &mut self,
        index: &'a Index,
        room: &str,
        bound: &Entry,
        inclusive: bool,
    ) -> StoreResult<Option<Entry>> {
        use std::ops::Bound;
        if self.exhausted {
            return Ok(None);
        }
        let fits = |at: i64, id: &str| {
            let key = (at, id);
            let bound = (bound.0, bound.1.as_str());
            if inclusive {
                key <= bound
            } else {
                key < bound
            }
        };
        if let Some(head) = self.head.as_ref().filter(|h| fits(h.0, &h.1)) {
            return Ok(Some(head.clone()));
        }
        if let Some(iter) = self.iter.as_mut() {
            // Entries passed over are compared in place, never copied.
            for _ in 0..STEPS_BEFORE_SEEK {
                let Some(next) = iter.next_back() else {
                    self.exhausted = true;
                    return Ok(None);
                };
                let (key, _) = next.map_err(unavailable)?;
                let (_, _, at, id) = key.value();
                if fits(at, id) {
                    let entry = (at, id.to_owned());
                    self.head = Some(entry.clone());
                    return Ok(Some(entry));
                }
            }
        }
        let low = (room, self.term.as_str(), i64::MIN, "");
        let high = (room, self.term.as_str(), bound.0, bound.1.as_str());
        let high = if inclusive {
            Bound::Included(high)
        } else {
            Bound::Excluded(high)
        };
        let mut iter = index
            .range::<(&str, &str, i64, &str)>((Bound::Included(low), high))
            .map_err(unavailable)?;
        match iter.next_back() {
            None => {
                self.exhausted = true;
                Ok(None)
            }
            Some(next) => {
                let entry = entry_of(next)?;
                self.head = Some(entry.clone());
                self.iter = Some(iter);
                Ok(Some(entry))
            }
        }
    }
}

type RangeItem<'a> =
    Result<(redb::AccessGuard<'a, Key>, redb::AccessGuard<'a, ()>), redb::StorageError>;

fn entry_of(item: RangeItem<'_>) -> StoreResult<Entry> {
    let (key, _) = item.map_err(unavailable)?;
    let (_, _, at, id) = key.value();
    Ok((at, id.to_owned()))
}

/// One term's entries in one room, or (for a prefix) the union of its words' entries.
struct Postings<'a> {
    cursors: Vec<TermCursor<'a>>,
}

impl<'a> Postings<'a> {
    fn of(terms: Vec<String>) -> Self {
        Self {
            cursors: terms.into_iter().map(TermCursor::new).collect(),
        }
    }

    /// The newest entry of any of the terms at or below `bound`.
    fn seek(
        &mut self,
        index: &'a Index,
        room: &str,
        bound: &Entry,
        inclusive: bool,
    ) -> StoreResult<Option<Entry>> {
        let mut newest: Option<Entry> = None;
        for cursor in &mut self.cursors {
            if let Some(entry) = cursor.seek(index, room, bound, inclusive)? {
                if newest.as_ref().is_none_or(|n| entry > *n) {
                    newest = Some(entry);
                }
            }
        }
        Ok(newest)
    }
}

/// The words starting with `prefix` in `room`, one seek each; `None` past `MAX_PREFIX_WORDS`.
fn prefix_words(index: &Index, room: &str, prefix: &str) -> StoreResult<Option<Vec<String>>> {
    use std::ops::Bound;
    let end = format!("{prefix}{MAX_TERM}");
    let mut words: Vec<String> = Vec::new();
    loop {
        let low = match words.last() {
            // Past every entry of the last word found.
            Some(last) => Bound::Excluded((room, last.as_str(), i64::MAX, MAX_TERM)),
            None => Bound::Included((room, prefix, i64::MIN, "")),
        };
        let next = index
            .range::<(&str, &str, i64, &str)>((
                low,
                Bound::Excluded((room, end.as_str(), i64::MIN, "")),
            ))
            .map_err(unavailable)?
            .next();
        let Some(entry) = next else {
            return Ok(Some(words));
        };
        if words.len() == MAX_PREFIX_WORDS {
            return Ok(None);
        }
        let (key, _) = entry.map_err(unavailable)?;
        words.push(key.value().1.to_owned());
    }
}

/// A prefix of very many words in one room, alone in the query: the entries of all its words (at
/// most `MAX_SCAN_PER_ROOM`, in word order) not newer than `top`, newest first.
fn many_words_prefix(
    index: &Index,
    room: &str,
    prefix: &str,
    top: &Entry,
) -> StoreResult<Vec<Entry>> {
    let end = format!("{prefix}{MAX_TERM}");
    let mut found: Vec<Entry> = Vec::new();
    for entry in index
        .range((room, prefix, i64::MIN, "")..(room, end.as_str(), i64::MIN, ""))
        .map_err(unavailable)?
        .take(MAX_SCAN_PER_ROOM)
    {
        let (key, _) = entry.map_err(unavailable)?;
        let (_, _, at, id) = key.value();
        if (at, id) <= (top.0, top.1.as_str()) {
            found.push((at, id.to_owned()));
        }
    }
    found.sort_unstable_by(|a, b| b.cmp(a));
    found.dedup();
    Ok(found)
}

/// Seeks one room's join may take in a row before the merge looks at the other rooms again.
const SEEKS_PER_TURN: usize = 32;

/// What one turn of a room's search came to.
enum Turn {
    /// The room's next match, newest first.
    Found(Entry),
    /// Not settled yet, but the room has nothing newer than this.
    Below(Entry),
    Done,
}

/// One room's matches, newest first, found a turn at a time: the merge works on the room whose next
/// match could be the newest, so a room without matches in the page's time span is read only down to
/// that span, never whole.
struct RoomSearch<'a> {
    index: &'a Index,
    room: &'a str,
    state: RoomState<'a>,
    /// The prefix has too many words here to follow: results' text is checked instead.
    prefix_unchecked: bool,
}

enum RoomState<'a> {
    /// The prefix's words are not looked up until the room's first turn.
    Unstarted {
        terms: &'a [String],
        prefix: Option<&'a str>,
        top: (Entry, bool),
    },
    Join(Join<'a>),
    /// A prefix of very many words alone in the query: its entries, listed.
    Listed(std::vec::IntoIter<Entry>),
    Done,
}

/// A leapfrog join of the terms' entries in one room, each step a seek in the index.
struct Join<'a> {
    postings: Vec<Postings<'a>>,
    /// Where the next match is looked for below: the last match, or the filter's upper end.
    bound: (Entry, bool),
    /// A join in progress: every list's next entry is at or below `target`, and `agreed` lists
    /// (ending at `turn`'s predecessor) stand on it.
    target: Option<Entry>,
    agreed: usize,
    turn: usize,
    seeks: usize,
}

impl<'a> RoomSearch<'a> {
    fn new(index: &'a Index, room: &'a str, filter: &'a SearchFilter, top: (Entry, bool)) -> Self {
        Self {
            index,
            room,
            state: RoomState::Unstarted {
                terms: &filter.terms,
                prefix: filter.prefix.as_deref(),
                top,
            },
            prefix_unchecked: false,
        }
    }

    /// At most `SEEKS_PER_TURN` seeks towards the next match.
    fn turn(&mut self) -> StoreResult<Turn> {
        if let RoomState::Unstarted { terms, prefix, top } = &self.state {
            self.state = self.start(terms, *prefix, top.clone())?;
        }
        match &mut self.state {
            RoomState::Unstarted { .. } | RoomState::Done => Ok(Turn::Done),
            RoomState::Listed(entries) => Ok(entries.next().map_or(Turn::Done, Turn::Found)),
            RoomState::Join(join) => {
                let turn = join.turn(self.index, self.room)?;
                if matches!(turn, Turn::Done) {
                    self.state = RoomState::Done;
                }
                Ok(turn)
            }
        }
    }

    fn start(
        &mut self,
        terms: &[String],
        prefix: Option<&str>,
        top: (Entry, bool),
    ) -> StoreResult<RoomState<'a>> {
        let mut postings: Vec<Postings<'a>> = terms
            .iter()
            .map(|t| Postings::of(vec![t.clone()]))
            .collect();
        if let Some(prefix) = prefix {
            match prefix_words(self.index, self.room, prefix)? {
                Some(words) if words.is_empty() => return Ok(RoomState::Done),
                Some(words) => postings.push(Postings::of(words)),
                None if postings.is_empty() => {
                    let listed = many_words_prefix(self.index, self.room, prefix, &top.0)?;
                    return Ok(RoomState::Listed(listed.into_iter()));
                }
                // Too many words to follow: the terms find candidates, their text decides.
                None => self.prefix_unchecked = true,
            }
        }
        Ok(RoomState::Join(Join {
            postings,
            bound: top,
            target: None,
            agreed: 0,
            turn: 0,
            seeks: 0,
        }))
    }
}

impl<'a> Join<'a> {
    fn turn(&mut self, index: &'a Index, room: &str) -> StoreResult<Turn> {
        let n = self.postings.len();
        let mut target = match self.target.take() {
            Some(target) => target,
            None => {
                let (bound, inclusive) = &self.bound;
                let Some(first) = self.postings[0].seek(index, room, bound, *inclusive)? else {
                    return Ok(Turn::Done);
                };
                (self.agreed, self.turn) = (1, 1 % n);
                first
            }
        };
        // Every list moves down to its newest entry not newer than the target, until all agree.
        for _ in 0..SEEKS_PER_TURN {
            if self.agreed == n {
                self.bound = (target.clone(), false);
                return Ok(Turn::Found(target));
            }
            self.seeks += 1;
            if self.seeks > MAX_SEEKS_PER_ROOM {
                return Ok(Turn::Done);
            }
            let Some(entry) = self.postings[self.turn].seek(index, room, &target, true)? else {
                return Ok(Turn::Done);
            };
            if entry == target {
                self.agreed += 1;
            } else {
                target = entry;
                self.agreed = 1;
            }
            self.turn = (self.turn + 1) % n;
        }
        if self.agreed == n {
            self.bound = (target.clone(), false);
            return Ok(Turn::Found(target));
        }
        self.target = Some(target.clone());
        Ok(Turn::Below(target))
    }
}

impl EmbeddedStore {
    /// Bytes the search index takes in the database file: its entries, its tree and the slack in
    /// its pages (what the index costs on disk, apart from the messages).
    pub async fn search_index_bytes(&self) -> StoreResult<u64> {
        self.read(|txn| {
            let stats = txn
                .open_table(SEARCH_TERMS)
                .map_err(unavailable)?
                .stats()
                .map_err(unavailable)?;
            Ok(stats.stored_bytes() + stats.metadata_bytes() + stats.fragmented_bytes())
        })
        .await
    }
}

#[async_trait]
impl SearchStore for EmbeddedStore {
    async fn search_messages(
        &self,
        filter: &SearchFilter,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        if filter.is_empty() {
            return Ok(Vec::new());
        }
        let filter = filter.clone();
        let limit = clamp_limit(limit) as usize;
        self.read(move |txn| {
            let index: Index = txn.open_table(SEARCH_TERMS).map_err(unavailable)?;
            let by_id = txn.open_table(MESSAGE_IDS).map_err(unavailable)?;
            let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
            let rooms: Vec<String> = filter.rooms.iter().map(ToString::to_string).collect();
            // Pages end below the cursor and the `before:` date; the seeks start there.
            let mut top: (Entry, bool) = ((i64::MAX, MAX_TERM.to_owned()), true);
            if let Some(until) = filter.until {
                top = top.min(((until.0, String::new()), false));
            }
            if let Some(c) = &filter.before {
                top = top.min(((c.created_at.0, c.id.to_string()), false));
            }
            let mut searches: Vec<RoomSearch<'_>> = rooms
                .iter()
                .map(|room| RoomSearch::new(&index, room, &filter, top.clone()))
                .collect();
            // Each room's next match, or how far down it is known to have none: a found match on
            // top is newer than anything any room has left, so it is the next result.
            let mut frontier = std::collections::BinaryHeap::new();
            for i in 0..searches.len() {
                frontier.push((top.0.clone(), false, i));
            }
            let mut found = Vec::new();
            while let Some((entry, settled, i)) = frontier.pop() {
                // Everything left is older than the range.
                if filter.after.is_some_and(|after| entry.0 < after.0) {
                    break;
                }
                if !settled {
                    match searches[i].turn()? {
                        Turn::Found(next) => frontier.push((next, true, i)),
                        Turn::Below(next) => frontier.push((next, false, i)),
                        Turn::Done => {}
                    }
                    continue;
                }
                // The room's next turn starts below this match.
                frontier.push((entry.clone(), false, i));
                let (at, id) = entry;
                let Some(place) = by_id.get(id.as_str()).map_err(unavailable)? else {
                    return Err(StoreError::Corrupt("search index points nowhere".into()));
                };
                let (lane, key) = place.value();
                let Some(row) = messages.get((lane, key)).map_err(unavailable)? else {
                    return Err(StoreError::Corrupt(
                        "message id index points nowhere".into(),
                    ));
                };
                let message: MessageRecord = decode::<MessageRow>(row.value())?.into();
                if message.deleted_at.is_some()
                    || !filter.admits(Timestamp(at), &id, message.author_id)
                    || (searches[i].prefix_unchecked
                        && !filter.has_terms(&index_terms(&message.body)))
                {
                    continue;
                }
                found.push(message);
                if found.len() == limit {
                    break;
                }
            }
            Ok(found)
        })
        .await
    }
}
