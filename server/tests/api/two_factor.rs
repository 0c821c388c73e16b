//! Two-factor sign-in (TOTP, RFC 6238) through the HTTP API: enrolment, the code step after the
//! password, codes never accepted twice, recovery codes, the code step's throttle, turning it off, and
//! an admin's reset. Codes are computed here the way an authenticator app does.

use crate::helpers::*;
use app::auth::two_factor::{code_at, STEP_SECS};
use serde_json::Value;

on_both_drivers!(
    sign_in_asks_for_a_code_that_works_once,
    recovery_codes_work_once_each,
    the_code_step_is_throttled_like_the_password,
    turning_it_off_needs_the_password_and_a_code,
    admins_see_who_has_it_and_reset_it_audited,
);

fn now_step() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    secs / STEP_SECS
}

/// What enrolment gave: the key an app would scan, the step of the confirming code, recovery codes.
struct Enrolled {
    key: String,
    step: u64,
    recovery: Vec<String>,
}

impl Enrolled {
    /// A code an app would show now that has not been used yet (the confirming one is spent).
    fn next_code(&self) -> String {
        code_at(&self.key, now_step().max(self.step + 1)).unwrap()
    }
}

async fn enrol(browser: &mut Browser) -> Enrolled {
    let begun = browser.post("/api/account/two-factor/begin", &[]).await;
    assert_eq!(begun.status, 200, "{begun:?}");
    assert!(begun.body["qr_svg"].as_str().unwrap().starts_with("<svg"));
    let key: String = begun.body["key"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        begun.body["uri"].as_str().unwrap().contains(&key),
        "{begun:?}"
    );
    let step = now_step();
    let wrong = code_at(&key, step + 7).unwrap();
    let refused = browser
        .post("/api/account/two-factor/confirm", &[("code", &wrong)])
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(refused.body["field"], "code");
    assert_eq!(browser.me().await.body["two_factor"], false);

    let code = code_at(&key, step).unwrap();
    let confirmed = browser
        .post("/api/account/two-factor/confirm", &[("code", &code)])
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let recovery: Vec<String> = confirmed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    assert_eq!(browser.me().await.body["two_factor"], true);
    Enrolled {
        key,
        step,
        recovery,
    }
}

/// A browser that got past the password step of `username`, holding the challenge cookie.
async fn at_code_step(app: &TestApp, username: &str) -> Browser {
    let mut browser = Browser::new(app);
    let login = browser.login(username, GOOD_PASSWORD).await;
    assert_eq!(login.status, 401, "{login:?}");
    assert_eq!(login.body["kind"], "second_factor_required");
    assert!(browser.cookie("mlchat_2fa").is_some(), "{login:?}");
    assert!(browser.cookie("mlchat_access").is_none());
    assert!(browser.cookie("mlchat_refresh").is_none());
    assert_eq!(browser.me().await.body, Value::Null);
    browser
}

async fn send_code(browser: &mut Browser, code: &str) -> Answer {
    browser
        .post("/api/auth/login/code", &[("code", code)])
        .await
}

async fn sign_in_asks_for_a_code_that_works_once(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut ana = Browser::new(&app);
    assert_eq!(ana.register("ana", GOOD_PASSWORD).await.status, 200);
    let enrolled = enrol(&mut ana).await;

    // The code step without the password step first is refused.
    let mut guest = Browser::new(&app);
    let answer = send_code(&mut guest, &enrolled.next_code()).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(guest.cookie("mlchat_access").is_none());

    let mut phone = at_code_step(&app, "ana").await;
    // The code that confirmed the set-up is spent.
    let spent = code_at(&enrolled.key, enrolled.step).unwrap();
    let answer = send_code(&mut phone, &spent).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.body["field"], "code");
    let code = enrolled.next_code();
    let answer = send_code(&mut phone, &code).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["username"], "ana");
    assert_eq!(phone.me().await.body["username"], "ana");
    assert!(
        phone.cookie("mlchat_2fa").is_none(),
        "the challenge is used up"
    );

    // The same code for another sign-in (someone who watched it typed): refused.
    let mut onlooker = at_code_step(&app, "ana").await;
    let answer = send_code(&mut onlooker, &code).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(onlooker.cookie("mlchat_access").is_none());
    app.stop().await.unwrap();
}

async fn recovery_codes_work_once_each(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut ana = Browser::new(&app);
    assert_eq!(ana.register("ana", GOOD_PASSWORD).await.status, 200);
    let enrolled = enrol(&mut ana).await;

    let mut laptop = at_code_step(&app, "ana").await;
    // Typed loosely: lower case, spaces instead of the dash.
    let typed = enrolled.recovery[3].to_lowercase().replace('-', " ");
    let answer = send_code(&mut laptop, &typed).await;
    assert_eq!(answer.status, 200, "{answer:?}");

    let mut again = at_code_step(&app, "ana").await;
    let answer = send_code(&mut again, &enrolled.recovery[3]).await;
    assert_eq!(answer.status, 400, "a recovery code works once: {answer:?}");
    let answer = send_code(&mut again, &enrolled.recovery[4]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    app.stop().await.unwrap();
}

async fn the_code_step_is_throttled_like_the_password(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut ana = Browser::new(&app);
    assert_eq!(ana.register("ana", GOOD_PASSWORD).await.status, 200);
    let enrolled = enrol(&mut ana).await;

    let mut guesser = at_code_step(&app, "ana").await;
    let right = enrolled.next_code();
    let mut statuses = Vec::new();
    for guess in 0..20u32 {
        let wrong = format!("{:06}", (guess * 7919) % 1_000_000);
        if wrong == right {
            continue;
        }
        statuses.push(send_code(&mut guesser, &wrong).await.status);
    }
    // The five free failures and the one that starts the first wait, as for passwords.
    let checked = statuses.iter().filter(|s| **s == 400).count();
    assert_eq!(checked, 6, "codes checked before the wait: {statuses:?}");
    assert!(statuses[6..].iter().all(|s| *s == 429), "{statuses:?}");
    // Held back even with the right code: nothing is checked while the wait runs.
    let answer = send_code(&mut guesser, &right).await;
    assert_eq!(answer.status, 429, "{answer:?}");
    assert_eq!(answer.body["kind"], "too_many_attempts");
    assert!(answer.body["retry_after_secs"].as_u64().unwrap() >= 1);
    app.stop().await.unwrap();
}

async fn turning_it_off_needs_the_password_and_a_code(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut ana = Browser::new(&app);
    assert_eq!(ana.register("ana", GOOD_PASSWORD).await.status, 200);
    let enrolled = enrol(&mut ana).await;
    let disable = async |ana: &mut Browser, password: &str, code: &str| {
        ana.post(
            "/api/account/two-factor/disable",
            &[("password", password), ("code", code)],
        )
        .await
    };

    let answer = disable(&mut ana, "not-the-password", &enrolled.recovery[0]).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.body["field"], "password");
    let answer = disable(&mut ana, GOOD_PASSWORD, "000000").await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.body["field"], "code");
    assert_eq!(ana.me().await.body["two_factor"], true);

    let answer = disable(&mut ana, GOOD_PASSWORD, &enrolled.next_code()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(ana.me().await.body["two_factor"], false);
    // The password alone signs in again.
    let mut other = Browser::new(&app);
    assert_eq!(other.login("ana", GOOD_PASSWORD).await.status, 200);
    app.stop().await.unwrap();
}

async fn admins_see_who_has_it_and_reset_it_audited(kind: StoreKind) {
    let app = spawn_app_with(
        kind,
        &[
            ("ADMIN_USERNAME", "root".into()),
            ("ADMIN_PASSWORD", GOOD_PASSWORD.into()),
        ],
    )
    .await;
    let mut root = Browser::new(&app);
    assert_eq!(root.login("root", GOOD_PASSWORD).await.status, 200);
    let mut ana = Browser::new(&app);
    assert_eq!(ana.register("ana", GOOD_PASSWORD).await.status, 200);
    enrol(&mut ana).await;

    let row = |page: &Answer| page.body["items"][0].clone();
    let users = root.get("/api/admin/users?search=ana&offset=0").await;
    assert_eq!(row(&users)["two_factor"], true, "{users:?}");
    let id = row(&users)["id"].as_str().unwrap().to_owned();
    // Only admins may reset it.
    let refused = ana
        .post("/api/admin/users/reset-two-factor", &[("user", &id)])
        .await;
    assert_eq!(refused.status, 403, "{refused:?}");

    let reset = root
        .post("/api/admin/users/reset-two-factor", &[("user", &id)])
        .await;
    assert_eq!(reset.status, 200, "{reset:?}");
    assert_eq!(reset.body["two_factor"], false);
    // Ana's sessions ended; the password alone signs her in.
    assert_eq!(ana.me().await.body, Value::Null);
    let mut again = Browser::new(&app);
    assert_eq!(again.login("ana", GOOD_PASSWORD).await.status, 200);

    let audit = root
        .get("/api/admin/audit?actor=&action=user.reset_two_factor&offset=0")
        .await;
    assert_eq!(audit.status, 200, "{audit:?}");
    let entries = audit.body["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit:?}");
    assert_eq!(entries[0]["target"], "user:ana");
    assert_eq!(entries[0]["actor"], "root");
    app.stop().await.unwrap();
}
