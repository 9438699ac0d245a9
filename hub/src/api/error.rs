//! One error shape for the hub's own API: every `/api/v1` answer that is not a
//! success is `{"error": "..."}` (`shared::api::ApiError`), whether a handler refused
//! the request, the writer failed to commit it, or the HTTP layer rejected it before a
//! handler ran (a body that is not JSON, a wrong method, a path that does not parse).
//! Consul's and Nomad's endpoints under `/v1/` keep their own shapes.

use axum::Json;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rabble_shared::api::ApiError;

/// The most of a rejection's text that is carried into its JSON error.
const MAX_REJECTION: usize = 16 * 1024;

/// `{"error": msg}` with `code`.
pub fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(ApiError { error: msg.into() })).into_response()
}

pub fn not_found(msg: &str) -> Response {
    error(StatusCode::NOT_FOUND, msg)
}

pub fn bad_request(msg: &str) -> Response {
    error(StatusCode::BAD_REQUEST, msg)
}

/// Why an update sent to the writer did not become durable: the status and message
/// every endpoint answers with.
#[derive(Debug)]
pub struct WriteFailed(pub StatusCode, pub String);

impl IntoResponse for WriteFailed {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// Middleware: an `/api/v1` answer with an error status and a body that is not JSON
/// (axum's own rejections are plain text, a 405 is empty) becomes `{"error": ...}`.
pub async fn one_shape(req: Request, next: Next) -> Response {
    let ours = req.uri().path().starts_with("/api/v1");
    let resp = next.run(req).await;
    let status = resp.status();
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !ours || json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    // Keep the status and headers (a 405's `Allow`); only the body changes.
    let (mut parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, MAX_REJECTION).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => String::new(),
    };
    let msg = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_lowercase() } else { text };
    let body = serde_json::to_vec(&ApiError { error: msg }).unwrap_or_default();
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}
