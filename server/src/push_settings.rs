//! Web push settings: where the VAPID key comes from (`VAPID_PRIVATE_KEY`, required in production;
//! in development generated on first start into `DATA_DIR/vapid_private_key`), who runs the server
//! (`VAPID_SUBJECT`), and whether pushes may go to loopback (`PUSH_ALLOW_LOOPBACK`, for tests with a
//! local push receiver; refused in production).

use crate::config::{invalid, write_private_file, ConfigError, Environment};
use app::push::endpoint::Reach;
use app::push::VapidKeys;
use std::path::Path;

const VAPID_KEY_FILE: &str = "vapid_private_key";

#[derive(Clone, PartialEq, Eq)]
enum KeySource {
    Given(String),
    GenerateInDataDir,
}

#[derive(Clone, PartialEq, Eq)]
pub struct PushSettings {
    key: KeySource,
    subject: Option<String>,
    pub reach: Reach,
}

// Hand-written so the private key never reaches a log line.
impl std::fmt::Debug for PushSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSettings")
            .field("subject", &self.subject)
            .field("reach", &self.reach)
            .finish_non_exhaustive()
    }
}

impl PushSettings {
    pub fn from_env(
        var: &impl Fn(&str) -> Option<String>,
        environment: Environment,
    ) -> Result<Self, ConfigError> {
        let key = match var("VAPID_PRIVATE_KEY") {
            Some(key) => {
                VapidKeys::from_private_key(&key, "check").map_err(|e| invalid("VAPID_PRIVATE_KEY", e))?;
                KeySource::Given(key)
            }
            None if environment == Environment::Production => {
                return Err(invalid(
                    "VAPID_PRIVATE_KEY",
                    "required in production (APP_ENV=production); generate one with `server vapid-key` \
                     and give every instance the same value (browsers' subscriptions are tied to it)",
                ))
            }
            None => KeySource::GenerateInDataDir,
        };
        let subject = var("VAPID_SUBJECT");
        if let Some(subject) = &subject {
            if !(subject.starts_with("mailto:") || subject.starts_with("https://")) {
                return Err(invalid("VAPID_SUBJECT", "expected a mailto: or https: URI"));
            }
        }
        let reach = match var("PUSH_ALLOW_LOOPBACK").as_deref() {
            None | Some("false") => Reach::PublicOnly,
            Some("true") if environment == Environment::Production => {
                return Err(invalid(
                    "PUSH_ALLOW_LOOPBACK",
                    "is for tests only, never in production",
                ))
            }
            Some("true") => Reach::AlsoLoopback,
            Some(other) => {
                return Err(invalid(
                    "PUSH_ALLOW_LOOPBACK",
                    format!("expected true or false, got {other:?}"),
                ))
            }
        };
        Ok(Self {
            key,
            subject,
            reach,
        })
    }

    /// The VAPID keys: the configured ones, or (development) the ones kept in the data directory.
    /// The subject defaults to the public origin.
    pub fn keys(&self, data_dir: &Path, public_origin: &str) -> Result<VapidKeys, ConfigError> {
        let private = match &self.key {
            KeySource::Given(key) => key.clone(),
            KeySource::GenerateInDataDir => load_or_create_key(data_dir)?,
        };
        let subject = self.subject.as_deref().unwrap_or(public_origin);
        VapidKeys::from_private_key(&private, subject).map_err(|e| invalid("VAPID_PRIVATE_KEY", e))
    }
}

fn load_or_create_key(data_dir: &Path) -> Result<String, ConfigError> {
    let path = data_dir.join(VAPID_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(key) => return Ok(key.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(invalid(
                "VAPID_PRIVATE_KEY",
                format!("cannot read {}: {e}", path.display()),
            ))
        }
    }
    let key = VapidKeys::generate_private_key();
    std::fs::create_dir_all(data_dir)
        .and_then(|()| write_private_file(&path, key.as_bytes()))
        .map_err(|e| {
            invalid(
                "DATA_DIR",
                format!(
                    "cannot store the generated VAPID key in {}: {e}",
                    path.display()
                ),
            )
        })?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(
        pairs: &[(&str, &str)],
        environment: Environment,
    ) -> Result<PushSettings, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PushSettings::from_env(&|name: &str| env.get(name).cloned(), environment)
    }

    #[test]
    fn production_needs_a_key_and_never_reaches_loopback() {
        let missing = settings(&[], Environment::Production).unwrap_err();
        assert_eq!(missing.var, "VAPID_PRIVATE_KEY");
        let key = VapidKeys::generate_private_key();
        assert!(settings(&[("VAPID_PRIVATE_KEY", &key)], Environment::Production).is_ok());
        let bad = settings(&[("VAPID_PRIVATE_KEY", "nope")], Environment::Development).unwrap_err();
        assert_eq!(bad.var, "VAPID_PRIVATE_KEY");
        let loopback = [
            ("VAPID_PRIVATE_KEY", key.as_str()),
            ("PUSH_ALLOW_LOOPBACK", "true"),
        ];
        assert_eq!(
            settings(&loopback, Environment::Production)
                .unwrap_err()
                .var,
            "PUSH_ALLOW_LOOPBACK"
        );
        assert_eq!(
            settings(&loopback, Environment::Development).unwrap().reach,
            Reach::AlsoLoopback
        );
        let subject = [("VAPID_SUBJECT", "ops@example.com")];
        assert_eq!(
            settings(&subject, Environment::Development)
                .unwrap_err()
                .var,
            "VAPID_SUBJECT"
        );
    }

    #[test]
    fn development_keeps_the_generated_key_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let push = settings(&[], Environment::Development).unwrap();
        let first = push.keys(dir.path(), "http://localhost").unwrap();
        let again = push.keys(dir.path(), "http://localhost").unwrap();
        assert_eq!(first.public_key(), again.public_key());
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            push.keys(other.path(), "http://localhost")
                .unwrap()
                .public_key(),
            first.public_key()
        );
    }
}
