//! Nomad's HTTP API, the subset tools drive (python-nomad, Ansible's
//! `community.general.nomad_job`, CI scripts that `curl` Nomad): jobs parsed, planned,
//! registered, read, stopped and reverted, allocations restarted (`jobs.rs`); nodes,
//! allocations and evaluations read (`views.rs`). Answers carry `X-Nomad-Index` (the catalog's index) and block as
//! Nomad's do (`?index=N&wait=D`); tokens come as `X-Nomad-Token` (the door reads it).
//! Errors are plain text with the status, as Nomad's are. Jobs travel in Nomad's JSON
//! form (`rabble_core::nomad`), so a job read back registers again unchanged.
//!
//! Evaluations are not stored: an evaluation id names the job and the catalog index of
//! the change it stands for, so `/v1/evaluation/<id>` answers from the catalog itself
//! (on any hub of a cluster).

mod jobs;
mod views;

use super::AppState;
use super::consul::Params;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", get(jobs::list).post(jobs::register))
        .route("/v1/jobs/parse", post(jobs::parse))
        .route("/v1/validate/job", post(jobs::validate))
        .route("/v1/job/{id}", get(jobs::show).post(jobs::register).delete(jobs::deregister))
        .route("/v1/job/{id}/plan", post(jobs::plan))
        .route("/v1/job/{id}/revert", post(jobs::revert))
        .route("/v1/job/{id}/dispatch", post(super::dispatch::nomad).put(super::dispatch::nomad))
        .route("/v1/client/allocation/{id}/restart", post(jobs::restart_alloc).put(jobs::restart_alloc))
        .route("/v1/job/{id}/allocations", get(jobs::allocations))
        .route("/v1/job/{id}/versions", get(jobs::versions))
        .route("/v1/job/{id}/evaluations", get(jobs::evaluations))
        .route("/v1/nodes", get(views::nodes))
        .route("/v1/node/{id}", get(views::node))
        .route("/v1/allocations", get(views::allocations))
        .route("/v1/allocation/{id}", get(views::allocation))
        .route("/v1/evaluation/{id}", get(views::evaluation))
}

/// The endpoints served, for the 404 of one that is not.
pub const SERVED: &str = "/v1/jobs, /v1/jobs/parse, /v1/validate/job, /v1/job/<id> (GET, POST, DELETE), \
    /v1/job/<id>/plan, /v1/job/<id>/revert, /v1/job/<id>/allocations, /v1/job/<id>/versions, /v1/job/<id>/evaluations, /v1/nodes, \
    /v1/node/<id>, /v1/allocations, /v1/allocation/<id>, /v1/client/allocation/<id>/restart, /v1/evaluation/<id>, /v1/vars, /v1/var/<path>";

/// Nomad's error: the message as text, with the status.
pub fn error(code: StatusCode, msg: &str) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{msg}\n")).into_response()
}

/// A JSON answer with Nomad's headers.
pub fn answer(index: u64, body: &impl serde::Serialize) -> Response {
    let mut r = (StatusCode::OK, axum::Json(body)).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&index.max(1).to_string()) {
        h.insert("x-nomad-index", v);
    }
    h.insert("x-nomad-knownleader", HeaderValue::from_static("true"));
    h.insert("x-nomad-lastcontact", HeaderValue::from_static("0"));
    r
}

/// A request's query: its blocking parameters (`index`, `wait`), and the rest
/// (`prefix`, `purge`) by name. A malformed one is refused with Nomad's 400.
pub struct Query {
    pub block: Params,
    pairs: Vec<(String, String)>,
}

impl Query {
    /// The value of parameter `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Query {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Query, Response> {
        let raw = parts.uri.query();
        let block = Params::parse(raw).map_err(|e| error(StatusCode::BAD_REQUEST, &e))?;
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_owned(), rabble_shared::routes::rule::percent_decode(v))
            })
            .collect();
        Ok(Query { block, pairs })
    }
}

/// Nanoseconds since the epoch, as Nomad's times are.
pub fn nanos(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

/// What an evaluation was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Register,
    Deregister,
}

/// An evaluation's id: the catalog index of the change and what it was for, and a
/// digest of the job's id, in a UUID's shape (`0000002a-0000-0000-0001-5f3a9c1e2b7d`).
pub fn eval_id(index: u64, trigger: Trigger, job: &str) -> String {
    let t = match trigger {
        Trigger::Register => 1,
        Trigger::Deregister => 2,
    };
    let digest = job_digest(job);
    format!("{:08x}-{:04x}-{:04x}-{t:04x}-{digest:012x}", index >> 32, (index >> 16) & 0xffff, index & 0xffff)
}

/// The index, trigger and job digest an evaluation id carries.
pub fn parse_eval_id(id: &str) -> Option<(u64, Trigger, u64)> {
    let parts: Vec<&str> = id.split('-').collect();
    let [hi, mid, lo, t, digest] = parts.as_slice() else { return None };
    let hex = |s: &str, len: usize| (s.len() == len).then(|| u64::from_str_radix(s, 16).ok()).flatten();
    let index = (hex(hi, 8)? << 32) | (hex(mid, 4)? << 16) | hex(lo, 4)?;
    let trigger = match hex(t, 4)? {
        1 => Trigger::Register,
        2 => Trigger::Deregister,
        _ => return None,
    };
    Some((index, trigger, hex(digest, 12)?))
}

/// 48 bits of the job id's SHA-256.
pub fn job_digest(job: &str) -> u64 {
    let d = rabble_shared::support::seal::token_sha256(job);
    d[..6].iter().fold(0, |acc, b| (acc << 8) | u64::from(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evaluation_id_carries_its_index_trigger_and_job() {
        for index in [1, 42, 0x1_0000, u64::from(u32::MAX) + 7] {
            let id = eval_id(index, Trigger::Deregister, "web");
            assert_eq!(id.len(), 36, "{id}");
            assert_eq!(parse_eval_id(&id), Some((index, Trigger::Deregister, job_digest("web"))));
        }
        assert_ne!(job_digest("web"), job_digest("db"));
        assert_eq!(parse_eval_id("not-an-eval"), None);
        assert_eq!(parse_eval_id("0000002a-0000-0000-0009-5f3a9c1e2b7d"), None, "no such trigger");
    }
}
