//! Evaluations on a real catalog: placing, idempotence, node loss, plans.

use super::*;
use crate::catalog::NodeUpdate;
use crate::jobspec;

fn facts(name: &str) -> rabble_shared::msg::NodeFacts {
    crate::scheduler::fixture::facts(name, "aarch64", 4, 4, &["raw_exec"])
}

fn cluster(nodes: &[&str]) -> Catalog {
    let mut c = Catalog::default();
    for n in nodes {
        c.apply(Update::Node(NodeId::new(*n).unwrap(), NodeUpdate::Facts(Box::new(facts(n)))));
    }
    c
}

fn spec(kind: &str, count: u32) -> rabble_shared::job::JobSpec {
    let count = if kind.starts_with("sys") { String::new() } else { format!("count = {count}") };
    let src = format!(
        "job \"j\" {{\n type = \"{kind}\"\n group \"g\" {{\n {count}\n task \"t\" {{\n driver = \"raw_exec\"\n config {{ command = \"/bin/sleep\" }}\n }}\n }}\n}}\n"
    );
    jobspec::parse("j.hcl", &src, &Default::default()).unwrap().job
}

struct Ids(u64);
impl Ids {
    fn next(&mut self) -> AllocId {
        self.0 += 1;
        AllocId::new(format!("{:016x}", self.0)).unwrap()
    }
}

/// Evaluates and applies until nothing changes; returns how many rounds it took.
fn settle(c: &mut Catalog, registered: &BTreeSet<String>, now: u64, ids: &mut Ids) -> usize {
    for round in 0..10 {
        let out = evaluate(c, registered, None, now, &mut || ids.next());
        if out.updates.is_empty() {
            return round;
        }
        for u in out.updates {
            c.apply(u);
        }
    }
    panic!("the scheduler did not settle");
}

fn running(c: &Catalog) -> Vec<(String, String)> {
    c.work
        .allocs
        .values()
        .filter(|a| a.desired == DesiredStatus::Run && !a.client_status.is_terminal())
        .map(|a| (a.name.clone(), a.node.to_string()))
        .collect()
}

#[test]
fn a_job_is_placed_once_and_an_unchanged_catalog_changes_nothing() {
    let mut c = cluster(&["a", "b", "c"]);
    c.apply(register(spec("service", 3), 0));
    let mut ids = Ids(0);
    let reg: BTreeSet<String> = ["j".into()].into();
    assert_eq!(settle(&mut c, &reg, 0, &mut ids), 1, "one round places, the next finds nothing to do");
    let mut placed = running(&c);
    placed.sort();
    assert_eq!(placed.len(), 3);
    let nodes: BTreeSet<&str> = placed.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(nodes.len(), 3, "anti-affinity spreads the copies");
    assert!(c.work.allocs.values().all(|a| a.spec_hash == c.work.jobs["j"].group_hashes.get("g").copied()));
}

#[test]
fn a_lost_node_is_replaced_in_the_same_evaluation() {
    let mut c = cluster(&["a", "b"]);
    c.apply(register(spec("service", 1), 0));
    let mut ids = Ids(0);
    settle(&mut c, &BTreeSet::new(), 0, &mut ids);
    let (_, first) = running(&c)[0].clone();
    c.apply(Update::Node(NodeId::new(first.clone()).unwrap(), NodeUpdate::HeartbeatTimeout));
    let out = evaluate(&c, &BTreeSet::new(), None, LOST_GRACE_MS + 10, &mut || ids.next());
    let kinds: Vec<&str> = out
        .updates
        .iter()
        .map(|u| match u {
            Update::Alloc(_, AllocUpdate::Client { status: ClientStatus::Lost, .. }) => "lost",
            Update::Alloc(_, AllocUpdate::Desired { .. }) => "stop",
            Update::Alloc(_, AllocUpdate::Create(_)) => "create",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["lost", "stop", "create"]);
    for u in out.updates {
        c.apply(u);
    }
    assert_ne!(running(&c)[0].1, first);
}

#[test]
fn unplaceable_groups_are_explained_and_system_jobs_cover_new_nodes() {
    let mut c = cluster(&["a"]);
    let mut big = spec("service", 1);
    big.groups[0].tasks[0].resources.memory_mb = 64_000;
    c.apply(register(big, 0));
    let out = evaluate(&c, &BTreeSet::new(), None, 0, &mut random_alloc_id);
    assert_eq!(out.unplaced[&("j".into(), "g".into())].to_string(), "1 node short of memory");
    let mut c = cluster(&["a", "b"]);
    c.apply(register(spec("system", 0), 0));
    let mut ids = Ids(0);
    settle(&mut c, &BTreeSet::new(), 0, &mut ids);
    assert_eq!(running(&c).len(), 2);
    c.apply(Update::Node(NodeId::new("late").unwrap(), NodeUpdate::Facts(Box::new(facts("late")))));
    settle(&mut c, &BTreeSet::new(), 0, &mut ids);
    assert!(running(&c).iter().any(|(_, n)| n == "late"), "a node that joins gets the system job");
}

#[test]
fn a_failed_deployment_reverts_once_and_never_to_a_failed_version() {
    let mut c = cluster(&["a"]);
    let mut v0 = spec("service", 1);
    v0.groups[0].update.as_mut().unwrap().auto_revert = true;
    c.apply(register(v0.clone(), 0));
    let mut ids = Ids(0);
    settle(&mut c, &BTreeSet::new(), 0, &mut ids);
    let mut v1 = v0.clone();
    v1.meta.insert("release".into(), "2".into());
    c.apply(register(v1, 0));
    settle(&mut c, &BTreeSet::new(), 0, &mut ids);
    // The new version's allocation fails on its node.
    let new =
        c.work.allocs.values().find(|a| a.job_version == 1 && a.desired == DesiredStatus::Run).unwrap().id.clone();
    c.apply(Update::Alloc(
        new,
        AllocUpdate::Client {
            status: ClientStatus::Failed,
            reason: "exit 1".into(),
            at_ms: 1,
            node: None,
            tasks: Default::default(),
        },
    ));
    let mut failed = BTreeSet::new();
    let r = reverts(&c, &failed, 10);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].1, &r[0].2), (1, &v0), "back to version 0's spec");
    failed.insert(("j".to_owned(), 1));
    c.apply(register(r[0].2.clone(), 10));
    assert_eq!(c.work.jobs["j"].version, 2);
    // If version 2 (= version 0's spec) fails too, there is nothing better to go back to.
    // (The failed allocation is rescheduled after the policy's 30 s delay.)
    settle(&mut c, &BTreeSet::new(), 40_000, &mut ids);
    let two = c.work.allocs.values().find(|a| a.job_version == 2 && !a.client_status.is_terminal()).unwrap().id.clone();
    c.apply(Update::Alloc(
        two,
        AllocUpdate::Client {
            status: ClientStatus::Failed,
            reason: "exit 1".into(),
            at_ms: 40_001,
            node: None,
            tasks: Default::default(),
        },
    ));
    assert!(reverts(&c, &failed, 40_002).is_empty());
}

/// Two clusters running the same job on a node of the same name (two homelabs, two
/// tests on one machine) pick different dynamic ports; one cluster's placement is
/// reproducible from its allocation id.
#[test]
fn dynamic_ports_follow_the_allocation_not_only_the_job_and_node() {
    let src = "job \"web\" {\n group \"g\" {\n network {\n port \"http\" {}\n }\n task \"t\" {\n driver = \"raw_exec\"\n config { command = \"/bin/sleep\" }\n }\n }\n}\n";
    let web = jobspec::parse("web.hcl", src, &Default::default()).unwrap().job;
    let port_with = |first_id: u64| {
        let mut c = cluster(&["pi1"]);
        c.apply(register(web.clone(), 0));
        settle(&mut c, &["web".to_owned()].into(), 0, &mut Ids(first_id));
        let a = c.work.allocs.values().next().expect("placed");
        a.ports[0].value
    };
    assert_eq!(port_with(0), port_with(0), "the same allocation id, the same port");
    let ports: BTreeSet<u16> = (0..8).map(|i| port_with(i * 1000)).collect();
    assert!(ports.len() >= 7, "eight clusters share ports: {ports:?}");
}
