//! Cross-cutting HTTP layers: security headers, request metrics, request ids and tracing, CORS.

use app::metrics::Metrics;
use axum::{
    extract::{MatchedPath, Request, State},
    http::{header, HeaderName, HeaderValue, Method},
    middleware::Next,
    response::Response,
};
use std::sync::Arc;
use std::time::Instant;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Headers every response carries. A page that set its own (nonce-bearing) CSP keeps it.
#[derive(Clone)]
pub struct SecurityHeaders {
    default_csp: HeaderValue,
    hsts: bool,
}

impl SecurityHeaders {
    pub fn new(https: bool) -> Self {
        let csp = app::csp::content_security_policy(None);
        Self {
            default_csp: HeaderValue::from_str(&csp).expect("the CSP is plain ASCII"),
            hsts: https,
        }
    }
}

pub async fn security_headers(
    State(config): State<SecurityHeaders>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(config.default_csp.clone());
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

/// Counts requests and their latency per route template (never per raw path).
pub async fn record_metrics(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics.observe_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
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
