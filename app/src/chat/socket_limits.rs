//! How many websockets one person and one client address may hold open at once, counted per
//! instance. Apart from the endpoint so the shared state can hold it without depending on the
//! endpoint.

use crate::error::AppError;
use crate::model::UserId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How many live connections one person and one client address may hold open at once.
pub struct SocketLimits {
    per_user: usize,
    per_address: usize,
    open: Mutex<(HashMap<UserId, usize>, HashMap<String, usize>)>,
}

/// A place among the open sockets, held by the socket's task; dropping it gives the place back.
pub struct SocketPermit {
    limits: Arc<SocketLimits>,
    user: UserId,
    address: String,
}

impl SocketLimits {
    pub fn new(per_user: usize, per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            per_user: per_user.max(1),
            per_address: per_address.max(1),
            open: Mutex::default(),
        })
    }

    /// A place for one more socket of `user` from `address` (a per-address key, see
    /// `rate_limit::address_key`), or `TooManyConnections`.
    pub fn admit(self: &Arc<Self>, user: UserId, address: &str) -> Result<SocketPermit, AppError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (users, addresses) = &mut *open;
        if users.get(&user).copied().unwrap_or(0) >= self.per_user
            || addresses.get(address).copied().unwrap_or(0) >= self.per_address
        {
            return Err(AppError::TooManyConnections);
        }
        *users.entry(user).or_default() += 1;
        *addresses.entry(address.to_owned()).or_default() += 1;
        Ok(SocketPermit {
            limits: self.clone(),
            user,
            address: address.to_owned(),
        })
    }
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        let (users, addresses) = &mut *open;
        if let Some(n) = users.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                users.remove(&self.user);
            }
        }
        if let Some(n) = addresses.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                addresses.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_are_capped_per_person_and_per_address_and_places_come_back() {
        let limits = SocketLimits::new(2, 3);
        let (ana, ben) = (
            UserId::from_uuid(uuid::Uuid::from_u128(1)),
            UserId::from_uuid(uuid::Uuid::from_u128(2)),
        );
        let a1 = limits.admit(ana, "10.0.0.1").unwrap();
        let _a2 = limits.admit(ana, "10.0.0.2").unwrap();
        assert_eq!(
            limits.admit(ana, "10.0.0.3").err(),
            Some(AppError::TooManyConnections)
        );
        let _b1 = limits.admit(ben, "10.0.0.1").unwrap();
        let _b2 = limits.admit(ben, "10.0.0.1").unwrap();
        assert_eq!(
            limits.admit(ben, "10.0.0.1").err(),
            Some(AppError::TooManyConnections),
            "the address is full"
        );
        drop(a1);
        assert!(limits.admit(ana, "10.0.0.4").is_ok());
    }
}
