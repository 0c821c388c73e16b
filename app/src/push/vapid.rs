//! The server's VAPID identity (RFC 8292): a P-256 key pair. Browsers subscribe with its public key
//! (`applicationServerKey`), and every push request carries a short-lived token signed with the
//! private key, so a push service accepts pushes to those subscriptions from this server only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use serde::Serialize;
use std::time::Duration;

/// How long one signed token is valid (RFC 8292 allows at most 24 hours).
const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

pub struct VapidKeys {
    signing: EncodingKey,
    /// The public key, uncompressed and base64url-encoded: what browsers subscribe with.
    public: String,
    /// Who runs this server, for push services to contact (`mailto:` or `https:`).
    subject: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    exp: u64,
    sub: &'a str,
}

impl VapidKeys {
    /// From the private key as `VAPID_PRIVATE_KEY` holds it: the 32-byte scalar, base64url.
    pub fn from_private_key(encoded: &str, subject: &str) -> Result<Self, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded.trim().trim_end_matches('='))
            .map_err(|e| format!("not base64url: {e}"))?;
        let secret = p256::SecretKey::from_slice(&bytes)
            .map_err(|_| "not a P-256 private key (32 bytes, base64url)".to_owned())?;
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| format!("cannot encode the key: {e}"))?;
        let public = secret.public_key().as_affine().to_encoded_point(false);
        Ok(Self {
            signing: EncodingKey::from_ec_der(der.as_bytes()),
            public: URL_SAFE_NO_PAD.encode(public.as_bytes()),
            subject: subject.to_owned(),
        })
    }

    /// A new private key, encoded as `from_private_key` reads it.
    pub fn generate_private_key() -> String {
        loop {
            let bytes: [u8; 32] = rand::random();
            // Almost every 32-byte string is a valid scalar; the rare one that is not is skipped.
            if p256::SecretKey::from_slice(&bytes).is_ok() {
                return URL_SAFE_NO_PAD.encode(bytes);
            }
        }
    }

    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header for a push to `endpoint` (its origin is the token's audience).
    pub fn authorization(&self, endpoint: &http::Uri, now_secs: u64) -> Result<String, String> {
        let (Some(scheme), Some(authority)) = (endpoint.scheme_str(), endpoint.authority()) else {
            return Err("the endpoint has no origin".to_owned());
        };
        let audience = format!("{scheme}://{authority}");
        let claims = Claims {
            aud: &audience,
            exp: now_secs + TOKEN_LIFETIME.as_secs(),
            sub: &self.subject,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.signing)
            .map_err(|e| format!("signing the VAPID token: {e}"))?;
        Ok(format!("vapid t={token}, k={}", self.public))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[derive(serde::Deserialize)]
    struct Seen {
        aud: String,
        sub: String,
    }

    #[test]
    fn the_token_verifies_with_the_public_key_and_names_the_push_service() {
        let keys = VapidKeys::from_private_key(
            &VapidKeys::generate_private_key(),
            "mailto:ops@example.com",
        )
        .unwrap();
        let endpoint: http::Uri = "https://push.example.net:8443/send/abc?x=1"
            .parse()
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = keys.authorization(&endpoint, now).unwrap();
        let rest = header.strip_prefix("vapid t=").unwrap();
        let (token, key) = rest.split_once(", k=").unwrap();
        assert_eq!(key, keys.public_key());
        let public = URL_SAFE_NO_PAD.decode(key).unwrap();
        assert_eq!(public.len(), 65, "uncompressed P-256 point");
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["https://push.example.net:8443"]);
        let seen =
            jsonwebtoken::decode::<Seen>(token, &DecodingKey::from_ec_der(&public), &validation)
                .unwrap()
                .claims;
        assert_eq!(seen.aud, "https://push.example.net:8443");
        assert_eq!(seen.sub, "mailto:ops@example.com");
        // Another server's key does not verify it.
        let other = VapidKeys::from_private_key(&VapidKeys::generate_private_key(), "x").unwrap();
        let other_public = URL_SAFE_NO_PAD.decode(other.public_key()).unwrap();
        assert!(jsonwebtoken::decode::<Seen>(
            token,
            &DecodingKey::from_ec_der(&other_public),
            &validation
        )
        .is_err());
    }

    #[test]
    fn a_key_that_is_not_one_is_refused() {
        assert!(VapidKeys::from_private_key("not base64!", "x").is_err());
        assert!(VapidKeys::from_private_key(&URL_SAFE_NO_PAD.encode([0u8; 32]), "x").is_err());
        assert!(VapidKeys::from_private_key(&URL_SAFE_NO_PAD.encode([1u8; 16]), "x").is_err());
    }
}
