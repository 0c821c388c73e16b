//! Access tokens (short-lived HS256 JWTs) and refresh tokens (opaque strings, stored only as hashes:
//! a random one at sign-in, then each rotation derived from the one presented, see [`RefreshChain`]).

use crate::model::{SessionId, UserId};
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const ISSUER: &str = "ml-chat";
pub const AUDIENCE: &str = "ml-chat-web";
/// Refresh tokens carry 256 bits of randomness.
const REFRESH_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user.
    pub sub: UserId,
    /// The session (refresh-token family) this token was issued for.
    pub sid: SessionId,
    pub iat: u64,
    pub exp: u64,
    /// Unique per token, so two tokens issued in the same second still differ.
    pub jti: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
}

/// Signs and checks access tokens with one secret and one algorithm (HS256, nothing else accepted).
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
}

impl AccessTokens {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Every instance shares one clock source closely enough; the lifetime is exact.
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
        }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// A token for `user` in `session`, issued at `now` (seconds since the epoch).
    pub fn issue(&self, user: UserId, session: SessionId, now: u64) -> String {
        let claims = AccessClaims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user,
            sid: session,
            iat: now,
            exp: now + self.ttl_secs,
            jti: hex_lower(&rand::random::<[u8; 16]>()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        // A JWT larger than this is not one of ours; do not spend time parsing it.
        if token.len() > 2048 {
            return Err(TokenError::Invalid);
        }
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

/// A fresh refresh token: 32 random bytes, base64url without padding (43 characters).
pub fn new_refresh_token() -> String {
    let bytes: [u8; REFRESH_BYTES] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Derives each rotated refresh token from the one presented: `next = HMAC-SHA256(key, presented)`.
///
/// Because the successor is a function of the token, two requests that present the same token at
/// once (a page renewing while the person navigates, a reload that abandons a renewal in flight)
/// both get the same successor, so whichever answer the browser stores last is still the valid
/// token. Without the server's key the successor cannot be computed from a stolen token.
pub struct RefreshChain {
    key: Hmac<Sha256>,
}

impl RefreshChain {
    pub fn new(secret: &[u8]) -> Self {
        // A key of its own, so a refresh token is never an HMAC under the JWT signing key.
        let mut derive =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
        derive.update(b"ml-chat refresh-token rotation v1");
        let key = derive.finalize().into_bytes();
        Self {
            key: <Hmac<Sha256> as Mac>::new_from_slice(&key)
                .expect("HMAC takes a key of any length"),
        }
    }

    /// The token that replaces `presented` (same shape as a fresh one).
    pub fn next(&self, presented: &str) -> String {
        let mut mac = self.key.clone();
        mac.update(presented.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// Whether `token` has the shape of one of our refresh tokens; anything else is refused unlooked-up.
pub fn is_refresh_token_shaped(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the store keeps instead of the token: SHA-256, hex. The token has 256 bits of entropy, so a
/// fast hash is enough (no salt or stretching needed, unlike passwords).
pub fn hash_refresh_token(token: &str) -> String {
    hex_lower(&Sha256::digest(token.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn tokens() -> AccessTokens {
        AccessTokens::new(SECRET, 900)
    }

    #[test]
    fn a_rotated_refresh_token_is_a_keyed_function_of_the_presented_one() {
        let chain = RefreshChain::new(SECRET);
        let first = new_refresh_token();
        let next = chain.next(&first);
        assert!(is_refresh_token_shaped(&next), "{next}");
        assert_eq!(
            next,
            chain.next(&first),
            "the same token always has the same successor"
        );
        assert_ne!(next, chain.next(&next), "the chain moves on");
        assert_ne!(next, chain.next(&new_refresh_token()));
        let other_server = RefreshChain::new(b"another secret, another chain....");
        assert_ne!(
            next,
            other_server.next(&first),
            "the successor depends on the key"
        );
    }

    fn b64(data: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
    }

    #[test]
    fn a_token_round_trips() {
        let (user, session) = (UserId::new(), SessionId::new());
        let now = now_secs();
        let claims = tokens()
            .verify(&tokens().issue(user, session, now))
            .unwrap();
        assert_eq!(claims.sub, user);
        assert_eq!(claims.sid, session);
        assert_eq!(claims.exp, now + 900);
        assert_eq!(
            (claims.iss.as_str(), claims.aud.as_str()),
            (ISSUER, AUDIENCE)
        );
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let token = tokens().issue(UserId::new(), SessionId::new(), now_secs() - 901);
        assert_eq!(tokens().verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let token = tokens().issue(UserId::new(), SessionId::new(), now_secs());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        // Swap in another user id, keep the old signature.
        let claims = AccessClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: UserId::new(),
            sid: SessionId::new(),
            iat: now_secs(),
            exp: now_secs() + 900,
            jti: "t".into(),
        };
        parts[1] = b64(&serde_json::to_vec(&claims).unwrap());
        assert_eq!(tokens().verify(&parts.join(".")), Err(TokenError::Invalid));
        assert_eq!(tokens().verify("not.a.jwt"), Err(TokenError::Invalid));
        assert_eq!(tokens().verify(""), Err(TokenError::Invalid));
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let other = AccessTokens::new(b"another-secret-another-secret-xx", 900);
        let token = other.issue(UserId::new(), SessionId::new(), now_secs());
        assert_eq!(tokens().verify(&token), Err(TokenError::Invalid));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let claims = AccessClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: UserId::new(),
            sid: SessionId::new(),
            iat: now_secs(),
            exp: now_secs() + 900,
            jti: "t".into(),
        };
        let body = b64(&serde_json::to_vec(&claims).unwrap());
        let unsigned = format!("{}.{body}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(tokens().verify(&unsigned), Err(TokenError::Invalid));
        // HS512 with the right secret is still refused: only HS256 is accepted.
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(tokens().verify(&hs512), Err(TokenError::Invalid));
    }

    #[test]
    fn wrong_audience_or_issuer_is_refused() {
        for (iss, aud) in [(ISSUER, "someone-else"), ("someone-else", AUDIENCE)] {
            let claims = AccessClaims {
                iss: iss.into(),
                aud: aud.into(),
                sub: UserId::new(),
                sid: SessionId::new(),
                iat: now_secs(),
                exp: now_secs() + 900,
                jti: "t".into(),
            };
            let token = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap();
            assert_eq!(
                tokens().verify(&token),
                Err(TokenError::Invalid),
                "{iss} {aud}"
            );
        }
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_ne!(a, b);
        assert!(is_refresh_token_shaped(&a));
        assert!(!is_refresh_token_shaped("short"));
        assert!(!is_refresh_token_shaped(&format!("{}=", &a[..42])));
        let hash = hash_refresh_token(&a);
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, hash_refresh_token(&a));
        assert!(!hash.contains(&a));
    }
}
