//! Which pages need a signed-in user, which are only for guests, and where to go after signing in.
//! The server's page guard and the browser's redirect on a lost session both use these.

/// Pages that redirect to `/login?next=...` without a user.
pub fn requires_login(path: &str) -> bool {
    const PROTECTED: [&str; 4] = ["/profile", "/sessions", "/rooms", "/admin"];
    PROTECTED.iter().any(|p| {
        path == *p
            || path
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Pages a signed-in user is sent away from (to the app).
pub fn guest_only(path: &str) -> bool {
    matches!(path, "/login" | "/register")
}

/// A safe place to go after signing in: a local path, never another site. Anything else becomes `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control)
                && path.len() <= 512
                && !guest_only(path.split(['?', '#']).next().unwrap_or(path)) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// `/login?next=<path>` with the path percent-encoded.
pub fn login_url(next: &str, reason: Option<&str>) -> String {
    let mut url = format!("/login?next={}", encode_component(next));
    if let Some(reason) = reason {
        url.push_str("&reason=");
        url.push_str(&encode_component(reason));
    }
    url
}

fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_pages_are_recognised_by_path_segment() {
        assert!(requires_login("/profile"));
        assert!(requires_login("/rooms/abc"));
        assert!(requires_login("/admin/users"));
        assert!(!requires_login("/"));
        assert!(!requires_login("/login"));
        assert!(!requires_login("/profiles-of-fame"));
    }

    #[test]
    fn next_is_always_a_local_path() {
        assert_eq!(safe_next(Some("/rooms/1?x=2")), "/rooms/1?x=2");
        assert_eq!(safe_next(None), "/");
        for evil in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "/login",
            "/register?x=1",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(evil)), "/", "{evil:?}");
        }
    }

    #[test]
    fn login_urls_encode_the_return_path() {
        assert_eq!(
            login_url("/rooms/a?b=c&d", None),
            "/login?next=/rooms/a%3Fb%3Dc%26d"
        );
        assert_eq!(
            login_url("/", Some("disabled")),
            "/login?next=/&reason=disabled"
        );
    }
}
