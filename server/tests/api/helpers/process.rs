//! Whole server processes (the built `server` binary), for tests that need several instances, SIGKILL,
//! or a log of their own.

use super::{Browser, DB_COUNTER};
use std::sync::atomic::Ordering;

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
        Self::launch(
            &[
                ("MONGODB_URI", uri.to_owned()),
                ("MONGODB_DB", database.to_owned()),
            ],
            None,
        )
        .await
    }

    /// Starts `server` on a free port with the embedded store in a fresh data directory and `env` on
    /// top; its log output (stdout) goes to `log`, if given. Waits until `/readyz` answers 200.
    pub async fn launch(env: &[(&str, String)], log: Option<&std::path::Path>) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            listener.local_addr().unwrap().port()
        };
        let stdout = match log {
            Some(path) => std::fs::File::create(path).expect("log file").into(),
            None => std::process::Stdio::null(),
        };
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"));
        command
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("PUBLIC_ORIGIN", SHARED_ORIGIN)
            .env("DATA_DIR", data_dir.path())
            // One secret for all instances: a token issued by one is valid on the others.
            .env("JWT_SECRET", "multi-instance-test-secret-0123456789abcdef")
            .env("MESSAGES_PER_10S", "1000000")
            .env("REGISTRATIONS_PER_IP_PER_HOUR", "100000")
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(stdout)
            .kill_on_drop(true)
            // The test runner's own MONGODB_URI must not pick the store: `env` does, if it wants one.
            .env_remove("MONGODB_URI")
            .env_remove("MONGODB_DB");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start the server binary");
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
