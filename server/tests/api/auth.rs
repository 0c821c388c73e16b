//! Accounts and sessions over HTTP: registration, login, refresh rotation and reuse detection, logout,
//! lockouts, CSRF, cookies, page guards, admin bootstrap, and what reaches the logs.

use crate::helpers::*;
use app::auth::tokens::hash_refresh_token;

const ACCESS: &str = "mlchat_access";
const REFRESH: &str = "mlchat_refresh";

on_both_drivers!(
    register_then_login_then_an_authenticated_call,
    refresh_rotates_and_a_replayed_token_revokes_the_family,
    two_renewals_racing_with_one_token_get_the_same_successor,
    a_spent_token_gets_the_grace_once_and_a_second_reuse_revokes_the_family,
    logout_revokes_the_session,
    repeated_failures_lock_the_account_without_revealing_it,
    a_strangers_failures_never_lock_the_owner_out,
    parallel_logins_from_one_address_get_only_the_allowed_checks,
    sessions_are_listed_and_others_can_be_signed_out,
    changing_the_password_signs_out_other_sessions,
    usernames_are_unique_in_any_letter_case,
);

async fn register_then_login_then_an_authenticated_call(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut ana = Browser::new(&app);
    let answer = ana.register("Ana", GOOD_PASSWORD).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["username"], "Ana");
    assert_eq!(answer.body["display_name"], "Ana");
    assert_eq!(answer.body["role"], "user");
    assert!(ana.cookie(ACCESS).is_some() && ana.cookie(REFRESH).is_some());

    // A fresh device signs in, case-insensitively, and makes an authenticated call.
    let mut laptop = Browser::new(&app);
    assert_eq!(
        laptop.me().await.body,
        serde_json::Value::Null,
        "a guest is nobody"
    );
    let answer = laptop.login("ana", GOOD_PASSWORD).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let me = laptop.me().await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["username"], "Ana");
    let sessions = laptop.get("/api/auth/sessions").await;
    assert_eq!(sessions.status, 200);
    assert_eq!(sessions.body.as_array().unwrap().len(), 2);

    // Without cookies the same call is refused.
    let mut guest = Browser::new(&app);
    let refused = guest.get("/api/auth/sessions").await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["kind"], "unauthenticated");
    app.stop().await.unwrap();
}

async fn refresh_rotates_and_a_replayed_token_revokes_the_family(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut ana = Browser::new(&app);
    ana.register("ana", GOOD_PASSWORD).await;
    let first_refresh = ana.cookie(REFRESH).unwrap();
    let first_access = ana.cookie(ACCESS).unwrap();

    let rotated = ana.refresh().await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let second_refresh = ana.cookie(REFRESH).unwrap();
    assert_ne!(first_refresh, second_refresh, "the refresh token rotates");
    assert_ne!(
        first_access,
        ana.cookie(ACCESS).unwrap(),
        "a new access token"
    );
    assert_eq!(ana.me().await.body["username"], "ana");

    // The page renews again; the first token is now two rotations old.
    let rotated = ana.refresh().await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    assert_ne!(ana.cookie(REFRESH).unwrap(), second_refresh);

    // An attacker replays the first token: refused, and the whole family is revoked ...
    let mut attacker = Browser::new(&app);
    attacker.cookies.insert(REFRESH.into(), first_refresh);
    let replay = attacker.refresh().await;
    assert_eq!(replay.status, 401);
    // ... so the legitimate, newer refresh token stops working too,
    let after = ana.refresh().await;
    assert_eq!(after.status, 401, "{after:?}");
    // and so does the access token issued with it (sessions are checked on every call).
    let mut holder = Browser::new(&app);
    holder
        .cookies
        .insert(ACCESS.into(), ana_access_after_rotation(&rotated));
    assert_eq!(holder.get("/api/auth/sessions").await.status, 401);
    app.stop().await.unwrap();
}

/// A page renewing while the person navigates (or a reload dropping a renewal's answer) presents one
/// token twice: both requests get the same successor, so the cookie the browser keeps last is valid.
async fn two_renewals_racing_with_one_token_get_the_same_successor(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut tab = Browser::new(&app);
    tab.register("ana", GOOD_PASSWORD).await;
    let first = tab.cookie(REFRESH).unwrap();

    let mut racing = Browser::new(&app);
    racing.cookies = tab.cookies.clone();
    let (a, b) = tokio::join!(tab.refresh(), racing.refresh());
    assert_eq!((a.status, b.status), (200, 200), "{a:?} {b:?}");
    let successor = tab.cookie(REFRESH).unwrap();
    assert_ne!(successor, first);
    assert_eq!(racing.cookie(REFRESH).unwrap(), successor, "one successor");

    // The race used the grace. Anyone presenting the spent token once more, even within the grace
    // period and from anywhere, gets nothing, and the whole family is revoked.
    let mut late = Browser::new(&app);
    late.cookies.insert(REFRESH.into(), first.clone());
    let again = late.refresh().await;
    assert_eq!(again.status, 401, "{again:?}");
    assert_eq!(tab.refresh().await.status, 401, "the family is revoked");
    assert_eq!(
        tab.me().await.body,
        serde_json::Value::Null,
        "and so is its access token"
    );
    app.stop().await.unwrap();
}

/// The grace is single-use even without a race: a stolen spent token presented after the owner's own
/// renewal cannot ride along on the grace as often as it likes.
async fn a_spent_token_gets_the_grace_once_and_a_second_reuse_revokes_the_family(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut owner = Browser::new(&app);
    owner.register("ana", GOOD_PASSWORD).await;
    let spent = owner.cookie(REFRESH).unwrap();
    assert_eq!(owner.refresh().await.status, 200);
    let successor = owner.cookie(REFRESH).unwrap();

    // Once (the owner's renewal answer may have been lost): the same successor.
    let mut thief = Browser::new(&app);
    thief.cookies.insert(REFRESH.into(), spent.clone());
    let first = thief.refresh().await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(thief.cookie(REFRESH).unwrap(), successor);
    // Twice: a replay.
    let mut again = Browser::new(&app);
    again.cookies.insert(REFRESH.into(), spent);
    assert_eq!(again.refresh().await.status, 401);
    assert_eq!(owner.refresh().await.status, 401, "the family is revoked");
    app.stop().await.unwrap();
}

fn ana_access_after_rotation(answer: &Answer) -> String {
    answer
        .set_cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{ACCESS}=")))
        .and_then(|rest| rest.split(';').next())
        .expect("the refresh answer sets a new access cookie")
        .to_owned()
}

async fn logout_revokes_the_session(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut ana = Browser::new(&app);
    ana.register("ana", GOOD_PASSWORD).await;
    let saved = ana.cookies.clone();
    let out = ana.post("/api/auth/logout", &[]).await;
    assert_eq!(out.status, 200, "{out:?}");
    assert!(
        ana.cookie(ACCESS).is_none() && ana.cookie(REFRESH).is_none(),
        "logout removes both session cookies"
    );
    assert!(
        ana.cookie("mlchat_device").is_some(),
        "the device cookie stays"
    );
    // Someone who kept copies of the cookies gets nowhere.
    let mut copy = Browser::new(&app);
    copy.cookies = saved;
    assert_eq!(copy.get("/api/auth/sessions").await.status, 401);
    assert_eq!(copy.refresh().await.status, 401);
    app.stop().await.unwrap();
}

/// A browser at `address` (the test server trusts 127.0.0.1 as its proxy).
fn browser_at(app: &TestApp, address: &str) -> Browser {
    let mut browser = Browser::new(app);
    browser
        .extra_headers
        .push(("x-forwarded-for", address.to_owned()));
    browser
}

async fn a_strangers_failures_never_lock_the_owner_out(kind: StoreKind) {
    let app = spawn_app_with(kind, &[("TRUSTED_PROXIES", "127.0.0.1".into())]).await;
    let mut owner = browser_at(&app, "198.51.100.7");
    assert_eq!(owner.register("ana", GOOD_PASSWORD).await.status, 200);
    // A stranger fails many times at once, far past every allowance.
    let burst = futures::future::join_all((0..40).map(|_| {
        let mut stranger = browser_at(&app, "203.0.113.9");
        async move { stranger.login("ana", "wrong-password-1").await.status }
    }))
    .await;
    assert!(burst.iter().all(|s| matches!(s, 401 | 429)), "{burst:?}");
    assert!(burst.contains(&429), "the stranger is held back");
    // The owner's own browser (its device cookie) signs in at once, and changes the password.
    assert_eq!(owner.post("/api/auth/logout", &[]).await.status, 200);
    let login = owner.login("ana", GOOD_PASSWORD).await;
    assert_eq!(login.status, 200, "{login:?}");
    let changed = owner
        .post(
            "/api/account/password",
            &[
                ("current_password", GOOD_PASSWORD),
                ("new_password", "quartz-meadow-lantern-57"),
            ],
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    app.stop().await.unwrap();
}

async fn parallel_logins_from_one_address_get_only_the_allowed_checks(kind: StoreKind) {
    let app = spawn_app_with(kind, &[("TRUSTED_PROXIES", "127.0.0.1".into())]).await;
    // 60 names at once from one client, half of them from another address of the same IPv6 /64
    // (one subscriber's network): twenty free failures and the one that starts the wait, in all.
    let burst = futures::future::join_all((0..60).map(|i| {
        let address = if i % 2 == 0 {
            "2001:db8:7:7::1"
        } else {
            "2001:db8:7:7:ffff::2"
        };
        let mut guesser = browser_at(&app, address);
        async move {
            guesser
                .login(&format!("user{i}"), "wrong-password-1")
                .await
                .status
        }
    }))
    .await;
    assert_eq!(burst.iter().filter(|s| **s == 401).count(), 21, "{burst:?}");
    assert_eq!(burst.iter().filter(|s| **s == 429).count(), 39);
    // Another /64 is another client.
    let mut elsewhere = browser_at(&app, "2001:db8:7:8::1");
    assert_eq!(
        elsewhere.login("someone", "wrong-password-1").await.status,
        401
    );
    app.stop().await.unwrap();
}

async fn repeated_failures_lock_the_account_without_revealing_it(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut ana = Browser::new(&app);
    ana.register("ana", GOOD_PASSWORD).await;

    let mut mallory = Browser::new(&app);
    let wrong = mallory.login("ana", "wrong-password-1").await;
    let unknown = mallory.login("nobody-here", "wrong-password-1").await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(
        wrong.body, unknown.body,
        "no hint whether the account exists"
    );
    assert_eq!(wrong.body["kind"], "bad_credentials");

    // 60 more at once: the password is checked only as often as the schedule allows (the four
    // free failures left, and the one that starts the first wait); the rest are refused unchecked,
    // with a wait time.
    let burst = futures::future::join_all((0..60).map(|_| {
        let mut mallory = Browser::new(&app);
        async move { mallory.login("ana", "wrong-password-1").await }
    }))
    .await;
    let checked = burst.iter().filter(|a| a.status == 401).count();
    assert_eq!(checked, 5, "password checks in the burst");
    for refused in burst.iter().filter(|a| a.status != 401) {
        assert_eq!(refused.status, 429, "{refused:?}");
        assert_eq!(refused.body["kind"], "too_many_attempts");
        let wait = refused.body["retry_after_secs"].as_u64().unwrap();
        assert!((1..=300).contains(&wait), "{wait}");
    }
    // Other accounts are unaffected.
    let mut ben = Browser::new(&app);
    assert_eq!(ben.register("ben", GOOD_PASSWORD).await.status, 200);
    assert_eq!(ben.login("ben", GOOD_PASSWORD).await.status, 200);
    app.stop().await.unwrap();
}

async fn sessions_are_listed_and_others_can_be_signed_out(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut phone = Browser::new(&app);
    phone.user_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1".into();
    phone.register("ana", GOOD_PASSWORD).await;
    let mut laptop = Browser::new(&app);
    laptop.login("ana", GOOD_PASSWORD).await;

    let list = laptop.get("/api/auth/sessions").await.body;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let current: Vec<_> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["device"], "Chrome on Linux");
    assert!(list.iter().any(|s| s["device"] == "Safari on iOS"));
    assert!(list.iter().all(|s| s["ip"] == "127.0.0.1"));

    let revoked = laptop.post("/api/auth/sessions/revoke-others", &[]).await;
    assert_eq!(
        (revoked.status, revoked.body.clone()),
        (200, serde_json::json!(1))
    );
    assert_eq!(
        phone.get("/api/auth/sessions").await.status,
        401,
        "the phone is signed out"
    );
    assert_eq!(phone.refresh().await.status, 401);
    assert_eq!(
        laptop
            .get("/api/auth/sessions")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Revoking one session by id; someone else's session id is "not found".
    let mut tablet = Browser::new(&app);
    tablet.login("ana", GOOD_PASSWORD).await;
    let list = laptop.get("/api/auth/sessions").await.body;
    let tablet_id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ben = Browser::new(&app);
    ben.register("ben", GOOD_PASSWORD).await;
    let foreign = ben
        .post("/api/auth/sessions/revoke", &[("id", &tablet_id)])
        .await;
    assert_eq!(foreign.status, 404);
    assert_eq!(tablet.me().await.body["username"], "ana");
    let own = laptop
        .post("/api/auth/sessions/revoke", &[("id", &tablet_id)])
        .await;
    assert_eq!(own.status, 200, "{own:?}");
    assert_eq!(tablet.get("/api/auth/sessions").await.status, 401);
    app.stop().await.unwrap();
}

async fn changing_the_password_signs_out_other_sessions(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut laptop = Browser::new(&app);
    laptop.register("ana", GOOD_PASSWORD).await;
    let mut phone = Browser::new(&app);
    phone.login("ana", GOOD_PASSWORD).await;

    let wrong = laptop
        .post(
            "/api/account/password",
            &[
                ("current_password", "not-it"),
                ("new_password", "amber-violin-tundra-47"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.body["field"], "current_password");
    let weak = laptop
        .post(
            "/api/account/password",
            &[
                ("current_password", GOOD_PASSWORD),
                ("new_password", "password123"),
            ],
        )
        .await;
    assert_eq!(
        (weak.status, weak.body["field"].clone()),
        (400, "new_password".into())
    );

    let changed = laptop
        .post(
            "/api/account/password",
            &[
                ("current_password", GOOD_PASSWORD),
                ("new_password", "amber-violin-tundra-47"),
            ],
        )
        .await;
    assert_eq!(
        (changed.status, changed.body.clone()),
        (200, serde_json::json!(1)),
        "{changed:?}"
    );
    assert_eq!(phone.get("/api/auth/sessions").await.status, 401);
    assert_eq!(
        laptop.get("/api/auth/sessions").await.status,
        200,
        "this session stays"
    );
    let mut fresh = Browser::new(&app);
    assert_eq!(fresh.login("ana", GOOD_PASSWORD).await.status, 401);
    assert_eq!(
        fresh.login("ana", "amber-violin-tundra-47").await.status,
        200
    );

    let renamed = laptop
        .post("/api/account/profile", &[("display_name", "  Ana   B. ")])
        .await;
    assert_eq!(renamed.body["display_name"], "Ana B.");
    app.stop().await.unwrap();
}

async fn usernames_are_unique_in_any_letter_case(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut first = Browser::new(&app);
    assert_eq!(first.register("Zoe", GOOD_PASSWORD).await.status, 200);
    let mut second = Browser::new(&app);
    let taken = second.register("zOE", GOOD_PASSWORD).await;
    assert_eq!(taken.status, 400);
    assert_eq!(taken.body["field"], "username");
    assert!(second.cookies.is_empty());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn registration_input_is_validated_with_clear_messages() {
    let app = spawn_app(StoreKind::Embedded).await;
    let mut browser = Browser::new(&app);
    for (username, password, field, words) in [
        ("a", GOOD_PASSWORD, "username", "3 to 32"),
        ("ana smith", GOOD_PASSWORD, "username", "letters, digits"),
        (
            "{\"$ne\":null}",
            GOOD_PASSWORD,
            "username",
            "letters, digits",
        ),
        ("ana", "short", "password", "at least 8"),
        ("ana", "password1", "password", "too easy to guess"),
        (
            "ana",
            "ana-is-great-2024",
            "password",
            "must not contain your username",
        ),
    ] {
        let answer = browser.register(username, password).await;
        assert_eq!(answer.status, 400, "{username} {password}: {answer:?}");
        assert_eq!(answer.body["field"], field);
        let message = answer.body["message"].as_str().unwrap();
        assert!(message.contains(words), "{message}");
    }
    // A request missing a field is the client's error: 400, in the usual shape.
    let broken = browser
        .post("/api/auth/register", &[("username", "ana")])
        .await;
    assert_eq!(broken.status, 400, "{broken:?}");
    assert_eq!(broken.body["kind"], "invalid");
    assert_eq!(broken.body["field"], "request");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn registrations_are_rate_limited_per_ip() {
    let app = spawn_app_with(
        StoreKind::Embedded,
        &[("REGISTRATIONS_PER_IP_PER_HOUR", "2".into())],
    )
    .await;
    for name in ["one", "two"] {
        assert_eq!(
            Browser::new(&app)
                .register(name, GOOD_PASSWORD)
                .await
                .status,
            200
        );
    }
    let third = Browser::new(&app).register("three", GOOD_PASSWORD).await;
    assert_eq!(third.status, 429, "{third:?}");
    assert_eq!(third.body["kind"], "too_many_attempts");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_foreign_origin_is_refused_with_403() {
    let app = spawn_app(StoreKind::Embedded).await;
    let mut ana = Browser::new(&app);
    ana.register("ana", GOOD_PASSWORD).await;
    ana.origin = "https://evil.example".into();
    let answer = ana.post("/api/auth/sessions/revoke-others", &[]).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.body["kind"], "cross_site");
    let login = ana.login("ana", GOOD_PASSWORD).await;
    assert_eq!(login.status, 403, "login CSRF is refused too");

    // Referer is the fallback when a browser sends no Origin.
    let response = app
        .client
        .post(app.url("/api/auth/logout"))
        .header("cookie", "mlchat_access=x")
        .header("referer", "https://evil.example/page")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // Cookie-less scripts that send neither header are not a CSRF risk and may call the API.
    let script = app
        .client
        .post(app.url("/api/auth/login"))
        .form(&[("username", "ana"), ("password", GOOD_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn session_cookies_are_http_only_and_same_site() {
    let app = spawn_app(StoreKind::Embedded).await;
    let answer = Browser::new(&app).register("ana", GOOD_PASSWORD).await;
    // Access, refresh, and the device cookie (which browser this is, for the login throttle).
    assert_eq!(answer.set_cookies.len(), 3, "{:?}", answer.set_cookies);
    for raw in &answer.set_cookies {
        let cookie = cookie::Cookie::parse(raw.as_str()).unwrap();
        assert_eq!(cookie.http_only(), Some(true), "{raw}");
        assert_eq!(cookie.same_site(), Some(cookie::SameSite::Lax), "{raw}");
        assert_eq!(cookie.path(), Some("/"));
        assert_ne!(cookie.secure(), Some(true), "plain http in this test");
    }
    let access = cookie::Cookie::parse(answer.set_cookies[0].as_str()).unwrap();
    assert_eq!(access.max_age(), Some(cookie::time::Duration::seconds(900)));
    app.stop().await.unwrap();

    // Behind https (PUBLIC_ORIGIN), cookies are Secure.
    let app = spawn_app_with(
        StoreKind::Embedded,
        &[("PUBLIC_ORIGIN", "https://chat.example.com".into())],
    )
    .await;
    let mut browser = Browser::new(&app);
    browser.origin = "https://chat.example.com".into();
    let answer = browser.register("ana", GOOD_PASSWORD).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    for raw in &answer.set_cookies {
        assert!(raw.contains("; Secure"), "{raw}");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn pages_that_need_a_user_redirect_to_login_and_back() {
    let app = spawn_app(StoreKind::Embedded).await;
    let mut browser = Browser::new(&app);
    let (status, location, _) = browser.page("/profile?tab=password").await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some("/login?next=/profile%3Ftab%3Dpassword")
    );
    let (status, _, html) = browser.page("/login?next=/profile").await;
    assert_eq!(status, 200);
    assert!(html.contains("Sign in"));

    browser.register("ana", GOOD_PASSWORD).await;
    let (status, _, html) = browser.page("/profile").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Signed in as"),
        "rendered for the user on the server"
    );
    // Signed in, the login page sends you on, but never off-site.
    let (status, location, _) = browser.page("/login?next=/sessions").await;
    assert_eq!((status, location.as_deref()), (303, Some("/sessions")));
    let (_, location, _) = browser.page("/login?next=https://evil.example").await;
    assert_eq!(location.as_deref(), Some("/"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_expired_access_token_is_renewed_during_a_page_load() {
    let app = spawn_app_with(
        StoreKind::Embedded,
        &[("ACCESS_TOKEN_TTL_SECS", "1".into())],
    )
    .await;
    let mut ana = Browser::new(&app);
    ana.register("ana", GOOD_PASSWORD).await;
    let old_refresh = ana.cookie(REFRESH).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let expired = ana.get("/api/auth/sessions").await;
    assert_eq!(
        (expired.status, expired.body["kind"].clone()),
        (401, "session_expired".into())
    );
    let (status, _, html) = ana.page("/profile").await;
    assert_eq!(status, 200, "no visible logout");
    assert!(html.contains("Signed in as"));
    assert_ne!(
        ana.cookie(REFRESH).unwrap(),
        old_refresh,
        "renewed and rotated"
    );
    assert_eq!(ana.get("/api/auth/sessions").await.status, 200);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_first_admin_comes_from_the_environment_on_an_empty_instance() {
    let app = spawn_app_with(
        StoreKind::Embedded,
        &[
            ("ADMIN_USERNAME", "root".into()),
            ("ADMIN_PASSWORD", GOOD_PASSWORD.into()),
        ],
    )
    .await;
    let mut admin = Browser::new(&app);
    let answer = admin.login("root", GOOD_PASSWORD).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["role"], "admin");
    let mut user = Browser::new(&app);
    assert_eq!(
        user.register("ana", GOOD_PASSWORD).await.body["role"],
        "user"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn no_token_or_hash_reaches_the_logs() {
    // A server process of its own, logging everything, so only its own lines are read.
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut server = ServerProcess::launch(&[("RUST_LOG", "trace".into())], Some(log.path())).await;
    let mut ana = Browser::at(&server);
    ana.register("ana", GOOD_PASSWORD).await;
    let mut secrets = vec![ana.cookie(ACCESS).unwrap(), ana.cookie(REFRESH).unwrap()];
    ana.refresh().await;
    secrets.push(ana.cookie(ACCESS).unwrap());
    secrets.push(ana.cookie(REFRESH).unwrap());
    ana.login("ana", "wrong-password-9").await;
    ana.login("ana", GOOD_PASSWORD).await;
    ana.page("/profile").await;
    ana.post("/api/auth/logout", &[]).await;
    assert!(
        server.terminate(std::time::Duration::from_secs(30)).await,
        "a clean exit"
    );

    let logs = std::fs::read_to_string(log.path()).unwrap();
    assert!(logs.contains("signed in"), "the log capture works");
    assert!(logs.contains("failed login"), "the failure was logged");
    let hashes: Vec<String> = secrets
        .iter()
        .filter(|s| !s.contains('.'))
        .map(|s| hash_refresh_token(s))
        .collect();
    for secret in secrets.iter().chain(&hashes) {
        assert!(
            !logs.contains(secret.as_str()),
            "a token or hash was logged"
        );
    }
    for needle in [GOOD_PASSWORD, "wrong-password-9", "$argon2id$"] {
        assert!(!logs.contains(needle), "{needle} was logged");
    }
}

#[tokio::test]
async fn signing_out_works_as_a_plain_form_post() {
    // Before hydration (or without JavaScript) the "Sign out" button posts its form directly.
    let app = spawn_app(StoreKind::Embedded).await;
    let mut ana = Browser::new(&app);
    ana.register("ana", GOOD_PASSWORD).await;
    let cookies = format!(
        "{ACCESS}={}; {REFRESH}={}",
        ana.cookie(ACCESS).unwrap(),
        ana.cookie(REFRESH).unwrap()
    );
    let response = app
        .client
        .post(app.url("/api/auth/logout"))
        .header("origin", &app.address)
        .header("accept", "text/html")
        .header("referer", app.url("/profile"))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        302,
        "on to the sign-in page, as with scripts"
    );
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location == "/login" || location == app.url("/login"),
        "{location}"
    );
    let cleared = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter(|c| c.to_str().unwrap().contains("Max-Age=0"))
        .count();
    assert_eq!(cleared, 2);
    assert_eq!(ana.get("/api/auth/sessions").await.status, 401);
    app.stop().await.unwrap();
}
