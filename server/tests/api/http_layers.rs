use crate::helpers::*;

/// The nonce in the CSP header must be the one on the page's inline scripts, or hydration is blocked.
#[tokio::test]
async fn pages_carry_security_headers_with_a_per_response_nonce() {
    let app = spawn_app(StoreKind::Embedded).await;
    let first = app.get("/").await;
    let headers = first.headers().clone();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(
        headers.get("strict-transport-security").is_none(),
        "no HSTS over plain http"
    );
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("the page CSP has a nonce")
        .to_owned();
    let html = first.text().await.unwrap();
    assert!(
        html.contains(&format!(r#"nonce="{nonce}""#)),
        "inline scripts carry the nonce"
    );

    let second = app.get("/").await;
    let csp2 = second.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(!csp2.contains(&nonce), "every response gets a fresh nonce");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn non_page_responses_get_the_strict_default_policy() {
    let app = spawn_app(StoreKind::Embedded).await;
    for path in ["/healthz", "/favicon.svg", "/nope"] {
        let response = app.get(path).await;
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn https_origins_get_hsts() {
    let app = spawn_app_with(
        StoreKind::Embedded,
        &[("PUBLIC_ORIGIN", "https://chat.example.com".to_owned())],
    )
    .await;
    let response = app.get("/healthz").await;
    assert!(response.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn every_response_has_a_request_id_and_a_given_one_is_kept() {
    let app = spawn_app(StoreKind::Embedded).await;
    let generated = app.get("/healthz").await;
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let given = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-me-123");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn cors_allows_only_the_public_origin() {
    let app = spawn_app_with(
        StoreKind::Embedded,
        &[("PUBLIC_ORIGIN", "https://chat.example.com".to_owned())],
    )
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/anything"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let ours = preflight("https://chat.example.com").await.unwrap();
    assert_eq!(
        ours.headers()["access-control-allow-origin"],
        "https://chat.example.com"
    );
    assert_eq!(ours.headers()["access-control-allow-credentials"], "true");
    // A foreign origin is never echoed back, so the browser refuses the cross-origin call.
    let theirs = preflight("https://evil.example").await.unwrap();
    let allowed = theirs
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap());
    assert_ne!(allowed, Some("https://evil.example"));
    assert_ne!(allowed, Some("*"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn oversized_request_bodies_are_refused() {
    let app = spawn_app_with(
        StoreKind::Embedded,
        &[("MAX_BODY_BYTES", "4096".to_owned())],
    )
    .await;
    let response = app
        .client
        .post(app.url("/api/anything"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 10_000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn responses_are_compressed_when_the_client_accepts_it() {
    let app = spawn_app(StoreKind::Embedded).await;
    let response = app
        .client
        .get(app.url("/"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    app.stop().await.unwrap();
}

/// The address a session records for a login that came with `X-Forwarded-For: 198.51.100.9`.
async fn recorded_ip(trusted_proxies: &str) -> String {
    let app = spawn_app_with(
        StoreKind::Embedded,
        &[("TRUSTED_PROXIES", trusted_proxies.into())],
    )
    .await;
    let mut ana = Browser::new(&app);
    ana.extra_headers
        .push(("x-forwarded-for", "6.6.6.6, 198.51.100.9".into()));
    assert_eq!(ana.register("ana", GOOD_PASSWORD).await.status, 200);
    let sessions = ana.get("/api/auth/sessions").await;
    let ip = sessions.body[0]["ip"].as_str().unwrap().to_owned();
    app.stop().await.unwrap();
    ip
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    // Nobody trusted: a client cannot claim another address.
    assert_eq!(recorded_ip("").await, "127.0.0.1");
    // Behind a trusted proxy on loopback: the nearest hop the proxy saw (the first entry was forged).
    assert_eq!(recorded_ip("127.0.0.1/32").await, "198.51.100.9");
}
