//! The web UI at `/ui/`: pages rendered by the hub from its catalog (maud, so every value
//! is escaped), a stylesheet and a script embedded in the binary (no CDN, no build step,
//! works offline), kept live by one SSE stream (`/ui/events`: "the catalog changed", and
//! the page fetches its `<main>` again).
//!
//! Login: an ACL token, kept in a session cookie (`HttpOnly`, `SameSite=Strict`, path
//! `/ui`, gone when the browser closes). Pages show what the token may read and offer only
//! what it may do; everything the UI does is an API request through `/ui/api/<API path>`,
//! which carries the cookie's token to the API as `Authorization` and is decided by the
//! API's door like any other — and only when the page's script sent it (`X-Rabble-UI`,
//! which a cross-site form cannot), so a link elsewhere can never act with the cookie.
//!
//! **Invariant:** the UI has no power of its own: every page reads through
//! `door::may_read`, every action is an API request decided by the door.

mod assets;
mod layout;
mod pages;

use crate::api::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use std::time::Duration;

/// The session cookie holding the token's secret.
pub const COOKIE: &str = "rabble_token";
/// The header the page's script sends with what it asks of the API.
const FROM_UI: &str = "x-rabble-ui";
/// How long the events stream waits for more changes before it tells the page.
const SETTLE: Duration = Duration::from_millis(200);
/// Heartbeats (CPU, memory) are not catalog changes: pages refresh at least this often.
const TICK: Duration = Duration::from_secs(10);

/// The UI's routes; `/ui/api/` calls into `api`, the API's router.
pub fn routes(api: Router) -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/assets/{name}", get(assets::serve))
        .route("/ui/events", get(events))
        .route("/ui/login", get(pages::login::form).post(pages::login::login))
        .route("/ui/logout", post(pages::login::logout))
        .route("/ui/api/{*path}", any(move |req: Request| proxy(api.clone(), req)))
        .merge(pages::routes())
}

/// The token's secret from the session cookie, for a request to the UI.
pub fn cookie_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('=').map(str::to_owned))
        .filter(|s| !s.is_empty())
}

/// `/ui/api/<path>`: the same request to the API at `/<path>`, with the session's token —
/// only when the page's script sent it.
async fn proxy(router: Router, req: Request) -> Response {
    use tower::ServiceExt;
    let (mut parts, body) = req.into_parts();
    if parts.headers.get(FROM_UI).is_none() {
        return (StatusCode::FORBIDDEN, "UI calls come from the UI's pages (X-Rabble-UI)").into_response();
    }
    let path = parts.uri.path().strip_prefix("/ui/api").unwrap_or("/").to_owned();
    let target = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let Ok(uri) = target.parse() else {
        return (StatusCode::BAD_REQUEST, "not a path").into_response();
    };
    parts.uri = uri;
    if let Some(secret) = cookie_secret(&parts.headers)
        && let Ok(v) = HeaderValue::from_str(&format!("Bearer {secret}"))
    {
        parts.headers.insert(header::AUTHORIZATION, v);
    }
    parts.headers.remove(header::COOKIE);
    // A new request for the API's router: only the peer's address goes with it (the outer
    // route's path parameters must not).
    let peer = parts.extensions.get::<axum::extract::ConnectInfo<crate::api::serve::Peer>>().cloned();
    parts.extensions = Default::default();
    if let Some(p) = peer {
        parts.extensions.insert(p);
    }
    match router.oneshot(Request::from_parts(parts, body)).await {
        Ok(r) => r,
        Err(e) => match e {},
    }
}

/// `/ui/events`: one `change` event (the catalog index) whenever the catalog changed —
/// changes within [`SETTLE`] of each other make one — and at least every [`TICK`].
async fn events(State(s): State<AppState>) -> Response {
    let rx = s.snapshot.clone();
    let stop = s.stop.clone();
    let stream = futures_util::stream::unfold((rx, stop), |(mut rx, stop)| async move {
        tokio::select! {
            () = stop.cancelled() => return None,
            r = rx.changed() => {
                r.ok()?;
                tokio::time::sleep(SETTLE).await;
            }
            () = tokio::time::sleep(TICK) => {}
        }
        let index = rx.borrow_and_update().index;
        let event = Event::default().event("change").data(index.to_string());
        Some((Ok::<_, std::convert::Infallible>(event), (rx, stop)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// An HTML answer (a whole page, or only `<main>`'s inside for a live refresh).
fn html(markup: maud::Markup) -> Response {
    with_headers(Body::from(markup.into_string()).into_response())
}

/// The same, gzipped (a page of 1,000 services is ~10× smaller).
fn html_gzip(markup: maud::Markup) -> Response {
    let mut r = with_headers(Body::from(assets::gzip_fast(markup.into_string().as_bytes())).into_response());
    r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    r
}

fn with_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    r
}
