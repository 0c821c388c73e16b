//! The dashboard's numbers.

use super::actor::Admin;
use super::DashboardStats;
use crate::error::AppError;
use crate::model::Timestamp;
use crate::state::AppState;

pub async fn stats(state: &AppState, admin: &Admin<'_>) -> Result<DashboardStats, AppError> {
    admin.check()?;
    let users = state.store.user_stats().await?;
    let day_ago = Timestamp::now().plus_millis(-24 * 60 * 60 * 1000);
    let messages = state.store.message_stats(day_ago).await?;
    let (sockets_open, users_online) = state.hub.counts();
    Ok(DashboardStats {
        users_total: users.total,
        users_disabled: users.disabled,
        admins: users.admins,
        rooms: state.store.count_rooms().await?,
        messages_total: messages.total,
        messages_24h: messages.since,
        sockets_open: sockets_open as u64,
        users_online: users_online as u64,
        driver: state.store.driver().to_owned(),
    })
}
