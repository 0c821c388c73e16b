//! The two session cookies. Both are HttpOnly (no script can read them), SameSite=Lax (not sent on
//! cross-site sub-requests or POSTs) and `Secure` whenever users reach us over https.

use cookie::{Cookie, SameSite};
use http::{header, HeaderMap, HeaderValue};

pub const ACCESS_COOKIE: &str = "mlchat_access";
pub const REFRESH_COOKIE: &str = "mlchat_refresh";

/// The session cookies a request carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionCookies {
    pub access: Option<String>,
    pub refresh: Option<String>,
}

impl SessionCookies {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut found = Self::default();
        for value in headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for cookie in Cookie::split_parse(text).flatten() {
                let value = Some(cookie.value().to_owned()).filter(|v| !v.is_empty());
                match cookie.name() {
                    ACCESS_COOKIE => found.access = value,
                    REFRESH_COOKIE => found.refresh = value,
                    _ => {}
                }
            }
        }
        found
    }

    /// Replaces both session cookies in a request's `Cookie` header, keeping any others: used after a
    /// refresh during a page load, so the page renders with the new session.
    pub fn write_into(&self, headers: &mut HeaderMap) {
        let mut pairs: Vec<String> = Vec::new();
        for value in headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for cookie in Cookie::split_parse(text).flatten() {
                if cookie.name() != ACCESS_COOKIE && cookie.name() != REFRESH_COOKIE {
                    pairs.push(format!("{}={}", cookie.name(), cookie.value()));
                }
            }
        }
        if let Some(access) = &self.access {
            pairs.push(format!("{ACCESS_COOKIE}={access}"));
        }
        if let Some(refresh) = &self.refresh {
            pairs.push(format!("{REFRESH_COOKIE}={refresh}"));
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
    access: String,
    access_ttl_secs: u64,
    refresh: String,
    refresh_ttl_secs: u64,
    secure: bool,
) -> Vec<HeaderValue> {
    vec![
        build(ACCESS_COOKIE, access, access_ttl_secs as i64, secure),
        build(REFRESH_COOKIE, refresh, refresh_ttl_secs as i64, secure),
    ]
}

/// `Set-Cookie` values that remove both cookies.
pub fn clear(secure: bool) -> Vec<HeaderValue> {
    vec![
        build(ACCESS_COOKIE, String::new(), 0, secure),
        build(REFRESH_COOKIE, String::new(), 0, secure),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_cookies_are_http_only_lax_and_secure_on_https() {
        let values = issue("a.b.c".into(), 900, "r".repeat(43), 86400, true);
        let access = values[0].to_str().unwrap();
        assert!(access.starts_with("mlchat_access=a.b.c"));
        for attribute in [
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=900",
        ] {
            assert!(access.contains(attribute), "{access} lacks {attribute}");
        }
        let plain = issue("a.b.c".into(), 900, "r".into(), 86400, false);
        assert!(!plain[1].to_str().unwrap().contains("Secure"));
        assert!(clear(false)[0].to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn session_cookies_are_read_and_replaced_in_requests() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; mlchat_access=old; mlchat_refresh=r1"),
        );
        let found = SessionCookies::from_headers(&headers);
        assert_eq!(found.access.as_deref(), Some("old"));
        assert_eq!(found.refresh.as_deref(), Some("r1"));
        SessionCookies {
            access: Some("new".into()),
            refresh: Some("r2".into()),
        }
        .write_into(&mut headers);
        assert_eq!(
            headers.get(header::COOKIE).unwrap(),
            "theme=dark; mlchat_access=new; mlchat_refresh=r2"
        );
    }
}
