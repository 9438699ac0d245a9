//! The lane proxy's IO: accepts connections (bounded), serves HTTP/1.1 with hyper,
//! routes each request with the lane's current table (read per request: a new table
//! applies to the next request, open connections stay), applies the router's steps,
//! and forwards to a server of its service — round robin, the next server when a
//! connect fails, upgrades (WebSocket) tunnelled, timeouts on every phase, and a page
//! naming the lane when nothing can answer.

use super::table::{Lane, Route};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

pub type Body = BoxBody<Bytes, hyper::Error>;

/// Open client connections per lane; past it, new ones wait to be accepted.
pub const MAX_CONNECTIONS: usize = 1024;
/// Idle upstream connections kept per server.
const MAX_IDLE: usize = 32;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// From sending a request upstream to its response's headers.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// For a client to send a request's headers (slowloris).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head a client may send.
const MAX_HEAD: usize = 64 * 1024;

/// Idle keep-alive connections to upstreams, by `host:port`.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<String, Vec<SendRequest<Body>>>>,
}

impl Pool {
    fn take(&self, authority: &str) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(authority)?;
        list.retain(|s| !s.is_closed());
        let i = list.iter().position(|s| s.is_ready())?;
        Some(list.swap_remove(i))
    }

    fn put(&self, authority: &str, s: SendRequest<Body>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(authority.to_owned()).or_default();
        if list.len() < MAX_IDLE {
            list.push(s);
        }
    }
}

/// An upstream connection, over TLS with `tls` (an https server).
pub(super) async fn connect(
    authority: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<SendRequest<Body>, String> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("{authority}: {e}")),
        Err(_) => return Err(format!("{authority}: no connection within {CONNECT_TIMEOUT:?}")),
    };
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else { return handshake(authority, stream).await };
    let name = super::upstream::server_name(authority)?;
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, stream)).await {
        Ok(Ok(s)) => handshake(authority, s).await,
        Ok(Err(e)) => Err(format!("{authority}: TLS: {e}")),
        Err(_) => Err(format!("{authority}: no TLS handshake within {CONNECT_TIMEOUT:?}")),
    }
}

/// An upstream stream, plain or TLS, behind one type: hyper's client connection is then
/// compiled once, not once per stream type (the agent's size budget).
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

async fn handshake(authority: &str, io: impl Stream + 'static) -> Result<SendRequest<Body>, String> {
    let io: Box<dyn Stream> = Box::new(io);
    let (sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| format!("{authority}: {e}"))?;
    tokio::spawn(conn.with_upgrades());
    Ok(sender)
}

/// What a connection's requests need.
#[derive(Clone)]
struct Ctx {
    lane: Arc<str>,
    table: watch::Receiver<Arc<Lane>>,
    pool: Arc<Pool>,
    peer: SocketAddr,
    /// Whether the client came over TLS (only routers with `tls` answer it).
    https: bool,
    /// For the lane's https servers, or why there is none.
    upstream_tls: Arc<Result<Arc<rustls::ClientConfig>, String>>,
}

/// For a client to finish its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one lane on `listener` (over TLS with `tls`) until the task is dropped.
pub async fn serve(
    lane: String,
    listener: TcpListener,
    table: watch::Receiver<Arc<Lane>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    upstream_tls: Arc<Result<Arc<rustls::ClientConfig>, String>>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let pool = Arc::new(Pool::default());
    let lane: Arc<str> = lane.into();
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else { return };
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(lane = %lane, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let ctx = Ctx {
            lane: lane.clone(),
            table: table.clone(),
            pool: pool.clone(),
            peer,
            https: tls.is_some(),
            upstream_tls: upstream_tls.clone(),
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => http(stream, ctx).await,
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => http(s, ctx).await,
                    Ok(Err(e)) => {
                        tracing::debug!(lane = %ctx.lane, peer = %ctx.peer, error = %e, "TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(lane = %ctx.lane, peer = %ctx.peer, "TLS handshake timed out"),
                },
            }
        });
    }
}

/// Serves one client connection.
async fn http<I>(io: I, ctx: Ctx)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(handle(req, &ctx).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    let _ = conn.await;
}

/// A plain-text answer from the proxy itself, naming the lane.
pub fn page(code: StatusCode, lane: &str, why: &str) -> Response<Body> {
    let text = format!("{} {}\nrabble lane {lane}: {why}\n", code.as_u16(), code.canonical_reason().unwrap_or(""));
    let mut r = Response::new(Full::new(Bytes::from(text)).map_err(|never| match never {}).boxed());
    *r.status_mut() = code;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// The request's host, without a port.
fn host_of<B>(req: &Request<B>) -> String {
    let raw = req
        .uri()
        .host()
        .map(str::to_owned)
        .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned))
        .unwrap_or_default();
    let host = match raw.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default().to_owned(),
        None => raw
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(raw.clone(), |(h, _)| h.to_owned()),
    };
    host.to_ascii_lowercase()
}

struct View<'a, B> {
    req: &'a Request<B>,
    host: &'a str,
    peer: SocketAddr,
}

impl<B> rabble_shared::routes::rule::Request for View<'_, B> {
    fn method(&self) -> &str {
        self.req.method().as_str()
    }
    fn host(&self) -> &str {
        self.host
    }
    fn path(&self) -> &str {
        self.req.uri().path()
    }
    fn query(&self) -> Option<&str> {
        self.req.uri().query()
    }
    fn header(&self, name: &str) -> Vec<&str> {
        self.req.headers().get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
    }
    fn client_ip(&self) -> Option<std::net::IpAddr> {
        Some(self.peer.ip())
    }
}

async fn handle(req: Request<Incoming>, ctx: &Ctx) -> Response<Body> {
    let start = tokio::time::Instant::now();
    let lane = ctx.table.borrow().clone();
    let host = host_of(&req);
    let Some(route) = lane.route(&View { req: &req, host: &host, peer: ctx.peer }, ctx.https) else {
        let why = format!("no router matches {host}{}", req.uri().path());
        let r = page(StatusCode::NOT_FOUND, &ctx.lane, &why);
        lane.misses.record(r.status().as_u16(), start.elapsed());
        return r;
    };
    let r = routed(req, route, ctx, &host).await;
    route.stats.record(r.status().as_u16(), start.elapsed());
    r
}

async fn routed(mut req: Request<Incoming>, route: &Route, ctx: &Ctx, host: &str) -> Response<Body> {
    let mut response_headers = Vec::new();
    for step in &route.steps {
        let at = super::steps::At {
            lane: &ctx.lane,
            host,
            peer: ctx.peer,
            https: ctx.https,
            upstream_tls: ctx.upstream_tls.as_ref(),
        };
        if let Some(answer) = super::steps::apply(step, &mut req, &at, &mut response_headers).await {
            return answer;
        }
    }
    let mut resp = forward(req, route, ctx, host).await;
    for (k, v) in response_headers {
        let Ok(name) = HeaderName::from_bytes(k.as_bytes()) else { continue };
        match HeaderValue::from_str(&v) {
            Ok(value) if !v.is_empty() => {
                resp.headers_mut().insert(name, value);
            }
            _ => {
                resp.headers_mut().remove(name);
            }
        }
    }
    resp
}

/// Hop-by-hop headers: never forwarded (except what an upgrade needs).
const HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

pub(super) fn strip_hop_by_hop(h: &mut hyper::HeaderMap, keep_upgrade: bool) {
    let keep = |name: &str| keep_upgrade && (name == "connection" || name == "upgrade");
    // Headers the client named in `Connection` go too (rare: allocate only then).
    if h.contains_key(header::CONNECTION) {
        let listed: Vec<String> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
            .collect();
        for name in listed.iter().filter(|n| !keep(n)) {
            h.remove(name.as_str());
        }
    }
    for name in HOP.iter().filter(|n| !keep(n)) {
        h.remove(*name);
    }
}

fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(header::UPGRADE)
        && req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| v.to_str().is_ok_and(|s| s.to_ascii_lowercase().contains("upgrade")))
}

async fn forward(mut req: Request<Incoming>, route: &Route, ctx: &Ctx, host: &str) -> Response<Body> {
    let backend = &route.backend;
    let servers = backend.order();
    if servers.is_empty() {
        let why = format!("service {:?} has no healthy server", backend.name);
        return page(StatusCode::SERVICE_UNAVAILABLE, &ctx.lane, &why);
    }
    let upgrade = is_upgrade(&req);
    strip_hop_by_hop(req.headers_mut(), upgrade);
    let ip = ctx.peer.ip().to_string();
    let xff = match req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {ip}"),
        None => ip.clone(),
    };
    let proto = if ctx.https { "https" } else { "http" };
    for (k, v) in [
        ("x-forwarded-for", xff.as_str()),
        ("x-forwarded-proto", proto),
        ("x-forwarded-host", host),
        ("x-real-ip", &ip),
    ] {
        if let Ok(v) = HeaderValue::from_str(v) {
            req.headers_mut().insert(k, v);
        }
    }
    // An absolute-form target (`GET http://host/x`) goes upstream in origin form.
    if req.uri().authority().is_some() {
        let pq = req.uri().path_and_query().map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        if let Ok(uri) = pq.parse() {
            *req.uri_mut() = uri;
        }
    }
    let client_side = upgrade.then(|| hyper::upgrade::on(&mut req));
    let mut req = req.map(|b| b.boxed());
    let mut last = String::new();
    for up in servers {
        let tls = match (up.https, ctx.upstream_tls.as_ref()) {
            (false, _) => None,
            (true, Ok(c)) => Some(c),
            (true, Err(e)) => {
                last = format!("{}: no TLS for https servers: {e}", up.authority);
                continue;
            }
        };
        // Pooled by scheme too: a plain and a TLS connection to one address differ.
        let key = if up.https { format!("https://{}", up.authority) } else { up.authority.clone() };
        if !backend.pass_host_header
            && let Ok(v) = HeaderValue::from_str(&up.authority)
        {
            req.headers_mut().insert(header::HOST, v);
        }
        // A pooled connection may have been closed by the server meanwhile: then the
        // request comes back unsent and goes on a fresh connection.
        let mut pooled = if upgrade { None } else { ctx.pool.take(&key) };
        for _attempt in 0..2 {
            let mut sender = match pooled.take() {
                Some(s) => s,
                None => match connect(&up.authority, tls).await {
                    Ok(s) => s,
                    Err(e) => {
                        last = e;
                        break; // the next server
                    }
                },
            };
            match tokio::time::timeout(RESPONSE_TIMEOUT, sender.try_send_request(req)).await {
                Err(_) => {
                    let why = format!("{} did not answer within {RESPONSE_TIMEOUT:?}", up.authority);
                    return page(StatusCode::GATEWAY_TIMEOUT, &ctx.lane, &why);
                }
                Ok(Ok(mut resp)) => {
                    if upgrade && resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                        let server_side = hyper::upgrade::on(&mut resp);
                        if let Some(client_side) = client_side {
                            tokio::spawn(tunnel(client_side, server_side));
                        }
                    } else if !upgrade {
                        ctx.pool.put(&key, sender);
                        strip_hop_by_hop(resp.headers_mut(), false);
                    }
                    return resp.map(|b| b.boxed());
                }
                Ok(Err(mut e)) => match e.take_message() {
                    Some(back) => req = back, // not sent: try a fresh connection
                    None => {
                        let why = format!("{}: {}", up.authority, e.into_error());
                        return page(StatusCode::BAD_GATEWAY, &ctx.lane, &why);
                    }
                },
            }
        }
    }
    let why = format!("no server of {:?} could be reached ({last})", backend.name);
    page(StatusCode::BAD_GATEWAY, &ctx.lane, &why)
}

/// Copies bytes both ways between an upgraded client and server connection.
async fn tunnel(client: hyper::upgrade::OnUpgrade, server: hyper::upgrade::OnUpgrade) {
    let (Ok(c), Ok(s)) = (client.await, server.await) else { return };
    let (mut c, mut s) = (TokioIo::new(c), TokioIo::new(s));
    let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
}
