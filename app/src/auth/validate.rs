//! Input rules for accounts, shared by the browser (instant hints) and the server (the authority).
//! Each `parse_*` returns the cleaned value or an error for the form field it belongs to.

use crate::error::AppError;

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const DISPLAY_NAME_MAX: usize = 64;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;

/// 3-32 characters of ASCII letters, digits, `_` and `-`. Uniqueness ignores letter case.
pub fn parse_username(raw: &str) -> Result<String, AppError> {
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
    Ok(name.to_owned())
}

/// Up to 64 characters, no control characters, surrounding spaces trimmed and inner runs of white space
/// collapsed. Empty means "use the username".
pub fn parse_display_name(raw: &str, username: &str) -> Result<String, AppError> {
    if raw.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "display_name",
            "A display name cannot contain control characters.",
        ));
    }
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.chars().count() > DISPLAY_NAME_MAX {
        return Err(AppError::invalid(
            "display_name",
            format!("A display name has at most {DISPLAY_NAME_MAX} characters."),
        ));
    }
    Ok(if name.is_empty() {
        username.to_owned()
    } else {
        name
    })
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
        assert_eq!(parse_username("  ana_b-1 ").unwrap(), "ana_b-1");
        assert!(parse_username("ab").is_err());
        assert!(parse_username(&"a".repeat(33)).is_err());
        assert!(parse_username(&"a".repeat(32)).is_ok());
        for bad in ["ana b", "ana$", "ánа", "a/b", "{\"$ne\":1}"] {
            let error = parse_username(bad).unwrap_err();
            assert!(error.for_field("username").is_some(), "{bad}");
        }
    }

    #[test]
    fn display_names_are_tidied_and_bounded() {
        assert_eq!(
            parse_display_name("  Ana   Bell ", "ana").unwrap(),
            "Ana Bell"
        );
        assert_eq!(parse_display_name("   ", "ana").unwrap(), "ana");
        assert_eq!(parse_display_name("Zoë 🚀", "z").unwrap(), "Zoë 🚀");
        assert!(parse_display_name("a\u{0}b", "ana").is_err());
        assert!(parse_display_name(&"é".repeat(65), "ana").is_err());
        assert!(parse_display_name(&"é".repeat(64), "ana").is_ok());
    }

    #[test]
    fn password_length_counts_characters() {
        assert!(check_password_length("password", "1234567").is_err());
        assert!(check_password_length("password", "12345678").is_ok());
        assert!(check_password_length("password", &"é".repeat(128)).is_ok());
        assert!(check_password_length("password", &"é".repeat(129)).is_err());
    }
}
