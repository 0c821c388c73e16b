//! An admin acting through one request: checked against the role as stored now (never as a token or a
//! page remembers it), and named in the audit entry of every change.

use super::audit::{self, AuditActor};
use super::AuditAction;
use crate::auth::sessions::Authenticated;
use crate::error::AppError;
use crate::state::AppState;

pub struct Admin<'a> {
    pub me: &'a Authenticated,
    pub ip: &'a str,
}

impl Admin<'_> {
    /// `forbidden` unless the caller is an admin now.
    pub fn check(&self) -> Result<(), AppError> {
        self.me.require_admin()
    }

    /// Records one change made by this admin.
    pub async fn audit(
        &self,
        state: &AppState,
        action: AuditAction,
        target: String,
        details: String,
    ) -> Result<(), AppError> {
        let actor = AuditActor::Admin {
            id: self.me.user.id,
            username: self.me.user.username.as_str(),
            ip: self.ip,
        };
        audit::record(&state.store, &actor, action, target, details).await
    }
}

/// Search text for the admin tables: trimmed, at most 64 characters, `None` when empty.
pub fn parse_search(search: &str) -> Result<Option<String>, AppError> {
    const SEARCH_MAX: usize = 64;
    let search = search.trim();
    if search.chars().count() > SEARCH_MAX {
        return Err(AppError::invalid(
            "search",
            format!("Search for at most {SEARCH_MAX} characters."),
        ));
    }
    Ok((!search.is_empty()).then(|| search.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_trimmed_and_bounded() {
        assert_eq!(parse_search("  ana ").unwrap().as_deref(), Some("ana"));
        assert_eq!(parse_search("   ").unwrap(), None);
        assert!(parse_search(&"x".repeat(65)).is_err());
    }
}
