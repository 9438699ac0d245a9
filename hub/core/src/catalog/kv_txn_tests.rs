//! KV transactions: all or nothing, Consul's results and errors.

use super::*;
use crate::catalog::kv::KvUpdate;

fn kv() -> Kv {
    let mut kv = Kv::default();
    for (k, v, at) in [("app/a", "1", 3), ("app/b", "2", 4), ("other", "x", 5)] {
        kv.apply(KvUpdate::Set { key: k.into(), value: v.into(), flags: 0, cas: None }, at);
    }
    kv
}

fn set(key: &str, value: &str) -> TxnOp {
    TxnOp::Set { key: key.into(), value: value.into(), flags: 7 }
}

#[test]
fn every_write_in_one_change_with_consuls_results() {
    let mut kv = kv();
    let ops = vec![
        set("app/c", "3"),
        TxnOp::Cas { key: "app/a".into(), value: "1b".into(), flags: 0, index: 3 },
        TxnOp::Get { key: "app/c".into() },
        TxnOp::CheckIndex { key: "app/b".into(), index: 4 },
        TxnOp::CheckNotExists { key: "app/z".into() },
        TxnOp::DeleteCas { key: "other".into(), index: 5 },
        TxnOp::GetTree { key: "app/".into() },
    ];
    let (applied, out) = kv.txn(ops, 10);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let keys: Vec<(&str, bool)> = out.results.iter().map(|r| (r.key.as_str(), r.with_value)).collect();
    assert_eq!(
        keys,
        [
            ("app/c", false),
            ("app/a", false),
            ("app/c", true),
            ("app/b", false),
            ("app/a", true),
            ("app/b", true),
            ("app/c", true)
        ]
    );
    assert_eq!(out.results[2].entry.value, b"3", "a get sees the transaction's own earlier set");
    assert_eq!(
        (out.results[0].entry.create_index, out.results[0].entry.modify_index, out.results[0].entry.flags),
        (10, 10, 7)
    );
    assert_eq!(applied.dirty, vec![Dirty::Kv("app/a".into()), Dirty::Kv("app/c".into()), Dirty::Kv("other".into())]);
    assert_eq!(
        (kv.index, kv.entries.contains_key("other"), kv.entries["app/a"].value.as_slice()),
        (10, false, &b"1b"[..])
    );
}

#[test]
fn one_failure_rolls_everything_back_and_names_each_failed_op() {
    let mut kv = kv();
    let before = kv.clone();
    let ops = vec![
        set("app/new", "x"),
        TxnOp::DeleteTree { key: "app/".into() },
        TxnOp::Cas { key: "other".into(), value: "y".into(), flags: 0, index: 4 },
        TxnOp::Get { key: "nope".into() },
        TxnOp::CheckNotExists { key: "other".into() },
        TxnOp::CheckIndex { key: "other".into(), index: 1 },
        TxnOp::DeleteCas { key: "other".into(), index: 0 },
    ];
    let (applied, out) = kv.txn(ops, 10);
    let failed: Vec<usize> = out.errors.iter().map(|(i, _)| *i).collect();
    assert_eq!(failed, [2, 3, 4, 5, 6]);
    assert!(out.errors[1].1.contains("doesn't exist") && out.errors[3].1.contains("5 != 1"), "{:?}", out.errors);
    assert!(out.results.is_empty() && applied.dirty.is_empty());
    assert_eq!(kv, before, "nothing applied");
}

#[test]
fn reads_only_change_nothing_and_verbs_are_checked() {
    let mut kv = kv();
    let (applied, out) = kv.txn(vec![TxnOp::Get { key: "other".into() }], 10);
    assert!(applied.dirty.is_empty() && out.errors.is_empty() && out.results.len() == 1);
    assert_eq!(kv.index, 5);
    assert!(op("lock", "k".into(), vec![], 0, 0).unwrap_err().contains("no sessions"));
    assert!(op("frob", "k".into(), vec![], 0, 0).unwrap_err().contains("unknown KV verb"));
    assert!(op("set", String::new(), vec![], 0, 0).unwrap_err().contains("needs a key"));
    assert!(op("set", "/k".into(), vec![], 0, 0).is_err());
    assert!(op("set", "k".into(), vec![0; MAX_VALUE + 1], 0, 0).unwrap_err().contains("limit"));
    assert_eq!(op("delete-tree", String::new(), vec![], 0, 0).unwrap(), TxnOp::DeleteTree { key: String::new() });
}
