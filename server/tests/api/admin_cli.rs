//! `server admin create|promote` against a real data directory, then a real server on the same data.

use crate::helpers::*;
use std::process::{Command, Stdio};

fn admin_command(
    data_dir: &std::path::Path,
    args: &[&str],
    password: Option<&str>,
) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
    command
        .arg("admin")
        .args(args)
        .env_clear()
        .env("DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    if let Some(password) = password {
        command.env("ADMIN_PASSWORD", password);
    }
    let output = command.output().expect("the server binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn admins_are_created_and_promoted_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let (ok, out) = admin_command(
        data.path(),
        &["create", "root", "--display-name", "Root"],
        Some(GOOD_PASSWORD),
    );
    assert!(ok, "{out}");
    assert!(out.contains("created the administrator account"), "{out}");
    let (ok, out) = admin_command(data.path(), &["create", "root"], Some(GOOD_PASSWORD));
    assert!(!ok && out.contains("already exists"), "{out}");
    let (ok, out) = admin_command(data.path(), &["create", "weak"], Some("password1"));
    assert!(!ok && out.contains("too easy to guess"), "{out}");
    let (ok, out) = admin_command(data.path(), &["create", "nopass"], None);
    assert!(!ok && out.contains("no password given"), "{out}");
    let (ok, out) = admin_command(data.path(), &["promote", "nobody"], None);
    assert!(!ok && out.contains("not found"), "{out}");

    // A normal user registers on the running server, which is then stopped ...
    let dir = data.path().display().to_string();
    let app = spawn_app_with(StoreKind::Embedded, &[("DATA_DIR", dir.clone())]).await;
    let mut root = Browser::new(&app);
    let answer = root.login("root", GOOD_PASSWORD).await;
    assert_eq!(
        (answer.status, answer.body["role"].clone()),
        (200, "admin".into())
    );
    assert_eq!(answer.body["display_name"], "Root");
    let mut ana = Browser::new(&app);
    assert_eq!(
        ana.register("ana", GOOD_PASSWORD).await.body["role"],
        "user"
    );
    app.stop().await.unwrap();

    // ... promoted from the command line, and is an admin at the next start.
    let (ok, out) = admin_command(data.path(), &["promote", "ANA"], None);
    assert!(ok && out.contains("is an administrator now"), "{out}");
    let (ok, out) = admin_command(data.path(), &["promote", "ana"], None);
    assert!(ok && out.contains("already is an administrator"), "{out}");
    let app = spawn_app_with(StoreKind::Embedded, &[("DATA_DIR", dir)]).await;
    let mut ana = Browser::new(&app);
    assert_eq!(ana.login("ana", GOOD_PASSWORD).await.body["role"], "admin");
    app.stop().await.unwrap();
}
