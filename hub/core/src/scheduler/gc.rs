//! Forgetting finished launches, pure: a periodic launch or a dispatched child whose every
//! allocation ended more than [`JOB_GC_THRESHOLD_MS`] ago is purged (Nomad's
//! `job_gc_threshold`), so a 5-minute cron or a render farm's thousand dispatches do not
//! grow the catalog for ever. The newest child of each parent is kept: it is when the
//! periodic launcher (and the missed-run alert) last ran it.

use crate::catalog::Catalog;
use std::collections::BTreeMap;

/// Nomad's default: 4 hours.
pub const JOB_GC_THRESHOLD_MS: u64 = 4 * 3600 * 1000;

/// The children to purge at `now_ms`: nothing of theirs runs, something ran (or they
/// were stopped) and the last change is older than `threshold_ms`. A child still queued
/// (nothing placed yet) stays, however old.
pub fn expired(catalog: &Catalog, now_ms: u64, threshold_ms: u64) -> Vec<String> {
    #[derive(Default)]
    struct Child {
        active: bool,
        placed: bool,
        stopped: bool,
        last_ms: u64,
    }
    let mut children: BTreeMap<&str, Child> = BTreeMap::new();
    let mut newest: BTreeMap<&str, &str> = BTreeMap::new();
    for (id, j) in &catalog.work.jobs {
        let Some(parent) = parent_of(id) else { continue };
        children.insert(id.as_str(), Child { stopped: j.stopped, last_ms: j.submit_ms, ..Default::default() });
        // Ids sort by launch time within a parent: the last one seen is the newest.
        newest.insert(parent, id.as_str());
    }
    for a in catalog.work.allocs.values() {
        if let Some(c) = children.get_mut(a.job_id.as_str()) {
            c.active |= !a.client_status.is_terminal();
            c.placed = true;
            c.last_ms = c.last_ms.max(a.modify_ms);
        }
    }
    children
        .into_iter()
        .filter(|(id, c)| {
            let newest_of_parent = parent_of(id).and_then(|p| newest.get(p)) == Some(id);
            !c.active && (c.placed || c.stopped) && now_ms.saturating_sub(c.last_ms) > threshold_ms && !newest_of_parent
        })
        .map(|(id, _)| id.to_owned())
        .collect()
}

/// `backup` for `backup/periodic-1700000000` and `render/dispatch-1700000000-0a1b2c3d`.
pub fn parent_of(id: &str) -> Option<&str> {
    let (parent, tail) = id.rsplit_once('/')?;
    (tail.starts_with("periodic-") || tail.starts_with("dispatch-")).then_some(parent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{AllocUpdate, Update};
    use crate::scheduler::eval::register;
    use rabble_shared::alloc::{Allocation, ClientStatus};

    fn job(id: &str) -> rabble_shared::job::JobSpec {
        let src = "job \"x\" {\n type = \"batch\"\n group \"g\" {\n task \"t\" {\n driver = \"raw_exec\"\n config { command = \"x\" }\n }\n }\n}\n";
        let mut j = crate::jobspec::parse("x.hcl", src, &Default::default()).unwrap().job;
        j.id = id.into();
        j
    }

    fn alloc(c: &mut Catalog, n: u8, job: &str, status: ClientStatus, at_ms: u64) {
        let mut a: Allocation = serde_json::from_value(serde_json::json!({
            "id": format!("{n:016x}"), "name": format!("{job}.g[0]"), "job_id": job, "job_version": 0,
            "group": "g", "index": 0, "node": "pi", "desired": "run", "client_status": "pending",
            "create_ms": at_ms, "modify_ms": at_ms, "ports": [], "tasks": {},
            "resources": {"cpu_mhz": 100, "memory_mb": 100}
        }))
        .unwrap();
        a.client_status = status;
        c.apply(Update::Alloc(a.id.clone(), AllocUpdate::Create(Box::new(a))));
    }

    #[test]
    fn finished_children_go_after_the_threshold_but_the_newest_stays() {
        let mut c = Catalog::default();
        for id in [
            "nightly",
            "nightly/periodic-100",
            "nightly/periodic-200",
            "nightly/periodic-300",
            "r/dispatch-1-00000001",
            "r/dispatch-2-00000002",
            "r/dispatch-3-00000003",
        ] {
            c.apply(register(job(id), 0));
        }
        alloc(&mut c, 1, "nightly/periodic-100", ClientStatus::Complete, 1_000);
        alloc(&mut c, 2, "nightly/periodic-200", ClientStatus::Running, 1_000);
        alloc(&mut c, 3, "nightly/periodic-300", ClientStatus::Complete, 1_000);
        alloc(&mut c, 4, "r/dispatch-1-00000001", ClientStatus::Failed, 1_000);
        // r/dispatch-2 is still queued; r/dispatch-3 is the newest.
        let hour = 3_600_000;
        assert!(expired(&c, 2 * hour, JOB_GC_THRESHOLD_MS).is_empty(), "not yet");
        assert_eq!(expired(&c, 5 * hour, JOB_GC_THRESHOLD_MS), ["nightly/periodic-100", "r/dispatch-1-00000001"]);
        assert_eq!(parent_of("a/b/dispatch-1-2"), Some("a/b"));
        assert_eq!(parent_of("nightly"), None);
    }
}
