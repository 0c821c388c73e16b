//! The admin panel's server functions against the running server: who may call them, the last-admin
//! rule, disabling with immediate effect, one audit entry per action, moderation and the `/admin` pages.

use crate::helpers::*;
use app::protocol::{CloseReason, ServerMsg};
use serde_json::Value;
use std::time::Duration;

on_both_drivers!(
    admin_functions_refuse_users_and_guests,
    the_last_admin_can_be_neither_demoted_nor_disabled,
    disabling_closes_the_socket_at_once_and_ends_the_session,
    every_action_writes_exactly_one_audit_entry,
    a_reset_password_works_once_and_must_be_changed,
    admins_delete_any_message_and_the_room_sees_the_tombstone,
    tables_search_and_page,
    moderators_search_every_room_and_each_search_is_audited,
);

const ROOT: &str = "root";

/// A server whose first admin is `root`, with that admin signed in and `ana` and `ben` registered.
async fn admin_app(kind: StoreKind) -> (TestApp, Browser, Browser, Browser) {
    let app = spawn_app_with(
        kind,
        &[
            ("ADMIN_USERNAME", ROOT.into()),
            ("ADMIN_PASSWORD", GOOD_PASSWORD.into()),
            ("REGISTRATIONS_PER_IP_PER_HOUR", "1000".into()),
        ],
    )
    .await;
    let mut root = Browser::new(&app);
    assert_eq!(root.login(ROOT, GOOD_PASSWORD).await.status, 200);
    let mut ana = Browser::new(&app);
    assert_eq!(ana.register("ana", GOOD_PASSWORD).await.status, 200);
    let mut ben = Browser::new(&app);
    assert_eq!(ben.register("ben", GOOD_PASSWORD).await.status, 200);
    (app, root, ana, ben)
}

/// The id of `username`, as the admin users table shows it.
async fn user_id(admin: &mut Browser, username: &str) -> String {
    let page = admin
        .get(&format!("/api/admin/users?search={username}&offset=0"))
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap_or_else(|| panic!("{username} is listed"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn create_room(browser: &mut Browser, name: &str) -> String {
    let room = browser
        .post(
            "/api/rooms/create",
            &[("name", name), ("topic", ""), ("private", "false")],
        )
        .await;
    assert_eq!(room.status, 200, "{room:?}");
    room.body["id"].as_str().unwrap().to_owned()
}

async fn audit_total(admin: &mut Browser) -> u64 {
    let page = admin.get("/api/admin/audit?actor=&action=&offset=0").await;
    assert_eq!(page.status, 200, "{page:?}");
    page.body["total"].as_u64().unwrap()
}

/// Form fields of one call.
type Form = Vec<(&'static str, String)>;

/// Every admin endpoint with valid-looking arguments; `true` for GET.
fn every_admin_call(user: &str, room: &str) -> Vec<(String, Form, bool)> {
    let get = |path: &str| (path.to_owned(), vec![], true);
    let post = |path: &str, form: Form| (path.to_owned(), form, false);
    vec![
        get("/api/admin/stats"),
        get("/api/admin/users?search=&offset=0"),
        get("/api/admin/rooms?search=&offset=0"),
        get(&format!("/api/admin/rooms/members?room={room}")),
        get("/api/admin/audit?actor=&action=&offset=0"),
        post(
            "/api/admin/users/disable",
            vec![("user", user.into()), ("disabled", "true".into())],
        ),
        post(
            "/api/admin/users/role",
            vec![("user", user.into()), ("role", "admin".into())],
        ),
        post("/api/admin/users/logout", vec![("user", user.into())]),
        post(
            "/api/admin/users/reset-password",
            vec![("user", user.into())],
        ),
        post(
            "/api/admin/rooms/archive",
            vec![("room", room.into()), ("archived", "true".into())],
        ),
        post(
            "/api/admin/rooms/delete",
            vec![("room", room.into()), ("confirm_name", "Lobby".into())],
        ),
        post(
            "/api/admin/messages/delete",
            vec![("message", app::model::MessageId::new().to_string())],
        ),
    ]
}

async fn call(
    browser: &mut Browser,
    path: &str,
    form: &[(&'static str, String)],
    get: bool,
) -> Answer {
    if get {
        browser.get(path).await
    } else {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        browser.post(path, &form).await
    }
}

async fn admin_functions_refuse_users_and_guests(kind: StoreKind) {
    let (app, mut root, mut ana, _ben) = admin_app(kind).await;
    let ben_id = user_id(&mut root, "ben").await;
    let room = create_room(&mut ana, "Lobby").await;
    let mut guest = Browser::new(&app);
    let before = audit_total(&mut root).await;
    for (path, form, get) in every_admin_call(&ben_id, &room) {
        for (who, browser) in [("a normal user", &mut ana), ("a guest", &mut guest)] {
            let answer = call(browser, &path, &form, get).await;
            assert_eq!(answer.status, 403, "{path} for {who}: {answer:?}");
            assert_eq!(answer.body["kind"], "forbidden", "{path} for {who}");
        }
    }
    // Nothing happened: ben can still sign in, the room is there, no audit entry was written.
    assert_eq!(
        Browser::new(&app).login("ben", GOOD_PASSWORD).await.status,
        200
    );
    let rooms = root.get("/api/admin/rooms?search=Lobby&offset=0").await;
    assert_eq!(rooms.body["items"][0]["archived"], false);
    assert_eq!(audit_total(&mut root).await, before);
    // And the admin may call each of them (the delete last, it removes the room).
    for (path, form, get) in every_admin_call(&ben_id, &room) {
        let answer = call(&mut root, &path, &form, get).await;
        let expected = if path.ends_with("messages/delete") {
            404
        } else {
            200
        };
        assert_eq!(answer.status, expected, "{path} for the admin: {answer:?}");
    }
    app.stop().await.unwrap();
}

async fn the_last_admin_can_be_neither_demoted_nor_disabled(kind: StoreKind) {
    let (app, mut root, _ana, _ben) = admin_app(kind).await;
    let root_id = user_id(&mut root, ROOT).await;
    let demote = root
        .post(
            "/api/admin/users/role",
            &[("user", &root_id), ("role", "user")],
        )
        .await;
    assert_eq!(demote.status, 400, "{demote:?}");
    assert!(demote.body["message"]
        .as_str()
        .unwrap()
        .contains("last admin"));
    let disable = root
        .post(
            "/api/admin/users/disable",
            &[("user", &root_id), ("disabled", "true")],
        )
        .await;
    assert_eq!(disable.status, 400, "{disable:?}");
    assert_eq!(root.me().await.body["role"], "admin");

    // With a second admin, the first may step down.
    let ana_id = user_id(&mut root, "ana").await;
    let promote = root
        .post(
            "/api/admin/users/role",
            &[("user", &ana_id), ("role", "admin")],
        )
        .await;
    assert_eq!(promote.body["role"], "admin", "{promote:?}");
    let demote = root
        .post(
            "/api/admin/users/role",
            &[("user", &root_id), ("role", "user")],
        )
        .await;
    assert_eq!(demote.status, 200, "{demote:?}");
    // Root is no longer an admin: the role is read from the store on every call.
    assert_eq!(root.get("/api/admin/stats").await.status, 403);
    app.stop().await.unwrap();
}

async fn disabling_closes_the_socket_at_once_and_ends_the_session(kind: StoreKind) {
    let (app, mut root, _ana, ben) = admin_app(kind).await;
    let ben_id = user_id(&mut root, "ben").await;
    let mut socket = WsClient::join(&ben, vec![]).await;
    let mut ben = ben;
    let disabled = root
        .post(
            "/api/admin/users/disable",
            &[("user", &ben_id), ("disabled", "true")],
        )
        .await;
    assert_eq!(disabled.status, 200, "{disabled:?}");
    assert_eq!(disabled.body["disabled"], true);
    // Told at once: the notice was queued before the admin's request was answered.
    let reason = socket
        .recv_until(|m| match m {
            ServerMsg::Closing { reason } => Some(*reason),
            _ => None,
        })
        .await;
    assert_eq!(reason, CloseReason::Disabled);
    assert_eq!(socket.recv_within(Duration::from_secs(5)).await, Ok(None));

    // Disabling revoked the session: the access token no longer works (a guest), nor does the
    // refresh token, nor the password.
    let me = ben.me().await;
    assert_eq!((me.status, me.body), (200, Value::Null));
    let refresh = ben.refresh().await;
    assert_eq!(
        (refresh.status, refresh.body),
        (401, serde_json::json!({ "kind": "unauthenticated" }))
    );
    let login = Browser::new(&app).login("ben", GOOD_PASSWORD).await;
    assert_eq!(login.status, 403, "{login:?}");
    assert_eq!(login.body["kind"], "account_disabled");

    // Enabled again, Ben can sign in.
    root.post(
        "/api/admin/users/disable",
        &[("user", &ben_id), ("disabled", "false")],
    )
    .await;
    assert_eq!(
        Browser::new(&app).login("ben", GOOD_PASSWORD).await.status,
        200
    );
    app.stop().await.unwrap();
}

async fn every_action_writes_exactly_one_audit_entry(kind: StoreKind) {
    let (app, mut root, mut ana, _ben) = admin_app(kind).await;
    let ben_id = user_id(&mut root, "ben").await;
    let room = create_room(&mut ana, "Lobby").await;
    let actions: Vec<(&str, Form, &str)> = vec![
        (
            "/api/admin/users/disable",
            vec![("user", ben_id.clone()), ("disabled", "true".into())],
            "user.disable",
        ),
        (
            "/api/admin/users/disable",
            vec![("user", ben_id.clone()), ("disabled", "false".into())],
            "user.enable",
        ),
        (
            "/api/admin/users/role",
            vec![("user", ben_id.clone()), ("role", "admin".into())],
            "user.promote",
        ),
        (
            "/api/admin/users/role",
            vec![("user", ben_id.clone()), ("role", "user".into())],
            "user.demote",
        ),
        (
            "/api/admin/users/logout",
            vec![("user", ben_id.clone())],
            "user.force_logout",
        ),
        (
            "/api/admin/users/reset-password",
            vec![("user", ben_id.clone())],
            "user.reset_password",
        ),
        (
            "/api/admin/rooms/archive",
            vec![("room", room.clone()), ("archived", "true".into())],
            "room.archive",
        ),
        (
            "/api/admin/rooms/archive",
            vec![("room", room.clone()), ("archived", "false".into())],
            "room.unarchive",
        ),
        (
            "/api/admin/rooms/delete",
            vec![("room", room.clone()), ("confirm_name", "Lobby".into())],
            "room.delete",
        ),
    ];
    for (path, form, action) in actions {
        let before = audit_total(&mut root).await;
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = root.post(path, &form).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        assert_eq!(audit_total(&mut root).await, before + 1, "{action}");
        let newest = root.get("/api/admin/audit?actor=&action=&offset=0").await;
        let entry = &newest.body["items"][0];
        assert_eq!(entry["action"], action);
        assert_eq!(entry["actor"], ROOT);
        assert_eq!(entry["ip"], "127.0.0.1");
        assert!(!entry["target"].as_str().unwrap().is_empty());
    }
    // Refused actions write nothing: a deleted room, a mistyped confirmation.
    let before = audit_total(&mut root).await;
    let gone = root
        .post(
            "/api/admin/rooms/delete",
            &[("room", &room), ("confirm_name", "Lobby")],
        )
        .await;
    assert_eq!(gone.status, 404);
    let second = create_room(&mut ana, "Second").await;
    let mistyped = root
        .post(
            "/api/admin/rooms/delete",
            &[("room", &second), ("confirm_name", "Secnod")],
        )
        .await;
    assert_eq!(mistyped.status, 400);
    assert!(mistyped.body["message"]
        .as_str()
        .unwrap()
        .contains("Second"));
    assert_eq!(audit_total(&mut root).await, before);
    // The viewer filters by action and by actor.
    let filtered = root
        .get("/api/admin/audit?actor=&action=user.disable&offset=0")
        .await;
    assert_eq!(filtered.body["total"], 1);
    let by_nobody = root
        .get("/api/admin/audit?actor=ana&action=&offset=0")
        .await;
    assert_eq!(by_nobody.body["total"], 0);
    let unknown = root
        .get("/api/admin/audit?actor=&action=user.edit&offset=0")
        .await;
    assert_eq!(unknown.status, 400);
    app.stop().await.unwrap();
}

async fn a_reset_password_works_once_and_must_be_changed(kind: StoreKind) {
    let (app, mut root, _ana, mut ben) = admin_app(kind).await;
    let ben_id = user_id(&mut root, "ben").await;
    let reset = root
        .post("/api/admin/users/reset-password", &[("user", &ben_id)])
        .await;
    assert_eq!(reset.status, 200, "{reset:?}");
    let temporary = reset.body.as_str().unwrap().to_owned();
    assert_eq!(temporary.len(), 19);
    // Ben's old session and old password are gone.
    let me = ben.me().await;
    assert_eq!(
        (me.status, me.body),
        (200, Value::Null),
        "a revoked session is a guest"
    );
    assert_eq!(
        Browser::new(&app).login("ben", GOOD_PASSWORD).await.status,
        401
    );
    let mut again = Browser::new(&app);
    let login = again.login("ben", &temporary).await;
    assert_eq!(login.status, 200, "{login:?}");
    assert_eq!(login.body["must_change_password"], true);
    // Every page leads to the password form until a new one is chosen.
    let (status, location, _) = again.page("/rooms").await;
    assert_eq!((status, location.as_deref()), (303, Some("/profile")));
    let changed = again
        .post(
            "/api/account/password",
            &[
                ("current_password", &temporary),
                ("new_password", "quartz-meadow-lantern-57"),
            ],
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(again.me().await.body["must_change_password"], false);
    let (status, _, _) = again.page("/rooms").await;
    assert_eq!(status, 200);
    app.stop().await.unwrap();
}

async fn admins_delete_any_message_and_the_room_sees_the_tombstone(kind: StoreKind) {
    let (app, mut root, mut ana, mut ben) = admin_app(kind).await;
    let room = create_room(&mut ana, "Lobby").await;
    assert_eq!(
        ben.post("/api/rooms/join", &[("room", &room)]).await.status,
        200
    );
    let room_id = room.parse().unwrap();
    let mut a = WsClient::join(&ana, vec![]).await;
    let mut b = WsClient::join(&ben, vec![]).await;
    a.send(&send(room_id, "n1", "something rude")).await;
    let id = a
        .recv_until(|m| match m {
            ServerMsg::Ack { id, .. } => Some(*id),
            _ => None,
        })
        .await;
    b.recv_until(|m| matches!(m, ServerMsg::Message { .. }).then_some(()))
        .await;

    let deleted = root
        .post(
            "/api/admin/messages/delete",
            &[("message", &id.to_string())],
        )
        .await;
    assert_eq!(deleted.status, 200, "{deleted:?}");
    let tombstone = b
        .recv_until(|m| match m {
            ServerMsg::Updated { message } => Some(message.clone()),
            _ => None,
        })
        .await;
    assert!(tombstone.deleted);
    assert_eq!(tombstone.id, id);
    assert!(tombstone.body.is_empty());
    // Ben (not an admin) cannot delete Ana's message, over HTTP or the socket.
    let refused = ben
        .post(
            "/api/admin/messages/delete",
            &[("message", &id.to_string())],
        )
        .await;
    assert_eq!(refused.status, 403);
    let history = ben.get(&format!("/api/rooms/history?room={room}")).await;
    assert_eq!(history.status, 200, "{history:?}");
    assert_eq!(history.body[0]["deleted"], true);
    app.stop().await.unwrap();
}

async fn tables_search_and_page(kind: StoreKind) {
    let (app, mut root, _ana, _ben) = admin_app(kind).await;
    for i in 0..30 {
        let mut user = Browser::new(&app);
        assert_eq!(
            user.register(&format!("member{i:02}"), GOOD_PASSWORD)
                .await
                .status,
            200
        );
    }
    let first = root.get("/api/admin/users?search=member&offset=0").await;
    assert_eq!(first.body["total"], 30);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 25);
    let second = root.get("/api/admin/users?search=member&offset=25").await;
    assert_eq!(second.body["items"].as_array().unwrap().len(), 5);
    let stats = root.get("/api/admin/stats").await;
    assert_eq!(stats.body["users_total"], 33);
    assert_eq!(stats.body["admins"], 1);
    assert_eq!(
        stats.body["driver"],
        if kind == StoreKind::Mongo {
            "mongodb"
        } else {
            "embedded"
        }
    );
    let long = root
        .get(&format!(
            "/api/admin/users?search={}&offset=0",
            "x".repeat(65)
        ))
        .await;
    assert_eq!(long.status, 400);

    // The pages: admins get the panel, users a 403 page, guests the login page.
    let (status, _, html) = root.page("/admin/users").await;
    assert_eq!(status, 200);
    assert!(html.contains("Users"));
    let mut ana = Browser::new(&app);
    ana.login("ana", GOOD_PASSWORD).await;
    let (status, _, html) = ana.page("/admin").await;
    assert_eq!(status, 403);
    assert!(html.contains("Admins only"));
    let (status, location, _) = Browser::new(&app).page("/admin/audit").await;
    assert_eq!(status, 303);
    assert!(location.unwrap().starts_with("/login?next="));
    app.stop().await.unwrap();
}

async fn moderators_search_every_room_and_each_search_is_audited(kind: StoreKind) {
    let (_app, mut root, mut ana, mut ben) = admin_app(kind).await;
    let private = ana
        .post(
            "/api/rooms/create",
            &[("name", "Hidden"), ("topic", ""), ("private", "true")],
        )
        .await;
    assert_eq!(private.status, 200, "{private:?}");
    let room = private.body["id"].as_str().unwrap().parse().unwrap();
    let mut a = crate::changes::Witness::join(&ana, room).await;
    a.say_text(room, "n1", "the launch date is secret").await;

    // Nobody else finds it with their own search; the admin's covers every room, and is audited.
    let own = root.get("/api/search?q=launch").await;
    assert_eq!(own.status, 200, "{own:?}");
    assert!(own.body.as_array().unwrap().is_empty());
    let before = audit_total(&mut root).await;
    let all = root.get("/api/admin/search?q=launch").await;
    assert_eq!(all.status, 200, "{all:?}");
    let hits = all.body.as_array().unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["room_name"], "Hidden");
    assert_eq!(audit_total(&mut root).await, before + 1);
    let logged = root
        .get("/api/admin/audit?actor=&action=message.search&offset=0")
        .await;
    let entry = &logged.body["items"][0];
    assert_eq!(entry["actor"], ROOT);
    assert!(
        entry["details"].as_str().unwrap().contains("launch"),
        "{entry}"
    );
    // Others may not.
    assert_eq!(ben.get("/api/admin/search?q=launch").await.status, 403);
}
