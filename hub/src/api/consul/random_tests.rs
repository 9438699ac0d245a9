//! What Consul's clients send — register and deregister bodies, transactions, query
//! strings, KV keys — on seeded mutations of real requests: an answer, never a panic.

use super::Params;
use rabble_shared::consul::{Deregister, Register};
use rabble_shared::support::mutate::mutations;

const JSON: &[u8] = b"{}[]\":,0123456789-. truefalsnKVerbaseIdxNodSvcTg";

#[test]
fn bodies_and_query_strings_take_any_mutation() {
    let register = [
        r#"{"Node": "printer", "Address": "192.168.1.50", "Service": {"Service": "printer", "Port": 631, "Tags": ["ipp"]},
            "Check": {"CheckID": "ipp", "Name": "ipp", "Status": "passing", "ServiceID": "printer"}}"#,
        r#"{"Node": "nas", "Address": "10.0.0.2", "Checks": [{"Name": "a"}], "Service": {"ID": "x", "Service": "y"}}"#,
        r#"{"Node": "printer", "ServiceID": "printer", "CheckID": "ipp"}"#,
    ];
    mutations(&register, JSON, 10_000, 21, |b| {
        let body = axum::body::Bytes::copy_from_slice(b);
        let _ = super::register::json::<Register>(&body);
        let _ = super::register::json::<Deregister>(&body);
    });
    let txn = [
        r#"[{"KV": {"Verb": "set", "Key": "a", "Value": "aGk=", "Flags": 3}}, {"KV": {"Verb": "cas", "Key": "b", "Index": 9}}]"#,
        r#"[{"KV": {"Verb": "get-tree", "Key": "app/"}}, {"KV": {"Verb": "delete-cas", "Key": "x", "Index": 1}}]"#,
    ];
    mutations(&txn, JSON, 10_000, 22, |b| drop(super::txn::parse(b)));
    let queries =
        ["index=42&wait=120000ms&stale&passing&tag=a&tag=b%20c&dc=Home", "recurse&keys&separator=%2F&cas=0&raw"];
    mutations(&queries, b"&=%0123456789abcdefmsh+;", 20_000, 23, |b| {
        let _ = Params::parse(Some(&String::from_utf8_lossy(b)));
        let _ = crate::catalog::kv::check_key(&String::from_utf8_lossy(b));
        let _ =
            rabble_core::acl::route::gate("GET", &format!("/v1/kv/{}", String::from_utf8_lossy(b)), Some("recurse"));
    });
}
