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
    capture_logs();
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

// ---------------------------------------------------------------------------------------------------------
// Logs: every server in this test binary logs (at TRACE) into one buffer, so tests can check what was
// logged. `TEST_LOG=1` also prints them.

static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        if std::env::var("TEST_LOG").is_ok() {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_ansi(false)
            .with_writer(|| LogSink)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// Everything logged so far by the servers of this test binary.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------------------------------------------------
// A browser-like client: keeps the cookies it is given (so tests can also replay old ones), and sends
// our Origin on state-changing requests, as a browser on our pages does.

pub struct Browser {
    pub base: String,
    /// Sent as `Origin` on POSTs; the app's own origin unless a test changes it.
    pub origin: String,
    http: reqwest::Client,
    pub cookies: HashMap<String, String>,
    pub user_agent: String,
    /// Sent with every request, e.g. `X-Forwarded-For` as a proxy would add it.
    pub extra_headers: Vec<(&'static str, String)>,
}

/// The answer of a server function: status, parsed JSON body, and the raw `Set-Cookie` headers.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
    pub set_cookies: Vec<String>,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self::talking_to(&app.address, &app.address)
    }

    /// A browser sending requests to `base` from pages of `origin`.
    fn talking_to(base: &str, origin: &str) -> Self {
        Self {
            base: base.to_owned(),
            origin: origin.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("http client"),
            cookies: HashMap::new(),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36".into(),
            extra_headers: Vec::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) -> Vec<String> {
        let mut raw = Vec::new();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap().to_owned();
            let cookie = cookie::Cookie::parse(text.clone()).unwrap();
            if cookie.max_age() == Some(cookie::time::Duration::ZERO) || cookie.value().is_empty() {
                self.cookies.remove(cookie.name());
            } else {
                self.cookies
                    .insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
            raw.push(text);
        }
        raw
    }

    fn with_extras(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        for (name, value) in &self.extra_headers {
            request = request.header(*name, value);
        }
        request
    }

    /// POSTs a form to a server function, like the app's pages do.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let response = self
            .with_extras(self.http.post(format!("{}{path}", self.base)))
            .header("origin", &self.origin)
            .header("cookie", self.cookie_header())
            .header("user-agent", &self.user_agent)
            .form(form)
            .send()
            .await
            .expect("request failed");
        self.answer(response).await
    }

    /// GETs a server function or page.
    pub async fn get(&mut self, path: &str) -> Answer {
        let response = self
            .with_extras(self.http.get(format!("{}{path}", self.base)))
            .header("cookie", self.cookie_header())
            .header("user-agent", &self.user_agent)
            .send()
            .await
            .expect("request failed");
        self.answer(response).await
    }

    /// A page load; returns the status, the `Location` (for redirects) and the HTML.
    pub async fn page(&mut self, path: &str) -> (u16, Option<String>, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("accept", "text/html")
            .send()
            .await
            .expect("request failed");
        self.keep_cookies(&response);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (status, location, response.text().await.unwrap())
    }

    async fn answer(&mut self, response: reqwest::Response) -> Answer {
        let set_cookies = self.keep_cookies(&response);
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Answer {
            status,
            body,
            set_cookies,
        }
    }

    pub async fn register(&mut self, username: &str, password: &str) -> Answer {
        self.post(
            "/api/auth/register",
            &[
                ("username", username),
                ("display_name", ""),
                ("password", password),
            ],
        )
        .await
    }

    pub async fn login(&mut self, username: &str, password: &str) -> Answer {
        self.post(
            "/api/auth/login",
            &[("username", username), ("password", password)],
        )
        .await
    }

    pub async fn me(&mut self) -> Answer {
        self.get("/api/auth/me").await
    }

    pub async fn refresh(&mut self) -> Answer {
        self.post("/api/auth/refresh", &[]).await
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.get(name).cloned()
    }
}

/// A password the strength check accepts.
pub const GOOD_PASSWORD: &str = "velvet-orbit-cactus-91";

// ---------------------------------------------------------------------------------------------------------
// A websocket client speaking the real wire format: binary frames `[tag][payload]`, tag 0 = JSON item.

use app::protocol::{ClientMsg, ServerMsg};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message as WsMessage};

pub type WsSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

pub struct WsClient {
    pub socket: WsSocket,
    /// Items `recv_until` passed over, handed out again (in order) by the next reads.
    skipped: std::collections::VecDeque<ServerMsg>,
}

/// Encodes one client message as a websocket frame.
pub fn frame(msg: &ClientMsg) -> WsMessage {
    let mut bytes = vec![0u8];
    bytes.extend(serde_json::to_vec(msg).unwrap());
    WsMessage::Binary(bytes.into())
}

/// Decodes one server frame; `None` for frames that carry no item (pings, close).
pub fn decode(message: WsMessage) -> Option<ServerMsg> {
    match message {
        WsMessage::Binary(bytes) => {
            assert_eq!(
                bytes[0],
                0,
                "an item frame, got {:?}",
                String::from_utf8_lossy(&bytes)
            );
            Some(serde_json::from_slice(&bytes[1..]).expect("a ServerMsg"))
        }
        _ => None,
    }
}

/// A `Send` command.
pub fn send(room: app::model::RoomId, nonce: &str, body: &str) -> ClientMsg {
    ClientMsg::Send {
        room,
        nonce: nonce.into(),
        body: body.into(),
    }
}

/// Reads up to the `Synced` of `room`; its last sequence.
pub async fn synced(ws: &mut WsClient, room: app::model::RoomId) -> u64 {
    ws.recv_until(|m| match m {
        ServerMsg::Synced { room: r, last_seq } if *r == room => Some(*last_seq),
        _ => None,
    })
    .await
}

impl WsClient {
    /// Opens `/api/ws` with the browser's cookies and `Origin`; `Err(status)` when the upgrade is refused.
    pub async fn connect(browser: &Browser) -> Result<Self, u16> {
        let url = format!("{}/api/ws", browser.base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert("origin", browser.origin.parse().unwrap());
        if !browser.cookies.is_empty() {
            headers.insert("cookie", browser.cookie_header().parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(Self {
                socket,
                skipped: Default::default(),
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(other) => panic!("websocket connect failed: {other}"),
        }
    }

    /// Connects, says hello with `cursors`, and reads up to the last `Synced`.
    pub async fn join(browser: &Browser, cursors: Vec<app::protocol::RoomCursor>) -> Self {
        let mut ws = Self::connect(browser).await.expect("upgrade accepted");
        assert!(matches!(ws.recv().await, Some(ServerMsg::Welcome { .. })));
        ws.send(&ClientMsg::Hello { cursors }).await;
        ws
    }

    pub async fn send(&mut self, msg: &ClientMsg) {
        self.socket.send(frame(msg)).await.expect("send a frame");
    }

    pub async fn send_raw(&mut self, frame: Vec<u8>) {
        self.socket
            .send(WsMessage::Binary(frame.into()))
            .await
            .expect("send a frame");
    }

    /// The next item within 10 s; `None` once the server closed the connection.
    pub async fn recv(&mut self) -> Option<ServerMsg> {
        self.recv_within(std::time::Duration::from_secs(10))
            .await
            .expect("a frame within 10 s")
    }

    /// `Err(())` on timeout.
    pub async fn recv_within(
        &mut self,
        wait: std::time::Duration,
    ) -> Result<Option<ServerMsg>, ()> {
        if let Some(msg) = self.skipped.pop_front() {
            return Ok(Some(msg));
        }
        loop {
            let frame = tokio::time::timeout(wait, self.socket.next())
                .await
                .map_err(|_| ())?;
            match frame {
                None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return Ok(None),
                Some(Ok(message)) => match decode(message) {
                    Some(msg) => return Ok(Some(msg)),
                    None => continue,
                },
            }
        }
    }

    /// Reads until `pick` accepts an item; the others stay queued for later reads.
    pub async fn recv_until<T>(&mut self, mut pick: impl FnMut(&ServerMsg) -> Option<T>) -> T {
        if let Some(i) = self.skipped.iter().position(|m| pick(m).is_some()) {
            let msg = self.skipped.remove(i).unwrap();
            return pick(&msg).unwrap();
        }
        let mut passed = Vec::new();
        let found = loop {
            let msg = self
                .recv_within(std::time::Duration::from_secs(10))
                .await
                .expect("a frame within 10 s")
                .expect("the connection is open");
            if let Some(found) = pick(&msg) {
                break found;
            }
            passed.push(msg);
        };
        // Keep the passed-over items in arrival order, ahead of anything read later.
        for msg in passed.into_iter().rev() {
            self.skipped.push_front(msg);
        }
        found
    }

    /// Whether anything matching `pick` arrives within `wait`.
    pub async fn sees_within(
        &mut self,
        wait: std::time::Duration,
        mut pick: impl FnMut(&ServerMsg) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_within(left).await {
                Ok(Some(msg)) if pick(&msg) => return true,
                Ok(Some(_)) => continue,
                Ok(None) | Err(()) => return false,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Whole server processes (the built `server` binary), for tests that need several instances or SIGKILL.

/// The origin every instance of a multi-instance test serves, as if behind one load balancer.
pub const SHARED_ORIGIN: &str = "http://chat.localhost";

pub struct ServerProcess {
    pub address: String,
    child: tokio::process::Child,
    _data_dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `server` on a free port against the MongoDB database `database` (via `uri`), and waits
    /// until `/readyz` answers 200.
    pub async fn start(uri: &str, database: &str) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            listener.local_addr().unwrap().port()
        };
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("PUBLIC_ORIGIN", SHARED_ORIGIN)
            .env("DATA_DIR", data_dir.path())
            .env("MONGODB_URI", uri)
            .env("MONGODB_DB", database)
            // One secret for all instances: a token issued by one is valid on the others.
            .env("JWT_SECRET", "multi-instance-test-secret-0123456789abcdef")
            .env("MESSAGES_PER_10S", "1000000")
            .env("REGISTRATIONS_PER_IP_PER_HOUR", "100000")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the server binary");
        let address = format!("http://127.0.0.1:{port}");
        let process = Self {
            address,
            child,
            _data_dir: data_dir,
        };
        process.wait_ready(std::time::Duration::from_secs(60)).await;
        process
    }

    /// Polls `/readyz` until it answers 200.
    pub async fn wait_ready(&self, within: std::time::Duration) {
        let deadline = std::time::Instant::now() + within;
        loop {
            if self.readiness().await.0 == 200 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} not ready within {within:?}",
                self.address
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// `/readyz`: status and reason (0 when it does not answer).
    pub async fn readiness(&self) -> (u16, String) {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap();
        match client.get(format!("{}/readyz", self.address)).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                (status, body["reason"].as_str().unwrap_or("").to_owned())
            }
            Err(_) => (0, String::new()),
        }
    }

    /// SIGTERM, then waits for the exit; returns whether it exited successfully within `within`.
    pub async fn terminate(&mut self, within: std::time::Duration) -> bool {
        let pid = self.child.id().expect("the server is running");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => false,
        }
    }

    /// SIGKILL: no drain, no goodbye.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill the server");
    }
}

impl Browser {
    /// A browser talking to one instance of a multi-instance deployment.
    pub fn at(process: &ServerProcess) -> Self {
        Self::talking_to(&process.address, SHARED_ORIGIN)
    }

    /// The same signed-in person, now talking to another instance.
    pub fn moved_to(&self, process: &ServerProcess) -> Self {
        let mut other = Self::at(process);
        other.cookies = self.cookies.clone();
        other
    }
}

/// A fresh database name for a multi-instance test.
pub fn fresh_database(label: &str) -> String {
    let n = DB_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("mlchat_{label}_{}_{n}", std::process::id())
}
