//! Accounts and sessions: registration, login, access and refresh tokens, device sessions, guards.
//!
//! Shared by both sides: which paths need a user (`paths`), the wire types and the server functions
//! (`api`); the input rules are in `crate::domain`. Server-only: the keys, limits and hashing built at
//! start-up (`keys`), tokens, password hashing and policy, login throttles, cookies, and the rules for
//! accounts (`accounts`) and device sessions (`sessions`). Browser-only: silent refresh (`client`).

pub mod api;
pub mod paths;

#[cfg(feature = "hydrate")]
pub mod client;

#[cfg(feature = "ssr")]
pub mod accounts;
#[cfg(feature = "ssr")]
pub mod cache;
#[cfg(feature = "ssr")]
pub mod cookies;
#[cfg(feature = "ssr")]
pub mod device;
#[cfg(feature = "ssr")]
pub mod enrolment;
#[cfg(feature = "ssr")]
pub mod keys;
#[cfg(feature = "ssr")]
pub mod password;
#[cfg(feature = "ssr")]
pub mod sessions;
#[cfg(feature = "ssr")]
pub mod sign_in;
#[cfg(feature = "ssr")]
pub mod throttle;
#[cfg(feature = "ssr")]
pub mod tokens;
#[cfg(feature = "ssr")]
pub mod two_factor;

#[cfg(feature = "ssr")]
pub use keys::{Auth, AuthSettings};

use crate::model::{FileId, Role, SessionId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// The signed-in user, as the browser sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// Set after an administrator reset the password: the user must choose a new one.
    pub must_change_password: bool,
    /// Lifetime of an access token, so the browser can refresh shortly before it runs out.
    pub access_ttl_secs: u64,
    /// Whether sign-in needs a code from an authenticator app too.
    pub two_factor: bool,
    /// Their profile picture, if they chose one.
    #[serde(default)]
    pub avatar: Option<FileId>,
}

/// What enrolling an authenticator app needs: the QR code (SVG, drawn on the server) and the same
/// key as text for typing in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoFactorSetup {
    pub qr_svg: String,
    /// The secret in groups of four letters.
    pub key: String,
    pub uri: String,
}

/// One device session on the sessions page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub id: SessionId,
    /// A short description such as "Chrome on Linux".
    pub device: String,
    pub user_agent: String,
    pub ip: String,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    /// The session making this request.
    pub current: bool,
}

/// "Firefox on Windows", "Safari on iOS", ... from a User-Agent header; good enough for a person to
/// recognise their devices, never used for any decision.
pub fn describe_user_agent(user_agent: &str) -> String {
    let ua = user_agent;
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") || ua.contains("Opera") {
        "Opera"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") || ua.contains("CriOS/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else if ua.starts_with("curl/") {
        "curl"
    } else {
        ""
    };
    let os = if ua.contains("Android") {
        "Android"
    } else if ua.contains("iPhone") || ua.contains("iPad") {
        "iOS"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        "macOS"
    } else if ua.contains("CrOS") {
        "ChromeOS"
    } else if ua.contains("Linux") {
        "Linux"
    } else {
        ""
    };
    match (browser, os) {
        ("", "") => "Unknown device".to_owned(),
        (b, "") => b.to_owned(),
        ("", o) => format!("Browser on {o}"),
        (b, o) => format!("{b} on {o}"),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_user_agent;

    #[test]
    fn user_agents_become_short_device_names() {
        let chrome_linux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(describe_user_agent(chrome_linux), "Chrome on Linux");
        let firefox_win =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(describe_user_agent(firefox_win), "Firefox on Windows");
        let safari_ios = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_user_agent(safari_ios), "Safari on iOS");
        assert_eq!(describe_user_agent("curl/8.5.0"), "curl");
        assert_eq!(describe_user_agent(""), "Unknown device");
    }
}

/// Runs a server call that needs a signed-in user. In the browser, an expired access token is renewed
/// and the call repeated once, and a lost session leads to the login page; on the server (during
/// rendering) the page guard has already renewed the session, so the call simply runs.
pub fn authed<T, F, Fut>(
    call: F,
) -> impl std::future::Future<Output = Result<T, crate::error::AppError>> + Send + 'static
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, crate::error::AppError>> + Send + 'static,
    T: Send + 'static,
{
    #[cfg(feature = "hydrate")]
    {
        send_wrapper::SendWrapper::new(client::with_renewal(call))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        call()
    }
}

/// The signed-in user for the whole page: loaded during server rendering, shared through context.
#[derive(Clone, Copy)]
pub struct UserContext(
    pub leptos::prelude::Resource<Result<Option<CurrentUser>, crate::error::AppError>>,
);

impl UserContext {
    pub fn provide() -> Self {
        use leptos::prelude::*;
        let resource = Resource::new(|| (), |_| authed(api::get_current_user));
        let context = Self(resource);
        provide_context(context);
        context
    }

    pub fn get() -> Self {
        leptos::prelude::expect_context::<Self>()
    }
}
