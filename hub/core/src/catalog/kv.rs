//! The KV store in the catalog, with Consul's semantics, pure: keys are paths (no
//! leading `/`), values up to [`MAX_VALUE`] bytes with 64-bit `flags`, every write
//! stamps `ModifyIndex` with the commit's index (`CreateIndex` when new), check-and-set
//! (`cas`), recursive delete. The map is shared (`Arc`) so a catalog snapshot costs a
//! pointer copy unless the KV itself changed. Reads (prefix, `keys` with a separator,
//! the blocking index of a query) are functions over the map.

use super::state::{Applied, Dirty};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Consul's limit on a value.
pub const MAX_VALUE: usize = 512 * 1024;
/// The longest key accepted.
pub const MAX_KEY: usize = 1024;

/// One key's value and indexes.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    #[serde(with = "crate::catalog::log::bytes")]
    pub value: Vec<u8>,
    pub flags: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The whole store, and the index of its last change (deletes included), which a
/// query that matches nothing blocks on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Kv {
    pub entries: Arc<BTreeMap<String, Arc<Entry>>>,
    pub index: u64,
}

/// A change to the store.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum KvUpdate {
    /// `cas`: `Some(0)` only if the key does not exist, `Some(n)` only if its
    /// ModifyIndex is `n`.
    Set {
        key: String,
        #[serde(with = "crate::catalog::log::bytes")]
        value: Vec<u8>,
        flags: u64,
        cas: Option<u64>,
    },
    /// `recurse`: every key starting with `key`. `cas` (not with `recurse`): only if the
    /// key's ModifyIndex is `cas` (0 deletes nothing).
    Delete { key: String, recurse: bool, cas: Option<u64> },
}

/// Why a key cannot be used.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.len() > MAX_KEY {
        return Err(format!("key is {} bytes, over the {MAX_KEY}-byte limit", key.len()));
    }
    if key.starts_with('/') {
        return Err("key must not start with /".into());
    }
    if key.chars().any(char::is_control) {
        return Err("key must not contain control characters".into());
    }
    Ok(())
}

impl Kv {
    /// Applies `u` as part of the commit that will have index `next`. Every successful
    /// set stamps a new ModifyIndex, as Consul does, even with the same value.
    pub fn apply(&mut self, u: KvUpdate, next: u64) -> Applied {
        let mut out = Applied::default();
        match u {
            KvUpdate::Set { key, value, flags, cas } => {
                let cur = self.entries.get(&key);
                let ok = match cas {
                    None => true,
                    Some(0) => cur.is_none(),
                    Some(n) => cur.is_some_and(|e| e.modify_index == n),
                };
                if !ok || value.len() > MAX_VALUE || check_key(&key).is_err() {
                    return out;
                }
                let create_index = cur.map_or(next, |e| e.create_index);
                let summary = format!("kv {key} set ({} bytes, flags {flags})", value.len());
                let e = Entry { value, flags, create_index, modify_index: next };
                Arc::make_mut(&mut self.entries).insert(key.clone(), Arc::new(e));
                out.dirty.push(Dirty::Kv(key));
                out.summaries.push(summary);
            }
            KvUpdate::Delete { key, recurse: true, .. } => {
                let gone: Vec<String> = self
                    .entries
                    .range(key.clone()..)
                    .take_while(|(k, _)| k.starts_with(&key))
                    .map(|(k, _)| k.clone())
                    .collect();
                if gone.is_empty() {
                    return out;
                }
                let map = Arc::make_mut(&mut self.entries);
                for k in &gone {
                    map.remove(k);
                }
                out.summaries.push(format!("kv {key}* deleted ({} keys)", gone.len()));
                out.dirty.extend(gone.into_iter().map(Dirty::Kv));
            }
            KvUpdate::Delete { key, recurse: false, cas } => {
                let Some(cur) = self.entries.get(&key) else { return out };
                if cas.is_some_and(|n| n == 0 || n != cur.modify_index) {
                    return out;
                }
                Arc::make_mut(&mut self.entries).remove(&key);
                out.summaries.push(format!("kv {key} deleted"));
                out.dirty.push(Dirty::Kv(key));
            }
        }
        self.index = next;
        out
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a String, &'a Arc<Entry>)> + 'a {
        self.entries.range(prefix.to_owned()..).take_while(move |(k, _)| k.starts_with(prefix))
    }

    /// Consul's `?keys&separator=`: the keys under `prefix`, each cut after the first
    /// `separator` past the prefix (so `a/b/c` under `a/` with `/` is `a/b/`), deduplicated.
    pub fn keys(&self, prefix: &str, separator: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (k, _) in self.prefix(prefix) {
            let cut = match separator.filter(|s| !s.is_empty()) {
                Some(sep) => match k[prefix.len()..].find(sep) {
                    Some(i) => &k[..prefix.len() + i + sep.len()],
                    None => k.as_str(),
                },
                None => k.as_str(),
            };
            if out.last().map(String::as_str) != Some(cut) {
                out.push(cut.to_owned());
            }
        }
        out
    }

    /// The index a query over `prefix` (or one key) answers with and blocks on: the
    /// highest ModifyIndex among what it matches, or the store's last change when it
    /// matches nothing (so a delete wakes it), never 0.
    pub fn query_index(&self, prefix: &str, recurse: bool) -> u64 {
        let found = if recurse {
            self.prefix(prefix).map(|(_, e)| e.modify_index).max()
        } else {
            self.entries.get(prefix).map(|e| e.modify_index)
        };
        found.unwrap_or(self.index).max(1)
    }
}

#[cfg(test)]
#[path = "kv_tests.rs"]
mod tests;
