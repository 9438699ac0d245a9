//! Consul's `PUT /v1/txn` for the KV verbs: a JSON list of `{"KV": {"Verb", "Key",
//! "Value" (base64), "Flags", "Index"}}`, applied all or nothing in one durable commit.
//! 200 with `{"Results": [{"KV": ...}], "Errors": null}`, or 409 with every failed
//! operation (`{"Results": null, "Errors": [{"OpIndex", "What"}]}`), as Consul answers.

use super::super::AppState;
use super::kv::{commit, pair};
use super::{Fail, answer, fail};
use crate::catalog::Update;
use crate::catalog::kv_txn::{MAX_OPS, TxnOp, TxnOutcome, op};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

/// Failed operations, by position, and why.
type OpErrors = Vec<(usize, String)>;

/// The operations in a request body, or every malformed one by position.
pub(super) fn parse(body: &[u8]) -> Result<Result<Vec<TxnOp>, OpErrors>, Fail> {
    let bad = |m: String| fail(StatusCode::BAD_REQUEST, &m);
    let ops: Vec<Value> = serde_json::from_slice(body).map_err(|e| bad(format!("Failed to parse body: {e}")))?;
    if ops.len() > MAX_OPS {
        let msg = format!("Transaction contains too many operations ({} > {MAX_OPS})", ops.len());
        return Err(fail(StatusCode::PAYLOAD_TOO_LARGE, &msg));
    }
    let mut out = Vec::with_capacity(ops.len());
    let mut errors = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        let Some(kv) = o.get("KV") else {
            errors.push((i, "only KV operations are supported here".to_owned()));
            continue;
        };
        let text = |f: &str| kv.get(f).and_then(Value::as_str).unwrap_or("");
        let num = |f: &str| kv.get(f).and_then(Value::as_u64).unwrap_or(0);
        let value = match base64::engine::general_purpose::STANDARD.decode(text("Value")) {
            Ok(v) => v,
            Err(e) => {
                errors.push((i, format!("Value is not base64: {e}")));
                continue;
            }
        };
        match op(text("Verb"), text("Key").to_owned(), value, num("Flags"), num("Index")) {
            Ok(op) => out.push(op),
            Err(e) => errors.push((i, e)),
        }
    }
    Ok(if errors.is_empty() { Ok(out) } else { Err(errors) })
}

fn rolled_back(errors: &[(usize, String)]) -> Response {
    let errors: Vec<Value> = errors.iter().map(|(i, w)| json!({"OpIndex": i, "What": w})).collect();
    (StatusCode::CONFLICT, axum::Json(json!({"Results": null, "Errors": errors}))).into_response()
}

fn results(index: u64, o: &TxnOutcome) -> Response {
    let results: Vec<Value> = o
        .results
        .iter()
        .map(|r| {
            let mut p = pair(&r.key, &r.entry);
            if !r.with_value {
                p.value = None;
            }
            json!({ "KV": p })
        })
        .collect();
    answer(index, &json!({"Results": results, "Errors": null}))
}

pub async fn txn(State(s): State<AppState>, body: Bytes) -> Result<Response, Fail> {
    let ops = match parse(&body)? {
        Ok(ops) => ops,
        Err(errors) => return Ok(rolled_back(&errors)),
    };
    for op in &ops {
        if let Err(denied) = crate::api::door::check(&rabble_core::acl::route::txn_need(op)) {
            return Ok(denied);
        }
    }
    let c = commit(&s, Update::KvTxn(ops)).await?;
    let outcome = c.txn.unwrap_or_default();
    Ok(if outcome.errors.is_empty() { results(c.index, &outcome) } else { rolled_back(&outcome.errors) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_as_consul_clients_send_them() {
        let body = br#"[{"KV": {"Verb": "set", "Key": "a", "Value": "aGk=", "Flags": 3}},
                        {"KV": {"Verb": "cas", "Key": "b", "Index": 9}},
                        {"KV": {"Verb": "delete-tree", "Key": ""}}]"#;
        let ops = parse(body).unwrap().unwrap();
        assert_eq!(ops[0], TxnOp::Set { key: "a".into(), value: b"hi".to_vec(), flags: 3 });
        assert_eq!(ops[1], TxnOp::Cas { key: "b".into(), value: vec![], flags: 0, index: 9 });
        let body = br#"[{"KV": {"Verb": "lock", "Key": "a"}}, {"Node": {}}, {"KV": {"Verb": "set", "Key": "a", "Value": "!"}}]"#;
        let errs = parse(body).unwrap().unwrap_err();
        assert_eq!(errs.iter().map(|e| e.0).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(parse(b"{").is_err());
        let many = format!("[{}]", vec![r#"{"KV":{"Verb":"get","Key":"a"}}"#; MAX_OPS + 1].join(","));
        assert_eq!(parse(many.as_bytes()).unwrap_err().0, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
