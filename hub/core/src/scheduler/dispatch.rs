//! Dispatching a parameterized job, pure: the request checked against the job's
//! `parameterized` rules, and the child batch job it submits (Nomad's
//! `<id>/dispatch-<unix seconds>-<8 hex>`, a copy without `parameterized`, the dispatch's
//! meta over the job's, the payload in each task's `dispatch_payload`). The children
//! queue: the scheduler places them oldest first as room frees (their ids sort by time).

use crate::catalog::Catalog;
use base64::Engine as _;
use rabble_shared::alloc::ClientStatus;
use rabble_shared::job::dispatch::DispatchQueue;
use rabble_shared::job::dispatch::MAX_PAYLOAD;
use rabble_shared::job::{JobSpec, PayloadRule};
use std::collections::BTreeMap;

/// What `rabble job dispatch` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub meta: BTreeMap<String, String>,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    #[error("job {0:?} is not parameterized (only a job with a `parameterized` block can be dispatched)")]
    NotParameterized(String),
    #[error("job {0:?} is stopped")]
    Stopped(String),
    #[error("the job requires a payload")]
    PayloadRequired,
    #[error("the job forbids a payload")]
    PayloadForbidden,
    #[error("the payload is {0} bytes; at most {MAX_PAYLOAD} travel with a dispatch")]
    PayloadTooLarge(usize),
    #[error("missing required meta: {}", .0.join(", "))]
    MetaMissing(Vec<String>),
    #[error("meta not allowed by the job's meta_required and meta_optional: {}", .0.join(", "))]
    MetaUnknown(Vec<String>),
}

/// A child's id: ordered by dispatch time to the millisecond, then by `salt` (random).
pub fn child_id(parent: &str, at_ms: u64, salt: u32) -> String {
    let suffix = (((at_ms % 1000) as u32) << 22) | (salt & 0x3f_ffff);
    format!("{parent}/dispatch-{}-{suffix:08x}", at_ms / 1000)
}

/// The child job dispatching `parent` with `req` at `at_ms` submits.
pub fn child(parent: &JobSpec, stopped: bool, req: &Request, at_ms: u64, salt: u32) -> Result<JobSpec, DispatchError> {
    let p = parent.parameterized.as_ref().ok_or_else(|| DispatchError::NotParameterized(parent.id.clone()))?;
    if stopped {
        return Err(DispatchError::Stopped(parent.id.clone()));
    }
    match (p.payload, req.payload.is_empty()) {
        (PayloadRule::Required, true) => return Err(DispatchError::PayloadRequired),
        (PayloadRule::Forbidden, false) => return Err(DispatchError::PayloadForbidden),
        _ if req.payload.len() > MAX_PAYLOAD => return Err(DispatchError::PayloadTooLarge(req.payload.len())),
        _ => {}
    }
    let missing: Vec<String> = p.meta_required.iter().filter(|k| !req.meta.contains_key(*k)).cloned().collect();
    if !missing.is_empty() {
        return Err(DispatchError::MetaMissing(missing));
    }
    let unknown: Vec<String> =
        req.meta.keys().filter(|k| !p.meta_required.contains(k) && !p.meta_optional.contains(k)).cloned().collect();
    if !unknown.is_empty() {
        return Err(DispatchError::MetaUnknown(unknown));
    }
    let mut c = parent.clone();
    c.id = child_id(&parent.id, at_ms, salt);
    c.name = c.id.clone();
    c.parameterized = None;
    c.meta.extend(req.meta.iter().map(|(k, v)| (k.clone(), v.clone())));
    let data = base64::engine::general_purpose::STANDARD.encode(&req.payload);
    for t in c.groups.iter_mut().flat_map(|g| g.tasks.iter_mut()) {
        if let Some(d) = &mut t.dispatch_payload {
            d.data = data.clone();
        }
    }
    Ok(c)
}

/// The children of `parent`, oldest first.
pub fn children<'c>(catalog: &'c Catalog, parent: &str) -> impl Iterator<Item = &'c String> {
    let prefix = format!("{parent}/dispatch-");
    catalog.work.jobs.range(prefix.clone()..).map(|(k, _)| k).take_while(move |k| k.starts_with(&prefix))
}

/// A parameterized job's queue: its children by where they are.
pub fn queue(catalog: &Catalog, parent: &str) -> DispatchQueue {
    let mut q = DispatchQueue::default();
    let mut states: BTreeMap<&str, Vec<ClientStatus>> = BTreeMap::new();
    for id in children(catalog, parent) {
        states.insert(id.as_str(), Vec::new());
    }
    for a in catalog.work.allocs.values() {
        if let Some(s) = states.get_mut(a.job_id.as_str()) {
            s.push(a.client_status);
        }
    }
    for s in states.values() {
        let n = if s.is_empty() {
            &mut q.queued
        } else if s.iter().any(|c| matches!(c, ClientStatus::Pending | ClientStatus::Running)) {
            &mut q.running
        } else if s.iter().all(|c| *c == ClientStatus::Complete) {
            &mut q.complete
        } else {
            &mut q.failed
        };
        *n += 1;
    }
    q
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
