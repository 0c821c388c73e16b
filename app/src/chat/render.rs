//! Message text to safe HTML: a small markdown subset (bold, italic, inline code, code blocks, links),
//! then an allow-list sanitiser. Raw HTML typed by users is shown as text, never interpreted.

use pulldown_cmark::{Event, Options, Parser};
use std::collections::{HashMap, HashSet};

/// Renders `body` into HTML that is safe to insert into the page.
pub fn message_html(body: &str) -> String {
    // Anything HTML-looking in the source stays text.
    let events = Parser::new_ext(body, Options::empty()).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut html = String::with_capacity(body.len() + 16);
    pulldown_cmark::html::push_html(&mut html, events);
    sanitizer().clean(&html).to_string()
}

fn sanitizer() -> ammonia::Builder<'static> {
    let tags: HashSet<&str> = ["p", "br", "strong", "em", "code", "pre", "a"].into();
    // `Builder::empty` still carries ammonia's default attribute lists (`title` and `lang` on every
    // tag, `hreflang` on links): the allow-list is set whole, so only `href` gets through.
    let attributes: HashMap<&str, HashSet<&str>> = [("a", ["href"].into())].into();
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(tags)
        .generic_attributes(HashSet::new())
        .tag_attributes(attributes)
        .url_schemes(["http", "https", "mailto"].into())
        // Relative links (and scheme-relative ones, `//evil.example`, which leave the site) are
        // dropped: a chat message links to full addresses.
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer nofollow"))
        .set_tag_attribute_value("a", "target", "_blank");
    builder
}

#[cfg(test)]
mod tests {
    use super::message_html;

    #[test]
    fn the_markdown_subset_renders() {
        assert_eq!(
            message_html("**bold** and *it*"),
            "<p><strong>bold</strong> and <em>it</em></p>\n"
        );
        assert_eq!(
            message_html("use `x < y`"),
            "<p>use <code>x &lt; y</code></p>\n"
        );
        assert!(message_html("```\nfn main() {}\n```")
            .contains("<pre><code>fn main() {}\n</code></pre>"));
        let link = message_html("[docs](https://example.com/a)");
        assert!(link.contains(r#"href="https://example.com/a""#), "{link}");
        assert!(
            link.contains(r#"rel="noopener noreferrer nofollow""#),
            "{link}"
        );
    }

    #[test]
    fn html_from_users_never_survives_as_markup() {
        for evil in [
            "<img src=x onerror=alert(1)>",
            "<script>alert(1)</script>",
            "hi <b onclick=alert(1)>x</b>",
            "[click](javascript:alert(1))",
            "<a href=\"javascript:alert(1)\">x</a>",
            "[x](//evil.example/login)",
        ] {
            let html = message_html(evil);
            // Escaped text may still read "onerror=": only real tags and attributes matter.
            for bad in [
                "<img",
                "<script",
                "<b ",
                "<a href=\"javascript",
                "href=\"//",
            ] {
                assert!(!html.contains(bad), "{evil} -> {html}");
            }
        }
        assert!(message_html("<script>alert(1)</script>").contains("&lt;script&gt;"));
    }

    #[test]
    fn links_keep_only_their_address() {
        // Found by the fuzzer: a link title (and ammonia's default `lang`/`title`) came through.
        let html = message_html("[x](https://example.com/ \"a title\") and <[](> (<http://))");
        assert!(!html.contains("title="), "{html}");
        assert!(html.contains(r#"href="https://example.com/""#), "{html}");
    }
}
