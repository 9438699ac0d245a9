//! Reconciling, pure: given a job (its current version), its allocations and the
//! state of the nodes, what must change — allocations to place, stop, mark lost or
//! update in place — and when to look again. Nomad's rules:
//!
//! - service and batch: `count` allocations per group, indexes `0..count`; a lower
//!   count stops the highest indexes; batch indexes that completed are done;
//! - system: one allocation per feasible node, stopped where the node no longer fits;
//!   sysbatch: the same, but only when the job is (re)submitted or launched;
//! - a node that goes down loses its allocations: replaced at once, elsewhere;
//! - a failed allocation is rescheduled by its group's `reschedule` policy (attempts
//!   per interval, delay growing constant/exponential/fibonacci up to `max_delay`),
//!   away from the node it failed on; system jobs are not rescheduled;
//! - a new job version replaces allocations whose group changed, `max_parallel` at a
//!   time, counting replacements not yet healthy, the unhealthy first; an unchanged
//!   group is updated in place;
//! - a draining node's service and system allocations are replaced; batch work is
//!   left to finish until the drain's deadline.

use rabble_shared::AllocId;
use rabble_shared::NodeId;
use rabble_shared::alloc::{Allocation, ClientStatus, DesiredStatus};
use rabble_shared::job::{Group, JobSpec, JobType, ReschedulePolicy};
use std::collections::{BTreeMap, BTreeSet};

/// What the reconciler knows of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeCondition {
    Ready,
    Ineligible,
    /// Being drained; `deadline_ms` is when what is left is stopped.
    Draining {
        deadline_ms: u64,
    },
    Down,
}

/// Why the scheduler is looking at the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Submitted, changed, or launched (periodic).
    Register,
    /// Anything else: a node or an allocation changed, a timer fired.
    Change,
}

/// One change for the writer.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Place {
        group: String,
        index: u32,
        previous: Option<AllocId>,
        /// Nodes to avoid where possible (where the previous allocation failed).
        penalty: BTreeSet<NodeId>,
        /// System jobs: this node and no other.
        only: Option<NodeId>,
        reschedule_times_ms: Vec<u64>,
    },
    Stop {
        alloc: AllocId,
        reason: String,
    },
    Lost {
        alloc: AllocId,
    },
    /// The group did not change: the allocation carries on under the new version.
    Bump {
        alloc: AllocId,
        version: u64,
    },
}

/// What to do now, and when to look again (a reschedule delay, a drain deadline).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub actions: Vec<Action>,
    pub wake_at_ms: Option<u64>,
}

/// The job as the reconciler needs it.
#[derive(Debug, Clone, Copy)]
pub struct JobView<'a> {
    pub spec: &'a JobSpec,
    pub version: u64,
    /// `rabble job stop`: every allocation goes.
    pub stopped: bool,
    /// Per group, a fingerprint of what an allocation runs (see [`group_hash`]).
    pub hashes: &'a BTreeMap<String, u64>,
    /// Since when each running allocation has been healthy (ms): its checks passing,
    /// or, with no checks or `health_check = "task_states"`, running.
    pub healthy_since: &'a BTreeMap<AllocId, u64>,
}

/// A stable fingerprint of a group's content apart from `count`: two versions with
/// the same hash can share allocations.
pub fn group_hash(g: &Group) -> u64 {
    let mut g = g.clone();
    g.count = 0;
    let text = serde_json::to_vec(&g).unwrap_or_default();
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    text.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The delay before the `attempt`-th reschedule (1-based) under `p`.
pub fn reschedule_delay_ms(p: &ReschedulePolicy, attempt: u32) -> u64 {
    let d = p.delay_ms;
    let grown = match p.delay_function.as_str() {
        "exponential" => d.saturating_mul(1u64 << attempt.saturating_sub(1).min(32)),
        "fibonacci" => {
            let (mut a, mut b) = (d, d);
            for _ in 1..attempt {
                (a, b) = (b, a.saturating_add(b));
            }
            a
        }
        _ => d,
    };
    if p.max_delay_ms > 0 { grown.min(p.max_delay_ms) } else { grown }
}

/// Whether the policy allows another reschedule, given earlier ones.
fn may_reschedule(p: &ReschedulePolicy, times: &[u64], now_ms: u64) -> bool {
    p.unlimited || {
        let recent = times.iter().filter(|t| now_ms.saturating_sub(**t) < p.interval_ms).count();
        (recent as u32) < p.attempts
    }
}

/// Decides what the job needs. `allocs`: every allocation of the job; `feasible`:
/// for system jobs, per group, the nodes that could run it now.
pub fn reconcile(
    job: JobView<'_>,
    allocs: &[&Allocation],
    nodes: &BTreeMap<NodeId, NodeCondition>,
    feasible: &BTreeMap<String, Vec<NodeId>>,
    trigger: Trigger,
    now_ms: u64,
) -> Decision {
    let mut d = Decision::default();
    let cond = |n: &NodeId| nodes.get(n).copied().unwrap_or(NodeCondition::Down);
    // Allocations still wanted, after the verdicts every job type shares.
    let mut live: Vec<&Allocation> = Vec::new();
    for a in allocs.iter().copied().filter(|a| a.desired == DesiredStatus::Run) {
        if job.stopped {
            d.actions.push(Action::Stop { alloc: a.id.clone(), reason: "job stopped".into() });
            continue;
        }
        if cond(&a.node) == NodeCondition::Down && !a.client_status.is_terminal() {
            d.actions.push(Action::Lost { alloc: a.id.clone() });
            continue;
        }
        live.push(a);
    }
    if job.stopped {
        return d;
    }
    for g in &job.spec.groups {
        let mine: Vec<&Allocation> = live.iter().copied().filter(|a| a.group == g.name).collect();
        let lost: Vec<&Allocation> = allocs
            .iter()
            .copied()
            .filter(|a| a.group == g.name && a.desired == DesiredStatus::Run && cond(&a.node) == NodeCondition::Down)
            .filter(|a| !a.client_status.is_terminal())
            .collect();
        match job.spec.kind {
            JobType::Service | JobType::Batch => counted(job, g, &mine, &lost, nodes, now_ms, &mut d),
            JobType::System | JobType::Sysbatch => {
                per_node(job, g, &mine, feasible.get(&g.name).map_or(&[][..], |v| v), trigger, nodes, now_ms, &mut d)
            }
        }
    }
    d
}

fn wake(d: &mut Decision, at: u64) {
    d.wake_at_ms = Some(d.wake_at_ms.map_or(at, |w| w.min(at)));
}

/// Service and batch groups: `count` allocations by index.
fn counted(
    job: JobView<'_>,
    g: &Group,
    mine: &[&Allocation],
    lost: &[&Allocation],
    nodes: &BTreeMap<NodeId, NodeCondition>,
    now_ms: u64,
    d: &mut Decision,
) {
    let batch = job.spec.kind == JobType::Batch;
    let hash = job.hashes.get(&g.name).copied().unwrap_or(0);
    let mut by_index: BTreeMap<u32, Vec<&Allocation>> = BTreeMap::new();
    for a in mine {
        by_index.entry(a.index).or_default().push(a);
    }
    let cond = |n: &NodeId| nodes.get(n).copied().unwrap_or(NodeCondition::Down);
    // Replacements for lost allocations: at once, anywhere.
    let lost_index: BTreeMap<u32, &Allocation> = lost.iter().map(|a| (a.index, *a)).collect();
    // New-version allocations not yet healthy for `min_healthy_time` (failed ones
    // included: a failing release stops the rollout): while these are `max_parallel`,
    // a rolling update replaces nothing more.
    let min_healthy = g.update.as_ref().map_or(0, |u| u.min_healthy_time_ms);
    let mut replacing = 0u32;
    for a in mine.iter().filter(|a| a.job_version == job.version) {
        match job.healthy_since.get(&a.id) {
            Some(since) if now_ms >= since + min_healthy => {}
            Some(since) => {
                replacing += 1;
                wake(d, since + min_healthy);
            }
            None => replacing += 1,
        }
    }
    let mut to_replace: Vec<&Allocation> = Vec::new();
    for index in 0..g.count.max(by_index.keys().next_back().map_or(0, |i| i + 1)) {
        let here = by_index.get(&index).cloned().unwrap_or_default();
        if index >= g.count {
            for a in here {
                d.actions.push(Action::Stop { alloc: a.id.clone(), reason: "scaled down".into() });
            }
            continue;
        }
        let active: Vec<&Allocation> = here.iter().copied().filter(|a| !a.client_status.is_terminal()).collect();
        if let Some(a) = active.first() {
            if a.job_version != job.version {
                if a.spec_hash == Some(hash) {
                    d.actions.push(Action::Bump { alloc: a.id.clone(), version: job.version });
                } else {
                    to_replace.push(a);
                }
            }
            if let NodeCondition::Draining { deadline_ms } = cond(&a.node) {
                if !batch || now_ms >= deadline_ms {
                    d.actions.push(Action::Stop { alloc: a.id.clone(), reason: "node drained".into() });
                    d.actions.push(place(g, index, Some(a), false));
                } else {
                    wake(d, deadline_ms);
                }
            }
            for extra in &active[1..] {
                d.actions.push(Action::Stop { alloc: extra.id.clone(), reason: "duplicate index".into() });
            }
            continue;
        }
        if let Some(a) = lost_index.get(&index) {
            d.actions.push(place(g, index, Some(a), false));
            continue;
        }
        if batch && here.iter().any(|a| a.client_status == ClientStatus::Complete) {
            continue; // done
        }
        match here.iter().filter(|a| a.client_status == ClientStatus::Failed).max_by_key(|a| a.modify_ms) {
            Some(failed) => {
                let p = &g.reschedule;
                if !may_reschedule(p, &failed.reschedule_times_ms, now_ms) {
                    continue; // out of attempts: the group stays short, as in Nomad
                }
                let attempt = failed.reschedule_times_ms.len() as u32 + 1;
                let due = failed.modify_ms + reschedule_delay_ms(p, attempt);
                if now_ms < due {
                    wake(d, due);
                    continue;
                }
                d.actions.push(Action::Stop { alloc: failed.id.clone(), reason: "rescheduled".into() });
                let mut next = place(g, index, Some(failed), true);
                if let Action::Place { reschedule_times_ms, .. } = &mut next {
                    reschedule_times_ms.push(now_ms);
                }
                d.actions.push(next);
            }
            None => {
                // A service allocation that exited is replaced; say so for the old one.
                for done in here.iter().filter(|a| a.client_status == ClientStatus::Complete) {
                    d.actions.push(Action::Stop { alloc: done.id.clone(), reason: "completed; replaced".into() });
                }
                d.actions.push(place(g, index, None, false));
            }
        }
    }
    // Rolling replacement of changed allocations, `max_parallel` at a time; those not
    // healthy yet go first (a release pushed mid-rollout), so the healthy keep serving.
    let healthy = |a: &Allocation| job.healthy_since.get(&a.id).is_some_and(|s| now_ms >= s + min_healthy);
    to_replace.sort_by_key(|a| (healthy(a), a.index));
    let room = g.update.as_ref().map_or(u32::MAX, |u| u.max_parallel.max(1)).saturating_sub(replacing);
    for a in to_replace.into_iter().take(room as usize) {
        d.actions.push(Action::Stop { alloc: a.id.clone(), reason: format!("replaced by version {}", job.version) });
        d.actions.push(place(g, a.index, Some(a), false));
    }
}

fn place(g: &Group, index: u32, previous: Option<&Allocation>, failed: bool) -> Action {
    Action::Place {
        group: g.name.clone(),
        index,
        previous: previous.map(|a| a.id.clone()),
        penalty: previous.filter(|_| failed).map(|a| a.node.clone()).into_iter().collect(),
        only: None,
        reschedule_times_ms: previous.map(|a| a.reschedule_times_ms.clone()).unwrap_or_default(),
    }
}

/// System and sysbatch groups: one allocation per feasible node.
#[allow(clippy::too_many_arguments)]
fn per_node(
    job: JobView<'_>,
    g: &Group,
    mine: &[&Allocation],
    feasible: &[NodeId],
    trigger: Trigger,
    nodes: &BTreeMap<NodeId, NodeCondition>,
    now_ms: u64,
    d: &mut Decision,
) {
    let sysbatch = job.spec.kind == JobType::Sysbatch;
    let hash = job.hashes.get(&g.name).copied().unwrap_or(0);
    let mut covered: BTreeSet<&NodeId> = BTreeSet::new();
    for a in mine {
        covered.insert(&a.node);
        if a.client_status.is_terminal() {
            continue;
        }
        let gone = !feasible.contains(&a.node) && nodes.get(&a.node) != Some(&NodeCondition::Ready);
        match nodes.get(&a.node) {
            Some(NodeCondition::Draining { deadline_ms }) => {
                // System work goes last: at the deadline.
                if now_ms >= *deadline_ms {
                    d.actions.push(Action::Stop { alloc: a.id.clone(), reason: "node drained".into() });
                } else {
                    wake(d, *deadline_ms);
                }
            }
            _ if gone => d.actions.push(Action::Stop { alloc: a.id.clone(), reason: "node no longer eligible".into() }),
            _ if a.job_version != job.version && a.spec_hash == Some(hash) => {
                d.actions.push(Action::Bump { alloc: a.id.clone(), version: job.version })
            }
            _ if a.job_version != job.version => {
                d.actions
                    .push(Action::Stop { alloc: a.id.clone(), reason: format!("replaced by version {}", job.version) });
                d.actions.push(Action::Place {
                    group: g.name.clone(),
                    index: 0,
                    previous: Some(a.id.clone()),
                    penalty: BTreeSet::new(),
                    only: Some(a.node.clone()),
                    reschedule_times_ms: vec![],
                });
            }
            _ => {}
        }
    }
    if sysbatch && trigger != Trigger::Register {
        return; // sysbatch runs once per node per launch, not on every node that joins
    }
    for n in feasible.iter().filter(|n| !covered.contains(n)) {
        d.actions.push(Action::Place {
            group: g.name.clone(),
            index: 0,
            previous: None,
            penalty: BTreeSet::new(),
            only: Some(n.clone()),
            reschedule_times_ms: vec![],
        });
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
