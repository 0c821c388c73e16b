//! Health endpoints for orchestrators and Prometheus.

use app::metrics::Metrics;
use app::state::AppState;
use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How long `/readyz` waits for the store before declaring it unreachable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: the process answers. Never touches the store, so a slow database does not get us killed.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the store answers and, with several instances on MongoDB, the change stream that brings
/// the other instances' events is open. A balancer should stop routing here while this says 503.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let driver = state.store.driver();
    if state.hub.bus().is_some_and(|bus| !bus.is_streaming()) {
        tracing::warn!("readiness: the change stream from other instances is down");
        return unready(driver, "change stream down");
    }
    let outcome = tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await;
    match outcome {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "store": driver })),
        ),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: store unreachable");
            unready(driver, "store unreachable")
        }
        Err(_) => {
            tracing::warn!("readiness: store did not answer within {READY_TIMEOUT:?}");
            unready(driver, "store unreachable")
        }
    }
}

fn unready(driver: &str, reason: &str) -> (StatusCode, Json<serde_json::Value>) {
    // The details go to the log, not to the caller: they can name hosts.
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "store": driver, "reason": reason })),
    )
}

/// Prometheus / OpenMetrics text, on the metrics listener (`METRICS_ADDR`).
pub async fn metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
        .into_response()
}

/// `/metrics` on the public listener: only for a scraper presenting `METRICS_TOKEN` as a bearer
/// token; anyone else (or everyone, without a token configured) finds nothing there.
pub async fn metrics_with_token(
    State(access): State<MetricsAccess>,
    headers: HeaderMap,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&access.token, presented) {
        (Some(token), Some(presented))
            if constant_time_eq(token.as_bytes(), presented.as_bytes()) =>
        {
            metrics(State(access.metrics)).await
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// What the public `/metrics` route needs.
#[derive(Clone)]
pub struct MetricsAccess {
    pub metrics: Arc<Metrics>,
    pub token: Option<Arc<str>>,
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret-token-123", b"secret-token-123"));
        assert!(!constant_time_eq(b"secret-token-123", b"secret-token-124"));
        assert!(!constant_time_eq(b"secret", b"secret-token-123"));
    }
}
