//! Variables (Nomad's `nomad var`, and what the seed planned Vault for), pure: each is a
//! path and a map of items, kept **sealed** — the catalog, its snapshots, redb and every
//! log see only ciphertext; the API opens a variable with the data dir's key when it
//! is asked for it. Indexes and times as Nomad's; check-and-set by ModifyIndex.

use super::state::{Applied, Dirty};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The longest path, and the most a variable's items may encode to (Nomad: 64 KiB).
pub const MAX_PATH: usize = 512;
pub const MAX_ITEMS_BYTES: usize = 64 * 1024;

/// One variable, sealed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SealedVar {
    /// `support::seal` of the items' JSON, with the path as associated data.
    pub sealed: Vec<u8>,
    pub create_index: u64,
    pub modify_index: u64,
    /// Unix nanoseconds, as Nomad reports them.
    pub create_time: u64,
    pub modify_time: u64,
}

impl SealedVar {
    /// The items, opened with the data dir's key (the path is the associated data).
    pub fn open(
        &self,
        key: &rabble_shared::support::seal::SealKey,
        path: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        let plain = key
            .open(path.as_bytes(), &self.sealed)
            .map_err(|_| "does not open with this hub's secret.key".to_owned())?;
        serde_json::from_slice(&plain).map_err(|e| e.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Vars {
    pub entries: Arc<BTreeMap<String, Arc<SealedVar>>>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum VarUpdate {
    /// `cas`: only if the ModifyIndex is this (0: only if it does not exist).
    Put {
        path: String,
        #[serde(with = "crate::catalog::log::bytes")]
        sealed: Vec<u8>,
        cas: Option<u64>,
        at_ns: u64,
    },
    Delete {
        path: String,
        cas: Option<u64>,
    },
}

/// Nomad's path rules: segments of letters, digits and `-_.~/`, no `..`, no leading or
/// trailing `/`.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > MAX_PATH {
        return Err(format!("path must be 1 to {MAX_PATH} characters"));
    }
    if path.starts_with('/') || path.ends_with('/') || path.contains("//") || path.split('/').any(|s| s == "..") {
        return Err(format!("path {path:?}: no leading, trailing or double /, no .."));
    }
    if !path.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~/".contains(c)) {
        return Err(format!("path {path:?}: only letters, digits and -_.~/"));
    }
    Ok(())
}

impl Vars {
    pub fn apply(&mut self, u: VarUpdate, next: u64) -> Applied {
        let mut out = Applied::default();
        match u {
            VarUpdate::Put { path, sealed, cas, at_ns } => {
                let cur = self.entries.get(&path);
                let ok = match cas {
                    None => true,
                    Some(0) => cur.is_none(),
                    Some(n) => cur.is_some_and(|v| v.modify_index == n),
                };
                if !ok || check_path(&path).is_err() {
                    return out;
                }
                let (create_index, create_time) = cur.map_or((next, at_ns), |v| (v.create_index, v.create_time));
                let v = SealedVar { sealed, create_index, modify_index: next, create_time, modify_time: at_ns };
                Arc::make_mut(&mut self.entries).insert(path.clone(), Arc::new(v));
                out.summaries.push(format!("variable {path} written"));
                out.dirty.push(Dirty::Var(path));
            }
            VarUpdate::Delete { path, cas } => {
                let Some(cur) = self.entries.get(&path) else { return out };
                if cas.is_some_and(|n| n != cur.modify_index) {
                    return out;
                }
                Arc::make_mut(&mut self.entries).remove(&path);
                out.summaries.push(format!("variable {path} purged"));
                out.dirty.push(Dirty::Var(path));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(path: &str, cas: Option<u64>) -> VarUpdate {
        VarUpdate::Put { path: path.into(), sealed: b"sealed".to_vec(), cas, at_ns: 10 }
    }

    #[test]
    fn put_cas_and_delete() {
        let mut v = Vars::default();
        assert_eq!(v.apply(put("nomad/jobs/web", Some(0)), 4).dirty.len(), 1);
        assert!(v.apply(put("nomad/jobs/web", Some(0)), 5).dirty.is_empty());
        assert!(v.apply(put("nomad/jobs/web", Some(3)), 5).dirty.is_empty());
        assert_eq!(v.apply(put("nomad/jobs/web", Some(4)), 5).dirty.len(), 1);
        let e = v.entries["nomad/jobs/web"].clone();
        assert_eq!((e.create_index, e.modify_index), (4, 5));
        assert!(v.apply(VarUpdate::Delete { path: "nomad/jobs/web".into(), cas: Some(4) }, 6).dirty.is_empty());
        assert_eq!(v.apply(VarUpdate::Delete { path: "nomad/jobs/web".into(), cas: None }, 6).dirty.len(), 1);
        assert!(v.entries.is_empty());
    }

    #[test]
    fn paths() {
        for ok in ["nomad/jobs/web/g/t", "secret/db", "a.b~c_d-e"] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/a", "a/", "a//b", "a/../b", "a b", "ü"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        let mut v = Vars::default();
        assert!(v.apply(put("../etc", None), 1).dirty.is_empty());
    }
}
