//! The client's address behind reverse proxies. Only proxies listed in `TRUSTED_PROXIES` may say who
//! the client is (via `X-Forwarded-For`); anyone else could forge the header to dodge per-IP limits or
//! frame another address in the audit log.

use app::request::ClientIp;
use axum::{
    extract::{ConnectInfo, Request, State},
    http::HeaderMap,
    middleware::Next,
    response::Response,
};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges (`10.0.0.0/8, ::1`).
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{item:?} is neither an IP address nor a CIDR range"))?;
            nets.push(net);
        }
        Ok(Self(nets))
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client: the TCP peer, unless the peer is a trusted proxy; then the nearest address in
    /// `X-Forwarded-For` (read from the right, each hop appends) that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        // From the right: each hop was appended by the proxy after it. An unreadable hop ends the
        // walk (what lies left of it cannot be believed), but the hops read so far still count.
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            let Ok(hop) = hop.parse::<IpAddr>() else {
                break;
            };
            client = hop;
            if !self.trusts(hop) {
                break;
            }
        }
        client.to_canonical()
    }
}

/// Records the resolved client address for everything downstream (sessions, throttles, audit log).
pub async fn resolve(
    State(trusted): State<Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    {
        let ip = trusted.client_ip(peer.ip(), request.headers());
        request.extensions_mut().insert(ClientIp(ip));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn forwarded(chain: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(chain).unwrap());
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_cannot_claim_another_address() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("203.0.113.7"), &forwarded("1.2.3.4")),
            ip("203.0.113.7")
        );
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            proxies.client_ip(ip("203.0.113.7"), &forwarded("1.2.3.4")),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn trusted_proxies_name_the_nearest_untrusted_hop() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.1").unwrap();
        // The client forged the first entry; the last untrusted hop is the real one.
        let chain = forwarded("6.6.6.6, 198.51.100.9, 10.1.2.3");
        assert_eq!(
            proxies.client_ip(ip("192.168.1.1"), &chain),
            ip("198.51.100.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            proxies.client_ip(ip("10.0.0.5"), &HeaderMap::new()),
            ip("10.0.0.5")
        );
        // An unreadable hop on the right: only what the trusted peer itself saw counts.
        assert_eq!(
            proxies.client_ip(ip("10.0.0.5"), &forwarded("1.2.3.4, nonsense")),
            ip("10.0.0.5")
        );
        // An unreadable hop further left does not discard the good ones to its right.
        assert_eq!(
            proxies.client_ip(
                ip("10.0.0.5"),
                &forwarded("nonsense, 198.51.100.9, 10.1.2.3")
            ),
            ip("198.51.100.9")
        );
        // IPv4-mapped IPv6 peers count as their IPv4 address.
        assert_eq!(
            proxies.client_ip(ip("::ffff:10.0.0.5"), &forwarded("198.51.100.9")),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn the_list_is_checked() {
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
        assert_eq!(TrustedProxies::parse("::1, 127.0.0.1").unwrap().0.len(), 2);
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
    }
}
