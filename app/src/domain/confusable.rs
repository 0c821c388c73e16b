//! Names that look alike: the skeleton of Unicode's confusable detection (UTS #39), taken of the
//! lower-cased text, maps look-alikes ("rn" and "m", Cyrillic "а" and Latin "a", "0" and "o", ...) to
//! one form. Two names with the same skeleton can be mistaken for each other on screen.

/// The key under which look-alike names are the same.
pub fn skeleton(name: &str) -> String {
    unicode_security::skeleton(&name.to_lowercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_share_a_skeleton() {
        assert_eq!(skeleton("root_admin"), skeleton("Root_Admin"));
        // Cyrillic а and о in place of Latin a and o.
        assert_eq!(
            skeleton("r\u{043E}\u{043E}t_\u{0430}dmin"),
            skeleton("root_admin")
        );
        assert_eq!(skeleton("rnike"), skeleton("mike"));
        assert_ne!(skeleton("ana"), skeleton("ben"));
    }
}
