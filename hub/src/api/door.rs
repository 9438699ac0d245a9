//! The API's door: every request is decided here before a handler runs, by the ACL
//! core (`rabble_core::acl`): its gate from the route table, its caller from the token
//! it carries (`Authorization: Bearer`, `X-Consul-Token`, `X-Nomad-Token`, `?token=`).
//!
//! Before the ACLs are bootstrapped a request from loopback may do everything (the hub
//! as it was before ACLs, for `rabble dev` and the CLI on the hub) and any other gets
//! the anonymous rules; after, only a token grants more than the anonymous rules. A
//! token deleted while its request waits (a blocking query) or streams (logs, events)
//! ends it: the answer is re-checked, and a stream stops at the next catalog change.

// Helpers return the refusal itself; it is built once per refused request.
#![allow(clippy::result_large_err)]

use super::AppState;
use super::error::error;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rabble_core::acl::route::{Gate, gate};
use rabble_core::acl::{Authorizer, Cap, Need, Resource};
use rabble_shared::support::clock::now_ms;
use std::net::SocketAddr;

/// Who is asking: a token's accessor, anyone, or loopback before bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Token(String),
    Anonymous,
    /// Loopback before the ACLs were bootstrapped.
    Local,
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Token(a) => write!(f, "token {a}"),
            Who::Anonymous => write!(f, "anonymous"),
            Who::Local => write!(f, "local"),
        }
    }
}

/// The caller of the request being handled: handlers that read names from the body
/// check each with it; the writer's events name it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub who: Who,
    pub authorizer: Authorizer,
}

tokio::task_local! {
    static CALLER: Caller;
}

/// The current request's caller (handlers run inside the door's scope); outside a
/// request: the hub itself.
pub fn caller() -> Caller {
    CALLER.try_with(Clone::clone).unwrap_or(Caller { who: Who::Local, authorizer: Authorizer::Management })
}

/// For a handler: refuses unless the caller may `need` (a name read from the body).
pub fn check(need: &Need) -> Result<(), Response> {
    let c = caller();
    if c.authorizer.allows(need) { Ok(()) } else { Err(denied(&c.who, need)) }
}

fn whose(who: &Who) -> String {
    match who {
        Who::Anonymous => "an anonymous request (no token)".to_owned(),
        other => other.to_string(),
    }
}

fn denied(who: &Who, need: &Need) -> Response {
    error(StatusCode::FORBIDDEN, format!("permission denied: {} needs {need}", whose(who)))
}

/// A refusal where no name allows it (a list, a body's names).
fn denied_any(who: &Who, r: Resource, c: Cap) -> Response {
    let msg = format!("permission denied: {} needs {}:{} on some name", whose(who), r.as_str(), c.as_str());
    error(StatusCode::FORBIDDEN, msg)
}

/// For a list's handler: whether the caller may read `name` of `resource` (left out if not).
pub fn may_read(resource: Resource, name: &str) -> bool {
    CALLER.try_with(|c| c.authorizer.allows(&Need::new(resource, Cap::Read, name))).unwrap_or(true)
}

/// The secret a request carries, where the ecosystem's clients put it.
pub fn secret(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|s| !s.is_empty());
    if let Some(b) = header("authorization").and_then(|v| v.strip_prefix("Bearer ")) {
        return Some(b.trim().to_owned());
    }
    if let Some(t) = header("x-consul-token").or_else(|| header("x-nomad-token")) {
        return Some(t.to_owned());
    }
    query?.split('&').find_map(|p| p.strip_prefix("token=")).map(rabble_shared::routes::rule::percent_decode)
}

/// Middleware: decides the request, then runs it as its caller.
pub async fn door(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<super::serve::Peer>>().map(|c| c.0.0);
    // No peer known (never, on a real listener): not loopback.
    let loopback = peer.is_some_and(|p: SocketAddr| p.ip().is_loopback());
    let (method, path, query) = (req.method().as_str().to_owned(), req.uri().path().to_owned(), req.uri().query());
    let gate = gate(&method, &path, query);
    let catalog = s.catalog();
    let now = now_ms();
    // The UI's pages carry the token in their session cookie (only its pages read it).
    let secret = secret(req.headers(), query)
        .or_else(|| path.starts_with("/ui/").then(|| crate::ui::cookie_secret(req.headers())).flatten());
    let caller = match secret {
        Some(sec) if catalog.acl.enforcing() => {
            match catalog.acl.token_by_digest(&rabble_shared::support::seal::token_sha256(&sec), now) {
                Ok(t) => Caller { who: Who::Token(t.accessor.clone()), authorizer: catalog.acl.authorizer(t) },
                Err(e) => return error(StatusCode::FORBIDDEN, e.to_string()),
            }
        }
        _ if !catalog.acl.enforcing() && loopback => Caller { who: Who::Local, authorizer: Authorizer::Management },
        _ => Caller { who: Who::Anonymous, authorizer: s.anonymous.clone() },
    };
    let need = match &gate {
        None => None,
        Some(Gate::Open) => None,
        Some(Gate::Need(n)) => Some(n.clone()),
        Some(Gate::InBody(r, c)) => {
            if !caller.authorizer.allows_some(*r, *c) {
                return denied_any(&caller.who, *r, *c);
            }
            None
        }
        Some(Gate::List(r)) => {
            if !caller.authorizer.allows_some(*r, Cap::Read) {
                return denied_any(&caller.who, *r, Cap::Read);
            }
            None
        }
        Some(Gate::Alloc(c, id)) => match super::jobs::find_alloc(&catalog, id) {
            Ok(a) => Some(Need::new(Resource::Alloc, *c, a.job_id.clone())),
            // Not found: the handler says so, to those who may read allocations at all.
            Err(_) if caller.authorizer.allows_some(Resource::Alloc, *c) => None,
            Err(_) => return denied_any(&caller.who, Resource::Alloc, *c),
        },
    };
    if let Some(n) = &need
        && !caller.authorizer.allows(n)
    {
        return denied(&caller.who, n);
    }
    drop(catalog);
    // Only a request that can wait (a blocking query) or stream (logs, events) can outlive
    // its token; the rest answer at once and are not watched.
    let long = query.is_some_and(|q| q.split('&').any(|p| p.starts_with("index=") || p.starts_with("follow=")))
        || path.ends_with("/logs")
        || path == "/api/v1/events";
    let watched = match (&caller.who, need) {
        (Who::Token(accessor), Some(need)) if long => Some((accessor.clone(), need)),
        _ => None,
    };
    let handler = CALLER.scope(caller, next.run(req));
    let resp = match watched {
        Some((accessor, need)) => super::revoke::run(&s, accessor, need, handler).await,
        None => handler.await,
    };
    if gate.is_none() && resp.status().is_success() {
        // An endpoint the route table does not know answered: refuse rather than let it through.
        tracing::error!(%method, %path, "an API endpoint has no ACL gate; refused");
        return error(StatusCode::FORBIDDEN, format!("{method} {path} has no ACL rule (a bug: please report it)"));
    }
    resp
}
