//! One evaluation, pure: a catalog in, the updates that bring every job to what it
//! asks for out (through `reconcile` and `plan`), plus what could not be placed and
//! when to look again. The scheduler task runs it after every commit; `job plan` runs
//! it on a copy of the catalog with the new job in it.

use super::plan::{NodeState, Placement, Planner, Unplaced, group_resources};
use super::reconcile::{self, Action, Decision, JobView, NodeCondition, Trigger};
use super::volumes::Book;
use crate::catalog::jobs::JobRecord;
use crate::catalog::{AllocUpdate, Catalog, Update};
use rabble_shared::alloc::{Allocation, ClientStatus, DesiredStatus, alloc_name};
use rabble_shared::api::NodeStatus;
use rabble_shared::job::Group;
use rabble_shared::{AllocId, NodeId};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What an evaluation decided.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub updates: Vec<Update>,
    /// Per (job, group): why the last placement failed.
    pub unplaced: BTreeMap<(String, String), Unplaced>,
    pub wake_at_ms: Option<u64>,
}

/// How long a node may be down before its allocations are lost: an agent restarting
/// (an upgrade) is back well within it, and its containers are adopted, not replaced.
pub const LOST_GRACE_MS: u64 = 3_000;

/// The nodes as the reconciler sees them at `now_ms`: a node that went `offline` (its
/// Will, or its own goodbye) less than the grace ago is only ineligible, and the earliest
/// end of a grace is when to look again. A node silent past its heartbeat TTL has had its
/// grace already.
pub fn conditions(catalog: &Catalog, now_ms: u64) -> (BTreeMap<NodeId, NodeCondition>, Option<u64>) {
    let mut wake: Option<u64> = None;
    let conds = catalog
        .nodes
        .iter()
        .map(|(id, n)| {
            let grace_ends = n.status_since_ms + LOST_GRACE_MS;
            let c = match (n.status, n.drain_deadline_ms, n.eligible) {
                (NodeStatus::Down, ..) if n.reason == "offline" && now_ms < grace_ends => {
                    wake = Some(wake.map_or(grace_ends, |w| w.min(grace_ends)));
                    NodeCondition::Ineligible
                }
                (NodeStatus::Down, ..) => NodeCondition::Down,
                (_, Some(deadline_ms), _) => NodeCondition::Draining { deadline_ms },
                (_, None, false) => NodeCondition::Ineligible,
                (_, None, true) => NodeCondition::Ready,
            };
            (id.clone(), c)
        })
        .collect();
    (conds, wake)
}

/// The nodes as the planner sees them (nodes without facts yet are left out).
pub fn node_states(catalog: &Catalog) -> Vec<NodeState<'_>> {
    catalog
        .nodes
        .iter()
        .filter_map(|(id, n)| {
            let facts = n.facts.as_ref()?;
            let unready = match (n.status, n.drain_deadline_ms, n.eligible) {
                (NodeStatus::Down, ..) => Some("down"),
                (_, Some(_), _) => Some("draining"),
                (_, None, false) => Some("ineligible"),
                (_, None, true) => None,
            };
            Some(NodeState { id, facts, unready })
        })
        .collect()
}

/// Evaluates every job (or only `only`, for `job plan`). `registered` are the jobs
/// whose version changed since the last evaluation; `new_id` draws allocation ids.
pub fn evaluate(
    catalog: &Catalog,
    registered: &BTreeSet<String>,
    only: Option<&str>,
    now_ms: u64,
    new_id: &mut dyn FnMut() -> AllocId,
) -> Outcome {
    let mut out = Outcome::default();
    let (conds, wake) = conditions(catalog, now_ms);
    out.wake_at_ms = wake;
    let holding: Vec<&Allocation> =
        catalog.work.allocs.values().map(Arc::as_ref).filter(|a| a.holds_resources()).collect();
    let healthy = healthy_since(catalog);
    let book = Book::new(&catalog.volumes.entries, &holding, |id| catalog.work.jobs.get(id).map(|j| &*j.spec));
    let mut planner = Planner::new(node_states(catalog), &holding).with_volumes(book);
    let mut by_job: BTreeMap<&str, Vec<&Allocation>> = BTreeMap::new();
    for a in catalog.work.allocs.values() {
        by_job.entry(a.job_id.as_str()).or_default().push(a);
    }
    // Higher priority first, so they get the room (Nomad evaluates by priority too).
    // A periodic or parameterized job is a template: its launches and dispatches are
    // jobs of their own (see `periodic` and `dispatch`), placed oldest first as their ids sort.
    let mut jobs: Vec<(&String, &JobRecord)> = catalog
        .work
        .jobs
        .iter()
        .filter(|(id, j)| {
            only.is_none_or(|o| o == id.as_str()) && j.spec.periodic.is_none() && j.spec.parameterized.is_none()
        })
        .collect();
    jobs.sort_by_key(|(id, j)| (std::cmp::Reverse(j.spec.priority), (*id).clone()));
    // A dispatched or periodic child that could not be placed blocks its younger siblings
    // with nothing placed yet: they are the same work, so they wait behind it (a queue of
    // a thousand costs one placement attempt per evaluation, not a thousand).
    let mut blocked: BTreeMap<&str, Vec<(String, Unplaced)>> = BTreeMap::new();
    for (id, job) in jobs {
        let allocs = by_job.get(id.as_str()).cloned().unwrap_or_default();
        let parent = super::gc::parent_of(id).filter(|_| allocs.is_empty() && !job.stopped);
        if let Some(why) = parent.and_then(|p| blocked.get(p)) {
            for (group, u) in why {
                out.unplaced.insert((id.clone(), group.clone()), u.clone());
            }
            continue;
        }
        let feasible: BTreeMap<String, Vec<NodeId>> =
            job.spec.groups.iter().map(|g| (g.name.clone(), planner.feasible(&job.spec, g))).collect();
        let view = JobView {
            spec: &job.spec,
            version: job.version,
            stopped: job.stopped,
            hashes: &job.group_hashes,
            healthy_since: &healthy,
        };
        let trigger = if registered.contains(id) { Trigger::Register } else { Trigger::Change };
        let decision = reconcile::reconcile(view, &allocs, &conds, &feasible, trigger, now_ms);
        apply(job, decision, &mut planner, now_ms, new_id, &mut out);
        if let Some(p) = parent {
            let why: Vec<(String, Unplaced)> = job
                .spec
                .groups
                .iter()
                .filter_map(|g| Some((g.name.clone(), out.unplaced.get(&(id.clone(), g.name.clone()))?.clone())))
                .collect();
            if !why.is_empty() {
                blocked.insert(p, why);
            }
        }
    }
    out
}

fn apply(
    job: &JobRecord,
    d: Decision,
    planner: &mut Planner<'_>,
    now_ms: u64,
    new_id: &mut dyn FnMut() -> AllocId,
    out: &mut Outcome,
) {
    if let Some(w) = d.wake_at_ms {
        out.wake_at_ms = Some(out.wake_at_ms.map_or(w, |x: u64| x.min(w)));
    }
    let spec = &job.spec;
    for action in d.actions {
        match action {
            Action::Stop { alloc, reason } => out.updates.push(Update::Alloc(
                alloc,
                AllocUpdate::Desired { status: DesiredStatus::Stop, reason, at_ms: now_ms },
            )),
            Action::Lost { alloc } => {
                let reason = "node down".to_owned();
                out.updates.push(Update::Alloc(
                    alloc.clone(),
                    AllocUpdate::Client {
                        status: ClientStatus::Lost,
                        reason: reason.clone(),
                        at_ms: now_ms,
                        node: None,
                        tasks: Default::default(),
                    },
                ));
                out.updates.push(Update::Alloc(
                    alloc,
                    AllocUpdate::Desired { status: DesiredStatus::Stop, reason, at_ms: now_ms },
                ));
            }
            Action::Bump { alloc, version } => {
                out.updates.push(Update::Alloc(alloc, AllocUpdate::Version { version, at_ms: now_ms }))
            }
            Action::Place { group, index, previous, penalty, only, reschedule_times_ms } => {
                let Some(g) = spec.groups.iter().find(|g| g.name == group) else { continue };
                let count =
                    if matches!(spec.kind, rabble_shared::job::JobType::Service | rabble_shared::job::JobType::Batch) {
                        g.count
                    } else {
                        1
                    };
                let id = new_id();
                planner.salt_ports(id.as_str());
                match planner.place(spec, g, count, &penalty, only.as_ref()) {
                    Ok(p) => {
                        let a = allocation(job, g, index, p, previous, reschedule_times_ms, now_ms, id);
                        out.updates.push(Update::Alloc(a.id.clone(), AllocUpdate::Create(Box::new(a))));
                    }
                    Err(why) => {
                        out.unplaced.insert((spec.id.clone(), g.name.clone()), why);
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn allocation(
    job: &JobRecord,
    g: &Group,
    index: u32,
    p: Placement,
    previous: Option<AllocId>,
    reschedule_times_ms: Vec<u64>,
    now_ms: u64,
    id: AllocId,
) -> Allocation {
    Allocation {
        id,
        name: alloc_name(&job.spec.id, &g.name, index),
        job_id: job.spec.id.clone(),
        job_version: job.version,
        spec_hash: job.group_hashes.get(&g.name).copied(),
        group: g.name.clone(),
        index,
        node: p.node,
        desired: DesiredStatus::Run,
        desired_reason: String::new(),
        client_status: ClientStatus::Pending,
        client_reason: String::new(),
        ports: p.ports,
        resources: group_resources(g),
        create_ms: now_ms,
        modify_ms: now_ms,
        previous,
        reschedule_times_ms,
        restart_asked: 0,
        tasks: Default::default(),
    }
}

/// The update that submits `spec`: the catalog makes it a new version if it changed.
pub fn register(spec: rabble_shared::job::JobSpec, at_ms: u64) -> Update {
    let group_hashes = spec.groups.iter().map(|g| (g.name.clone(), reconcile::group_hash(g))).collect();
    Update::Job(spec.id.clone(), crate::catalog::JobUpdate::Register { spec: Box::new(spec), group_hashes, at_ms })
}

/// Since when each running allocation has been healthy (ms since the epoch): every check
/// of the services it registered passing (the latest of their `since`), or — with no
/// checks, or `health_check = "task_states"` — since it has run.
pub fn healthy_since(catalog: &Catalog) -> BTreeMap<AllocId, u64> {
    let mut out = BTreeMap::new();
    for a in catalog.work.allocs.values().filter(|a| a.client_status == ClientStatus::Running) {
        let by_states = catalog
            .work
            .jobs
            .get(&a.job_id)
            .and_then(|j| j.spec.groups.iter().find(|g| g.name == a.group))
            .and_then(|g| g.update.as_ref())
            .is_some_and(|u| u.health_check == "task_states");
        let Some(node) = catalog.nodes.get(&a.node) else { continue };
        // Checks the job declares: until they are registered, it is not healthy.
        let declared = catalog
            .work
            .jobs
            .get(&a.job_id)
            .and_then(|j| j.spec.groups.iter().find(|g| g.name == a.group))
            .map_or(0, |g| {
                g.services.iter().chain(g.tasks.iter().flat_map(|t| &t.services)).map(|s| s.checks.len()).sum::<usize>()
            });
        let mut since = a.modify_ms;
        let mut all_passing = true;
        let mut seen = 0;
        if !by_states {
            for reg in node.services.values().filter(|r| r.meta.get("alloc_id").is_some_and(|x| x == a.id.as_str())) {
                for c in crate::catalog::health::checks(node, reg) {
                    seen += 1;
                    all_passing &= c.status == rabble_shared::Status::Passing;
                    since = since.max(c.since_ms);
                }
            }
            all_passing &= seen >= declared;
        }
        if all_passing {
            out.insert(a.id.clone(), since);
        }
    }
    out
}

/// Deployments to roll back (`update { auto_revert = true }`): a job whose current
/// version has a failed allocation, or one not healthy within `healthy_deadline`, goes
/// back to the newest earlier version that is not itself known to have failed and
/// differs from it. Returns (job, failed version, the spec to submit again).
pub fn reverts(
    catalog: &Catalog,
    failed: &std::collections::BTreeSet<(String, u64)>,
    now_ms: u64,
) -> Vec<(String, u64, rabble_shared::job::JobSpec)> {
    let healthy = healthy_since(catalog);
    let mut out = Vec::new();
    for (id, j) in catalog.work.jobs.iter().filter(|(_, j)| !j.stopped && j.version > 0) {
        if failed.contains(&(id.clone(), j.version)) {
            continue;
        }
        let broken =
            j.spec.groups.iter().filter_map(|g| g.update.as_ref().filter(|u| u.auto_revert).map(|u| (g, u))).any(
                |(g, u)| {
                    catalog
                        .work
                        .allocs
                        .values()
                        .filter(|a| a.job_id == *id && a.group == g.name && a.job_version == j.version)
                        .any(|a| {
                            a.client_status == ClientStatus::Failed
                                || (a.client_status != ClientStatus::Complete
                                    && !healthy.contains_key(&a.id)
                                    && now_ms.saturating_sub(a.create_ms) > u.healthy_deadline_ms)
                        })
                },
            );
        if !broken {
            continue;
        }
        let target = catalog
            .work
            .history
            .range((id.clone(), 0)..(id.clone(), j.version))
            .rev()
            .find(|((_, v), spec)| !failed.contains(&(id.clone(), *v)) && **spec != j.spec);
        if let Some(((_, v), spec)) = target {
            tracing::warn!(job = %id, failed = j.version, to = v, "deployment failed; reverting (auto_revert)");
            out.push((id.clone(), j.version, (**spec).clone()));
        }
    }
    out
}

/// A fresh allocation id: 16 hex digits.
pub fn random_alloc_id() -> AllocId {
    AllocId::new(format!("{:016x}", fastrand::u64(..))).expect("hex is a valid id")
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
