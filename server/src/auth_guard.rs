//! HTTP-level protection around the app: the cross-site request check for every state-changing
//! request, and the page guard that renews sessions during page loads and redirects guests away from
//! pages that need a user (and signed-in users away from the login page).

use app::auth::cookies::SessionCookies;
use app::auth::paths::{guest_only, login_url, requires_login, safe_next};
use app::auth::sessions;
use app::chat::socket::Admitted;
use app::error::AppError;
use app::model::Role;
use app::rate_limit::address_key;
use app::request::ClientIp;
use app::state::AppState;
use axum::{
    extract::{Query, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use std::collections::HashMap;
use std::sync::Arc;

/// Whether a request comes from our own pages: its `Origin` (or, failing that, its `Referer`) is the
/// public origin. A request with neither header and no cookies carries no ambient authority (it is a
/// script or another non-browser client), so it is allowed.
pub fn is_same_origin(headers: &HeaderMap, public_origin: &str) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN) {
        return origin.as_bytes() == public_origin.as_bytes();
    }
    if let Some(referer) = headers.get(header::REFERER).and_then(|r| r.to_str().ok()) {
        return origin_of(referer).is_some_and(|o| o == public_origin);
    }
    !headers.contains_key(header::COOKIE)
}

/// `scheme://host[:port]` of an absolute URL.
fn origin_of(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")? + 3;
    let rest = &url[scheme_end..];
    let end = rest
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    Some(&url[..end])
}

/// Refuses state-changing requests from other sites with 403 (CSRF protection; cookies alone would let
/// any site act as the signed-in user).
pub async fn refuse_cross_site(
    State(public_origin): State<Arc<str>>,
    request: Request,
    next: Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe || is_same_origin(request.headers(), &public_origin) {
        return next.run(request).await;
    }
    tracing::warn!(method = %request.method(), path = %request.uri().path(), "cross-site request refused");
    error_response(&AppError::CrossSite)
}

use app::error::error_response;

/// The websocket upgrade (`GET /api/ws`) answers 403 to a foreign `Origin` (cross-site websocket
/// hijacking) and 401 to a caller without a live session, before any upgrade happens. The caller it
/// let through travels on as a request extension, so the endpoint does not read the session again.
pub async fn guard_websocket_upgrade(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.uri().path() != "/api/ws" {
        return next.run(request).await;
    }
    if !is_same_origin(request.headers(), &state.public_origin) {
        tracing::warn!("websocket upgrade from a foreign origin refused");
        return error_response(&AppError::CrossSite);
    }
    let cookies = SessionCookies::from_headers(request.headers(), state.auth.cookie_names());
    let me = match sessions::authenticate(&state, &cookies).await {
        Ok(me) => me,
        Err(error) => return error_response(&error),
    };
    if me.user.must_change_password {
        return error_response(&AppError::PasswordChangeRequired);
    }
    let address = request
        .extensions()
        .get::<ClientIp>()
        .map_or_else(|| "unknown".to_owned(), |ip| address_key(&ip.0.to_string()));
    match state.sockets.admit(me.user.id, &address) {
        Ok(permit) => {
            request.extensions_mut().insert(Admitted {
                me,
                permit: Arc::new(permit),
            });
        }
        Err(error) => {
            tracing::warn!(%address, "too many live connections; upgrade refused");
            return error_response(&error);
        }
    }
    next.run(request).await
}

/// Page loads only: not the API, static files or health endpoints.
fn is_page(path: &str) -> bool {
    !(path.starts_with("/api/")
        || path.starts_with("/pkg/")
        || matches!(path, "/healthz" | "/readyz" | "/metrics")
        || path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.')))
}

/// Who the page is for, after renewing an expired access token if the refresh cookie allows it.
enum PageUser {
    Guest,
    Disabled,
    SignedIn {
        admin: bool,
        must_change_password: bool,
    },
}

/// Where an admin-issued temporary password sends its user until they choose their own.
const CHANGE_PASSWORD_PAGE: &str = "/profile";

fn is_admin_page(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

pub async fn page_session(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if request.method() != Method::GET || !is_page(&path) {
        return next.run(request).await;
    }
    let cookies = SessionCookies::from_headers(request.headers(), state.auth.cookie_names());
    let mut set_cookies: Vec<HeaderValue> = Vec::new();
    let mut user = PageUser::Guest;
    if cookies.access.is_some() || cookies.refresh.is_some() {
        let outcome = match sessions::authenticate(&state, &cookies).await {
            Err(AppError::SessionExpired) => sessions::refresh(&state, cookies.refresh.as_deref())
                .await
                .map(|issued| {
                    // Render this page with the renewed session, and hand it to the browser.
                    SessionCookies {
                        access: Some(issued.access_token),
                        refresh: Some(issued.refresh_token),
                        device: None,
                        challenge: None,
                    }
                    .write_into(request.headers_mut(), state.auth.cookie_names());
                    set_cookies = issued.cookies;
                    (issued.user.role, issued.user.must_change_password)
                }),
            other => other.map(|me| (me.user.role, me.user.must_change_password)),
        };
        user = match outcome {
            Ok((role, must_change_password)) => PageUser::SignedIn {
                admin: role == Role::Admin,
                must_change_password,
            },
            Err(error @ (AppError::Unauthenticated | AppError::AccountDisabled)) => {
                // Dead cookies: drop them here and in the browser, and render for a guest.
                SessionCookies::default()
                    .write_into(request.headers_mut(), state.auth.cookie_names());
                set_cookies = state.auth.clear_cookies();
                if error == AppError::AccountDisabled {
                    PageUser::Disabled
                } else {
                    PageUser::Guest
                }
            }
            // The store is unreachable: render as it comes; the page shows the error.
            Err(_) => PageUser::Guest,
        };
    }

    let mut response = match user {
        PageUser::SignedIn {
            must_change_password: true,
            ..
        } if path != CHANGE_PASSWORD_PAGE => Redirect::to(CHANGE_PASSWORD_PAGE).into_response(),
        PageUser::SignedIn { .. } if guest_only(&path) => {
            let next = Query::<HashMap<String, String>>::try_from_uri(request.uri())
                .ok()
                .and_then(|q| q.0.get("next").cloned());
            Redirect::to(&safe_next(next.as_deref())).into_response()
        }
        PageUser::Guest | PageUser::Disabled if requires_login(&path) => {
            let here = request
                .uri()
                .path_and_query()
                .map_or(path.clone(), |pq| pq.to_string());
            let reason = matches!(user, PageUser::Disabled).then_some("disabled");
            Redirect::to(&login_url(&here, reason)).into_response()
        }
        // The page renders its "admins only" notice; the status tells browsers and tools the same.
        PageUser::SignedIn { admin: false, .. } if is_admin_page(&path) => {
            let mut response = next.run(request).await;
            *response.status_mut() = StatusCode::FORBIDDEN;
            response
        }
        _ => next.run(request).await,
    };
    for cookie in set_cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    const ORIGIN: &str = "https://chat.example.com";

    #[test]
    fn origin_decides_first() {
        assert!(is_same_origin(&headers(&[("origin", ORIGIN)]), ORIGIN));
        assert!(!is_same_origin(
            &headers(&[("origin", "https://evil.example")]),
            ORIGIN
        ));
        assert!(!is_same_origin(&headers(&[("origin", "null")]), ORIGIN));
        // A matching Referer does not rescue a foreign Origin.
        assert!(!is_same_origin(
            &headers(&[
                ("origin", "https://evil.example"),
                ("referer", "https://chat.example.com/x")
            ]),
            ORIGIN
        ));
    }

    #[test]
    fn referer_is_the_fallback() {
        assert!(is_same_origin(
            &headers(&[("referer", "https://chat.example.com/login?next=/")]),
            ORIGIN
        ));
        assert!(is_same_origin(
            &headers(&[("referer", "https://chat.example.com")]),
            ORIGIN
        ));
        assert!(!is_same_origin(
            &headers(&[("referer", "https://chat.example.com.evil.example/")]),
            ORIGIN
        ));
        assert!(!is_same_origin(
            &headers(&[("referer", "not a url")]),
            ORIGIN
        ));
    }

    #[test]
    fn requests_without_either_header_pass_only_without_cookies() {
        assert!(is_same_origin(&headers(&[]), ORIGIN));
        assert!(!is_same_origin(
            &headers(&[("cookie", "mlchat_access=x")]),
            ORIGIN
        ));
    }

    #[test]
    fn only_page_loads_are_guarded() {
        assert!(is_page("/"));
        assert!(is_page("/rooms/abc"));
        assert!(!is_page("/api/auth/me"));
        assert!(!is_page("/pkg/mlchat.wasm"));
        assert!(!is_page("/favicon.svg"));
        assert!(!is_page("/healthz"));
    }
}
