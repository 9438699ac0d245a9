//! Reconciling, case by case: counts, lost nodes, reschedules, versions, system jobs,
//! drains.

use super::*;
use crate::jobspec;
use rabble_shared::alloc::AllocPort;
use rabble_shared::job::Resources;

fn job(kind: &str, count: u32, extra: &str) -> JobSpec {
    let src = format!(
        "job \"j\" {{\n type = \"{kind}\"\n group \"g\" {{\n {}\n {extra}\n task \"t\" {{\n driver = \"raw_exec\"\n config {{ command = \"/bin/true\" }}\n }}\n }}\n}}\n",
        if kind.starts_with("sys") { String::new() } else { format!("count = {count}") }
    );
    jobspec::parse("j.hcl", &src, &Default::default()).unwrap_or_else(|e| panic!("{e}")).job
}

fn node(n: &str) -> NodeId {
    NodeId::new(n).unwrap()
}

fn alloc(id: &str, index: u32, n: &str, status: ClientStatus, version: u64, hash: u64) -> Allocation {
    Allocation {
        id: AllocId::new(id).unwrap(),
        name: format!("j.g[{index}]"),
        job_id: "j".into(),
        job_version: version,
        spec_hash: Some(hash),
        group: "g".into(),
        index,
        node: node(n),
        desired: DesiredStatus::Run,
        desired_reason: String::new(),
        client_status: status,
        client_reason: String::new(),
        ports: Vec::<AllocPort>::new(),
        resources: Resources::DEFAULT,
        create_ms: 0,
        modify_ms: 1_000,
        previous: None,
        reschedule_times_ms: vec![],
        restart_asked: 0,
        tasks: Default::default(),
    }
}

struct Case {
    spec: JobSpec,
    version: u64,
    stopped: bool,
    hashes: BTreeMap<String, u64>,
    nodes: BTreeMap<NodeId, NodeCondition>,
    healthy: BTreeMap<AllocId, u64>,
}

impl Case {
    fn new(spec: JobSpec) -> Case {
        let hashes = spec.groups.iter().map(|g| (g.name.clone(), group_hash(g))).collect();
        let nodes = ["a", "b", "c"].iter().map(|n| (node(n), NodeCondition::Ready)).collect();
        Case { spec, version: 1, stopped: false, hashes, nodes, healthy: BTreeMap::new() }
    }
    fn hash(&self) -> u64 {
        self.hashes["g"]
    }
    fn run(&self, allocs: &[Allocation], trigger: Trigger, now_ms: u64) -> Decision {
        let refs: Vec<&Allocation> = allocs.iter().collect();
        let feasible = [(
            "g".to_owned(),
            self.nodes.iter().filter(|(_, c)| **c == NodeCondition::Ready).map(|(n, _)| n.clone()).collect(),
        )]
        .into();
        let view = JobView {
            spec: &self.spec,
            version: self.version,
            stopped: self.stopped,
            hashes: &self.hashes,
            healthy_since: &self.healthy,
        };
        reconcile(view, &refs, &self.nodes, &feasible, trigger, now_ms)
    }
}

fn places(d: &Decision) -> Vec<(u32, Option<String>)> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Action::Place { index, previous, .. } => Some((*index, previous.as_ref().map(|p| p.to_string()))),
            _ => None,
        })
        .collect()
}

fn stops(d: &Decision) -> Vec<String> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Action::Stop { alloc, reason } => Some(format!("{alloc}: {reason}")),
            _ => None,
        })
        .collect()
}

#[test]
fn counts_up_down_and_nothing_when_nothing_changed() {
    let c = Case::new(job("service", 3, ""));
    assert_eq!(places(&c.run(&[], Trigger::Register, 0)), [(0, None), (1, None), (2, None)]);
    let h = c.hash();
    let running: Vec<Allocation> =
        (0..3).map(|i| alloc(&format!("a{i}"), i, "a", ClientStatus::Running, 1, h)).collect();
    assert_eq!(c.run(&running, Trigger::Register, 0), Decision::default(), "re-running an unchanged job does nothing");
    let c1 = Case { spec: job("service", 1, ""), ..Case::new(job("service", 1, "")) };
    assert_eq!(stops(&c1.run(&running, Trigger::Register, 0)), ["a1: scaled down", "a2: scaled down"]);
}

#[test]
fn a_down_node_loses_its_allocations_and_they_are_replaced_at_once() {
    let mut c = Case::new(job("service", 2, ""));
    let h = c.hash();
    let allocs = [alloc("a0", 0, "a", ClientStatus::Running, 1, h), alloc("b1", 1, "b", ClientStatus::Running, 1, h)];
    c.nodes.insert(node("b"), NodeCondition::Down);
    let d = c.run(&allocs, Trigger::Change, 0);
    assert!(d.actions.contains(&Action::Lost { alloc: AllocId::new("b1").unwrap() }));
    assert_eq!(places(&d), [(1, Some("b1".into()))]);
    assert_eq!(d.wake_at_ms, None, "no reschedule delay for lost work");
}

#[test]
fn failed_allocations_reschedule_with_delay_and_penalty() {
    let c = Case::new(job(
        "service",
        1,
        "reschedule {\n delay = \"10s\"\n delay_function = \"exponential\"\n max_delay = \"1m\"\n unlimited = true\n}",
    ));
    let failed = alloc("f0", 0, "a", ClientStatus::Failed, 1, c.hash());
    let d = c.run(std::slice::from_ref(&failed), Trigger::Change, 5_000);
    assert_eq!((d.actions.len(), d.wake_at_ms), (0, Some(11_000)), "waits out the delay");
    let d = c.run(std::slice::from_ref(&failed), Trigger::Change, 11_000);
    assert_eq!(stops(&d), ["f0: rescheduled"]);
    let Action::Place { penalty, reschedule_times_ms, .. } = &d.actions[1] else { panic!("{d:?}") };
    assert_eq!((penalty.iter().next().unwrap().as_str(), reschedule_times_ms.as_slice()), ("a", &[11_000u64][..]));
    // Exponential: the 3rd attempt waits 40 s; capped by max_delay.
    let p = &c.spec.groups[0].reschedule;
    assert_eq!([1, 2, 3, 4, 5].map(|n| reschedule_delay_ms(p, n)), [10_000, 20_000, 40_000, 60_000, 60_000]);
}

#[test]
fn batch_completes_once_and_reschedules_by_its_policy() {
    let c = Case::new(job("batch", 2, ""));
    let h = c.hash();
    let mut done = alloc("d0", 0, "a", ClientStatus::Complete, 1, h);
    let mut failed = alloc("f1", 1, "b", ClientStatus::Failed, 1, h);
    let d = c.run(&[done.clone(), failed.clone()], Trigger::Change, 1_000 + 5_000);
    assert_eq!(places(&d), [(1, Some("f1".into()))], "complete is done; failed is retried once after 5 s");
    failed.reschedule_times_ms = vec![6_000];
    failed.modify_ms = 7_000;
    let d = c.run(&[done.clone(), failed.clone()], Trigger::Change, 60_000);
    assert_eq!(d, Decision::default(), "batch: one reschedule per 24 h");
    done.client_status = ClientStatus::Complete;
    assert_eq!(c.run(&[done], Trigger::Register, 0).actions.len(), 1, "the missing index is placed");
}

#[test]
fn new_versions_replace_changed_groups_max_parallel_at_a_time_and_bump_the_rest() {
    let old = Case::new(job("service", 3, ""));
    let allocs: Vec<Allocation> =
        (0..3).map(|i| alloc(&format!("a{i}"), i, "a", ClientStatus::Running, 1, old.hash())).collect();
    // Same group, new version (e.g. only the job's meta changed): in place.
    let same = Case { version: 2, ..Case::new(job("service", 3, "")) };
    let d = same.run(&allocs, Trigger::Register, 0);
    assert_eq!(d.actions.iter().filter(|a| matches!(a, Action::Bump { version: 2, .. })).count(), 3);
    // A changed task: one at a time (max_parallel = 1 by default).
    let changed = Case { version: 2, ..Case::new(job("service", 3, "meta { v = \"2\" }")) };
    let d = changed.run(&allocs, Trigger::Register, 0);
    assert_eq!(
        (stops(&d), places(&d)),
        (vec!["a0: replaced by version 2".to_owned()], vec![(0, Some("a0".to_owned()))])
    );
    // While that replacement is not healthy for min_healthy_time (10 s), nothing more is
    // replaced; then the next one is.
    let mut changed = changed;
    let mut next = allocs.clone();
    next[0] = alloc("n0", 0, "b", ClientStatus::Pending, 2, changed.hash());
    assert!(changed.run(&next, Trigger::Change, 0).actions.is_empty());
    next[0].client_status = ClientStatus::Running;
    assert!(changed.run(&next, Trigger::Change, 0).actions.is_empty(), "running is not healthy yet");
    changed.healthy.insert(AllocId::new("n0").unwrap(), 5_000);
    let d = changed.run(&next, Trigger::Change, 6_000);
    assert_eq!((d.actions.len(), d.wake_at_ms), (0, Some(15_000)), "healthy since 5 s: wait until 15 s");
    assert_eq!(stops(&changed.run(&next, Trigger::Change, 15_000)), ["a1: replaced by version 2"]);
}

#[test]
fn a_release_pushed_mid_rollout_replaces_the_unhealthy_first() {
    // Version 2 rolled index 0 (healthy) and index 1 (not healthy yet) when version 3
    // arrives: index 1 goes first, so index 0 keeps serving.
    let mut c = Case { version: 3, ..Case::new(job("service", 2, "meta { v = \"3\" }")) };
    let allocs = [alloc("h0", 0, "a", ClientStatus::Running, 2, 7), alloc("u1", 1, "b", ClientStatus::Running, 2, 7)];
    c.healthy.insert(AllocId::new("h0").unwrap(), 0);
    let d = c.run(&allocs, Trigger::Register, 20_000);
    assert_eq!(
        (stops(&d), places(&d)),
        (vec!["u1: replaced by version 3".to_owned()], vec![(1, Some("u1".to_owned()))])
    );
}

#[test]
fn system_jobs_follow_the_nodes_and_sysbatch_runs_once() {
    let mut c = Case::new(job("system", 0, ""));
    let d = c.run(&[], Trigger::Register, 0);
    assert_eq!(d.actions.len(), 3, "one per node");
    let h = c.hash();
    let allocs = [alloc("a", 0, "a", ClientStatus::Running, 1, h), alloc("b", 0, "b", ClientStatus::Running, 1, h)];
    c.nodes.insert(node("d"), NodeCondition::Ready);
    let d = c.run(&allocs, Trigger::Change, 0);
    let Action::Place { only, .. } = &d.actions[0] else { panic!() };
    assert_eq!((d.actions.len(), only.as_ref().unwrap().as_str()), (2, "c"), "c and the new node d");
    c.nodes.insert(node("b"), NodeCondition::Ineligible);
    assert!(stops(&c.run(&allocs, Trigger::Change, 0)).contains(&"b: node no longer eligible".to_owned()));
    let s = Case::new(job("sysbatch", 0, ""));
    let done = [alloc("a", 0, "a", ClientStatus::Complete, 1, s.hash())];
    assert_eq!(s.run(&done, Trigger::Register, 0).actions.len(), 2, "b and c; a already ran");
    assert!(s.run(&done, Trigger::Change, 0).actions.is_empty(), "a node joining does not re-run sysbatch");
}

#[test]
fn drains_move_service_work_and_leave_batch_to_finish() {
    let mut c = Case::new(job("service", 1, ""));
    let allocs = [alloc("a0", 0, "a", ClientStatus::Running, 1, c.hash())];
    c.nodes.insert(node("a"), NodeCondition::Draining { deadline_ms: 100_000 });
    let d = c.run(&allocs, Trigger::Change, 0);
    assert_eq!((stops(&d), places(&d)), (vec!["a0: node drained".to_owned()], vec![(0, Some("a0".to_owned()))]));
    let mut b = Case::new(job("batch", 1, ""));
    let allocs = [alloc("a0", 0, "a", ClientStatus::Running, 1, b.hash())];
    b.nodes.insert(node("a"), NodeCondition::Draining { deadline_ms: 100_000 });
    let d = b.run(&allocs, Trigger::Change, 0);
    assert_eq!((d.actions.len(), d.wake_at_ms), (0, Some(100_000)));
    assert_eq!(stops(&b.run(&allocs, Trigger::Change, 100_000)), ["a0: node drained"]);
}

#[test]
fn a_stopped_job_stops_everything() {
    let mut c = Case::new(job("service", 2, ""));
    c.stopped = true;
    let allocs = [alloc("a0", 0, "a", ClientStatus::Running, 1, c.hash())];
    assert_eq!(stops(&c.run(&allocs, Trigger::Register, 0)), ["a0: job stopped"]);
}

#[test]
fn a_failed_new_version_stops_the_rollout() {
    let old = Case::new(job("service", 2, ""));
    let changed = Case { version: 2, ..Case::new(job("service", 2, "meta { v = \"2\" }")) };
    let allocs = [
        alloc("n0", 0, "b", ClientStatus::Failed, 2, changed.hash()),
        alloc("a1", 1, "a", ClientStatus::Running, 1, old.hash()),
    ];
    let d = changed.run(&allocs, Trigger::Change, 0);
    assert!(!stops(&d).iter().any(|s| s.starts_with("a1")), "the healthy old instance stays: {d:?}");
}
