//! Consul's KV rules: indexes, check-and-set, recursive delete, keys with a separator.

use super::*;

fn set(key: &str, v: &str, cas: Option<u64>) -> KvUpdate {
    KvUpdate::Set { key: key.into(), value: v.as_bytes().to_vec(), flags: 0, cas }
}

#[test]
fn indexes_move_with_every_write_and_create_stays() {
    let mut kv = Kv::default();
    assert_eq!(kv.apply(set("a/b", "1", None), 5).dirty, vec![Dirty::Kv("a/b".into())]);
    assert_eq!((kv.entries["a/b"].create_index, kv.entries["a/b"].modify_index), (5, 5));
    // The same value again is still a write (Consul bumps ModifyIndex).
    assert_eq!(kv.apply(set("a/b", "1", None), 7).dirty.len(), 1);
    assert_eq!((kv.entries["a/b"].create_index, kv.entries["a/b"].modify_index), (5, 7));
    assert_eq!(kv.query_index("a/b", false), 7);
    assert_eq!(kv.query_index("zzz", false), 7, "nothing matched: the store's last change");
}

#[test]
fn check_and_set() {
    let mut kv = Kv::default();
    assert_eq!(kv.apply(set("k", "1", Some(0)), 3).dirty.len(), 1, "cas=0 creates");
    assert!(kv.apply(set("k", "2", Some(0)), 4).dirty.is_empty(), "cas=0 on an existing key");
    assert!(kv.apply(set("k", "2", Some(2)), 4).dirty.is_empty(), "a stale index");
    assert_eq!(kv.apply(set("k", "2", Some(3)), 4).dirty.len(), 1);
    assert_eq!(kv.entries["k"].value, b"2");
    let del = |cas| KvUpdate::Delete { key: "k".into(), recurse: false, cas };
    assert!(kv.apply(del(Some(0)), 5).dirty.is_empty(), "cas=0 deletes nothing");
    assert!(kv.apply(del(Some(3)), 5).dirty.is_empty());
    assert_eq!(kv.apply(del(Some(4)), 5).dirty.len(), 1);
    assert!(kv.entries.is_empty());
    assert_eq!(kv.index, 5);
}

#[test]
fn recursive_delete_and_keys_with_a_separator() {
    let mut kv = Kv::default();
    for (i, k) in ["app/a", "app/b/c", "app/b/d", "apple", "web/x"].iter().enumerate() {
        kv.apply(set(k, "v", None), i as u64 + 1);
    }
    assert_eq!(kv.keys("app/", Some("/")), vec!["app/a", "app/b/"]);
    assert_eq!(kv.keys("", Some("/")), vec!["app/", "apple", "web/"]);
    assert_eq!(kv.keys("app", None), vec!["app/a", "app/b/c", "app/b/d", "apple"]);
    assert_eq!(kv.query_index("app/", true), 3);
    let out = kv.apply(KvUpdate::Delete { key: "app/".into(), recurse: true, cas: None }, 9);
    assert_eq!(out.dirty.len(), 3);
    assert_eq!(kv.keys("", None), vec!["apple", "web/x"]);
    assert_eq!(kv.query_index("app/", true), 9, "a delete wakes a prefix query");
    assert!(kv.apply(KvUpdate::Delete { key: "nope/".into(), recurse: true, cas: None }, 10).dirty.is_empty());
}

#[test]
fn limits() {
    let mut kv = Kv::default();
    let big = KvUpdate::Set { key: "big".into(), value: vec![0; MAX_VALUE + 1], flags: 0, cas: None };
    assert!(kv.apply(big, 1).dirty.is_empty());
    assert!(check_key("/x").is_err() && check_key(&"k".repeat(MAX_KEY + 1)).is_err() && check_key("a\nb").is_err());
    assert!(check_key("a/b c/ü").is_ok());
}

#[test]
fn a_snapshot_shares_the_map_until_it_changes() {
    let mut kv = Kv::default();
    kv.apply(set("a", "1", None), 1);
    let snap = kv.clone();
    assert!(Arc::ptr_eq(&snap.entries, &kv.entries));
    kv.apply(set("b", "2", None), 2);
    assert!(!Arc::ptr_eq(&snap.entries, &kv.entries));
    assert_eq!(snap.entries.len(), 1);
}
