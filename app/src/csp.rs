//! The Content-Security-Policy, shared by the page shell (which knows the per-response nonce) and the server's
//! default headers (for everything else).

/// The Content-Security-Policy. Pages pass the nonce of their inline hydration scripts; responses
/// without inline scripts pass `None`. `'wasm-unsafe-eval'` lets the browser compile our WASM bundle
/// without allowing `eval` of strings.
pub fn content_security_policy(nonce: Option<&str>) -> String {
    let script_src = match nonce {
        Some(nonce) => format!("'self' 'nonce-{nonce}' 'wasm-unsafe-eval'"),
        None => "'self' 'wasm-unsafe-eval'".to_owned(),
    };
    format!(
        "default-src 'self'; script-src {script_src}; style-src 'self'; img-src 'self' data:; \
         font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// This request's nonce, chosen by the server's security-headers layer before the page renders; that
/// layer sends it in the page's CSP, and the page's inline scripts carry it. (Setting the header from
/// inside the render instead was sometimes too late for the response's headers.)
#[derive(Debug, Clone)]
pub struct PageNonce(pub String);

impl PageNonce {
    pub fn random() -> Self {
        use base64::Engine;
        let bytes: [u8; 16] = rand::random();
        Self(base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

/// Makes this request's [`PageNonce`] the one Leptos puts on the page's inline scripts.
pub fn use_request_nonce() {
    use leptos::prelude::{provide_context, use_context};
    let nonce = use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<PageNonce>().cloned());
    if let Some(PageNonce(nonce)) = nonce {
        provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_forbids_framing_and_inline_scripts_without_the_nonce() {
        let page = content_security_policy(Some("abc123"));
        assert!(page.contains("frame-ancestors 'none'"));
        assert!(page.contains("'nonce-abc123'"));
        assert!(!page.contains("unsafe-inline"));
        assert!(!page.contains("'unsafe-eval'"));
        let other = content_security_policy(None);
        assert!(!other.contains("nonce"));
        assert!(other.contains("object-src 'none'"));
    }
}
