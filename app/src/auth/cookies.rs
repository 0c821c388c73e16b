//! The session cookies and the device cookie. All are HttpOnly (no script can read them),
//! SameSite=Lax (not sent on cross-site sub-requests or POSTs) and, whenever users reach us over
//! https, `Secure` with the `__Host-` prefix (so no other host, not even a subdomain, can set them).

use cookie::{Cookie, SameSite};
use http::{header, HeaderMap, HeaderValue};

pub const ACCESS_COOKIE: &str = "mlchat_access";
pub const REFRESH_COOKIE: &str = "mlchat_refresh";
pub const DEVICE_COOKIE: &str = "mlchat_device";
pub const CHALLENGE_COOKIE: &str = "mlchat_2fa";

/// The cookie names in use: plain over http, `__Host-` prefixed over https.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieNames {
    pub access: &'static str,
    pub refresh: &'static str,
    pub device: &'static str,
    /// Carries a sign-in from the password step to the code step (two-factor accounts).
    pub challenge: &'static str,
    pub secure: bool,
}

impl CookieNames {
    pub const PLAIN: Self = Self {
        access: ACCESS_COOKIE,
        refresh: REFRESH_COOKIE,
        device: DEVICE_COOKIE,
        challenge: CHALLENGE_COOKIE,
        secure: false,
    };
    pub const HOST_ONLY: Self = Self {
        access: "__Host-mlchat_access",
        refresh: "__Host-mlchat_refresh",
        device: "__Host-mlchat_device",
        challenge: "__Host-mlchat_2fa",
        secure: true,
    };

    pub fn for_https(https: bool) -> Self {
        if https {
            Self::HOST_ONLY
        } else {
            Self::PLAIN
        }
    }
}

/// The cookies a request carried (only under the names in use: over https an unprefixed cookie,
/// which another host could have set, is ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionCookies {
    pub access: Option<String>,
    pub refresh: Option<String>,
    /// The device cookie: which browser this is, for the login throttle.
    pub device: Option<String>,
    /// A sign-in waiting for its second step.
    pub challenge: Option<String>,
}

impl SessionCookies {
    pub fn from_headers(headers: &HeaderMap, names: CookieNames) -> Self {
        let mut found = Self::default();
        for value in headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for cookie in Cookie::split_parse(text).flatten() {
                let value = Some(cookie.value().to_owned()).filter(|v| !v.is_empty());
                let name = cookie.name();
                if name == names.access {
                    found.access = value;
                } else if name == names.refresh {
                    found.refresh = value;
                } else if name == names.device {
                    found.device = value;
                } else if name == names.challenge {
                    found.challenge = value;
                }
            }
        }
        found
    }

    /// Replaces both session cookies in a request's `Cookie` header, keeping any others: used after a
    /// refresh during a page load, so the page renders with the new session.
    pub fn write_into(&self, headers: &mut HeaderMap, names: CookieNames) {
        let mut pairs: Vec<String> = Vec::new();
        for value in headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for cookie in Cookie::split_parse(text).flatten() {
                if cookie.name() != names.access && cookie.name() != names.refresh {
                    pairs.push(format!("{}={}", cookie.name(), cookie.value()));
                }
            }
        }
        if let Some(access) = &self.access {
            pairs.push(format!("{}={access}", names.access));
        }
        if let Some(refresh) = &self.refresh {
            pairs.push(format!("{}={refresh}", names.refresh));
        }
        headers.remove(header::COOKIE);
        if let Ok(value) = HeaderValue::from_str(&pairs.join("; ")) {
            headers.insert(header::COOKIE, value);
        }
    }
}

fn build(name: &'static str, value: String, max_age_secs: i64, secure: bool) -> HeaderValue {
    let cookie = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("cookie values are base64url or JWT text")
}

/// `Set-Cookie` values for a new or renewed session.
pub fn issue(
    names: CookieNames,
    access: String,
    access_ttl_secs: u64,
    refresh: String,
    refresh_ttl_secs: u64,
) -> Vec<HeaderValue> {
    vec![
        build(names.access, access, access_ttl_secs as i64, names.secure),
        build(
            names.refresh,
            refresh,
            refresh_ttl_secs as i64,
            names.secure,
        ),
    ]
}

/// `Set-Cookie` value for the device cookie (kept a year; it names the browser, not a session).
pub fn device(names: CookieNames, value: String) -> HeaderValue {
    build(names.device, value, 365 * 24 * 60 * 60, names.secure)
}

/// `Set-Cookie` value for a sign-in challenge (`max_age_secs` 0 removes it).
pub fn challenge(names: CookieNames, value: String, max_age_secs: i64) -> HeaderValue {
    build(names.challenge, value, max_age_secs, names.secure)
}

/// `Set-Cookie` values that remove both session cookies (the device cookie stays).
pub fn clear(names: CookieNames) -> Vec<HeaderValue> {
    vec![
        build(names.access, String::new(), 0, names.secure),
        build(names.refresh, String::new(), 0, names.secure),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_cookies_are_http_only_lax_and_host_only_on_https() {
        let values = issue(
            CookieNames::HOST_ONLY,
            "a.b.c".into(),
            900,
            "r".repeat(43),
            86400,
        );
        let access = values[0].to_str().unwrap();
        assert!(access.starts_with("__Host-mlchat_access=a.b.c"), "{access}");
        for attribute in [
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=900",
        ] {
            assert!(access.contains(attribute), "{access} lacks {attribute}");
        }
        assert!(
            !access.contains("Domain"),
            "__Host- cookies carry no Domain"
        );
        let plain = issue(CookieNames::PLAIN, "a.b.c".into(), 900, "r".into(), 86400);
        assert!(plain[1].to_str().unwrap().starts_with("mlchat_refresh=r"));
        assert!(!plain[1].to_str().unwrap().contains("Secure"));
        assert!(clear(CookieNames::PLAIN)[0]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
    }

    #[test]
    fn cookies_are_read_under_the_names_in_use_and_replaced_in_requests() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static(
                "theme=dark; mlchat_access=old; mlchat_refresh=r1; mlchat_device=d",
            ),
        );
        let found = SessionCookies::from_headers(&headers, CookieNames::PLAIN);
        assert_eq!(found.access.as_deref(), Some("old"));
        assert_eq!(found.refresh.as_deref(), Some("r1"));
        assert_eq!(found.device.as_deref(), Some("d"));
        assert_eq!(
            SessionCookies::from_headers(&headers, CookieNames::HOST_ONLY),
            SessionCookies::default(),
            "over https, unprefixed cookies are someone else's"
        );
        SessionCookies {
            access: Some("new".into()),
            refresh: Some("r2".into()),
            device: None,
            challenge: None,
        }
        .write_into(&mut headers, CookieNames::PLAIN);
        assert_eq!(
            headers.get(header::COOKIE).unwrap(),
            "theme=dark; mlchat_device=d; mlchat_access=new; mlchat_refresh=r2"
        );
    }
}
