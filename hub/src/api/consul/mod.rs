//! Consul's HTTP API on the hub's port (8500 by default), so Traefik's consulCatalog
//! provider, Prometheus' consul_sd, py-consul and Ansible work unchanged against
//! Rabble: the catalog and health endpoints (`read.rs`), external registrations
//! (`register.rs`), the KV store (`kv.rs`) and its transactions (`txn.rs`), and blocking queries — `?index=N&wait=D` holds until the catalog
//! index moves past N or the wait ends (default 5 minutes, at most 10), answered with
//! `X-Consul-Index` (≥ 1, rising). Unknown parameters are ignored, as Consul ignores
//! them; unknown endpoints answer 404 naming themselves.

mod kv;
mod read;
mod register;
mod txn;

use super::AppState;
use crate::catalog::Catalog;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_WAIT: Duration = Duration::from_secs(300);
const MAX_WAIT: Duration = Duration::from_secs(600);

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/agent/self", get(read::agent_self))
        .route("/v1/status/leader", get(read::leader))
        .route("/v1/status/peers", get(read::peers))
        .route("/v1/catalog/datacenters", get(read::datacenters))
        .route("/v1/catalog/services", get(read::catalog_services))
        .route("/v1/catalog/service/{name}", get(read::catalog_service))
        .route("/v1/catalog/nodes", get(read::catalog_nodes))
        .route("/v1/catalog/node/{node}", get(read::catalog_node))
        .route("/v1/health/service/{name}", get(read::health_service))
        .route("/v1/health/checks/{name}", get(read::health_checks))
        .route("/v1/health/node/{node}", get(read::health_node))
        .route("/v1/health/state/{state}", get(read::health_state))
        .route("/v1/catalog/register", put(register::register))
        .route("/v1/catalog/deregister", put(register::deregister))
        .route("/v1/kv/", get(kv::get).put(kv::put).delete(kv::delete))
        .route("/v1/kv/{*key}", get(kv::get).put(kv::put).delete(kv::delete))
        .route("/v1/txn", put(txn::txn))
        .layer(axum::middleware::from_fn_with_state(state, leader_headers))
}

/// Consul's `X-Consul-KnownLeader` and `X-Consul-LastContact` (ms since the leader was last
/// heard from) on every answer: a member of a hub cluster answers from its own copy, as
/// Consul's stale reads do, and says how fresh that copy is. A single hub is its own leader.
async fn leader_headers(
    axum::extract::State(s): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut resp = next.run(req).await;
    let (known, ms) = match &s.cluster {
        None => (true, 0),
        Some(c) => match (c.leader(), c.last_contact()) {
            (Some(_), Some(ago)) => (true, ago.as_millis() as u64),
            (_, ago) => (false, ago.map_or(0, |a| a.as_millis() as u64)),
        },
    };
    let h = resp.headers_mut();
    h.insert("x-consul-knownleader", HeaderValue::from_static(if known { "true" } else { "false" }));
    if let Ok(v) = HeaderValue::from_str(&ms.to_string()) {
        h.insert("x-consul-lastcontact", v);
    }
    resp
}

/// The endpoints served, for the 404 of one that is not.
pub const SERVED: &str = "/v1/agent/self, /v1/status/leader, /v1/status/peers, /v1/catalog/datacenters, \
    /v1/catalog/services, /v1/catalog/service/<s>, /v1/catalog/nodes, /v1/catalog/node/<n>, /v1/health/service/<s>, \
    /v1/health/checks/<s>, /v1/health/node/<n>, /v1/health/state/<state>, /v1/catalog/register, \
    /v1/catalog/deregister, /v1/kv/<key>, /v1/traefik, /v1/traefik/<lane>";

/// The query parameters Rabble reads; everything else is ignored.
#[derive(Debug, Default)]
pub struct Params {
    pub index: Option<u64>,
    pub wait: Option<Duration>,
    pub passing: bool,
    pub tags: Vec<String>,
    pub dc: Option<String>,
}

impl Params {
    pub fn parse(raw: Option<&str>) -> Result<Params, String> {
        let mut p = Params::default();
        for pair in raw.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = rabble_shared::routes::rule::percent_decode(v);
            match k {
                "index" => p.index = Some(v.parse().map_err(|_| format!("index={v:?} is not a number"))?),
                "wait" => {
                    let d = rabble_shared::support::duration::parse(&v).map_err(|e| format!("wait={v:?}: {e}"))?;
                    p.wait = Some(d);
                }
                "passing" => p.passing = !matches!(v.as_str(), "false" | "0"),
                "tag" => p.tags.push(v),
                "dc" if !v.is_empty() => p.dc = Some(v.to_ascii_lowercase()),
                _ => {}
            }
        }
        Ok(p)
    }
}

/// The catalog to answer from: at once, or — for a blocking query — once its index
/// has moved past `index` (or went backwards: the client resets), or the wait ended.
pub async fn snapshot(s: &AppState, p: &Params) -> Arc<Catalog> {
    snapshot_by(s, p, |c| c.index).await
}

/// [`snapshot`], with the index a query answers with (a KV query's: its keys' highest
/// ModifyIndex).
pub async fn snapshot_by(s: &AppState, p: &Params, index_of: impl Fn(&Catalog) -> u64) -> Arc<Catalog> {
    let mut rx = s.snapshot.clone();
    let Some(index) = p.index else { return rx.borrow().clone() };
    let wait = p.wait.unwrap_or(DEFAULT_WAIT).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let c = rx.borrow_and_update().clone();
        if index_of(&c).max(1) != index {
            return c;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return c,
            r = rx.changed() => if r.is_err() { return c },
            _ = s.stop.cancelled() => return c,
        }
    }
}

/// A JSON answer with Consul's headers.
pub fn answer(index: u64, body: &impl serde::Serialize) -> Response {
    let mut r = (StatusCode::OK, axum::Json(body)).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&index.max(1).to_string()) {
        h.insert("x-consul-index", v);
    }
    h.insert("x-consul-knownleader", HeaderValue::from_static("true"));
    h.insert("x-consul-lastcontact", HeaderValue::from_static("0"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An error answer, built only when it is returned (small to pass around).
#[derive(Debug)]
pub struct Fail(pub StatusCode, pub String);

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

pub fn fail(code: StatusCode, msg: &str) -> Fail {
    Fail(code, msg.to_owned())
}

/// A plain-text error, as Consul answers them.
pub fn error(code: StatusCode, msg: &str) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{msg}\n")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_as_consul_clients_send_them() {
        let p =
            Params::parse(Some("index=42&wait=120000ms&stale&passing&tag=a&tag=b%20c&dc=Home&near=_agent")).unwrap();
        assert_eq!((p.index, p.wait, p.passing), (Some(42), Some(Duration::from_secs(120)), true));
        assert_eq!((p.tags, p.dc.as_deref()), (vec!["a".to_owned(), "b c".to_owned()], Some("home")));
        assert!(!Params::parse(Some("passing=false")).unwrap().passing);
        assert!(Params::parse(Some("index=x")).unwrap_err().contains("index"));
        assert!(Params::parse(Some("wait=soon")).unwrap_err().contains("wait"));
        assert!(Params::parse(None).unwrap().index.is_none());
    }
}

#[cfg(test)]
#[path = "random_tests.rs"]
mod random_tests;

/// For the fuzz targets (`hub/fuzz`): every parser a Consul client's request meets, on raw
/// bytes — register and deregister bodies, transactions, query strings, KV keys.
#[cfg(feature = "fuzzing")]
pub fn fuzz_request(data: &[u8]) {
    use rabble_shared::consul::{Deregister, Register};
    let body = axum::body::Bytes::copy_from_slice(data);
    let _ = register::json::<Register>(&body);
    let _ = register::json::<Deregister>(&body);
    let _ = txn::parse(data);
    let text = String::from_utf8_lossy(data);
    let _ = Params::parse(Some(&text));
    let _ = rabble_core::catalog::kv::check_key(&text);
    let _ = rabble_core::acl::route::gate("GET", &format!("/v1/kv/{text}"), Some(&text));
    let _ = rabble_core::acl::route::gate("PUT", &format!("/v1/catalog/{text}"), None);
}
