//! A person's face: their profile picture, or until they choose one their initials on a colour
//! derived from their id, the same on every page and device.

use crate::model::{FileId, UserId};
use leptos::prelude::*;

/// Backgrounds dark enough for white initials (at least 4.5:1), light or dark theme alike.
const COLOURS: [&str; 8] = [
    "bg-indigo-700",
    "bg-emerald-800",
    "bg-rose-700",
    "bg-amber-800",
    "bg-sky-800",
    "bg-violet-700",
    "bg-teal-800",
    "bg-fuchsia-800",
];

/// Up to two initials of a display name ("Ana Lima" -> "AL", "ben" -> "B").
pub fn initials(name: &str) -> String {
    let letters: String = name
        .split_whitespace()
        .filter_map(|word| word.chars().find(|c| c.is_alphanumeric()))
        .take(2)
        .flat_map(char::to_uppercase)
        .collect();
    if letters.is_empty() {
        "?".to_owned()
    } else {
        letters
    }
}

/// The colour of a user's avatar: stable, spread over the palette.
pub fn colour(user: UserId) -> &'static str {
    let sum = user.to_string().bytes().fold(0u32, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    COLOURS[sum as usize % COLOURS.len()]
}

/// Decorative: the name is always written next to it.
#[component]
pub fn Avatar(
    user: UserId,
    name: String,
    /// Their profile picture, shown instead of the initials.
    #[prop(default = None)]
    picture: Option<FileId>,
    #[prop(optional)] small: bool,
    /// The profile page's size.
    #[prop(optional)]
    large: bool,
) -> impl IntoView {
    let size = match (small, large) {
        (true, _) => "h-5 w-5 text-[0.6rem]",
        (_, true) => "h-20 w-20 text-2xl",
        _ => "h-8 w-8 text-xs",
    };
    if let Some(picture) = picture {
        return view! {
            <img
                src=format!("/api/files/{picture}/thumbnail")
                on:error=|ev| super::images::retry_after_renewal(&ev)
                alt=""
                class=format!("shrink-0 rounded-full object-cover {size}")
                aria-hidden="true"
                data-testid="avatar"
                loading="lazy"
            />
        }
        .into_any();
    }
    view! {
        <span
            class=format!("inline-flex shrink-0 select-none items-center justify-center rounded-full font-semibold text-white {size} {}", colour(user))
            aria-hidden="true"
            data-testid="avatar"
        >
            {initials(&name)}
        </span>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_take_the_first_letter_of_two_words() {
        assert_eq!(initials("Ana Lima"), "AL");
        assert_eq!(initials("ben"), "B");
        assert_eq!(initials("  émile   zola  ruiz"), "ÉZ");
        assert_eq!(initials("(ana)"), "A");
        assert_eq!(initials("🙂"), "?");
        assert_eq!(initials(""), "?");
    }

    #[test]
    fn a_user_keeps_one_colour() {
        let user = UserId::new();
        assert_eq!(colour(user), colour(user));
        let spread: std::collections::HashSet<_> = (0..64).map(|_| colour(UserId::new())).collect();
        assert!(spread.len() > 1);
    }
}
