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
    const TOKEN: &str = "scrape-token-0123456789";
    let app = spawn_app_with(StoreKind::Embedded, &[("METRICS_TOKEN", TOKEN.into())]).await;
    for _ in 0..3 {
        app.get("/healthz").await;
    }
    app.get("/no/such/page").await;
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
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
async fn made_up_methods_and_paths_add_no_label_sets() {
    const TOKEN: &str = "scrape-token-0123456789";
    let app = spawn_app_with(StoreKind::Embedded, &[("METRICS_TOKEN", TOKEN.into())]).await;
    let scrape = || async {
        app.client
            .get(app.url("/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    app.get("/healthz").await;
    let before = scrape().await;
    // 300 invented methods (of growing length) on 300 invented paths.
    for i in 0..300 {
        let method =
            reqwest::Method::from_bytes(format!("Z{}", "Q".repeat(i % 50 + i)).as_bytes()).unwrap();
        let answer = app
            .client
            .request(method, app.url(&format!("/made-up/{i}")))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_client_error(), "{}", answer.status());
    }
    let after = scrape().await;
    let label_sets = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("mlchat_http_requests_total{"))
            .count()
    };
    // At most a few new sets (method `other`, route `unmatched`, each status), not 300.
    assert!(
        label_sets(&after) <= label_sets(&before) + 4,
        "{} label sets before, {} after:\n{after}",
        label_sets(&before),
        label_sets(&after)
    );
    assert!(after.contains(r#"method="other""#), "{after}");
    assert!(!after.contains("ZQ"), "no invented method is a label");
    assert!(!after.contains("made-up"), "no invented path is a label");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_are_for_scrapers_only() {
    const TOKEN: &str = "scrape-token-0123456789";
    let scraper_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(
        StoreKind::Embedded,
        &[
            ("METRICS_TOKEN", TOKEN.into()),
            ("METRICS_ADDR", format!("127.0.0.1:{scraper_port}")),
        ],
    )
    .await;
    // The public listener: nothing there for anyone without the token.
    assert_eq!(app.get("/metrics").await.status(), 404);
    let wrong = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("not-the-token-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);
    // The scrapers' own listener serves them without a token.
    let scraped = app
        .client
        .get(format!("http://127.0.0.1:{scraper_port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped
        .text()
        .await
        .unwrap()
        .contains("mlchat_http_requests_total"));
    app.stop().await.unwrap();
    // And it stops with the server.
    assert!(app_gone(scraper_port).await, "the metrics listener closed");
}

async fn app_gone(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
}

#[tokio::test]
async fn without_a_token_the_public_listener_has_no_metrics() {
    let app = spawn_app(StoreKind::Embedded).await;
    assert_eq!(app.get("/metrics").await.status(), 404);
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
