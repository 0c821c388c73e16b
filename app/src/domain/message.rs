//! Message bodies and client nonces.

use super::text::reorders_text;
use super::text_newtype;
use crate::error::AppError;
use crate::protocol::{MAX_BODY_CHARS, MAX_NONCE_LEN};

/// Not blank, at most 4,000 characters. Kept as written (spacing matters in code).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageBody(String);
text_newtype!(MessageBody);

impl MessageBody {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        if raw.trim().is_empty() {
            return Err(AppError::invalid("body", "A message cannot be empty."));
        }
        if raw.chars().any(reorders_text) {
            return Err(AppError::invalid(
                "body",
                "A message cannot contain direction-override characters (they reorder the text around them).",
            ));
        }
        if raw.chars().count() > MAX_BODY_CHARS {
            return Err(AppError::invalid(
                "body",
                format!("A message has at most {MAX_BODY_CHARS} characters."),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The text beside files, which may be left empty (the files are the message); otherwise as
    /// `parse`.
    pub fn parse_beside_files(raw: &str) -> Result<Self, AppError> {
        if raw.trim().is_empty() {
            Ok(Self(String::new()))
        } else {
            Self::parse(raw)
        }
    }
}

/// Chosen by the client to make a send retryable: 1-64 letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nonce(String);
text_newtype!(Nonce);

impl Nonce {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_NONCE_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(AppError::invalid(
                "nonce",
                "A nonce has 1 to 64 letters, digits, `-` or `_`.",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_nonces_are_checked() {
        assert!(MessageBody::parse("   ").is_err());
        assert_eq!(MessageBody::parse_beside_files("  ").unwrap().as_str(), "");
        assert!(MessageBody::parse_beside_files("\u{202E}x").is_err());
        assert!(MessageBody::parse(&"x".repeat(MAX_BODY_CHARS)).is_ok());
        assert!(MessageBody::parse(&"é".repeat(MAX_BODY_CHARS + 1)).is_err());
        assert_eq!(
            MessageBody::parse("  code\n  block ").unwrap(),
            "  code\n  block "
        );
        assert!(Nonce::parse("abc-123_X").is_ok());
        for bad in ["", "has space", "{\"$gt\":\"\"}", &"n".repeat(65)] {
            assert!(Nonce::parse(bad).is_err(), "{bad}");
        }
    }
}
