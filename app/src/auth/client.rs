//! Browser side of sessions: renew the access token shortly before it runs out and whenever the server
//! says it has, with only one renewal in flight per page; send the person to the login page when the
//! session is really gone (revoked, expired refresh token, disabled account).

use super::paths::login_url;
use super::CurrentUser;
use crate::error::AppError;
use futures::future::{FutureExt, LocalBoxFuture, Shared};
use std::cell::{Cell, RefCell};
use std::future::Future;

type Renewal = Shared<LocalBoxFuture<'static, Result<CurrentUser, AppError>>>;

thread_local! {
    static RENEWING: RefCell<Option<Renewal>> = const { RefCell::new(None) };
    static KEEPING_FRESH: Cell<bool> = const { Cell::new(false) };
    static SIGNING_OUT: Cell<bool> = const { Cell::new(false) };
}

/// The person chose to sign out: the session ending is expected, not something to report.
pub fn signing_out() {
    SIGNING_OUT.with(|s| s.set(true));
}

/// Renews the session. Concurrent callers share one request: a refresh token is single-use, so two
/// parallel renewals would look like token theft and sign the person out.
pub async fn renew() -> Result<CurrentUser, AppError> {
    let renewal = RENEWING.with(|slot| {
        slot.borrow_mut()
            .get_or_insert_with(|| {
                async {
                    let result = refresh().await;
                    RENEWING.with(|slot| slot.borrow_mut().take());
                    result
                }
                .boxed_local()
                .shared()
            })
            .clone()
    });
    renewal.await
}

/// `POST /api/auth/refresh` (the `refresh_session` server function) sent with `keepalive`: a page
/// that navigates away while a renewal is in flight would otherwise drop its answer, and with it the
/// new refresh cookie the server has already rotated to. The next page would present the spent token
/// and use up the reuse grace; a second such loss in a row looks like token theft and signs the
/// person out. With `keepalive` the browser stores the cookie whatever the page does meanwhile.
#[cfg(feature = "hydrate")]
async fn refresh() -> Result<CurrentUser, AppError> {
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    let transport = |what: &str, error: JsValue| AppError::Transport {
        message: format!("{what}: {error:?}"),
    };
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    // web-sys has no binding for `keepalive` yet; the init dictionary is a plain object.
    js_sys::Reflect::set(&init, &"keepalive".into(), &true.into())
        .map_err(|e| transport("keepalive", e))?;
    let answer = JsFuture::from(
        leptos::prelude::window().fetch_with_str_and_init("/api/auth/refresh", &init),
    )
    .await
    .map_err(|e| transport("renewing the session", e))?;
    let response: web_sys::Response = answer
        .dyn_into()
        .map_err(|e| transport("renewing the session", e))?;
    let body = response
        .text()
        .map_err(|e| transport("reading the renewal", e))?;
    let body = JsFuture::from(body)
        .await
        .map_err(|e| transport("reading the renewal", e))?
        .as_string()
        .unwrap_or_default();
    let decoded = if response.ok() {
        serde_json::from_str::<CurrentUser>(&body).map(Ok)
    } else {
        serde_json::from_str::<AppError>(&body).map(Err)
    };
    decoded.unwrap_or_else(|e| {
        Err(AppError::Transport {
            message: format!("the renewal's answer could not be read: {e}"),
        })
    })
}

#[cfg(not(feature = "hydrate"))]
async fn refresh() -> Result<CurrentUser, AppError> {
    super::api::refresh_session().await
}

/// Calls `call`; when the access token has expired, renews once and calls again. A lost session ends
/// on the login page.
pub async fn with_renewal<T, F, Fut>(call: F) -> Result<T, AppError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    let result = match call().await {
        Err(AppError::SessionExpired) => match renew().await {
            Ok(_) => call().await,
            Err(error) => Err(error),
        },
        other => other,
    };
    if let Err(error) = &result {
        session_lost(error);
    }
    result
}

/// Starts (once per page) a timer that renews the session a little before each access token expires.
pub fn keep_fresh(access_ttl_secs: u64) {
    if KEEPING_FRESH.with(|k| k.replace(true)) {
        return;
    }
    // Renew at 80% of the lifetime, and never later than a minute before the end.
    let ttl_ms = access_ttl_secs.saturating_mul(1000);
    let lead = (ttl_ms / 5).min(60_000);
    let every = (ttl_ms - lead).max(1000) as u32;
    leptos::task::spawn_local(async move {
        loop {
            gloo_timers::future::TimeoutFuture::new(every).await;
            if let Err(error) = renew().await {
                // A network blip is retried at the next tick; a lost session is not.
                if matches!(error, AppError::Unauthenticated | AppError::AccountDisabled) {
                    session_lost(&error);
                    break;
                }
            }
        }
    });
}

/// Sends the person to the login page (coming back here afterwards) when `error` means the session is
/// gone. Other errors are left to the caller to show.
pub fn session_lost(error: &AppError) {
    if SIGNING_OUT.with(Cell::get) {
        return;
    }
    let location = leptos::prelude::window().location();
    let reason = match error {
        AppError::Unauthenticated | AppError::SessionExpired => "signed_out",
        AppError::AccountDisabled => "disabled",
        // A temporary password: nothing works until a new one is chosen there.
        AppError::PasswordChangeRequired => {
            if location.pathname().ok().as_deref() != Some("/profile") {
                let _ = location.assign("/profile");
            }
            return;
        }
        _ => return,
    };
    let here = format!(
        "{}{}",
        location.pathname().unwrap_or_default(),
        location.search().unwrap_or_default()
    );
    let _ = location.assign(&login_url(&here, Some(reason)));
}
