//! `job plan`, pure: what submitting a job would do now, computed on a copy of the
//! catalog — the same evaluation the scheduler runs, nothing written.

use super::eval;
use crate::catalog::{AllocUpdate, Catalog, Update};
use rabble_shared::AllocId;
use rabble_shared::alloc::DesiredStatus;
use rabble_shared::api::{JobPlanView, PlannedAlloc, PlannedStop};
use rabble_shared::job::JobSpec;

pub fn plan(catalog: &Catalog, spec: JobSpec, now_ms: u64) -> JobPlanView {
    let id = spec.id.clone();
    let diff = catalog.work.jobs.get(&id).map(|j| crate::jobspec::diff::diff(&j.spec, &spec)).unwrap_or_default();
    let mut copy = catalog.clone();
    let before = copy.work.jobs.get(&id).map(|j| (j.version, j.spec.clone(), j.stopped));
    copy.apply(eval::register(spec, now_ms));
    let after = copy.work.jobs.get(&id).map(|j| j.version).unwrap_or(0);
    let change = match &before {
        None => "new",
        Some((v, _, stopped)) if *v == after && !stopped => "none",
        Some(_) => "update",
    };
    let mut n = 0u64;
    let out = eval::evaluate(&copy, &[id.clone()].into(), Some(&id), now_ms, &mut || {
        n += 1;
        AllocId::new(format!("plan{n}")).expect("valid id")
    });
    let mut view = JobPlanView { id: id.clone(), change: change.into(), version: after, diff, ..Default::default() };
    for u in &out.updates {
        match u {
            Update::Alloc(_, AllocUpdate::Create(a)) => {
                view.placements.push(PlannedAlloc { name: a.name.clone(), node: a.node.clone() })
            }
            Update::Alloc(aid, AllocUpdate::Desired { status: DesiredStatus::Stop, reason, .. }) => {
                if let Some(a) = copy.work.allocs.get(aid) {
                    view.stops.push(PlannedStop { name: a.name.clone(), node: a.node.clone(), reason: reason.clone() });
                }
            }
            Update::Alloc(_, AllocUpdate::Version { .. }) => view.in_place += 1,
            _ => {}
        }
    }
    for ((job, group), why) in out.unplaced {
        if job == id {
            view.unplaced.insert(group, why.to_string());
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::NodeUpdate;
    use rabble_shared::NodeId;

    #[test]
    fn a_plan_says_where_and_why_not_and_changes_nothing() {
        let mut c = Catalog::default();
        for (n, arch) in [("pi1", "aarch64"), ("pi2", "aarch64"), ("nuc", "x86_64")] {
            let facts = crate::scheduler::fixture::facts(n, arch, 4, 4, &["raw_exec"]);
            c.apply(Update::Node(NodeId::new(n).unwrap(), NodeUpdate::Facts(Box::new(facts))));
        }
        let src = "job \"web\" {\n constraint {\n attribute = \"${attr.cpu.arch}\"\n value = \"amd64\"\n }\n group \"g\" {\n count = 2\n task \"t\" {\n driver = \"raw_exec\"\n config { command = \"x\" }\n resources { memory = 3000 }\n }\n }\n}\n";
        let spec = crate::jobspec::parse("web.hcl", src, &Default::default()).unwrap().job;
        let before = c.clone();
        let p = plan(&c, spec, 0);
        assert_eq!(c, before, "planning writes nothing");
        assert_eq!((p.change.as_str(), p.placements.len()), ("new", 1));
        assert_eq!(p.placements[0].node.as_str(), "nuc");
        assert_eq!(p.unplaced["g"], "constraint `${attr.cpu.arch} = amd64` filtered 2 nodes; 1 node short of memory");
    }
}
