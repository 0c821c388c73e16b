//! Password hashing (argon2id, OWASP parameters, PHC strings) and the password policy.
//!
//! Hashing is deliberately slow and memory-hard, so it runs on the blocking pool and at most a few
//! hashes run at once: a burst of logins cannot exhaust memory or starve the async workers.

use crate::error::AppError;
use argon2::password_hash::{phc::PasswordHash, PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC prefix every current hash starts with; anything else is rehashed at the next login.
fn current_prefix() -> String {
    format!("$argon2id$v=19$m={M_COST_KIB},t={T_COST},p={P_COST}$")
}

/// Hashes a password into a PHC string with a fresh random salt. Blocking: call through [`Passwords`].
pub fn hash_blocking(password: &str) -> String {
    argon2()
        .hash_password(password.as_bytes())
        .expect("argon2 hashing with valid parameters cannot fail")
        .to_string()
}

/// Checks a password against a stored PHC string (with the parameters recorded in it). Blocking.
pub fn verify_blocking(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Whether a stored hash uses older parameters (or another algorithm) and should be upgraded.
pub fn needs_rehash(phc: &str) -> bool {
    !phc.starts_with(&current_prefix())
}

/// Refuses well-known and easily guessed passwords, with advice a person can act on. `related` holds
/// words the password must not lean on (the username, the display name).
pub fn check_strength(field: &str, password: &str, related: &[&str]) -> Result<(), AppError> {
    crate::domain::check_password_length(field, password)?;
    let lower = password.to_lowercase();
    if related
        .iter()
        .any(|word| word.len() >= 3 && lower.contains(&word.to_lowercase()))
    {
        return Err(AppError::invalid(
            field,
            "The password must not contain your username or display name.",
        ));
    }
    let estimate = zxcvbn::zxcvbn(password, related);
    if u8::from(estimate.score()) >= 3 {
        return Ok(());
    }
    let mut message = String::from("This password is too easy to guess.");
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            message.push(' ');
            message.push_str(&warning.to_string());
        }
        if let Some(suggestion) = feedback.suggestions().first() {
            message.push(' ');
            message.push_str(&suggestion.to_string());
        }
    }
    if !message.ends_with('.') {
        message.push('.');
    }
    Err(AppError::invalid(field, message))
}

/// Runs hashes on the blocking pool, a bounded number at a time.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A real hash of a random password: verifying against it for unknown usernames makes a failed
    /// login take the same time whether or not the account exists.
    dummy_hash: Arc<str>,
}

impl Passwords {
    pub fn new(concurrent_hashes: usize) -> Self {
        let random: [u8; 16] = rand::random();
        let dummy = random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        Self {
            permits: Arc::new(Semaphore::new(concurrent_hashes.max(1))),
            dummy_hash: hash_blocking(&dummy).into(),
        }
    }

    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        self.run(move || hash_blocking(&password)).await
    }

    /// Verifies against `phc`, or against the dummy hash when there is no account (result: false).
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, AppError> {
        let dummy = self.dummy_hash.clone();
        self.run(move || match phc {
            Some(phc) => verify_blocking(&password, &phc),
            None => {
                verify_blocking(&password, &dummy);
                false
            }
        })
        .await
    }

    /// The strength estimate can take a few milliseconds on long inputs: keep it off the async workers.
    pub async fn check_strength(
        &self,
        field: &'static str,
        password: String,
        related: Vec<String>,
    ) -> Result<(), AppError> {
        let related_refs = move || {
            let refs: Vec<&str> = related.iter().map(String::as_str).collect();
            check_strength(field, &password, &refs)
        };
        tokio::task::spawn_blocking(related_refs)
            .await
            .map_err(|_| AppError::Internal)?
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AppError::Unavailable)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| AppError::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_phc_strings_that_verify() {
        let phc = hash_blocking("correct horse battery staple");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_blocking("correct horse battery staple", &phc));
        assert!(!verify_blocking("correct horse battery stapler", &phc));
        assert!(!verify_blocking("anything", "not a phc string"));
        assert!(!needs_rehash(&phc));
        // Same password, new salt.
        assert_ne!(phc, hash_blocking("correct horse battery staple"));
    }

    #[test]
    fn weaker_parameters_are_flagged_for_an_upgrade() {
        let old = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        )
        .hash_password(b"correct horse battery staple")
        .unwrap()
        .to_string();
        // Old hashes still verify (parameters come from the PHC string) ...
        assert!(verify_blocking("correct horse battery staple", &old));
        // ... and are upgraded at the next login.
        assert!(needs_rehash(&old));
    }

    #[test]
    fn common_and_guessable_passwords_are_refused_with_advice() {
        for weak in [
            "password",
            "password1",
            "12345678",
            "qwertyuiop",
            "iloveyou1",
        ] {
            let error = check_strength("password", weak, &[]).unwrap_err();
            let message = error.for_field("password").unwrap();
            assert!(
                message.starts_with("This password is too easy to guess."),
                "{weak}: {message}"
            );
        }
        assert!(check_strength("password", "short", &[]).is_err());
        assert!(check_strength("password", "ana-the-great-2024!", &["ana"]).is_err());
        assert!(check_strength("password", "velvet-orbit-cactus-91", &["ana", "Ana B"]).is_ok());
    }
}
