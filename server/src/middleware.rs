//! Cross-cutting HTTP layers: security headers, request metrics, request ids and tracing, CORS.

use app::csp::{content_security_policy, PageNonce};
use app::error::AppError;
use app::metrics::Metrics;
use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{header, HeaderName, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::sync::Arc;
use std::time::Instant;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Headers every response carries; pages get a CSP that allows the inline scripts with their nonce.
#[derive(Clone)]
pub struct SecurityHeaders {
    default_csp: HeaderValue,
    hsts: bool,
}

impl SecurityHeaders {
    pub fn new(https: bool) -> Self {
        let csp = content_security_policy(None);
        Self {
            default_csp: HeaderValue::from_str(&csp).expect("the CSP is plain ASCII"),
            hsts: https,
        }
    }
}

pub async fn security_headers(
    State(config): State<SecurityHeaders>,
    mut request: Request,
    next: Next,
) -> Response {
    // Every request gets a nonce before anything renders; a page puts it on its inline scripts.
    let nonce = PageNonce::random();
    request.extensions_mut().insert(nonce.clone());
    let mut response = next.run(request).await;
    let page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    let page_csp = page
        .then(|| HeaderValue::from_str(&content_security_policy(Some(&nonce.0))).ok())
        .flatten();
    // A handler's own policy stands (files are served under a stricter, sandboxing one).
    if page_csp.is_some() || !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            page_csp.unwrap_or_else(|| config.default_csp.clone()),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if config.hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// Counts requests and their latency per route template (never per raw path; `unmatched` for paths
/// no route knows) and per method from a fixed set.
pub async fn record_metrics(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics.observe_request(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Largest error body this layer reads to put a status right.
const ERROR_BODY_MAX: usize = 64 * 1024;

/// Bad input is the client's error: a server function whose arguments could not be read, or whose
/// body went over the limit while it was being read, would otherwise answer `500`. API answers that
/// are `500` with a client's error in them get the error's own status (400 or 413), and a body the
/// size limit refused gets the API's JSON error shape.
pub async fn client_errors_keep_their_status(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let status = response.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return app_error(&AppError::PayloadTooLarge);
    }
    if status != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, ERROR_BODY_MAX).await else {
        return app_error(&AppError::Internal);
    };
    match serde_json::from_slice::<AppError>(&bytes) {
        Ok(AppError::Transport { message }) if message.contains("length limit exceeded") => {
            app_error(&AppError::PayloadTooLarge)
        }
        Ok(error) if (400..500).contains(&error.status()) => app_error(&error),
        _ => Response::from_parts(parts, Body::from(bytes)),
    }
}

fn app_error(error: &AppError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::to_string(error).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The method as a metrics label: the standard ones by name, anything made up as `other`, so a client
/// cannot add label sets at will.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// CORS for exactly our public origin, with credentials (cookies).
pub fn cors(public_origin: &str) -> CorsLayer {
    let origin =
        HeaderValue::from_str(public_origin).expect("PUBLIC_ORIGIN was validated at start-up");
    CorsLayer::new()
        .allow_origin(AllowOrigin::exact(origin))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([header::CONTENT_TYPE, header::ACCEPT])
}

/// The tracing span for one request: method, path (without the query string, which could hold
/// secrets) and the request id.
pub fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}
