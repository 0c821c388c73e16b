//! The audit log: append-only rows keyed by (time, id), read newest first.

use super::rows::*;
use super::{decode, encode, paginate, unavailable, EmbeddedStore};
use crate::store::{AuditEntry, AuditQuery, AuditStore, Page, StoreError, StoreResult};
use async_trait::async_trait;
use redb::ReadableTable;

#[async_trait]
impl AuditStore for EmbeddedStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let row = encode(&AuditRow::from(entry))?;
        let (at, id) = (entry.at.0, entry.id.to_string());
        self.write(move |txn| {
            let mut audit = txn.open_table(AUDIT).map_err(unavailable)?;
            if audit.get((at, id.as_str())).map_err(unavailable)?.is_some() {
                return Err(StoreError::Duplicate("audit entry"));
            }
            audit
                .insert((at, id.as_str()), row.as_slice())
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Page<AuditEntry>> {
        let query = query.clone();
        self.read(move |txn| {
            let audit = txn.open_table(AUDIT).map_err(unavailable)?;
            let actor = query.actor.as_deref().map(str::to_lowercase);
            let mut matches = Vec::new();
            for entry in audit.iter().map_err(unavailable)?.rev() {
                let (_, row) = entry.map_err(unavailable)?;
                let entry: AuditEntry = decode::<AuditRow>(row.value())?.into();
                if actor
                    .as_deref()
                    .is_some_and(|a| entry.actor_name.to_lowercase() != a)
                {
                    continue;
                }
                if query.action.as_deref().is_some_and(|a| entry.action != a) {
                    continue;
                }
                matches.push(entry);
            }
            Ok(paginate(matches, query.offset, query.limit))
        })
        .await
    }
}
