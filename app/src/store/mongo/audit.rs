//! The audit log: insert-only documents; `actor_key` is the case-folded actor name.

use super::errors::OrUnavailable;
use super::rows::{encode, page, AuditRow};
use super::MongoStore;
use crate::store::{AuditEntry, AuditQuery, AuditStore, Page, StoreResult};
use async_trait::async_trait;
use mongodb::bson::{doc, Document};

#[async_trait]
impl AuditStore for MongoStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let doc = encode(&AuditRow::from_record(entry), "audit entry")?;
        self.audit
            .insert_one(doc)
            .await
            .or_duplicate("appending audit entry", |_| "audit entry")?;
        Ok(())
    }

    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Page<AuditEntry>> {
        let mut filter = Document::new();
        if let Some(actor) = &query.actor {
            filter.insert("actor_key", actor.to_lowercase());
        }
        if let Some(action) = &query.action {
            filter.insert("action", action.as_str());
        }
        page::<AuditRow>(
            &self.audit,
            filter,
            doc! { "at": -1, "_id": -1 },
            query.offset,
            query.limit,
        )
        .await
    }
}
