//! `spawn_app` and friends: a real server per test, on its own port and its own store.
//!
//! - `browser`: a browser-like HTTP client that keeps its cookies;
//! - `ws`: a websocket client speaking the real wire format;
//! - `process`: whole server processes, for several instances, SIGKILL or a log of their own;
//! - `proxy`: a TCP forwarder in front of MongoDB that a test can cut.

mod browser;
mod history;
mod process;
mod proxy;
mod ws;

pub use browser::*;
pub use history::*;
pub use process::*;
pub use proxy::*;
pub use ws::*;

use server::config::Settings;
use server::startup::Application;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Embedded,
    Mongo,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub data_dir: tempfile::TempDir,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request failed")
    }

    /// Asks the server to shut down and waits until it has.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // A stuck shutdown should fail loudly, not hang the whole suite.
        tokio::time::timeout(std::time::Duration::from_secs(30), &mut self.server)
            .await
            .expect("the server did not stop within 30 s of the shutdown signal")
            .expect("server task panicked")
    }
}

/// Instantiates each listed `async fn(StoreKind)` as one test per storage driver.
macro_rules! on_both_drivers {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test] async fn $name() { super::$name(crate::helpers::StoreKind::Embedded).await })*
        }
        mod mongo {
            $(#[tokio::test] async fn $name() { super::$name(crate::helpers::StoreKind::Mongo).await })*
        }
    };
}
pub(crate) use on_both_drivers;

pub(crate) static DB_COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn mongodb_uri() -> String {
    std::env::var("MONGODB_URI").unwrap_or_else(|_| {
        panic!("MONGODB_URI is not set: run scripts/test.sh (it starts a MongoDB-wire server) or set it")
    })
}

/// Starts the server with a fresh store. `extra` overrides environment variables.
pub async fn spawn_app_with(kind: StoreKind, extra: &[(&str, String)]) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("LEPTOS_SITE_ADDR".into(), "127.0.0.1:0".into());
    vars.insert("DATA_DIR".into(), data_dir.path().display().to_string());
    vars.insert("RUST_LOG".into(), "warn".into());
    // Every test client connects from 127.0.0.1: tests of the per-address caps set their own.
    vars.insert("CONNECTIONS_PER_ADDRESS".into(), "100000".into());
    vars.insert("WEBSOCKETS_PER_ADDRESS".into(), "100000".into());
    // No default room for new accounts: tests see exactly the rooms they make (its own test sets it).
    vars.insert("DEFAULT_ROOM".into(), String::new());
    if kind == StoreKind::Mongo {
        vars.insert("MONGODB_URI".into(), mongodb_uri());
        let n = DB_COUNTER.fetch_add(1, Ordering::Relaxed);
        vars.insert(
            "MONGODB_DB".into(),
            format!("mlchat_api_{}_{n}", std::process::id()),
        );
    }
    for (key, value) in extra {
        vars.insert((*key).to_owned(), value.clone());
    }
    let settings = Settings::from_lookup(|name| vars.get(name).cloned()).expect("valid settings");
    print_logs_if_asked();
    let application = Application::build(settings).await.expect("server starts");
    let address = format!("http://{}", application.local_addr());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    TestApp {
        address,
        client,
        shutdown: Some(tx),
        server,
        data_dir,
    }
}

pub async fn spawn_app(kind: StoreKind) -> TestApp {
    spawn_app_with(kind, &[]).await
}

/// `TEST_LOG=1` prints what the in-process servers log (they share this process's one subscriber; a
/// test that inspects logs starts its own server process instead, see `ServerProcess::launch`).
fn print_logs_if_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("info")
                .with_writer(std::io::stderr)
                .try_init();
        }
    });
}
