//! `POST /api/v1/nodes/<name>/join` (`{"ttl": "24h"}`, optional): mints a join token for a
//! node, as `rabble-hub node add <name> --join` does, so `rabble image --join` can ask the
//! hub directly. Answers the token (once), its expiry and the hub's public key (the
//! node's `hub_key`). Only with the embedded broker requiring credentials.

use super::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rabble_shared::api::{JoinRequest, JoinToken};
use rabble_shared::support::duration::GoDuration;

/// A join token's default lifetime.
const DEFAULT_TTL: u64 = 24 * 3600;

pub async fn mint(State(s): State<AppState>, Path(name): Path<String>, body: Bytes) -> Response {
    let fail = super::error::error;
    let Some(auth) = s.auth.clone() else {
        return fail(
            StatusCode::CONFLICT,
            "this hub does not use node credentials (an external broker, or require_credentials off)".into(),
        );
    };
    let ttl = if body.iter().all(u8::is_ascii_whitespace) {
        DEFAULT_TTL
    } else {
        let r: JoinRequest = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return fail(StatusCode::BAD_REQUEST, format!("body: {e} (expected {{\"ttl\": \"24h\"}})")),
        };
        match r.ttl.as_deref().map(str::parse::<GoDuration>) {
            None => DEFAULT_TTL,
            Some(Ok(d)) => d.0.as_secs(),
            Some(Err(e)) => return fail(StatusCode::BAD_REQUEST, format!("ttl: {e}")),
        }
    };
    let minted = tokio::task::spawn_blocking(move || auth.mint_join(&name, ttl)).await;
    match minted {
        Ok(Ok((node, join_token))) => {
            Json(JoinToken { node, join_token, ttl_secs: ttl, hub_key: s.hub_key }).into_response()
        }
        Ok(Err(e @ crate::auth::CredentialsError::Exists(_))) => fail(StatusCode::CONFLICT, e.to_string()),
        Ok(Err(e @ (crate::auth::CredentialsError::BadName(_) | crate::auth::CredentialsError::Reserved(_)))) => {
            fail(StatusCode::BAD_REQUEST, e.to_string())
        }
        Ok(Err(e)) => fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
