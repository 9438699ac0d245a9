//! Dispatching parameterized jobs: `POST /api/v1/jobs/<id>/dispatch` (Rabble's JSON) and
//! Nomad's `POST|PUT /v1/job/<id>/dispatch` (`{"Payload", "Meta"}`), both one child batch
//! job written through the catalog writer (`rabble_core::scheduler::dispatch` makes it).

use super::AppState;
use super::error::{bad_request, error};
use crate::scheduler::{dispatch, eval};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rabble_shared::job::dispatch::{DispatchRequest, Dispatched};
use rabble_shared::support::clock::now_ms;

/// Makes and commits the child; the answer is its id and the catalog index.
async fn dispatch_one(s: &AppState, parent: &str, req: dispatch::Request) -> Result<Dispatched, (StatusCode, String)> {
    let child = {
        let c = s.catalog();
        let Some(job) = c.work.jobs.get(parent) else {
            return Err((StatusCode::NOT_FOUND, format!("no job {parent:?}")));
        };
        dispatch::child(&job.spec, job.stopped, &req, now_ms(), fastrand::u32(..))
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("job {parent:?}: {e}")))?
    };
    let id = child.id.clone();
    match s.commit(eval::register(child, now_ms())).await {
        Ok(c) => Ok(Dispatched { id, index: c.index }),
        Err(e) => Err((e.0, e.1)),
    }
}

fn payload(b64: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|e| format!("payload: not base64: {e}"))
}

/// `POST /api/v1/jobs/<id>/dispatch` with a [`DispatchRequest`].
pub async fn native(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let r: DispatchRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&format!("dispatch request: {e}")),
    };
    let req = match payload(&r.payload) {
        Ok(payload) => dispatch::Request { meta: r.meta, payload },
        Err(e) => return bad_request(&e),
    };
    match dispatch_one(&s, &id, req).await {
        Ok(d) => Json(d).into_response(),
        Err((code, e)) => error(code, e),
    }
}

/// Nomad's `POST /v1/job/<id>/dispatch`: `{"Payload": base64, "Meta": {...}}` in, Nomad's
/// `JobDispatchResponse` out (python-nomad's `job.dispatch_job`).
pub async fn nomad(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct NomadDispatch {
        #[serde(default)]
        payload: Option<String>,
        #[serde(default)]
        meta: Option<std::collections::BTreeMap<String, String>>,
        #[serde(default)]
        id_prefix_template: Option<String>,
        #[serde(default, rename = "idempotency_token")]
        idempotency_token: Option<String>,
    }
    let r: NomadDispatch = match serde_json::from_slice(if body.is_empty() { b"{}" } else { &body }) {
        Ok(r) => r,
        Err(e) => return super::nomad::error(StatusCode::BAD_REQUEST, &format!("the body is not a dispatch: {e}")),
    };
    // python-nomad sends both as null; set, they would change what a dispatch is.
    if r.id_prefix_template.as_deref().is_some_and(|t| !t.is_empty())
        || r.idempotency_token.as_deref().is_some_and(|t| !t.is_empty())
    {
        let msg = "IdPrefixTemplate and idempotency_token are not supported by Rabble's dispatch";
        return super::nomad::error(StatusCode::BAD_REQUEST, msg);
    }
    let req = match payload(r.payload.as_deref().unwrap_or_default()) {
        Ok(payload) => dispatch::Request { meta: r.meta.unwrap_or_default(), payload },
        Err(e) => return super::nomad::error(StatusCode::BAD_REQUEST, &e),
    };
    match dispatch_one(&s, &id, req).await {
        Ok(d) => super::nomad::answer(
            d.index,
            &serde_json::json!({
                "DispatchedJobID": d.id,
                "EvalID": super::nomad::eval_id(d.index, super::nomad::Trigger::Register, &d.id),
                "EvalCreateIndex": d.index,
                "JobCreateIndex": d.index,
                "Index": d.index,
            }),
        ),
        Err((code, e)) => super::nomad::error(code, &e),
    }
}
