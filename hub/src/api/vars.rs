//! Variables over Nomad's API shape (`nomad var` users' `NOMAD_ADDR` can point here):
//! `GET /v1/vars?prefix=` (metadata only), `GET|PUT|DELETE /v1/var/<path>` (`cas`; a
//! conflict is a 409 with the current metadata). Items are sealed here, before they
//! reach the writer, and opened here only for the caller who asked: the catalog, redb,
//! logs and events never hold them in clear.

use super::AppState;
use crate::catalog::Update;
use crate::catalog::vars::{MAX_ITEMS_BYTES, SealedVar, VarUpdate, check_path};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rabble_shared::api::VarMeta;
use serde::Deserialize;
use std::collections::BTreeMap;

fn meta(path: &str, v: &SealedVar, items: Option<BTreeMap<String, String>>) -> VarMeta {
    VarMeta {
        namespace: "default".into(),
        path: path.to_owned(),
        create_index: v.create_index,
        modify_index: v.modify_index,
        create_time: v.create_time,
        modify_time: v.modify_time,
        items,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutBody {
    #[serde(default)]
    items: BTreeMap<String, String>,
}

fn err(code: StatusCode, msg: impl std::fmt::Display) -> Response {
    (code, format!("{msg}\n")).into_response()
}

fn path_of(uri: &Uri) -> String {
    rabble_shared::routes::rule::percent_decode(uri.path().strip_prefix("/v1/var/").unwrap_or(""))
}

fn query(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k == name).then(|| rabble_shared::routes::rule::percent_decode(v))
    })
}

fn cas(uri: &Uri) -> Result<Option<u64>, String> {
    query(uri, "cas").map(|v| v.parse().map_err(|_| format!("cas={v:?} is not a number"))).transpose()
}

pub async fn list(State(s): State<AppState>, uri: Uri) -> Response {
    let prefix = query(&uri, "prefix").unwrap_or_default();
    let c = s.snapshot.borrow().clone();
    let out: Vec<VarMeta> = c
        .vars
        .entries
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .map(|(p, v)| meta(p, v, None))
        .collect();
    Json(out).into_response()
}

pub async fn get(State(s): State<AppState>, uri: Uri) -> Response {
    let path = path_of(&uri);
    let c = s.snapshot.borrow().clone();
    let Some(v) = c.vars.entries.get(&path) else { return err(StatusCode::NOT_FOUND, "variable not found") };
    match v.open(&s.seal, &path) {
        Ok(items) => Json(meta(&path, v, Some(items))).into_response(),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, format!("variable {path} {e}")),
    }
}

async fn write(s: &AppState, u: VarUpdate) -> Result<bool, Response> {
    Ok(s.commit(Update::Var(u)).await.map_err(|e| err(e.0, e.1))?.changed)
}

/// The 409 of a failed check-and-set: the variable as it is (metadata only).
fn conflict(s: &AppState, path: &str) -> Response {
    let c = s.snapshot.borrow().clone();
    match c.vars.entries.get(path) {
        Some(v) => (StatusCode::CONFLICT, Json(meta(path, v, None))).into_response(),
        None => err(StatusCode::CONFLICT, "cas conflict: the variable does not exist"),
    }
}

pub async fn put(State(s): State<AppState>, uri: Uri, body: Bytes) -> Response {
    let path = path_of(&uri);
    if let Err(e) = check_path(&path) {
        return err(StatusCode::BAD_REQUEST, e);
    }
    let cas = match cas(&uri) {
        Ok(c) => c,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let b: PutBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return err(StatusCode::BAD_REQUEST, format!("body: {e} (expected {{\"Items\": {{\"key\": \"value\"}}}})"));
        }
    };
    if b.items.is_empty() || b.items.keys().any(String::is_empty) {
        return err(StatusCode::BAD_REQUEST, "a variable needs at least one item, each with a name");
    }
    let plain = serde_json::to_vec(&b.items).unwrap_or_default();
    if plain.len() > MAX_ITEMS_BYTES {
        return err(StatusCode::PAYLOAD_TOO_LARGE, format!("items are {} bytes, over {MAX_ITEMS_BYTES}", plain.len()));
    }
    let sealed = match s.seal.seal(path.as_bytes(), &plain) {
        Ok(x) => x,
        Err(e) => return err(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let at_ns = rabble_shared::support::clock::now_ms().saturating_mul(1_000_000);
    match write(&s, VarUpdate::Put { path: path.clone(), sealed, cas, at_ns }).await {
        Ok(true) => {
            let c = s.snapshot.borrow().clone();
            match c.vars.entries.get(&path) {
                Some(v) => Json(meta(&path, v, Some(b.items))).into_response(),
                None => err(StatusCode::INTERNAL_SERVER_ERROR, "written but not found"),
            }
        }
        Ok(false) => conflict(&s, &path),
        Err(r) => r,
    }
}

pub async fn delete(State(s): State<AppState>, uri: Uri) -> Response {
    let path = path_of(&uri);
    let cas = match cas(&uri) {
        Ok(c) => c,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let exists = s.snapshot.borrow().vars.entries.contains_key(&path);
    match write(&s, VarUpdate::Delete { path: path.clone(), cas }).await {
        Ok(false) if exists && cas.is_some() => conflict(&s, &path),
        Ok(_) => StatusCode::OK.into_response(),
        Err(r) => r,
    }
}
