//! Consul's KV transactions (`/v1/txn`), pure: a list of verbs applied in order to a
//! copy of the store, kept only when every one succeeded (all or nothing, one commit).
//! Verbs: `set`, `cas`, `get`, `get-tree`, `check-index`, `check-not-exists`,
//! `delete`, `delete-tree`, `delete-cas`; the session verbs (`lock`, `unlock`,
//! `check-session`) are refused by name (Rabble has no sessions). Results as Consul's:
//! an entry per `set`/`cas`/`check-index` (without its value), per `get` and per key of
//! a `get-tree` (with it).

use super::kv::{Entry, Kv, MAX_VALUE, check_key};
use super::state::{Applied, Dirty};
use std::sync::Arc;

/// Consul's default limit on a transaction's operations.
pub const MAX_OPS: usize = 128;

/// One operation; `index` is the ModifyIndex a `cas`/`check-index`/`delete-cas` wants.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum TxnOp {
    Set {
        key: String,
        #[serde(with = "crate::catalog::log::bytes")]
        value: Vec<u8>,
        flags: u64,
    },
    Cas {
        key: String,
        #[serde(with = "crate::catalog::log::bytes")]
        value: Vec<u8>,
        flags: u64,
        index: u64,
    },
    Get {
        key: String,
    },
    GetTree {
        key: String,
    },
    CheckIndex {
        key: String,
        index: u64,
    },
    CheckNotExists {
        key: String,
    },
    Delete {
        key: String,
    },
    DeleteTree {
        key: String,
    },
    DeleteCas {
        key: String,
        index: u64,
    },
}

/// One result: the key and its entry; `with_value` for the reading verbs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TxnItem {
    pub key: String,
    pub entry: Arc<Entry>,
    pub with_value: bool,
}

/// What a transaction did: its results when it was applied, or every failed operation
/// (by position) when it was rolled back.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct TxnOutcome {
    pub results: Vec<TxnItem>,
    pub errors: Vec<(usize, String)>,
}

/// A verb (and its fields) as Consul's JSON spells it, checked: the operation, or why not.
pub fn op(verb: &str, key: String, value: Vec<u8>, flags: u64, index: u64) -> Result<TxnOp, String> {
    check_key(&key)?;
    if value.len() > MAX_VALUE {
        return Err(format!("value for key {key:?} is {} bytes, over the {MAX_VALUE}-byte limit", value.len()));
    }
    let needs_key = |op: TxnOp| if key.is_empty() { Err(format!("{verb} needs a key")) } else { Ok(op) };
    match verb {
        "set" => needs_key(TxnOp::Set { key: key.clone(), value, flags }),
        "cas" => needs_key(TxnOp::Cas { key: key.clone(), value, flags, index }),
        "get" => needs_key(TxnOp::Get { key: key.clone() }),
        "get-tree" => Ok(TxnOp::GetTree { key }),
        "check-index" => needs_key(TxnOp::CheckIndex { key: key.clone(), index }),
        "check-not-exists" => needs_key(TxnOp::CheckNotExists { key: key.clone() }),
        "delete" => needs_key(TxnOp::Delete { key: key.clone() }),
        "delete-tree" => Ok(TxnOp::DeleteTree { key }),
        "delete-cas" => needs_key(TxnOp::DeleteCas { key: key.clone(), index }),
        "lock" | "unlock" | "check-session" => Err(format!("{verb}: Rabble has no sessions")),
        other => Err(format!("unknown KV verb {other:?}")),
    }
}

impl Kv {
    /// Applies `ops` as one change stamped `next`: every write, or none of them.
    pub fn txn(&mut self, ops: Vec<TxnOp>, next: u64) -> (Applied, TxnOutcome) {
        let mut work = self.clone();
        let mut out = TxnOutcome::default();
        let mut dirty: Vec<String> = Vec::new();
        let mut write = |work: &mut Kv, key: &str, value: Vec<u8>, flags: u64| {
            let create_index = work.entries.get(key).map_or(next, |e| e.create_index);
            let e = Arc::new(Entry { value, flags, create_index, modify_index: next });
            Arc::make_mut(&mut work.entries).insert(key.to_owned(), e.clone());
            dirty.push(key.to_owned());
            e
        };
        let mut gone: Vec<String> = Vec::new();
        for (i, o) in ops.into_iter().enumerate() {
            let item = |key: &str, entry: &Arc<Entry>, with_value: bool| TxnItem {
                key: key.to_owned(),
                entry: entry.clone(),
                with_value,
            };
            let modify = |w: &Kv, k: &str| w.entries.get(k).map(|e| e.modify_index);
            match o {
                TxnOp::Set { key, value, flags } => {
                    let e = write(&mut work, &key, value, flags);
                    out.results.push(item(&key, &e, false));
                }
                TxnOp::Cas { key, value, flags, index } => {
                    let ok =
                        if index == 0 { modify(&work, &key).is_none() } else { modify(&work, &key) == Some(index) };
                    if ok {
                        let e = write(&mut work, &key, value, flags);
                        out.results.push(item(&key, &e, false));
                    } else {
                        out.errors.push((i, format!("failed to set key {key:?}, index is stale")));
                    }
                }
                TxnOp::Get { key } => match work.entries.get(&key) {
                    Some(e) => out.results.push(item(&key, e, true)),
                    None => out.errors.push((i, format!("key {key:?} doesn't exist"))),
                },
                TxnOp::GetTree { key } => {
                    out.results.extend(work.prefix(&key).map(|(k, e)| item(k, e, true)));
                }
                TxnOp::CheckIndex { key, index } => match work.entries.get(&key) {
                    Some(e) if e.modify_index == index => out.results.push(item(&key, e, false)),
                    Some(e) => {
                        out.errors.push((i, format!("current modify index {} != {index}", e.modify_index)));
                    }
                    None => out.errors.push((i, format!("key {key:?} doesn't exist"))),
                },
                TxnOp::CheckNotExists { key } => {
                    if work.entries.contains_key(&key) {
                        out.errors.push((i, format!("key {key:?} exists")));
                    }
                }
                TxnOp::Delete { key } => {
                    if Arc::make_mut(&mut work.entries).remove(&key).is_some() {
                        gone.push(key);
                    }
                }
                TxnOp::DeleteTree { key } => {
                    let keys: Vec<String> = work.prefix(&key).map(|(k, _)| k.clone()).collect();
                    let map = Arc::make_mut(&mut work.entries);
                    for k in keys {
                        map.remove(&k);
                        gone.push(k);
                    }
                }
                TxnOp::DeleteCas { key, index } => {
                    if index != 0 && modify(&work, &key) == Some(index) {
                        Arc::make_mut(&mut work.entries).remove(&key);
                        gone.push(key);
                    } else {
                        out.errors.push((i, format!("failed to delete key {key:?}, index is stale")));
                    }
                }
            }
        }
        let mut applied = Applied::default();
        if !out.errors.is_empty() {
            out.results.clear();
            return (applied, out);
        }
        dirty.extend(gone);
        dirty.sort();
        dirty.dedup();
        if !dirty.is_empty() {
            work.index = next;
            applied.summaries.push(format!("kv txn: {} keys changed", dirty.len()));
            applied.dirty = dirty.into_iter().map(Dirty::Kv).collect();
            *self = work;
        }
        (applied, out)
    }
}

#[cfg(test)]
#[path = "kv_txn_tests.rs"]
mod tests;
