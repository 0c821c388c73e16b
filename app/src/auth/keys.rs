//! Everything authentication needs besides the store, built once at start-up: the token keys and
//! lifetimes, password hashing, and the login and registration limits.

use super::cookies;
use super::password::Passwords;
use super::throttle::LoginThrottle;
use super::tokens::{AccessTokens, RefreshChain};
use crate::rate_limit::KeyedRateLimit;
use http::HeaderValue;
use std::time::Duration;

/// Failed logins allowed per account before the first lockout (then 1 min, 5 min, 15 min, 1 h).
pub const ACCOUNT_FREE_FAILURES: u32 = 4;
/// Failed logins allowed per IP address before the first lockout: higher, since many people can share
/// one address.
pub const IP_FREE_FAILURES: u32 = 19;

pub struct AuthSettings {
    pub jwt_secret: Vec<u8>,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// Cookies get `Secure` when users reach us over https.
    pub secure_cookies: bool,
    pub registrations_per_ip_per_hour: u32,
}

pub struct Auth {
    pub(super) tokens: AccessTokens,
    pub(super) refresh_chain: RefreshChain,
    pub passwords: Passwords,
    pub(super) accounts: LoginThrottle,
    pub(super) ips: LoginThrottle,
    pub(super) registrations: KeyedRateLimit<String>,
    pub(super) secure_cookies: bool,
    pub(super) refresh_ttl_secs: u64,
}

impl Auth {
    pub fn new(settings: AuthSettings) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            tokens: AccessTokens::new(&settings.jwt_secret, settings.access_ttl_secs),
            refresh_chain: RefreshChain::new(&settings.jwt_secret),
            passwords: Passwords::new(cpus * 2),
            accounts: LoginThrottle::new(ACCOUNT_FREE_FAILURES),
            ips: LoginThrottle::new(IP_FREE_FAILURES),
            registrations: KeyedRateLimit::new(
                settings.registrations_per_ip_per_hour,
                Duration::from_secs(60 * 60),
            ),
            secure_cookies: settings.secure_cookies,
            refresh_ttl_secs: settings.refresh_ttl_secs,
        }
    }

    /// Lifetime of an access token, which the browser renews shortly before it runs out.
    pub fn access_ttl_secs(&self) -> u64 {
        self.tokens.ttl_secs()
    }

    /// `Set-Cookie` values that sign the browser out.
    pub fn clear_cookies(&self) -> Vec<HeaderValue> {
        cookies::clear(self.secure_cookies)
    }
}
