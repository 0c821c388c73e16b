//! Health endpoints for orchestrators and Prometheus.

use app::state::AppState;
use axum::{
    extract::State,
    http::{header, StatusCode},
    response::IntoResponse,
    Json,
};
use serde_json::json;
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

/// Prometheus / OpenMetrics text.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}
