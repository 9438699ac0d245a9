//! What each node should run: its assignment set, from the catalog (the hub signs it and
//! publishes it retained for the node).

use crate::catalog::Catalog;
use rabble_shared::NodeId;
use rabble_shared::alloc::DesiredStatus;
use rabble_shared::assign::Assignment;
use rabble_shared::job::Task;
use std::collections::BTreeMap;

/// The allocations `node` should run now, each with its group's spec at the version it
/// runs (from the job's history, else the current one).
pub fn assignments(catalog: &Catalog, node: &NodeId) -> Vec<Assignment> {
    let mut out = Vec::new();
    for a in catalog.work.allocs.values() {
        if &a.node != node || a.desired != DesiredStatus::Run || a.client_status.is_terminal() {
            continue;
        }
        let Some(job) = catalog.work.jobs.get(&a.job_id) else { continue };
        let spec = catalog.work.history.get(&(a.job_id.clone(), a.job_version)).unwrap_or(&job.spec);
        let Some(g) = spec
            .groups
            .iter()
            .find(|g| g.name == a.group)
            .or_else(|| job.spec.groups.iter().find(|g| g.name == a.group))
        else {
            continue;
        };
        out.push(Assignment {
            alloc: a.id.clone(),
            name: a.name.clone(),
            job_id: a.job_id.clone(),
            job_version: a.job_version,
            kind: spec.kind,
            group: a.group.clone(),
            index: a.index,
            ports: a.ports.clone(),
            network_mode: g.network.mode.clone(),
            services: g.services.clone(),
            tasks: g.tasks.iter().map(|t| with_meta(t, &spec.meta, &g.meta)).collect(),
            volumes: g.volumes.clone(),
            csi_volumes: crate::scheduler::volumes::backings(&catalog.volumes.entries, g),
            restart: a.restart_asked,
        });
    }
    out
}

/// The task with its job's and group's meta under its own (Nomad's `NOMAD_META_*` are the
/// three merged, the task's winning): a dispatched job's meta reaches its tasks this way.
fn with_meta(t: &Task, job: &BTreeMap<String, String>, group: &BTreeMap<String, String>) -> Task {
    let mut t = t.clone();
    let own = std::mem::take(&mut t.meta);
    t.meta = job.clone();
    t.meta.extend(group.iter().map(|(k, v)| (k.clone(), v.clone())));
    t.meta.extend(own);
    t
}
