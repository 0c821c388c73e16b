//! A fresh install: the default room that every new account joins, until an admin archives it.

use crate::helpers::*;

on_both_drivers!(new_accounts_join_the_default_room_until_it_is_archived);

async fn rooms_of(browser: &mut Browser) -> Vec<(String, String)> {
    let mine = browser.get("/api/rooms/mine").await;
    assert_eq!(mine.status, 200, "{mine:?}");
    mine.body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn new_accounts_join_the_default_room_until_it_is_archived(kind: StoreKind) {
    let app = spawn_app_with(
        kind,
        &[
            ("DEFAULT_ROOM", "lobby".into()),
            ("ADMIN_USERNAME", "root".into()),
            ("ADMIN_PASSWORD", GOOD_PASSWORD.into()),
        ],
    )
    .await;
    let mut ana = Browser::new(&app);
    assert_eq!(ana.register("ana", GOOD_PASSWORD).await.status, 200);
    assert_eq!(
        rooms_of(&mut ana).await,
        [("lobby".into(), "public".into())]
    );
    let mut ben = Browser::new(&app);
    assert_eq!(ben.register("ben", GOOD_PASSWORD).await.status, 200);
    let lobby = ben.get("/api/rooms/mine").await.body[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let members = ben.get(&format!("/api/rooms/members?room={lobby}")).await;
    let mut names: Vec<&str> = members
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ana", "ben"]);

    // Archived by an admin: later accounts start with no rooms.
    let mut root = Browser::new(&app);
    assert_eq!(root.login("root", GOOD_PASSWORD).await.status, 200);
    let archived = root
        .post(
            "/api/admin/rooms/archive",
            &[("room", &lobby), ("archived", "true")],
        )
        .await;
    assert_eq!(archived.status, 200, "{archived:?}");
    let mut cleo = Browser::new(&app);
    assert_eq!(cleo.register("cleo", GOOD_PASSWORD).await.status, 200);
    assert_eq!(rooms_of(&mut cleo).await, []);
    app.stop().await.unwrap();

    // With `DEFAULT_ROOM` empty there is none.
    let app = spawn_app(kind).await;
    let mut dan = Browser::new(&app);
    assert_eq!(dan.register("dan", GOOD_PASSWORD).await.status, 200);
    assert_eq!(rooms_of(&mut dan).await, []);
    app.stop().await.unwrap();
}
