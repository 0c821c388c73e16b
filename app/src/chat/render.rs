//! Message text to safe HTML: a small markdown subset (bold, italic, inline code, code blocks, links),
//! then an allow-list sanitiser. Raw HTML typed by users is shown as text, never interpreted.

use crate::domain::mention_spans;
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
use std::collections::{HashMap, HashSet};

/// The HTML a message view carries: its rendering, or nothing when that is just the plain paragraph
/// clients make themselves (`protocol::plain_html`), which most messages are.
pub fn rich_html(body: &str) -> String {
    let html = message_html(body);
    if html == crate::protocol::plain_html(body) {
        String::new()
    } else {
        html
    }
}

/// Renders `body` into HTML that is safe to insert into the page. `@mentions` in text (not in code)
/// become `<span class="mention">`.
pub fn message_html(body: &str) -> String {
    let mut in_code_block = false;
    let mut events = Vec::new();
    for event in Parser::new_ext(body, Options::empty()) {
        match event {
            // Anything HTML-looking in the source stays text.
            Event::Html(raw) | Event::InlineHtml(raw) => events.push(Event::Text(raw)),
            Event::Start(Tag::CodeBlock(kind)) => {
                in_code_block = true;
                events.push(Event::Start(Tag::CodeBlock(kind)));
            }
            Event::End(TagEnd::CodeBlock) => {
                in_code_block = false;
                events.push(Event::End(TagEnd::CodeBlock));
            }
            Event::Text(text) if !in_code_block => with_mentions(text, &mut events),
            other => events.push(other),
        }
    }
    let mut html = String::with_capacity(body.len() + 16);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    SANITIZER.clean(&html).to_string()
}

/// Built once: its allow-lists are sets, and building them for every message was a visible share of
/// rendering a room page.
static SANITIZER: std::sync::LazyLock<ammonia::Builder<'static>> =
    std::sync::LazyLock::new(sanitizer);

/// Splits a text event around its mentions, each wrapped in a span (the name is escaped as text).
fn with_mentions<'a>(text: CowStr<'a>, out: &mut Vec<Event<'a>>) {
    let spans = mention_spans(&text);
    if spans.is_empty() {
        out.push(Event::Text(text));
        return;
    }
    let mut at = 0;
    for (from, to) in spans {
        // `from` is just after the `@`.
        let start = from - 1;
        if start > at {
            out.push(Event::Text(CowStr::from(text[at..start].to_owned())));
        }
        out.push(Event::InlineHtml(CowStr::from("<span class=\"mention\">")));
        out.push(Event::Text(CowStr::from(text[start..to].to_owned())));
        out.push(Event::InlineHtml(CowStr::from("</span>")));
        at = to;
    }
    if at < text.len() {
        out.push(Event::Text(CowStr::from(text[at..].to_owned())));
    }
}

fn sanitizer() -> ammonia::Builder<'static> {
    let tags: HashSet<&str> = ["p", "br", "strong", "em", "code", "pre", "a", "span"].into();
    // `Builder::empty` still carries ammonia's default attribute lists (`title` and `lang` on every
    // tag, `hreflang` on links): the allow-list is set whole, so only `href` gets through.
    let attributes: HashMap<&str, HashSet<&str>> = [("a", ["href"].into())].into();
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(tags)
        .generic_attributes(HashSet::new())
        .tag_attributes(attributes)
        .allowed_classes([("span", ["mention"].into())].into())
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
    use super::{message_html, rich_html};
    use crate::protocol::plain_html;

    #[test]
    fn plain_text_is_sent_without_html_and_clients_render_it_the_same() {
        for plain in [
            "hello world",
            "lg 12 345 1765000000000000000 xxxxxxxx",
            r#"she said "yes" & left; 'ok'"#,
            "3 < 4 > 2",
            "two\nlines",
            "ünïcödé ✓ 😀",
        ] {
            assert_eq!(message_html(plain), plain_html(plain), "{plain:?}");
            assert_eq!(rich_html(plain), "", "{plain:?}");
        }
        for rich in [
            "**bold**",
            "a `b`",
            "@ana hi",
            "[x](https://example.com)",
            "# not a heading",
        ] {
            assert_ne!(rich_html(rich), "", "{rich:?}");
        }
        assert_eq!(plain_html(""), "");
    }

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
    fn mentions_are_marked_outside_code_and_stay_text() {
        assert_eq!(
            message_html("hi @ana and @room"),
            "<p>hi <span class=\"mention\">@ana</span> and <span class=\"mention\">@room</span></p>\n"
        );
        assert_eq!(
            message_html("`@ana` in code"),
            "<p><code>@ana</code> in code</p>\n"
        );
        assert!(!message_html("```\n@ana\n```").contains("mention"));
        assert!(!message_html("mail ana@example.com").contains("mention"));
        // A class other than `mention` never survives, even when typed as HTML.
        let typed = message_html("<span class=\"mention evil\">x</span>");
        assert!(!typed.contains("<span"), "{typed}");
    }

    #[test]
    fn links_keep_only_their_address() {
        // Found by the fuzzer: a link title (and ammonia's default `lang`/`title`) came through.
        let html = message_html("[x](https://example.com/ \"a title\") and <[](> (<http://))");
        assert!(!html.contains("title="), "{html}");
        assert!(html.contains(r#"href="https://example.com/""#), "{html}");
    }
}
