//! Account names and the password length rule.

use super::text::is_invisible_format;
use super::text_newtype;
use crate::error::AppError;

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const DISPLAY_NAME_MAX: usize = 64;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;

/// 3-32 characters of ASCII letters, digits, `_` and `-`, as typed; unique ignoring letter case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);
text_newtype!(Username);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let name = raw.trim();
        let len = name.chars().count();
        if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
            return Err(AppError::invalid(
                "username",
                format!("A username has {USERNAME_MIN} to {USERNAME_MAX} characters."),
            ));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(AppError::invalid(
                "username",
                "A username may only contain letters, digits, `_` and `-`.",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The key under which usernames are unique: case-insensitive.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// Up to 64 characters, no control characters, surrounding spaces trimmed and inner runs of white
/// space collapsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DisplayName(String);
text_newtype!(DisplayName);

impl DisplayName {
    /// Parses a display name; empty means "use the username".
    pub fn parse(raw: &str, username: &Username) -> Result<Self, AppError> {
        if raw.chars().any(char::is_control) {
            return Err(AppError::invalid(
                "display_name",
                "A display name cannot contain control characters.",
            ));
        }
        if raw.chars().any(is_invisible_format) {
            return Err(AppError::invalid(
                "display_name",
                "A display name cannot contain invisible or direction-changing characters.",
            ));
        }
        let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.chars().count() > DISPLAY_NAME_MAX {
            return Err(AppError::invalid(
                "display_name",
                format!("A display name has at most {DISPLAY_NAME_MAX} characters."),
            ));
        }
        Ok(Self(if name.is_empty() {
            username.as_str().to_owned()
        } else {
            name
        }))
    }
}

/// The length rule only; the server also rejects common and guessable passwords.
pub fn check_password_length(field: &str, password: &str) -> Result<(), AppError> {
    let len = password.chars().count();
    if len < PASSWORD_MIN {
        return Err(AppError::invalid(
            field,
            format!("Use at least {PASSWORD_MIN} characters."),
        ));
    }
    if len > PASSWORD_MAX {
        return Err(AppError::invalid(
            field,
            format!("Use at most {PASSWORD_MAX} characters."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_rules() {
        assert_eq!(Username::parse("  ana_b-1 ").unwrap(), "ana_b-1");
        assert_eq!(Username::parse("Ana_B").unwrap().key(), "ana_b");
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        for bad in ["ana b", "ana$", "ánа", "a/b", "{\"$ne\":1}"] {
            let error = Username::parse(bad).unwrap_err();
            assert!(error.for_field("username").is_some(), "{bad}");
        }
    }

    #[test]
    fn display_names_are_tidied_and_bounded() {
        let ana = Username::parse("ana").unwrap();
        assert_eq!(
            DisplayName::parse("  Ana   Bell ", &ana).unwrap(),
            "Ana Bell"
        );
        assert_eq!(DisplayName::parse("   ", &ana).unwrap(), "ana");
        assert_eq!(DisplayName::parse("Zoë 🚀", &ana).unwrap(), "Zoë 🚀");
        assert!(DisplayName::parse("a\u{0}b", &ana).is_err());
        assert!(DisplayName::parse(&"é".repeat(65), &ana).is_err());
        assert!(DisplayName::parse(&"é".repeat(64), &ana).is_ok());
        for disguised in ["\u{202E}nimda_toor", "root\u{200B}_admin", "\u{FEFF}ana"] {
            let error = DisplayName::parse(disguised, &ana).unwrap_err();
            assert!(error.for_field("display_name").is_some(), "{disguised:?}");
        }
    }

    #[test]
    fn password_length_counts_characters() {
        assert!(check_password_length("password", "1234567").is_err());
        assert!(check_password_length("password", "12345678").is_ok());
        assert!(check_password_length("password", &"é".repeat(128)).is_ok());
        assert!(check_password_length("password", &"é".repeat(129)).is_err());
    }
}
