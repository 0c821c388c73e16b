//! The service worker's script, as served: `sw.js` with this build's version and files.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::path::Path;

const TEMPLATE: &str = include_str!("sw.js");

/// Files of the site root the worker keeps besides the package directory's.
const SHELL_FILES: [&str; 6] = [
    "offline.html",
    "offline.js",
    "favicon.svg",
    "manifest.webmanifest",
    "icons/icon-192.png",
    "icons/icon-512.png",
];

/// The worker's script for the site in `site_root` (the package files under `pkg_dir`): its version
/// is a digest of every file it keeps, so any change to them makes a new worker.
#[derive(Clone)]
pub struct ServiceWorker {
    script: std::sync::Arc<str>,
    pub version: String,
}

impl ServiceWorker {
    pub fn for_site(site_root: &Path, pkg_dir: &str) -> Self {
        let mut paths: Vec<String> = std::fs::read_dir(site_root.join(pkg_dir))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // `--precompress` puts `.br` and `.gz` copies beside the files: the server answers a
            // file's own address with one of them, so they are not files of their own.
            .filter(|name| !name.ends_with(".br") && !name.ends_with(".gz"))
            .map(|name| format!("{pkg_dir}/{name}"))
            .collect();
        paths.extend(SHELL_FILES.iter().map(|f| (*f).to_owned()));
        paths.sort();
        let mut digest = Sha256::new();
        let mut kept = Vec::new();
        for path in &paths {
            // A file missing here (a build without it) is simply not kept.
            if let Ok(bytes) = std::fs::read(site_root.join(path)) {
                digest.update(path.as_bytes());
                digest.update((bytes.len() as u64).to_le_bytes());
                digest.update(&bytes);
                kept.push(format!("/{path}"));
            }
        }
        let version = hex::encode(&digest.finalize()[..8]);
        let files = serde_json::to_string(&kept).unwrap_or_else(|_| "[]".to_owned());
        let script = TEMPLATE
            .replace("\"__VERSION__\"", &format!("\"{version}\""))
            .replace("[/* __FILES__ */]", &files);
        Self {
            script: script.into(),
            version,
        }
    }

    /// `GET /sw.js`: never cached, so the browser sees a new version at its next check.
    pub fn response(&self) -> Response {
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/javascript; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            self.script.to_string(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
        std::fs::write(dir.path().join("pkg/app.wasm"), b"wasm one").unwrap();
        std::fs::write(dir.path().join("pkg/app.css"), b"css").unwrap();
        std::fs::write(dir.path().join("pkg/app.wasm.br"), b"compressed").unwrap();
        std::fs::write(dir.path().join("pkg/app.wasm.gz"), b"compressed").unwrap();
        std::fs::write(dir.path().join("offline.html"), b"<p>offline</p>").unwrap();
        dir
    }

    #[test]
    fn the_worker_keeps_the_sites_files_and_changes_with_them() {
        let dir = site();
        let first = ServiceWorker::for_site(dir.path(), "pkg");
        assert!(first.script.contains(&format!("\"{}\"", first.version)));
        assert!(first
            .script
            .contains(r#"["/offline.html","/pkg/app.css","/pkg/app.wasm"]"#));
        assert!(!first.script.contains("__"), "every placeholder is filled");
        assert_eq!(
            ServiceWorker::for_site(dir.path(), "pkg").version,
            first.version,
            "the same build, the same worker"
        );
        std::fs::write(dir.path().join("pkg/app.wasm"), b"wasm two").unwrap();
        assert_ne!(
            ServiceWorker::for_site(dir.path(), "pkg").version,
            first.version,
            "a new build is a new worker"
        );
    }
}
