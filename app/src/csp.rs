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
