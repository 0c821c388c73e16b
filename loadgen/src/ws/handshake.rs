//! The HTTP/1.1 upgrade (RFC 6455, section 4) from both ends: the client's request and the check of
//! the server's answer, and (for the read benchmark's synthetic server) the request's parsing and the
//! `101` answer.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha1::{Digest, Sha1};

/// An answer header bigger than this is refused.
pub const MAX_HEAD: usize = 16 * 1024;

/// The GUID RFC 6455 appends to the key before hashing it.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64.
pub fn new_key() -> String {
    BASE64.encode(rand::random::<u128>().to_ne_bytes())
}

/// The `Sec-WebSocket-Accept` a server answers `key` with.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

/// Why a header value cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHeader(pub &'static str);

/// The upgrade request. `host` is `host:port` as in the URL; `origin` and `cookies` go as they are.
pub fn request(
    host: &str,
    path: &str,
    origin: &str,
    cookies: &str,
    key: &str,
) -> Result<Vec<u8>, BadHeader> {
    // A line break in a value would end the header early (or inject another).
    let clean = |v: &str| !v.bytes().any(|b| b < b' ' && b != b'\t' || b == 0x7F);
    if !clean(origin) {
        return Err(BadHeader("origin"));
    }
    if !clean(cookies) {
        return Err(BadHeader("cookie"));
    }
    if !clean(host) || !clean(path) {
        return Err(BadHeader("url"));
    }
    let mut out = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n"
    );
    if !cookies.is_empty() {
        out.push_str("Cookie: ");
        out.push_str(cookies);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    Ok(out.into_bytes())
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `101` with the right accept key: websocket frames follow the `head` bytes.
    Upgraded { head: usize },
    /// Any other status; `body` bytes (by `Content-Length`) follow the head.
    Refused {
        status: u16,
        head: usize,
        body: Option<usize>,
    },
}

/// Parses the answer at the start of `buf` to the upgrade request sent with `key`. `Ok(None)`: the
/// head has not all arrived.
pub fn parse_answer(buf: &[u8], key: &str) -> Result<Option<Answer>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(format!("an answer head over {MAX_HEAD} bytes"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("a malformed answer: {e}")),
    };
    let status = response.code.unwrap_or(0);
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    if status != 101 {
        let body = header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse().ok());
        return Ok(Some(Answer::Refused { status, head, body }));
    }
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|v| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return Err("a 101 answer without Upgrade: websocket and Connection: upgrade".into());
    }
    if header("sec-websocket-accept") != Some(accept_key(key).as_bytes()) {
        return Err("a 101 answer with the wrong Sec-WebSocket-Accept".into());
    }
    Ok(Some(Answer::Upgraded { head }))
}

/// An upgrade request as a server reads it: its head's length, its key and its `Cookie` header.
pub fn parse_request(buf: &[u8]) -> Result<Option<(usize, String, String)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let head = match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err("a request head that is too long".into())
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("a malformed request: {e}")),
    };
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let key = header("sec-websocket-key").ok_or("no Sec-WebSocket-Key")?;
    Ok(Some((head, key, header("cookie").unwrap_or_default())))
}

/// The `101` answer to a request with `key`.
pub fn switching(key: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_the_rfcs() {
        // The example of RFC 6455, section 1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(BASE64.decode(new_key()).unwrap().len(), 16);
        assert_ne!(new_key(), new_key());
    }

    #[test]
    fn a_request_and_its_answer_round_trip() {
        let key = new_key();
        let req = request(
            "127.0.0.1:3000",
            "/api/ws",
            "http://127.0.0.1:3000",
            "a=b; c=d",
            &key,
        )
        .unwrap();
        let text = String::from_utf8(req.clone()).unwrap();
        assert!(text.starts_with("GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(text.contains("\r\nOrigin: http://127.0.0.1:3000\r\n"));
        assert!(text.ends_with("\r\nCookie: a=b; c=d\r\n\r\n"));
        assert_eq!(
            parse_request(&req).unwrap(),
            Some((req.len(), key.clone(), "a=b; c=d".into()))
        );
        assert_eq!(parse_request(&req[..req.len() - 1]).unwrap(), None);

        let answer = [switching(&key), b"\x82\x01x".to_vec()].concat();
        let head = answer.len() - 3;
        for cut in 0..head {
            assert_eq!(parse_answer(&answer[..cut], &key), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            parse_answer(&answer, &key),
            Ok(Some(Answer::Upgraded { head }))
        );
        assert!(parse_answer(&answer, &new_key()).is_err(), "another key");
    }

    #[test]
    fn refusals_and_bad_answers() {
        let key = new_key();
        let refused = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 12\r\n\r\n{\"kind\":\"x\"}";
        assert_eq!(
            parse_answer(refused, &key),
            Ok(Some(Answer::Refused {
                status: 401,
                head: refused.len() - 12,
                body: Some(12)
            }))
        );
        let no_upgrade = format!(
            "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(&key)
        );
        assert!(parse_answer(no_upgrade.as_bytes(), &key).is_err());
        assert!(parse_answer(b"SSH-2.0-OpenSSH\r\n\r\n", &key).is_err());
        assert!(parse_answer(&vec![b'a'; MAX_HEAD + 1], &key).is_err());
        for (origin, cookies) in [("http://x\r\nEvil: 1", ""), ("http://x", "a=b\nc")] {
            assert!(request("h", "/", origin, cookies, &key).is_err());
        }
    }
}
