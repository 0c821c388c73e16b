use crate::helpers::*;
use std::time::Duration;

async fn health_and_readiness(kind: StoreKind, driver: &str) {
    let app = spawn_app(kind).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["store"], driver);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn embedded_health_and_readiness() {
    health_and_readiness(StoreKind::Embedded, "embedded").await;
}

#[tokio::test]
async fn mongo_health_and_readiness() {
    health_and_readiness(StoreKind::Mongo, "mongodb").await;
}

/// `/readyz` answers 503 while MongoDB is unreachable (a balancer then stops routing to us) and
/// recovers when it comes back; `/healthz` stays 200 throughout, so the process is not restarted.
#[tokio::test]
async fn mongo_readiness_fails_while_the_store_is_unreachable() {
    let uri = mongodb_uri();
    let proxy = CuttableProxy::start(mongodb_host_port(&uri)).await;
    let via_proxy = mongodb_uri_via(&uri, &format!("127.0.0.1:{}", proxy.port));
    let app = spawn_app_with(StoreKind::Mongo, &[("MONGODB_URI", via_proxy)]).await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    proxy.cut();
    let unready = app.get("/readyz").await;
    assert_eq!(unready.status(), 503);
    let body: serde_json::Value = unready.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no infrastructure details leak: {body}"
    );
    assert_eq!(app.get("/healthz").await.status(), 200);

    proxy.restore();
    let mut recovered = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        if app.get("/readyz").await.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        recovered,
        "readiness comes back once the store is reachable again"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = spawn_app(StoreKind::Embedded).await;
    for _ in 0..3 {
        app.get("/healthz").await;
    }
    app.get("/no/such/page").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("openmetrics-text"));
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            r#"mlchat_http_requests_total{method="GET",route="/healthz",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"status="404""#), "404s are counted: {text}");
    assert!(
        !text.contains("/no/such/page"),
        "raw paths never become labels"
    );
    assert!(
        text.contains("mlchat_http_request_duration_seconds_bucket"),
        "{text}"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_completes_and_stops_serving() {
    let app = spawn_app(StoreKind::Embedded).await;
    let url = app.url("/healthz");
    let client = app.client.clone();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    // `stop` fails the test if the server is still running 30 s after the signal.
    app.stop().await.expect("clean exit");
    assert!(
        client.get(&url).send().await.is_err(),
        "nothing listens any more"
    );
}
