//! A lane's table compiled for serving, pure: routers sorted by priority with their
//! rules parsed and middlewares resolved (chains flattened), services with their
//! upstreams and a round-robin cursor. A router whose rule, service or middlewares
//! cannot be served is left out with the reason — never served without a middleware
//! it asked for (an auth middleware that cannot be applied, an MD5 hash, an address
//! that is not http(s), fails closed).

use rabble_shared::routes::rule::{Net, Request, Rule};
use rabble_shared::routes::{LaneTable, Middleware};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// Client addresses a rate limiter remembers at most (the oldest is forgotten).
const MAX_CLIENTS: usize = 4096;

/// One thing a router does to a request (or instead of forwarding it).
#[derive(Debug)]
pub enum Step {
    RedirectScheme { scheme: String, port: Option<String>, permanent: bool },
    StripPrefix(Vec<String>),
    AddPrefix(String),
    Headers { request: Vec<(String, String)>, response: Vec<(String, String)> },
    AllowList(Vec<Net>),
    RateLimit(Limiter),
    BasicAuth(BasicAuth),
    ForwardAuth(ForwardAuth),
}

/// A password hash from an htpasswd line.
#[derive(Debug, Clone, PartialEq)]
pub enum Hash {
    /// `$2y$...` (htpasswd -B), `$2a$`, `$2b$`.
    Bcrypt(String),
    /// `{SHA}` + base64 of the SHA-1 (htpasswd -s).
    Sha1(Vec<u8>),
}

/// Passwords remembered as verified, at most.
const VERIFIED: usize = 64;

/// Traefik's basicAuth: `user:hash` lines; a verified (user, password) is remembered
/// (as a SHA-256 of both), so repeated requests do not pay a bcrypt each.
#[derive(Debug)]
pub struct BasicAuth {
    users: Vec<(String, Hash)>,
    verified: Mutex<std::collections::VecDeque<[u8; 32]>>,
}

impl BasicAuth {
    pub fn parse(users: &[String]) -> Result<BasicAuth, String> {
        use base64::Engine;
        let mut out = Vec::new();
        for line in users {
            let (user, hash) = line.split_once(':').ok_or_else(|| format!("{line:?} is not user:hash"))?;
            let hash = if hash.starts_with("$2y$") || hash.starts_with("$2a$") || hash.starts_with("$2b$") {
                Hash::Bcrypt(hash.to_owned())
            } else if let Some(b) = hash.strip_prefix("{SHA}") {
                Hash::Sha1(
                    base64::engine::general_purpose::STANDARD.decode(b).map_err(|e| format!("user {user}: {e}"))?,
                )
            } else if hash.starts_with("$apr1$") {
                return Err(format!(
                    "user {user}: MD5 (apr1) hashes are not supported; make a bcrypt one (htpasswd -nB)"
                ));
            } else {
                return Err(format!("user {user}: not an htpasswd hash (bcrypt or {{SHA}})"));
            };
            out.push((user.to_owned(), hash));
        }
        Ok(BasicAuth { users: out, verified: Mutex::new(Default::default()) })
    }

    /// Whether `password` is `user`'s.
    pub fn check(&self, user: &str, password: &str) -> bool {
        let key: [u8; 32] = {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            for part in [user.as_bytes(), b"\0", password.as_bytes()] {
                ctx.update(part);
            }
            ctx.finish().as_ref().try_into().unwrap_or([0; 32])
        };
        if self.verified.lock().map(|v| v.contains(&key)).unwrap_or(false) {
            return true;
        }
        let ok = self.users.iter().any(|(u, h)| {
            u == user
                && match h {
                    Hash::Bcrypt(b) => bcrypt::verify(password, b).unwrap_or(false),
                    Hash::Sha1(d) => {
                        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes()).as_ref() == d
                    }
                }
        });
        if ok && let Ok(mut v) = self.verified.lock() {
            if v.len() >= VERIFIED {
                v.pop_front();
            }
            v.push_back(key);
        }
        ok
    }
}

/// Traefik's forwardAuth (an https address uses the lane's servers transport).
#[derive(Debug)]
pub struct ForwardAuth {
    pub https: bool,
    pub authority: String,
    /// Path and query of the address.
    pub path: String,
    pub trust_forward_header: bool,
    pub response_headers: Vec<String>,
}

/// Traefik's rateLimit: `average` requests per second with bursts of `burst`, per
/// client IP.
#[derive(Debug)]
pub struct Limiter {
    pub average: f64,
    pub burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl Limiter {
    pub fn new(average: u64, burst: u64) -> Limiter {
        Limiter { average: average as f64, burst: burst.max(1) as f64, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `ip` at `now`, if there is one.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() >= MAX_CLIENTS && !b.contains_key(&ip) {
            let oldest = b.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k);
            if let Some(k) = oldest {
                b.remove(&k);
            }
        }
        let (tokens, last) = b.entry(ip).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.average).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Where a service's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub https: bool,
    /// `host:port` (`[v6]:port`).
    pub authority: String,
}

#[derive(Debug)]
pub struct Backend {
    pub name: String,
    pub servers: Vec<Upstream>,
    pub pass_host_header: bool,
    next: AtomicUsize,
}

impl Backend {
    /// Every server, starting with the next one in round-robin order (the rest are the
    /// retries when a connect fails).
    pub fn order(&self) -> Vec<&Upstream> {
        let n = self.servers.len();
        if n == 0 {
            return Vec::new();
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n).map(|i| &self.servers[(start + i) % n]).collect()
    }
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub rule: Rule,
    pub priority: i64,
    pub backend: Arc<Backend>,
    pub steps: Vec<Arc<Step>>,
    /// Its counters (kept across table changes, by router name).
    pub stats: Arc<RouteStats>,
    /// Served to TLS clients only (and only those), as Traefik's `tls` routers are.
    pub tls: bool,
}

/// A router's counters: responses by class, and time spent.
#[derive(Debug, Default)]
pub struct RouteStats {
    classes: [AtomicU64; 5],
    nanos: AtomicU64,
    count: AtomicU64,
}

impl RouteStats {
    pub fn record(&self, status: u16, took: std::time::Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.classes[class].fetch_add(1, Ordering::Relaxed);
        self.nanos.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> rabble_shared::routes::RouterStats {
        let responses = (1..=5)
            .zip(&self.classes)
            .map(|(c, n)| (format!("{c}xx"), n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        rabble_shared::routes::RouterStats {
            responses,
            seconds_sum: self.nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

/// A lane's counters by router name (`-`: no router matched), across table changes.
pub type Counters = Mutex<BTreeMap<String, Arc<RouteStats>>>;

/// The counters of router `name`, made on first use.
pub fn counter(c: &Counters, name: &str) -> Arc<RouteStats> {
    c.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_owned()).or_default().clone()
}

/// A lane ready to serve.
#[derive(Debug, Default)]
pub struct Lane {
    pub name: String,
    pub index: u64,
    /// Highest priority first; equal priorities by name.
    pub routes: Vec<Route>,
    /// Requests no router matched.
    pub misses: Arc<RouteStats>,
}

impl Lane {
    /// Compiles a table; the second value lists the routers left out and why.
    pub fn compile(t: &LaneTable, counters: &Counters) -> (Lane, Vec<String>) {
        let mut skipped = Vec::new();
        let backends: BTreeMap<&str, Arc<Backend>> = t
            .services
            .iter()
            .map(|(name, s)| {
                let servers = s.servers.iter().filter_map(|x| upstream(&x.url)).collect();
                let b = Backend {
                    name: name.clone(),
                    servers,
                    pass_host_header: s.pass_host_header,
                    next: AtomicUsize::new(0),
                };
                (name.as_str(), Arc::new(b))
            })
            .collect();
        let mut steps: BTreeMap<&str, Result<Arc<Step>, String>> = BTreeMap::new();
        for (name, m) in &t.middlewares {
            if !matches!(m, Middleware::Chain(_)) {
                steps.insert(name, step(m).map(Arc::new));
            }
        }
        let mut routes = Vec::new();
        'routers: for (name, r) in &t.routers {
            let rule = match Rule::parse(&r.rule) {
                Ok(rule) => rule,
                Err(e) => {
                    skipped.push(format!("router {name}: rule: {e}"));
                    continue;
                }
            };
            let Some(backend) = backends.get(r.service.as_str()) else {
                skipped.push(format!("router {name}: no service {:?}", r.service));
                continue;
            };
            let mut names = Vec::new();
            for m in &r.middlewares {
                if let Err(e) = flatten(t, m, &mut names, 0) {
                    skipped.push(format!("router {name}: {e}"));
                    continue 'routers;
                }
            }
            let mut resolved = Vec::new();
            for m in names {
                match steps.get(m.as_str()) {
                    Some(Ok(s)) => resolved.push(s.clone()),
                    Some(Err(e)) => {
                        skipped.push(format!("router {name}: middleware {m:?}: {e}"));
                        continue 'routers;
                    }
                    None => {} // compress: served uncompressed
                }
            }
            routes.push(Route {
                name: name.clone(),
                rule,
                priority: r.priority,
                backend: backend.clone(),
                steps: resolved,
                stats: counter(counters, name),
                tls: r.tls.is_some(),
            });
        }
        routes.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.name.cmp(&b.name)));
        let misses = counter(counters, "-");
        (Lane { name: t.lane.clone(), index: t.index, routes, misses }, skipped)
    }

    /// The router for a request (`https`: it came over TLS): the first match in priority
    /// order among the routers for that kind of connection.
    pub fn route(&self, r: &dyn Request, https: bool) -> Option<&Route> {
        self.routes.iter().find(|route| route.tls == https && route.rule.matches(r))
    }
}

/// `http://10.0.0.5:8080` → an upstream.
fn upstream(url: &str) -> Option<Upstream> {
    let (https, rest) = match url.split_once("://")? {
        ("http", r) => (false, r),
        ("https", r) => (true, r),
        _ => return None,
    };
    let authority = rest.split('/').next()?.to_owned();
    (!authority.is_empty()).then_some(Upstream { https, authority })
}

/// A chain's members, in order (chains inside chains too, at most 8 deep).
fn flatten(t: &LaneTable, name: &str, out: &mut Vec<String>, depth: usize) -> Result<(), String> {
    if depth > 8 {
        return Err(format!("middleware chain through {name:?} is more than 8 deep"));
    }
    match t.middlewares.get(name) {
        Some(Middleware::Chain(c)) => {
            for m in &c.middlewares {
                flatten(t, m, out, depth + 1)?;
            }
            Ok(())
        }
        Some(Middleware::Compress(_)) => Ok(()),
        Some(_) => {
            out.push(name.to_owned());
            Ok(())
        }
        None => Err(format!("no middleware {name:?} in this lane")),
    }
}

fn step(m: &Middleware) -> Result<Step, String> {
    Ok(match m {
        Middleware::RedirectScheme(r) => {
            Step::RedirectScheme { scheme: r.scheme.clone(), port: r.port.clone(), permanent: r.permanent }
        }
        Middleware::StripPrefix(s) => Step::StripPrefix(s.prefixes.clone()),
        Middleware::AddPrefix(a) => Step::AddPrefix(a.prefix.clone()),
        Middleware::Headers(h) => Step::Headers {
            request: h.custom_request_headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            response: h.custom_response_headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        },
        Middleware::IpAllowList(i) => Step::AllowList(i.source_range.iter().filter_map(|r| Net::parse(r)).collect()),
        Middleware::RateLimit(r) => Step::RateLimit(Limiter::new(r.average, r.burst)),
        Middleware::BasicAuth(b) => Step::BasicAuth(BasicAuth::parse(&b.users)?),
        Middleware::ForwardAuth(f) => {
            let (https, rest) = match f.address.split_once("://") {
                Some(("http", r)) => (false, r),
                Some(("https", r)) => (true, r),
                _ => return Err(format!("forwardAuth address {:?}: not http:// or https://", f.address)),
            };
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let port = if https { 443 } else { 80 };
            let authority = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:{port}") };
            Step::ForwardAuth(ForwardAuth {
                https,
                authority,
                path: path.to_owned(),
                trust_forward_header: f.trust_forward_header,
                response_headers: f.auth_response_headers.clone(),
            })
        }
        Middleware::Compress(_) | Middleware::Chain(_) => return Err("not a step".into()),
    })
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
