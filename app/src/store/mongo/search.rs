//! Search on MongoDB without text indexes (SecantusDB has none, and `$text` would not ignore accents
//! the way the embedded store does): every message document carries `terms`, its normalised words
//! (`domain::index_terms`), written with the message in the same update, under a multikey
//! (room_id, terms, created_at) index. A query is `$all` of its terms plus an anchored regex on
//! `terms` for the prefix, newest first. Runs on any MongoDB 6+; the same index serves a replica set.

use super::errors::OrUnavailable;
use super::message_rows::MessageRow;
use super::rows::collect;
use super::MongoStore;
use crate::domain::index_terms;
use crate::store::{clamp_limit, MessageRecord, SearchFilter, SearchStore, StoreResult};
use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};

#[async_trait]
impl SearchStore for MongoStore {
    async fn search_messages(
        &self,
        filter: &SearchFilter,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        if filter.is_empty() {
            return Ok(Vec::new());
        }
        let rooms: Vec<String> = filter.rooms.iter().map(ToString::to_string).collect();
        let mut all = vec![
            doc! { "room_id": { "$in": rooms } },
            doc! { "deleted_at": null },
        ];
        if !filter.terms.is_empty() {
            all.push(doc! { "terms": { "$all": filter.terms.clone() } });
        }
        // A prefix is a word (letters and digits only), so it is safe in a regex as it is.
        if let Some(prefix) = &filter.prefix {
            all.push(doc! { "terms": { "$regex": format!("^{prefix}") } });
        }
        if let Some(author) = filter.author {
            all.push(doc! { "author_id": author.to_string() });
        }
        let mut at = Document::new();
        if let Some(after) = filter.after {
            at.insert("$gte", after.millis());
        }
        if let Some(until) = filter.until {
            at.insert("$lt", until.millis());
        }
        if !at.is_empty() {
            all.push(doc! { "created_at": at });
        }
        if let Some(c) = filter.before {
            let at = c.created_at.millis();
            all.push(doc! { "$or": [
                { "created_at": { "$lt": at } },
                { "created_at": at, "_id": { "$lt": c.id.to_string() } },
            ] });
        }
        collect::<MessageRow>(
            self.messages
                .find(doc! { "$and": all })
                .sort(doc! { "created_at": -1, "_id": -1 })
                .limit(i64::from(clamp_limit(limit)))
                .await,
        )
        .await
    }
}

impl MongoStore {
    /// Gives documents written before search their `terms` (once; a no-op afterwards).
    pub(super) async fn backfill_search_terms(&self) -> StoreResult<()> {
        let mut missing = self
            .messages
            .find(doc! { "terms": { "$exists": false } })
            .projection(doc! { "_id": 1, "body": 1, "deleted_at": 1 })
            .await
            .or_unavailable("reading messages to index")?;
        while let Some(doc) = missing
            .try_next()
            .await
            .or_unavailable("reading messages to index")?
        {
            let deleted = doc.get("deleted_at").is_some_and(|d| d.as_null().is_none());
            let terms = match doc.get_str("body") {
                Ok(body) if !deleted => index_terms(body),
                _ => Vec::new(),
            };
            let Some(id) = doc.get("_id").cloned() else {
                continue;
            };
            self.messages
                .update_one(doc! { "_id": id }, doc! { "$set": { "terms": terms } })
                .await
                .or_unavailable("indexing a message")?;
        }
        Ok(())
    }
}
