//! The accept loop: hyper with a timer, so a client that sends half a request line is cut off after
//! the header-read timeout instead of holding a connection forever (axum's own `serve` runs hyper
//! without one), and a cap on the connections one client address may hold open at once.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How the listener treats connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// A request's head must arrive within this.
    pub header_read_timeout: Duration,
    /// Connections one address may hold open at once; `None` for addresses of trusted proxies, which
    /// carry many clients.
    pub per_address: usize,
    pub trusted_proxies: crate::client_ip::TrustedProxies,
}

/// Open connections per client address (the TCP peer). Kept only while they are open.
#[derive(Default)]
struct OpenConnections(Mutex<HashMap<IpAddr, usize>>);

/// One counted connection; dropping it gives its place back.
struct Counted {
    open: Arc<OpenConnections>,
    ip: IpAddr,
}

impl OpenConnections {
    fn admit(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<Counted> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Counted {
            open: self.clone(),
            ip,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for the open HTTP connections
/// (not upgraded websockets: the hub drains those) to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let open = Arc::new(OpenConnections::default());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let ip = peer.ip().to_canonical();
        let cap = if limits.trusted_proxies.trusts(ip) {
            usize::MAX
        } else {
            limits.per_address
        };
        let Some(counted) = open.admit(ip, cap) else {
            tracing::warn!(%ip, "too many open connections from one address; refused");
            drop(stream);
            continue;
        };
        // Chat frames are small and latency-bound: send each at once instead of waiting (Nagle) for
        // the peer's delayed ACK, which added ~40 ms to frames going to a client that was also sending.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
        let service =
            app.clone()
                .map_request(move |request: hyper::Request<hyper::body::Incoming>| {
                    let mut request = request.map(axum::body::Body::new);
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(peer));
                    request
                });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _counted = counted;
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_cap_and_places_come_back() {
        let open = Arc::new(OpenConnections::default());
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = open.admit(a, 2).unwrap();
        let _second = open.admit(a, 2).unwrap();
        assert!(open.admit(a, 2).is_none());
        assert!(open.admit(b, 2).is_some());
        drop(first);
        assert!(open.admit(a, 2).is_some());
    }
}
