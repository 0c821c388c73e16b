//! A TCP forwarder in front of the MongoDB server, which a test can cut to simulate an outage.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

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
