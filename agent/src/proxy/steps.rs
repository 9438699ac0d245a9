//! A router's steps on a request, in order: allow-lists, rate limits, redirects, path
//! and header rewrites, and the two auth middlewares — `basicAuth` (bcrypt or `{SHA}`
//! htpasswd hashes; a verified password is remembered, bounded, so a Pi does not pay a
//! bcrypt per request) and `forwardAuth` (a GET to the auth server with the request's
//! headers and `X-Forwarded-*`; 2xx lets it through with `authResponseHeaders` copied,
//! anything else is the answer).

use super::serve::{Body, connect, page, strip_hop_by_hop};
use super::table::{BasicAuth, ForwardAuth, Step};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use std::net::SocketAddr;
use std::time::Duration;

/// For an auth server's answer.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a request is.
pub struct At<'a> {
    pub lane: &'a str,
    pub host: &'a str,
    pub peer: SocketAddr,
    /// The client came over TLS.
    pub https: bool,
    /// TLS for https servers (a forwardAuth address), or why there is none.
    pub upstream_tls: &'a Result<std::sync::Arc<rustls::ClientConfig>, String>,
}

/// Applies one step; `Some` is an answer instead of forwarding.
pub async fn apply(
    step: &Step,
    req: &mut Request<Incoming>,
    at: &At<'_>,
    response_headers: &mut Vec<(String, String)>,
) -> Option<Response<Body>> {
    let (host, lane) = (at.host, at.lane);
    match step {
        Step::BasicAuth(auth) => return basic_auth(auth, req, lane),
        Step::ForwardAuth(fa) => return forward_auth(fa, req, at).await,
        Step::AllowList(nets) => {
            let ip = at.peer.ip();
            if !nets.iter().any(|n| n.contains(ip)) {
                return Some(page(StatusCode::FORBIDDEN, lane, &format!("{ip} is not allowed here")));
            }
        }
        Step::RateLimit(l) => {
            if !l.allow(at.peer.ip(), tokio::time::Instant::now()) {
                return Some(page(StatusCode::TOO_MANY_REQUESTS, lane, "rate limit reached; retry shortly"));
            }
        }
        Step::RedirectScheme { scheme, port, permanent } => {
            if scheme != if at.https { "https" } else { "http" } {
                let port = port.as_deref().map(|p| format!(":{p}")).unwrap_or_default();
                let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
                let location = format!("{scheme}://{host}{port}{pq}");
                let get = req.method() == hyper::Method::GET;
                let code = match (*permanent, get) {
                    (true, true) => StatusCode::MOVED_PERMANENTLY,
                    (true, false) => StatusCode::PERMANENT_REDIRECT,
                    (false, true) => StatusCode::FOUND,
                    (false, false) => StatusCode::TEMPORARY_REDIRECT,
                };
                let mut r = page(code, lane, &format!("moved to {location}"));
                if let Ok(v) = HeaderValue::from_str(&location) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                return Some(r);
            }
        }
        Step::StripPrefix(prefixes) => {
            let path = req.uri().path().to_owned();
            if let Some(p) = prefixes.iter().filter(|p| path.starts_with(p.as_str())).max_by_key(|p| p.len()) {
                let rest = &path[p.len()..];
                let rest = if rest.starts_with('/') { rest.to_owned() } else { format!("/{rest}") };
                set_path(req, &rest);
                if let Ok(v) = HeaderValue::from_str(p) {
                    req.headers_mut().insert("x-forwarded-prefix", v);
                }
            }
        }
        Step::AddPrefix(p) => {
            let path = format!("{}{}", p.trim_end_matches('/'), req.uri().path());
            set_path(req, &path);
        }
        Step::Headers { request, response } => {
            for (k, v) in request {
                let Ok(name) = HeaderName::from_bytes(k.as_bytes()) else { continue };
                match HeaderValue::from_str(v) {
                    Ok(value) if !v.is_empty() => {
                        req.headers_mut().insert(name, value);
                    }
                    _ => {
                        req.headers_mut().remove(name);
                    }
                }
            }
            response_headers.extend(response.iter().cloned());
        }
    }
    None
}

fn set_path<B>(req: &mut Request<B>, path: &str) {
    let pq = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    if let Ok(uri) = pq.parse() {
        *req.uri_mut() = uri;
    }
}

/// `Authorization: Basic` against the router's users; 401 with a challenge otherwise.
fn basic_auth(auth: &BasicAuth, req: &mut Request<Incoming>, lane: &str) -> Option<Response<Body>> {
    use base64::Engine;
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    if let Some((user, password)) = given.as_deref().and_then(|g| g.split_once(':'))
        && auth.check(user, password)
    {
        return None;
    }
    let mut r = page(StatusCode::UNAUTHORIZED, lane, "authentication required");
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"traefik\""));
    Some(r)
}

async fn forward_auth(fa: &ForwardAuth, req: &mut Request<Incoming>, at: &At<'_>) -> Option<Response<Body>> {
    let fail = |why: String| Some(page(StatusCode::INTERNAL_SERVER_ERROR, at.lane, &why));
    let mut headers = req.headers().clone();
    strip_hop_by_hop(&mut headers, false);
    headers.remove(header::CONTENT_LENGTH);
    let uri = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let ip = at.peer.ip().to_string();
    let method = req.method().as_str().to_owned();
    for (k, v) in [
        ("x-forwarded-method", method.as_str()),
        ("x-forwarded-proto", if at.https { "https" } else { "http" }),
        ("x-forwarded-host", at.host),
        ("x-forwarded-uri", uri.as_str()),
        ("x-forwarded-for", ip.as_str()),
    ] {
        if fa.trust_forward_header && headers.contains_key(k) {
            continue;
        }
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.insert(k, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&fa.authority) {
        headers.insert(header::HOST, v);
    }
    let mut auth_req =
        Request::new(http_body_util::Empty::<bytes::Bytes>::new().map_err(|never| match never {}).boxed());
    *auth_req.headers_mut() = headers;
    match fa.path.parse() {
        Ok(u) => *auth_req.uri_mut() = u,
        Err(e) => return fail(format!("forwardAuth address path {:?}: {e}", fa.path)),
    }
    let tls = match (fa.https, at.upstream_tls) {
        (false, _) => None,
        (true, Ok(c)) => Some(c),
        (true, Err(e)) => return fail(format!("forwardAuth server {}: no TLS: {e}", fa.authority)),
    };
    let mut sender = match connect(&fa.authority, tls).await {
        Ok(s) => s,
        Err(e) => return fail(format!("forwardAuth server unreachable: {e}")),
    };
    let resp = match tokio::time::timeout(AUTH_TIMEOUT, sender.send_request(auth_req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return fail(format!("forwardAuth server {}: {e}", fa.authority)),
        Err(_) => return fail(format!("forwardAuth server {} did not answer within {AUTH_TIMEOUT:?}", fa.authority)),
    };
    if resp.status().is_success() {
        for name in &fa.response_headers {
            let Ok(n) = HeaderName::from_bytes(name.as_bytes()) else { continue };
            match resp.headers().get(&n) {
                Some(v) => {
                    req.headers_mut().insert(n, v.clone());
                }
                None => {
                    req.headers_mut().remove(n);
                }
            }
        }
        return None;
    }
    let mut resp = resp.map(|b| b.boxed());
    strip_hop_by_hop(resp.headers_mut(), false);
    Some(resp)
}
