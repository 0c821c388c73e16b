//! The audit log: every admin action (and admin bootstrap) writes exactly one entry, built here, and
//! admins read the log newest first. The store has no update or delete for entries.

use super::{AuditAction, AuditRow, TablePage, TABLE_PAGE};
use crate::error::AppError;
use crate::model::{AuditId, Timestamp, UserId};
use crate::store::{AuditEntry, AuditQuery, DynStore};

/// Who did it.
pub enum AuditActor<'a> {
    /// The server itself (admin bootstrap from the command line or the environment).
    System,
    /// A signed-in admin, from the request's address.
    Admin {
        id: UserId,
        username: &'a str,
        ip: &'a str,
    },
}

/// Writes one audit entry.
pub async fn record(
    store: &DynStore,
    actor: &AuditActor<'_>,
    action: AuditAction,
    target: String,
    details: String,
) -> Result<(), AppError> {
    let (actor_id, actor_name, ip) = match actor {
        AuditActor::System => (None, "system", ""),
        AuditActor::Admin { id, username, ip } => (Some(*id), *username, *ip),
    };
    let entry = AuditEntry {
        id: AuditId::new(),
        at: Timestamp::now(),
        actor_id,
        actor_name: actor_name.to_owned(),
        action: action.as_str().to_owned(),
        target,
        ip: ip.to_owned(),
        details,
    };
    store.append_audit(&entry).await?;
    tracing::info!(actor = actor_name, action = action.as_str(), target = %entry.target, "audited");
    Ok(())
}

/// One page of the log, newest first, filtered by actor (exact username) and action.
pub async fn page(
    store: &DynStore,
    actor: Option<String>,
    action: &str,
    offset: u64,
) -> Result<TablePage<AuditRow>, AppError> {
    let action = action.trim();
    let action = if action.is_empty() {
        None
    } else {
        Some(
            AuditAction::from_name(action)
                .ok_or_else(|| AppError::invalid("action", "Pick an action from the list."))?,
        )
    };
    let query = AuditQuery {
        actor,
        action: action.map(|a| a.as_str().to_owned()),
        offset,
        limit: TABLE_PAGE,
    };
    let page = store.list_audit(&query).await?;
    Ok(TablePage {
        items: page
            .items
            .into_iter()
            .map(|e| AuditRow {
                id: e.id,
                at: e.at,
                actor: e.actor_name,
                action: e.action,
                target: e.target,
                ip: e.ip,
                details: e.details,
            })
            .collect(),
        total: page.total,
        offset,
    })
}
