//! The device cookie: a random id for this browser, signed together with the account it signed in
//! to. The login throttle counts a known device's failures on their own, so strangers failing to
//! guess the password elsewhere never lock the owner's own browser out.

use crate::model::UserId;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub struct DeviceCookies {
    key: Hmac<Sha256>,
}

impl DeviceCookies {
    pub fn new(secret: &[u8]) -> Self {
        // A key of its own, derived from the server secret.
        let mut derive =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
        derive.update(b"ml-chat device cookie v1");
        let key = derive.finalize().into_bytes();
        Self {
            key: <Hmac<Sha256> as Mac>::new_from_slice(&key)
                .expect("HMAC takes a key of any length"),
        }
    }

    fn mac(&self, user: UserId, device: &str) -> String {
        let mut mac = self.key.clone();
        mac.update(user.to_string().as_bytes());
        mac.update(b"|");
        mac.update(device.as_bytes());
        B64.encode(&mac.finalize().into_bytes()[..16])
    }

    /// A cookie value naming a new device of `user`.
    pub fn issue(&self, user: UserId) -> String {
        let device = B64.encode(rand::random::<[u8; 16]>());
        let mac = self.mac(user, &device);
        format!("{device}.{mac}")
    }

    /// The device id, if `value` is a device cookie this server issued for `user`.
    pub fn device_of(&self, value: &str, user: UserId) -> Option<String> {
        let (device, mac) = value.split_once('.')?;
        if device.len() != 22 || mac.len() != 22 {
            return None;
        }
        let expected = self.mac(user, device);
        // Equal length base64 text: compare without an early exit.
        let same = expected
            .bytes()
            .zip(mac.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        same.then(|| device.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_cookie_is_valid_only_for_its_account_and_this_server() {
        let devices = DeviceCookies::new(b"a-secret-of-at-least-32-bytes-ok!");
        let (ana, ben) = (
            UserId::from_uuid(uuid::Uuid::from_u128(1)),
            UserId::from_uuid(uuid::Uuid::from_u128(2)),
        );
        let cookie = devices.issue(ana);
        let device = devices.device_of(&cookie, ana).expect("valid for Ana");
        assert!(cookie.starts_with(&device));
        assert_eq!(devices.device_of(&cookie, ben), None, "not Ben's");
        let other_server = DeviceCookies::new(b"another-secret-of-32-bytes-at-least");
        assert_eq!(other_server.device_of(&cookie, ana), None);
        let forged = format!("{}.{}", &cookie[..22], "A".repeat(22));
        assert_eq!(devices.device_of(&forged, ana), None);
        assert_eq!(devices.device_of("garbage", ana), None);
    }
}
