//! Everything authentication needs besides the store, built once at start-up: the token keys and
//! lifetimes, password hashing, and the login and registration limits.

use super::cookies::{self, CookieNames};
use super::device::DeviceCookies;
use super::password::Passwords;
use super::throttle::{LoginThrottle, Schedule};
use super::tokens::{AccessTokens, RefreshChain};
use super::two_factor::TwoFactorKeys;
use crate::rate_limit::KeyedRateLimit;
use http::HeaderValue;
use std::time::Duration;

/// Password failures for one account on one device (or, without a device cookie, from one address):
/// five free, then a wait of 2 s, doubling after each further failure, at most 5 minutes.
pub const DEVICE_SCHEDULE: Schedule = Schedule {
    free: 5,
    first_wait: Duration::from_secs(2),
    max_wait: Duration::from_secs(5 * 60),
};
/// Failures for one account from browsers that are not a device it signed in on (strangers), all
/// together: twenty free, then the same growing waits.
pub const ACCOUNT_SCHEDULE: Schedule = Schedule {
    free: 20,
    first_wait: Duration::from_secs(2),
    max_wait: Duration::from_secs(5 * 60),
};
/// Failures from one address (an IPv6 /64), whatever the account: twenty free, then the same waits.
pub const ADDRESS_SCHEDULE: Schedule = Schedule {
    free: 20,
    first_wait: Duration::from_secs(2),
    max_wait: Duration::from_secs(5 * 60),
};

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
    pub(super) devices: DeviceCookies,
    pub(super) two_factor: TwoFactorKeys,
    pub passwords: Passwords,
    /// Password failures per account and device (or address): see [`DEVICE_SCHEDULE`].
    pub(super) per_device: LoginThrottle,
    /// Per account, from strangers: see [`ACCOUNT_SCHEDULE`].
    pub(super) per_account: LoginThrottle,
    /// Per address: see [`ADDRESS_SCHEDULE`].
    pub(super) per_address: LoginThrottle,
    pub(super) registrations: KeyedRateLimit<String>,
    pub(super) cookie_names: CookieNames,
    pub(super) refresh_ttl_secs: u64,
}

impl Auth {
    pub fn new(settings: AuthSettings) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            tokens: AccessTokens::new(&settings.jwt_secret, settings.access_ttl_secs),
            refresh_chain: RefreshChain::new(&settings.jwt_secret),
            devices: DeviceCookies::new(&settings.jwt_secret),
            two_factor: TwoFactorKeys::new(&settings.jwt_secret),
            passwords: Passwords::new(cpus * 2),
            per_device: LoginThrottle::new(DEVICE_SCHEDULE),
            per_account: LoginThrottle::new(ACCOUNT_SCHEDULE),
            per_address: LoginThrottle::new(ADDRESS_SCHEDULE),
            registrations: KeyedRateLimit::new(
                settings.registrations_per_ip_per_hour,
                Duration::from_secs(60 * 60),
            ),
            cookie_names: CookieNames::for_https(settings.secure_cookies),
            refresh_ttl_secs: settings.refresh_ttl_secs,
        }
    }

    /// Lifetime of an access token, which the browser renews shortly before it runs out.
    pub fn access_ttl_secs(&self) -> u64 {
        self.tokens.ttl_secs()
    }

    /// `Set-Cookie` values that sign the browser out.
    pub fn clear_cookies(&self) -> Vec<HeaderValue> {
        cookies::clear(self.cookie_names)
    }

    /// The cookie names in use (`__Host-` prefixed over https).
    pub fn cookie_names(&self) -> CookieNames {
        self.cookie_names
    }
}
