//! Consul's KV endpoints: `GET /v1/kv/<key>` (`raw`, `recurse`, `keys` with `separator`,
//! blocking on `index`/`wait`), `PUT /v1/kv/<key>` (the body is the value; `flags`,
//! `cas`; answers `true` or `false`) and `DELETE /v1/kv/<key>` (`recurse`, `cas`). Values
//! travel base64 in JSON, as Consul's; a missing key is a 404 with `X-Consul-Index`, so
//! a client can block on its creation. Every write is a durable commit by the writer.

use super::super::AppState;
use super::{Fail, Params, answer, fail};
use crate::catalog::Update;
use crate::catalog::kv::{Entry, KvUpdate, MAX_VALUE, check_key};
use crate::catalog::writer::Committed;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rabble_shared::consul::KvPair;

/// The KV parameters (the blocking ones are [`Params`]).
#[derive(Debug, Default)]
struct KvParams {
    raw: bool,
    recurse: bool,
    keys: bool,
    separator: Option<String>,
    cas: Option<u64>,
    flags: u64,
}

fn kv_params(raw: Option<&str>) -> Result<KvParams, String> {
    let mut p = KvParams::default();
    for pair in raw.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = rabble_shared::routes::rule::percent_decode(v);
        let yes = !matches!(v.as_str(), "false" | "0");
        match k {
            "raw" => p.raw = yes,
            "recurse" => p.recurse = yes,
            "keys" => p.keys = yes,
            "separator" => p.separator = Some(v),
            "cas" => p.cas = Some(v.parse().map_err(|_| format!("cas={v:?} is not a number"))?),
            "flags" => p.flags = v.parse().map_err(|_| format!("flags={v:?} is not a number"))?,
            _ => {}
        }
    }
    Ok(p)
}

/// The key from the path: everything after `/v1/kv/`, percent-decoded.
fn key_of(uri: &Uri) -> String {
    rabble_shared::routes::rule::percent_decode(uri.path().strip_prefix("/v1/kv/").unwrap_or(""))
}

fn bad(e: String) -> Fail {
    fail(StatusCode::BAD_REQUEST, &e)
}

pub(super) fn pair(key: &str, e: &Entry) -> KvPair {
    KvPair {
        lock_index: 0,
        key: key.to_owned(),
        flags: e.flags,
        value: (!e.value.is_empty()).then(|| base64::engine::general_purpose::STANDARD.encode(&e.value)),
        create_index: e.create_index,
        modify_index: e.modify_index,
    }
}

fn not_found(index: u64) -> Response {
    let mut r = StatusCode::NOT_FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&index.max(1).to_string()) {
        r.headers_mut().insert("x-consul-index", v);
    }
    r
}

pub async fn get(State(s): State<AppState>, uri: Uri) -> Result<Response, Fail> {
    let p = Params::parse(uri.query()).map_err(bad)?;
    let kp = kv_params(uri.query()).map_err(bad)?;
    let key = key_of(&uri);
    let prefix = kp.recurse || kp.keys;
    let c = super::snapshot_by(&s, &p, |c| c.kv.query_index(&key, prefix)).await;
    let index = c.kv.query_index(&key, prefix);
    if kp.keys {
        let keys = c.kv.keys(&key, kp.separator.as_deref());
        return Ok(if keys.is_empty() { not_found(index) } else { answer(index, &keys) });
    }
    if kp.recurse {
        let all: Vec<KvPair> = c.kv.prefix(&key).map(|(k, e)| pair(k, e)).collect();
        return Ok(if all.is_empty() { not_found(index) } else { answer(index, &all) });
    }
    let Some(e) = c.kv.entries.get(&key) else { return Ok(not_found(index)) };
    if kp.raw {
        let mut r = e.value.clone().into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        if let Ok(v) = HeaderValue::from_str(&index.to_string()) {
            h.insert("x-consul-index", v);
        }
        return Ok(r);
    }
    Ok(answer(index, &[pair(&key, e)]))
}

/// Sends `u` to the writer and waits for its commit.
pub(super) async fn commit(s: &AppState, u: Update) -> Result<Committed, Fail> {
    s.commit(u).await.map_err(|e| fail(e.0, &e.1))
}

/// Sends a KV change to the writer; whether it changed anything.
async fn write(s: &AppState, u: KvUpdate) -> Result<bool, Fail> {
    Ok(commit(s, Update::Kv(u)).await?.changed)
}

fn boolean(b: bool) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], if b { "true" } else { "false" }).into_response()
}

pub async fn put(State(s): State<AppState>, uri: Uri, body: Bytes) -> Result<Response, Fail> {
    let kp = kv_params(uri.query()).map_err(bad)?;
    let key = key_of(&uri);
    if key.is_empty() {
        return Err(bad("Missing key name".into()));
    }
    check_key(&key).map_err(bad)?;
    if body.len() > MAX_VALUE {
        let msg = format!("Request body({} bytes) too large, max size: {MAX_VALUE} bytes", body.len());
        return Err(fail(StatusCode::PAYLOAD_TOO_LARGE, &msg));
    }
    let changed = write(&s, KvUpdate::Set { key, value: body.to_vec(), flags: kp.flags, cas: kp.cas }).await?;
    Ok(boolean(changed))
}

pub async fn delete(State(s): State<AppState>, uri: Uri) -> Result<Response, Fail> {
    let kp = kv_params(uri.query()).map_err(bad)?;
    let key = key_of(&uri);
    if kp.recurse && kp.cas.is_some() {
        return Err(bad("cas cannot be used with recurse".into()));
    }
    let cas = kp.cas;
    let changed = write(&s, KvUpdate::Delete { key, recurse: kp.recurse, cas }).await?;
    // Deleting what is not there succeeds, as in Consul; only a cas can fail.
    Ok(boolean(changed || cas.is_none()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_and_keys() {
        let p = kv_params(Some("recurse&keys&separator=%2F&cas=7&flags=42&raw=false")).unwrap();
        assert!(p.recurse && p.keys && !p.raw);
        assert_eq!((p.separator.as_deref(), p.cas, p.flags), (Some("/"), Some(7), 42));
        assert!(kv_params(Some("cas=x")).unwrap_err().contains("cas"));
        let uri: Uri = "/v1/kv/app/config%20x?raw".parse().unwrap();
        assert_eq!(key_of(&uri), "app/config x");
        assert_eq!(key_of(&"/v1/kv/".parse().unwrap()), "");
    }
}
