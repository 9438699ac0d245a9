//! The UI's stylesheet and script, embedded in the binary and served with a long cache
//! life under a name that changes with their content (so a new hub is never stuck with
//! an old browser cache); gzipped once, on first use, for browsers that take it.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");

struct Asset {
    name: String,
    mime: &'static str,
    plain: &'static [u8],
    gzipped: Vec<u8>,
}

fn fingerprint(text: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    d.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    gzip_at(bytes, flate2::Compression::best())
}

/// Gzip for a page rendered per request: fast rather than smallest.
pub fn gzip_fast(bytes: &[u8]) -> Vec<u8> {
    gzip_at(bytes, flate2::Compression::fast())
}

fn gzip_at(bytes: &[u8], level: flate2::Compression) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
    // Writing to a Vec cannot fail.
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

fn all() -> &'static [Asset; 2] {
    static ALL: OnceLock<[Asset; 2]> = OnceLock::new();
    ALL.get_or_init(|| {
        let one = |text: &'static str, ext: &str, mime| Asset {
            name: format!("ui.{}.{ext}", fingerprint(text)),
            mime,
            plain: text.as_bytes(),
            gzipped: gzip(text.as_bytes()),
        };
        [one(CSS, "css", "text/css; charset=utf-8"), one(JS, "js", "text/javascript; charset=utf-8")]
    })
}

/// The stylesheet's URL.
pub fn css() -> String {
    format!("/ui/assets/{}", all()[0].name)
}

/// The script's URL.
pub fn js() -> String {
    format!("/ui/assets/{}", all()[1].name)
}

pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(a) = all().iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let gz = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let body = if gz { a.gzipped.clone() } else { a.plain.to_vec() };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gz {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}
