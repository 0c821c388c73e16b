//! `spawn_app` and friends: a real server per test, on its own port and its own store.

use server::config::Settings;
use server::startup::Application;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
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
    _data_dir: tempfile::TempDir,
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
        (&mut self.server).await.expect("server task panicked")
    }
}

static DB_COUNTER: AtomicU64 = AtomicU64::new(0);

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
    if std::env::var("TEST_LOG").is_ok() {
        server::telemetry::init("info", settings.log_format);
    }
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
        _data_dir: data_dir,
    }
}

pub async fn spawn_app(kind: StoreKind) -> TestApp {
    spawn_app_with(kind, &[]).await
}

/// A TCP forwarder in front of the MongoDB server, which a test can cut to simulate an outage.
pub struct CuttableProxy {
    pub port: u16,
    enabled: Arc<AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let enabled = Arc::new(AtomicBool::new(true));
        let connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> =
            Default::default();
        let accept = tokio::spawn({
            let enabled = enabled.clone();
            let connections = connections.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !enabled.load(Ordering::SeqCst) {
                        drop(inbound); // refused while cut
                        continue;
                    }
                    let target = target.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(&target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections.lock().unwrap().push(task);
                }
            }
        });
        Self {
            port,
            enabled,
            connections,
            accept,
        }
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    pub fn restore(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// `host:port` of a plain `mongodb://[user:pass@]host:port/...` URI.
pub fn mongodb_host_port(uri: &str) -> String {
    let rest = uri
        .strip_prefix("mongodb://")
        .expect("the outage test needs a plain mongodb:// URI");
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    assert!(
        !host.contains(','),
        "the outage test needs a single-host MONGODB_URI"
    );
    host.to_owned()
}

/// The same URI with its host:port replaced.
pub fn mongodb_uri_via(uri: &str, host_port: &str) -> String {
    uri.replacen(&mongodb_host_port(uri), host_port, 1)
}
