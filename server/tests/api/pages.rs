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
