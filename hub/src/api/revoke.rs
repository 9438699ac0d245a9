//! A token deleted (or expired, or stripped of its policy) while its request is open is
//! refused at once: a blocking query still waiting answers 403, and a stream (a task's
//! logs, the events) ends at the next catalog change, or within a few seconds of the
//! token's expiry.

use super::AppState;
use super::error::error;
use axum::body::{Body, HttpBody};
use axum::http::StatusCode;
use axum::response::Response;
use rabble_core::acl::Need;
use rabble_core::catalog::Catalog;
use rabble_shared::support::clock::now_ms;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often an open request looks at its token's expiry when nothing else changes.
const EXPIRY_TICK: Duration = Duration::from_secs(2);

/// Runs `handler` for the token `accessor`, as long as the token allows `need`.
pub async fn run(s: &AppState, accessor: String, need: Need, handler: impl Future<Output = Response>) -> Response {
    let mut gone = revoked(s.snapshot.clone(), accessor, need);
    let resp = tokio::select! {
        r = handler => r,
        () = &mut gone => return refused(),
    };
    // A body of known size is complete: nothing left to stop.
    if resp.body().size_hint().exact().is_some() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let stream = futures_util::StreamExt::take_until(body.into_data_stream(), gone);
    Response::from_parts(parts, Body::from_stream(stream))
}

fn refused() -> Response {
    error(StatusCode::FORBIDDEN, "the ACL token was deleted, expired or lost its permission")
}

/// Resolves once the token no longer allows `need` (looked at on every catalog change).
fn revoked(
    mut snapshot: watch::Receiver<Arc<Catalog>>,
    accessor: String,
    need: Need,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        loop {
            tokio::select! {
                changed = snapshot.changed() => if changed.is_err() { return std::future::pending().await },
                _ = tokio::time::sleep(EXPIRY_TICK) => {}
            }
            if !snapshot.borrow().acl.still_allows(&accessor, &need, now_ms()) {
                return;
            }
        }
    })
}
