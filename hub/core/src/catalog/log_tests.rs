//! The log entry's encoded form (golden), its round trip, and a newer format refused.

use super::*;
use crate::catalog::kv::KvUpdate;
use crate::catalog::kv_txn::TxnOp;
use crate::catalog::node::NodeUpdate;
use rabble_shared::{NodeId, TopicId};

fn entry() -> LogEntry {
    let node = NodeId::new("pi1").unwrap();
    LogEntry::new(
        1_700_000_000_000,
        vec![
            Change { source: "rabble/node/pi1/status".into(), update: Update::Node(node.clone(), NodeUpdate::Online) },
            Change {
                source: "api".into(),
                update: Update::Kv(KvUpdate::Set {
                    key: "app/n".into(),
                    value: b"41".to_vec(),
                    flags: 0,
                    cas: Some(0),
                }),
            },
            Change {
                source: "api".into(),
                update: Update::KvTxn(vec![TxnOp::Cas {
                    key: "app/n".into(),
                    value: b"42".to_vec(),
                    flags: 0,
                    index: 1,
                }]),
            },
            Change {
                source: "hub".into(),
                update: Update::Node(node, NodeUpdate::Check(TopicId::new("web").unwrap(), None)),
            },
        ],
    )
}

#[test]
fn the_encoded_form_is_golden() {
    let golden = concat!(
        r#"{"format":1,"at_ms":1700000000000,"changes":["#,
        r#"{"source":"rabble/node/pi1/status","update":{"Node":["pi1","Online"]}},"#,
        r#"{"source":"api","update":{"Kv":{"Set":{"key":"app/n","value":"NDE=","flags":0,"cas":0}}}},"#,
        r#"{"source":"api","update":{"KvTxn":[{"Cas":{"key":"app/n","value":"NDI=","flags":0,"index":1}}]}},"#,
        r#"{"source":"hub","update":{"Node":["pi1",{"Check":["web",null]}]}}]}"#
    );
    assert_eq!(String::from_utf8(entry().encode()).unwrap(), golden);
    assert_eq!(LogEntry::decode(golden.as_bytes()).unwrap(), entry());
}

#[test]
fn a_newer_format_is_refused_and_garbage_named() {
    let newer = r#"{"format":2,"at_ms":1,"changes":[{"source":"x","update":{"Teleport":{}}}]}"#;
    assert_eq!(LogEntry::decode(newer.as_bytes()), Err(LogError::Newer(2)));
    assert!(matches!(LogEntry::decode(b"{\"format\":1}"), Err(LogError::Decode(_))));
    assert!(matches!(LogEntry::decode(b"\xff"), Err(LogError::Decode(_))));
}

#[test]
fn applying_an_entry_is_applying_its_batch() {
    let mut by_entry = Catalog::default();
    let applying = entry().apply(&mut by_entry);
    let mut by_batch = Catalog::default();
    let updates = entry().changes.into_iter().map(|c| Some(c.update)).collect();
    let batch = by_batch.apply_batch(updates, 1_700_000_000_000);
    assert_eq!(by_entry, by_batch);
    assert_eq!(applying.dirty, batch.dirty);
    assert_eq!(applying.result.index, 1);
    let changed: Vec<bool> = applying.result.results.iter().map(|r| r.changed).collect();
    // The CAS on index 1 succeeds: the set before it in the same commit stamped index 1.
    assert_eq!(changed, [true, true, true, false]);
    let txn = applying.result.results[2].txn.as_ref().unwrap();
    assert!(txn.errors.is_empty(), "{txn:?}");
    assert_eq!(by_entry.kv.entries["app/n"].value, b"42");
    assert!(applying.summaries.iter().any(|(source, _)| source == "rabble/node/pi1/status"));
}
