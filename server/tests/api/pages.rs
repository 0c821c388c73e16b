use crate::helpers::*;

#[tokio::test]
async fn the_home_page_is_server_rendered() {
    let app = spawn_app(StoreKind::Embedded).await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("<!DOCTYPE html>"));
    assert!(
        html.contains("Welcome to ML-CHAT"),
        "the page content is in the HTML itself"
    );
    assert!(
        html.contains(r#"href="/pkg/mlchat.css""#),
        "the stylesheet is linked"
    );
    assert!(
        html.contains("/pkg/mlchat.js"),
        "the hydration script is referenced"
    );
    assert!(
        html.contains(r#"id="sidebar""#),
        "the app shell is rendered"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_paths_get_a_styled_404_page() {
    let app = spawn_app(StoreKind::Embedded).await;
    let response = app.get("/definitely/not/here").await;
    assert_eq!(response.status(), 404);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("Page not found"));
    assert!(
        html.contains("<title>Page not found · ML-CHAT</title>"),
        "{html}"
    );
    assert!(html.contains(r#"href="/pkg/mlchat.css""#));
    app.stop().await.unwrap();
}

/// Every page, signed in (as an admin, so the admin pages render too) and as a guest, requested many
/// times at once while other servers start in the same process; every body must arrive whole within
/// a generous deadline. (Starting a server generates its route list, which once suspended resource
/// loading for the whole process and left concurrent pages unfinished forever.)
async fn every_page_renders_completely_under_concurrency(kind: StoreKind) {
    const ROUNDS: usize = 20;
    let app = spawn_app_with(
        kind,
        &[
            ("ADMIN_USERNAME", "root_admin".into()),
            ("ADMIN_PASSWORD", GOOD_PASSWORD.into()),
        ],
    )
    .await;
    let mut root = Browser::new(&app);
    assert_eq!(root.login("root_admin", GOOD_PASSWORD).await.status, 200);
    let created = root
        .post(
            "/api/rooms/create",
            &[
                ("name", "Lobby"),
                ("topic", "All of us"),
                ("private", "false"),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let room = created.body["id"].as_str().unwrap().to_owned();
    let pages = [
        "/".to_owned(),
        "/login".into(),
        "/register".into(),
        "/profile".into(),
        "/sessions".into(),
        "/rooms".into(),
        format!("/rooms/{room}"),
        "/admin".into(),
        "/admin/users".into(),
        "/admin/rooms".into(),
        "/admin/audit".into(),
        "/no/such/page".into(),
    ];
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // The deadline covers the whole body, not only the head.
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    let cookie = root.cookie_header();
    let mut loads = tokio::task::JoinSet::new();
    let mut others = Vec::new();
    for round in 0..ROUNDS {
        // Meanwhile, more servers start in this process.
        if round % 4 == 1 {
            others.push(tokio::spawn(spawn_app(kind)));
        }
        for page in &pages {
            for signed_in in [true, false] {
                let request = client.get(app.url(page)).header("accept", "text/html");
                let request = if signed_in {
                    request.header("cookie", &cookie)
                } else {
                    request
                };
                let what = format!("{page} (signed in: {signed_in}, round {round})");
                loads.spawn(async move {
                    let response = request.send().await.map_err(|e| format!("{what}: {e}"))?;
                    let status = response.status().as_u16();
                    let csp = response
                        .headers()
                        .get("content-security-policy")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let body = response
                        .text()
                        .await
                        .map_err(|e| format!("{what}: status {status}, body unfinished: {e}"))?;
                    Ok::<_, String>((status, csp, body))
                });
            }
        }
    }
    let mut unfinished = Vec::new();
    let mut complete = 0;
    while let Some(load) = loads.join_next().await {
        match load.expect("the load task ran") {
            Ok((status, csp, body)) => {
                assert!(matches!(status, 200 | 303 | 403 | 404), "status {status}");
                // The page's inline scripts carry the nonce its CSP allows (it once lost the nonce
                // under load, and the page never hydrated).
                if status != 303 {
                    let nonce = csp
                        .split("'nonce-")
                        .nth(1)
                        .and_then(|rest| rest.split('\'').next())
                        .unwrap_or_else(|| panic!("no nonce in the page's CSP: {csp}"));
                    assert!(body.contains(&format!("nonce=\"{nonce}\"")), "{csp}");
                }
                // A whole page: the document, then the streamed resources, then the closing trailer.
                if status != 303 {
                    assert!(body.contains("</html>"), "{body}");
                    assert!(
                        body.trim_end()
                            .ends_with("__INCOMPLETE_CHUNKS=[];</script>"),
                        "{body}"
                    );
                }
                complete += 1;
            }
            Err(e) => unfinished.push(e),
        }
    }
    assert!(
        unfinished.is_empty(),
        "{} unfinished: {unfinished:?}",
        unfinished.len()
    );
    assert_eq!(complete, ROUNDS * pages.len() * 2);
    for other in others {
        other.await.unwrap().stop().await.unwrap();
    }
    app.stop().await.unwrap();
}

// Several worker threads: the servers starting meanwhile must run beside the pages being rendered, as
// the test binary's other tests do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_completely_under_concurrency_embedded() {
    every_page_renders_completely_under_concurrency(StoreKind::Embedded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_completely_under_concurrency_mongo() {
    every_page_renders_completely_under_concurrency(StoreKind::Mongo).await
}
