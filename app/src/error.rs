//! The one error type every server function returns. Each variant says, in words a person understands,
//! what went wrong, and maps to one HTTP status. Internal details never reach the client: they are logged
//! on the server where the error is made.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppError {
    /// 400: one input is not acceptable; `field` names the form field it belongs to.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// 401: username or password wrong. Deliberately the same whether or not the username exists.
    #[error("Wrong username or password.")]
    BadCredentials,
    /// 429: too many attempts; the caller may try again after the given number of seconds.
    #[error("Too many attempts. Please try again in {}.", human_wait(*retry_after_secs))]
    TooManyAttempts { retry_after_secs: u64 },
    /// 429: too many actions of one kind (messages, ...) in a short time.
    #[error("You are sending messages too fast. Wait {} and try again.", human_wait(*retry_after_secs))]
    RateLimited { retry_after_secs: u64 },
    /// 429: this person or address already holds as many live connections as allowed.
    #[error("Too many open connections. Close another tab or device and try again.")]
    TooManyConnections,
    /// 401: the password was right; the account also needs a code from its authenticator app (or a
    /// recovery code): `POST /api/auth/login/code` with the challenge cookie this answer set.
    #[error("Enter the code from your authenticator app.")]
    SecondFactorRequired,
    /// 401: nobody is signed in (or the session was revoked).
    #[error("Please sign in to continue.")]
    Unauthenticated,
    /// 401: the access token expired; a refresh will probably fix it.
    #[error("Your session needs to be renewed.")]
    SessionExpired,
    /// 403: the account was disabled by an administrator.
    #[error("This account has been disabled. Contact an administrator.")]
    AccountDisabled,
    /// 403: signed in with a temporary password (set by an administrator): only choosing a new
    /// password, reading the profile and signing out work until then.
    #[error("Choose a new password first: an administrator set a temporary one.")]
    PasswordChangeRequired,
    /// 403: signed in, but not allowed to do this.
    #[error("You do not have permission to do that.")]
    Forbidden,
    /// 403: a state-changing request came from another site (CSRF check).
    #[error("This request came from another site and was refused.")]
    CrossSite,
    /// 404
    #[error("{what} was not found.")]
    NotFound { what: String },
    /// 413: the request body is larger than the server accepts (`MAX_BODY_BYTES`).
    #[error("That request is too large.")]
    PayloadTooLarge,
    /// 503: the store could not be reached; retrying later may work.
    #[error("The service is temporarily unavailable. Please try again shortly.")]
    Unavailable,
    /// 500: a bug or an unexpected state on the server (details are in the server log).
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
    /// The request never got a proper answer (network down, malformed request or response).
    #[error("Could not complete the request: {message}")]
    Transport { message: String },
}

impl AppError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound {
            what: what.to_owned(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid { .. } | Self::Transport { .. } => 400,
            Self::BadCredentials
            | Self::Unauthenticated
            | Self::SessionExpired
            | Self::SecondFactorRequired => 401,
            Self::AccountDisabled
            | Self::Forbidden
            | Self::CrossSite
            | Self::PasswordChangeRequired => 403,
            Self::NotFound { .. } => 404,
            Self::PayloadTooLarge => 413,
            Self::TooManyAttempts { .. } | Self::RateLimited { .. } | Self::TooManyConnections => {
                429
            }
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }

    /// The message to show next to a form field, if this error belongs to that field.
    pub fn for_field(&self, name: &str) -> Option<String> {
        match self {
            Self::Invalid { field, message } if field == name => Some(message.clone()),
            _ => None,
        }
    }

    /// A message for the form as a whole: every error not tied to a field.
    pub fn for_form(&self) -> Option<String> {
        match self {
            Self::Invalid { .. } => None,
            other => Some(other.to_string()),
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // On the server these mean the request's arguments could not be read: the client's error
            // (400), not ours. (In the browser they are about the answer, and stay transport errors.)
            ServerFnErrorErr::Args(detail)
            | ServerFnErrorErr::MissingArg(detail)
            | ServerFnErrorErr::Deserialization(detail)
                if cfg!(feature = "ssr") =>
            {
                if detail.contains("length limit exceeded") {
                    Self::PayloadTooLarge
                } else {
                    Self::invalid(
                        "request",
                        format!(
                            "The request could not be read: {}",
                            first_line(&detail, 200)
                        ),
                    )
                }
            }
            other => Self::Transport {
                message: other.to_string(),
            },
        }
    }
}

/// The first line of `text`, at most `max` characters: enough to say what went wrong.
fn first_line(text: &str, max: usize) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(max)
        .collect()
}

/// "42 seconds", "5 minutes", "1 hour": rounded up, so the wait is never under-stated.
pub fn human_wait(secs: u64) -> String {
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match secs {
        0..=59 => plural(secs.max(1), "second"),
        60..=3599 => plural(secs.div_ceil(60), "minute"),
        _ => plural(secs.div_ceil(3600), "hour"),
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::AppError;
    use crate::store::StoreError;

    impl From<StoreError> for AppError {
        fn from(error: StoreError) -> Self {
            match error {
                StoreError::Unavailable(detail) => {
                    tracing::warn!(%detail, "store unavailable");
                    AppError::Unavailable
                }
                StoreError::NotFound(what) => AppError::not_found(what),
                StoreError::Limit(message) => AppError::invalid("limit", message),
                other => {
                    tracing::error!(error = %other, "store error");
                    AppError::Internal
                }
            }
        }
    }

    /// Sets the HTTP status of the current server-function response from the error, then returns it.
    /// Server functions end with `.map_err(respond)` so scripts see 401/403/429 rather than 500.
    pub fn respond(error: AppError) -> AppError {
        // Only for requests to the API itself: a server function called while rendering a page must not
        // turn the page into an error response.
        let api_call = leptos::prelude::use_context::<http::request::Parts>()
            .is_some_and(|parts| parts.uri.path().starts_with("/api/"));
        if !api_call {
            return error;
        }
        if let (Some(response), Ok(status)) = (
            leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
            http::StatusCode::from_u16(error.status()),
        ) {
            response.set_status(status);
            if let AppError::TooManyAttempts { retry_after_secs }
            | AppError::RateLimited { retry_after_secs } = &error
            {
                if let Ok(value) = http::HeaderValue::from_str(&retry_after_secs.to_string()) {
                    response.insert_header(http::header::RETRY_AFTER, value);
                }
            }
        }
        error
    }
}

#[cfg(feature = "ssr")]
pub use ssr::respond;

/// The error as a plain axum answer (its status, the tagged JSON body), for handlers outside the
/// server functions.
#[cfg(feature = "ssr")]
pub fn error_response(error: &AppError) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status =
        http::StatusCode::from_u16(error.status()).unwrap_or(http::StatusCode::BAD_REQUEST);
    let body = serde_json::to_string(error).unwrap_or_default();
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_rounded_up_into_words() {
        assert_eq!(human_wait(0), "1 second");
        assert_eq!(human_wait(42), "42 seconds");
        assert_eq!(human_wait(60), "1 minute");
        assert_eq!(human_wait(61), "2 minutes");
        assert_eq!(human_wait(3600), "1 hour");
        assert_eq!(human_wait(3601), "2 hours");
    }

    #[test]
    fn errors_round_trip_as_tagged_json() {
        let error = AppError::TooManyAttempts {
            retry_after_secs: 60,
        };
        let json = serde_json::to_string(&error).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"too_many_attempts","retry_after_secs":60}"#
        );
        assert_eq!(serde_json::from_str::<AppError>(&json).unwrap(), error);
        assert_eq!(error.status(), 429);
        assert_eq!(
            error.to_string(),
            "Too many attempts. Please try again in 1 minute."
        );
    }

    #[test]
    fn field_errors_stay_with_their_field() {
        let error = AppError::invalid("username", "That username is taken.");
        assert_eq!(
            error.for_field("username").as_deref(),
            Some("That username is taken.")
        );
        assert_eq!(error.for_field("password"), None);
        assert_eq!(error.for_form(), None);
        assert!(AppError::BadCredentials.for_form().is_some());
    }
}
