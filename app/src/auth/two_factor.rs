//! Two-factor sign-in with time-based one-time codes (TOTP, RFC 6238: HMAC-SHA1, 6 digits, 30-second
//! steps, one step of clock drift either way), recovery codes for a lost phone, and the short-lived
//! challenge that carries a sign-in from the password step to the code step.

use crate::model::UserId;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use totp_rs::{Algorithm, TOTP};

/// Seconds per code.
pub const STEP_SECS: u64 = 30;
/// Steps either side of now that still count (clock drift of the phone).
pub const DRIFT_STEPS: u64 = 1;
/// Recovery codes handed out at enrolment, each good once.
pub const RECOVERY_CODES: usize = 10;
/// How long the code step may follow the password step.
pub const CHALLENGE_SECS: u64 = 5 * 60;
/// The name authenticator apps show.
pub const ISSUER: &str = "ML-CHAT";

/// Letters for recovery codes: no look-alikes (no 0/O, 1/I).
const RECOVERY_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

fn totp(secret: &[u8]) -> TOTP {
    TOTP::new_unchecked(
        Algorithm::SHA1,
        6,
        DRIFT_STEPS as u8,
        STEP_SECS,
        secret.to_vec(),
    )
}

/// A fresh secret (160 bits, as RFC 4226 recommends), in base32 as authenticator apps take it.
pub fn new_secret() -> String {
    let bytes: [u8; 20] = rand::random();
    base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &bytes)
}

fn secret_bytes(secret: &str) -> Option<Vec<u8>> {
    base32::decode(base32::Alphabet::Rfc4648 { padding: false }, secret)
}

/// The code for `step` (seconds / 30).
pub fn code_at(secret: &str, step: u64) -> Option<String> {
    Some(totp(&secret_bytes(secret)?).generate(step * STEP_SECS))
}

/// The step whose code `code` is, within the drift window around `now_secs`; `None` if it is none of
/// them. (Whether that step was used before is the store's to say.)
pub fn matching_step(secret: &str, code: &str, now_secs: u64) -> Option<u64> {
    let code = code.trim().replace(' ', "");
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = now_secs / STEP_SECS;
    let totp = totp(&secret_bytes(secret)?);
    (now.saturating_sub(DRIFT_STEPS)..=now + DRIFT_STEPS)
        .find(|step| constant_time_eq(totp.generate(step * STEP_SECS).as_bytes(), code.as_bytes()))
}

/// `otpauth://` for the QR code: what authenticator apps read.
pub fn otpauth_uri(secret: &str, username: &str) -> String {
    let label = format!("{ISSUER}:{username}");
    format!(
        "otpauth://totp/{}?secret={secret}&issuer={ISSUER}&algorithm=SHA1&digits=6&period={STEP_SECS}",
        crate::domain::text::percent_encode(&label)
    )
}

/// The QR code of `uri` as an SVG image, drawn here (no outside service sees the secret).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    // Inline in HTML: the XML declaration in front of `<svg` has no place there.
    let start = svg.find("<svg")?;
    Some(svg[start..].to_owned())
}

/// The secret grouped in fours, for typing it in by hand.
pub fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Ten fresh recovery codes, `XXXXX-XXXXX` (50 bits each).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes: [u8; 10] = rand::random();
            let letters: String = bytes
                .iter()
                .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b % 32)]))
                .collect();
            format!("{}-{}", &letters[..5], &letters[5..])
        })
        .collect()
}

/// A recovery code as typed: upper case, without spaces or the dash.
pub fn normalise_recovery_code(code: &str) -> Option<String> {
    let code: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 10 && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))).then_some(code)
}

/// Keys for what two-factor sign-in stores and hands out, derived from the server secret.
pub struct TwoFactorKeys {
    recovery: Hmac<Sha256>,
    challenge: Hmac<Sha256>,
}

fn derived(secret: &[u8], purpose: &[u8]) -> Hmac<Sha256> {
    let mut derive =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    derive.update(purpose);
    <Hmac<Sha256> as Mac>::new_from_slice(&derive.finalize().into_bytes())
        .expect("HMAC takes a key of any length")
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl TwoFactorKeys {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            recovery: derived(secret, b"ml-chat recovery codes v1"),
            challenge: derived(secret, b"ml-chat sign-in challenge v1"),
        }
    }

    /// What the store keeps of a (normalised) recovery code: never the code itself.
    pub fn recovery_hash(&self, normalised: &str) -> String {
        let mut mac = self.recovery.clone();
        mac.update(normalised.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn challenge_mac(&self, user: UserId, expires: u64, nonce: &str) -> String {
        let mut mac = self.challenge.clone();
        mac.update(format!("{user}.{expires}.{nonce}").as_bytes());
        B64.encode(&mac.finalize().into_bytes()[..18])
    }

    /// The challenge cookie's value: the password was right for `user`; the code step may follow
    /// until `now + CHALLENGE_SECS`.
    pub fn challenge(&self, user: UserId, now_secs: u64) -> String {
        let expires = now_secs + CHALLENGE_SECS;
        let nonce = B64.encode(rand::random::<[u8; 12]>());
        let mac = self.challenge_mac(user, expires, &nonce);
        format!("{user}.{expires}.{nonce}.{mac}")
    }

    /// Whose sign-in a challenge continues, if it is ours and still current.
    pub fn challenged_user(&self, value: &str, now_secs: u64) -> Option<UserId> {
        let mut parts = value.split('.');
        let (user, expires, nonce, mac) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let user: UserId = user.parse().ok()?;
        let expires: u64 = expires.parse().ok()?;
        let expected = self.challenge_mac(user, expires, nonce);
        (constant_time_eq(expected.as_bytes(), mac.as_bytes()) && now_secs <= expires)
            .then_some(user)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_rfc_6238() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890", 8 digits there; the last six of
        // 94287082 at T=59 s and of 07081804 at T=1111111109 s.
        let secret = base32::encode(
            base32::Alphabet::Rfc4648 { padding: false },
            b"12345678901234567890",
        );
        assert_eq!(code_at(&secret, 59 / STEP_SECS).unwrap(), "287082");
        assert_eq!(
            code_at(&secret, 1_111_111_109 / STEP_SECS).unwrap(),
            "081804"
        );
    }

    #[test]
    fn a_code_matches_its_step_and_its_neighbours_only() {
        let secret = new_secret();
        let now = 1_800_000_000;
        let step = now / STEP_SECS;
        for (offset, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let at = (step as i64 + offset) as u64;
            let code = code_at(&secret, at).unwrap();
            let found = matching_step(&secret, &code, now);
            if ok {
                assert_eq!(found, Some(at), "offset {offset}");
            } else {
                assert!(found.is_none_or(|s| s != at), "offset {offset}");
            }
        }
        assert_eq!(matching_step(&secret, "12a456", now), None);
        assert_eq!(matching_step(&secret, "1234567", now), None);
    }

    #[test]
    fn recovery_codes_are_readable_and_normalise() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(code.len(), 11);
        let typed = format!(" {} ", code.to_lowercase());
        assert_eq!(normalise_recovery_code(&typed), Some(code.replace('-', "")));
        assert_eq!(normalise_recovery_code("123456"), None);
    }

    #[test]
    fn a_challenge_names_its_user_until_it_expires_and_cannot_be_forged() {
        let keys = TwoFactorKeys::new(b"a-secret-of-at-least-32-bytes-ok!");
        let user = UserId::from_uuid(uuid::Uuid::from_u128(7));
        let challenge = keys.challenge(user, 1_000);
        assert_eq!(keys.challenged_user(&challenge, 1_000), Some(user));
        assert_eq!(
            keys.challenged_user(&challenge, 1_000 + CHALLENGE_SECS + 1),
            None
        );
        let other = UserId::from_uuid(uuid::Uuid::from_u128(8));
        let forged = challenge.replacen(&user.to_string(), &other.to_string(), 1);
        assert_eq!(keys.challenged_user(&forged, 1_000), None);
        let later = challenge.replacen("1300", "9999", 1);
        assert_eq!(keys.challenged_user(&later, 1_000), None);
        assert_ne!(
            keys.recovery_hash("ABCDEFGHJK"),
            keys.recovery_hash("ABCDEFGHJM")
        );
    }

    #[test]
    fn the_uri_and_qr_code_carry_the_secret_for_an_app() {
        let uri = otpauth_uri("JBSWY3DPEHPK3PXP", "ana b");
        assert!(
            uri.starts_with("otpauth://totp/ML-CHAT%3Aana%20b?secret=JBSWY3DPEHPK3PXP"),
            "{uri}"
        );
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(!svg.contains("<script"));
        assert_eq!(grouped("JBSWY3DPEHPK3PXP"), "JBSW Y3DP EHPK 3PXP");
    }
}
