//! Which push endpoints the server will send to. A push is a request the server makes to a URL the
//! browser chose, so the URL is held to https on a public address: nothing on the server's own
//! network (loopback, private, link-local, ...) is reachable through it. The address is checked when
//! the subscription is saved and again at every send, where the resolver drops private answers (a
//! name that resolved to a public address yesterday may not today). Tests that run a push receiver
//! on loopback set `PUSH_ALLOW_LOOPBACK`, refused in production.

use crate::error::AppError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Longer URLs are not endpoints any push service hands out.
pub const MAX_ENDPOINT_LEN: usize = 1024;

/// Whether pushes may go to this machine's loopback (test receivers only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    PublicOnly,
    AlsoLoopback,
}

impl Reach {
    pub fn allows(self, ip: IpAddr) -> bool {
        is_public(ip) || (self == Reach::AlsoLoopback && ip.is_loopback())
    }
}

fn refused(why: &str) -> AppError {
    AppError::invalid(
        "endpoint",
        format!("That is not a push service's address: {why}."),
    )
}

/// The endpoint as a URI, if the server may send to it.
pub fn checked(raw: &str, reach: Reach) -> Result<http::Uri, AppError> {
    if raw.len() > MAX_ENDPOINT_LEN {
        return Err(refused("it is too long"));
    }
    let uri: http::Uri = raw.parse().map_err(|_| refused("it is not a URL"))?;
    let authority = uri.authority().ok_or_else(|| refused("it has no host"))?;
    if authority.as_str().contains('@') {
        return Err(refused("it carries credentials"));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let ip = host.parse::<IpAddr>().ok();
    let loopback = match ip {
        Some(ip) => ip.is_loopback(),
        None => host.eq_ignore_ascii_case("localhost"),
    };
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if reach == Reach::AlsoLoopback && loopback => {}
        _ => return Err(refused("it must be https")),
    }
    match ip {
        Some(ip) if !reach.allows(ip) => return Err(refused("it is not a public address")),
        Some(_) => {}
        None if loopback && reach == Reach::AlsoLoopback => {}
        None => {
            let lower = host.to_ascii_lowercase();
            let local = [
                "localhost",
                ".localhost",
                ".local",
                ".internal",
                ".lan",
                ".home.arpa",
            ];
            if !lower.contains('.')
                || local
                    .iter()
                    .any(|s| lower == s.trim_start_matches('.') || lower.ends_with(s))
            {
                return Err(refused("it is not a public host"));
            }
        }
    }
    Ok(uri)
}

/// Only addresses anyone on the internet could reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments and benchmarking networks.
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local fc00::/7 and link-local fe80::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // Documentation 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

/// Resolves push services' host names for the HTTP client, keeping only addresses `reach` allows.
pub struct Resolver {
    pub reach: Reach,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let reach = self.reach;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found.filter(|a| reach.allows(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!("{} has no public address", name.as_str()).into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_services_are_https_on_public_hosts() {
        for ok in [
            "https://fcm.googleapis.com/fcm/send/abc:def",
            "https://updates.push.services.mozilla.com/wpush/v2/gAAA",
            "https://web.push.apple.com/QGk",
            "https://8.8.8.8/x",
            "https://[2606:4700::1111]/x",
        ] {
            assert!(checked(ok, Reach::PublicOnly).is_ok(), "{ok}");
        }
        for bad in [
            "http://fcm.googleapis.com/x",
            "https://localhost/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://192.168.0.10/x",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/x",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://metadata/x",
            "https://printer.local/x",
            "https://db.internal/x",
            "https://user:pw@push.example.com/x",
            "ftp://push.example.com/x",
            "not a url",
        ] {
            assert!(checked(bad, Reach::PublicOnly).is_err(), "{bad}");
        }
        let long = format!("https://push.example.com/{}", "a".repeat(MAX_ENDPOINT_LEN));
        assert!(checked(&long, Reach::PublicOnly).is_err());
    }

    #[test]
    fn loopback_is_reachable_only_when_allowed() {
        assert!(checked("http://127.0.0.1:9000/push/1", Reach::AlsoLoopback).is_ok());
        assert!(checked("http://localhost:9000/push/1", Reach::AlsoLoopback).is_ok());
        assert!(checked("http://127.0.0.1:9000/push/1", Reach::PublicOnly).is_err());
        // Loopback does not open the rest of the private network, nor plain http elsewhere.
        assert!(checked("http://10.0.0.1/x", Reach::AlsoLoopback).is_err());
        assert!(checked("https://10.0.0.1/x", Reach::AlsoLoopback).is_err());
        assert!(checked("http://push.example.com/x", Reach::AlsoLoopback).is_err());
    }
}
