//! Placement rules, one by one, on job files written as users write them.

use super::*;
use crate::jobspec;
use rabble_shared::alloc::{ClientStatus, DesiredStatus};

fn facts(arch: &str, cpus: u32, mem_gb: u64) -> NodeFacts {
    crate::scheduler::fixture::facts("n", arch, cpus, mem_gb, &["docker", "raw_exec"])
}

fn job(body: &str) -> JobSpec {
    let src = format!("job \"j\" {{\n{body}\n}}\n");
    jobspec::parse("j.hcl", &src, &Default::default()).unwrap_or_else(|e| panic!("{e}")).job
}

/// A group `g` of `count` raw_exec tasks with `mem` MB, plus extra group lines.
fn simple(count: u32, mem: u32, extra: &str) -> JobSpec {
    job(&format!(
        "group \"g\" {{\n count = {count}\n {extra}\n task \"t\" {{\n driver = \"raw_exec\"\n config {{ command = \"/bin/true\" }}\n resources {{ memory = {mem} }}\n }}\n}}"
    ))
}

fn ids(names: &[&str]) -> Vec<NodeId> {
    names.iter().map(|n| NodeId::new(*n).unwrap()).collect()
}

fn nodes<'a>(ids: &'a [NodeId], facts: &'a [NodeFacts]) -> Vec<NodeState<'a>> {
    ids.iter().zip(facts).map(|(id, facts)| NodeState { id, facts, unready: None }).collect()
}

fn place_all(p: &mut Planner<'_>, j: &JobSpec) -> Vec<Result<Placement, Unplaced>> {
    let g = &j.groups[0];
    (0..g.count).map(|_| p.place(j, g, g.count, &BTreeSet::new(), None)).collect()
}

#[test]
fn a_constraint_keeps_a_job_off_the_wrong_nodes_and_says_why() {
    let ids = ids(&["amd", "pi1", "pi2", "pi3", "pi4"]);
    let f = [
        facts("x86_64", 8, 16),
        facts("aarch64", 4, 4),
        facts("aarch64", 4, 4),
        facts("aarch64", 4, 4),
        facts("aarch64", 4, 4),
    ];
    let j = job(
        "constraint {\n attribute = \"${attr.cpu.arch}\"\n value = \"amd64\"\n}\ngroup \"g\" {\n count = 2\n task \"t\" {\n driver = \"raw_exec\"\n config { command = \"x\" }\n resources { memory = 10000 }\n }\n}",
    );
    let mut p = Planner::new(nodes(&ids, &f), &[]);
    let r = place_all(&mut p, &j);
    assert_eq!(r[0].as_ref().unwrap().node.as_str(), "amd");
    let why = r[1].as_ref().unwrap_err();
    assert_eq!(why.to_string(), "constraint `${attr.cpu.arch} = amd64` filtered 4 nodes; 1 node short of memory");
}

#[test]
fn distinct_hosts_spreads_a_count_of_three() {
    let ids = ids(&["a", "b", "c"]);
    let f = [facts("x86_64", 4, 8), facts("x86_64", 4, 8), facts("x86_64", 4, 8)];
    let j = simple(4, 100, "constraint {\n operator = \"distinct_hosts\"\n value = \"true\"\n}");
    let mut p = Planner::new(nodes(&ids, &f), &[]);
    let r = place_all(&mut p, &j);
    let mut placed: Vec<&str> = r[..3].iter().map(|x| x.as_ref().unwrap().node.as_str()).collect();
    placed.sort();
    assert_eq!(placed, ["a", "b", "c"]);
    assert!(r[3].as_ref().unwrap_err().to_string().contains("distinct_hosts"), "{:?}", r[3]);
}

#[test]
fn bin_packing_fills_the_busier_node_and_anti_affinity_spreads_copies() {
    let ids = ids(&["empty", "busy"]);
    let f = [facts("x86_64", 4, 8), facts("x86_64", 4, 8)];
    let other = alloc("other", "busy", 4000, &[]);
    let mut p = Planner::new(nodes(&ids, &f), &[&other]);
    let j = simple(1, 500, "");
    let first = p.place(&j, &j.groups[0], 1, &BTreeSet::new(), None).unwrap();
    assert_eq!(first.node.as_str(), "busy", "BestFit prefers the fuller node");
    // Two copies of one group on equal nodes: the second goes to the other node.
    let mut p = Planner::new(nodes(&ids, &f), &[]);
    let j = simple(2, 500, "");
    let r = place_all(&mut p, &j);
    assert_ne!(r[0].as_ref().unwrap().node, r[1].as_ref().unwrap().node, "job anti-affinity");
    assert_eq!(r[0].as_ref().unwrap().node.as_str(), "busy", "ties go to the lower id");
}

#[test]
fn a_failed_node_is_avoided_and_unready_nodes_are_named() {
    let ids = ids(&["a", "b", "c"]);
    let f = [facts("x86_64", 4, 8), facts("x86_64", 4, 8), facts("x86_64", 4, 8)];
    let mut ns = nodes(&ids, &f);
    ns[2].unready = Some("down");
    let mut p = Planner::new(ns, &[]);
    let j = simple(1, 100, "");
    let penalty: BTreeSet<NodeId> = [ids[0].clone()].into();
    assert_eq!(p.place(&j, &j.groups[0], 1, &penalty, None).unwrap().node.as_str(), "b");
    // With only the penalised node left, it is still used.
    let mut p = Planner::new(nodes(&ids[..1], &f[..1]), &[]);
    assert_eq!(p.place(&j, &j.groups[0], 1, &penalty, None).unwrap().node.as_str(), "a");
    let mut ns = nodes(&ids, &f);
    ns.iter_mut().for_each(|n| n.unready = Some("down"));
    ns[0].unready = Some("ineligible");
    let e = Planner::new(ns, &[]).place(&j, &j.groups[0], 1, &BTreeSet::new(), None).unwrap_err();
    assert_eq!(e.to_string(), "node down filtered 2 nodes; node ineligible filtered 1 node");
}

#[test]
fn drivers_datacenters_volumes_and_ports() {
    let ids = ids(&["a"]);
    let mut f = [facts("x86_64", 4, 8)];
    f[0].drivers.remove("docker");
    let docker = job("group \"g\" {\n task \"t\" {\n driver = \"docker\"\n config { image = \"x\" }\n }\n}");
    let e = Planner::new(nodes(&ids, &f), &[]).place(&docker, &docker.groups[0], 1, &BTreeSet::new(), None);
    assert_eq!(e.unwrap_err().to_string(), "missing driver docker filtered 1 node");
    let far = job(
        "datacenters = [\"cloud-*\"]\ngroup \"g\" {\n task \"t\" {\n driver = \"raw_exec\"\n config { command = \"x\" }\n }\n}",
    );
    let e = Planner::new(nodes(&ids, &f), &[]).place(&far, &far.groups[0], 1, &BTreeSet::new(), None);
    assert!(e.unwrap_err().to_string().starts_with("datacenter not in [cloud-*]"));
    let vol = simple(1, 10, "volume \"media\" {\n type = \"host\"\n source = \"media\"\n}");
    let e = Planner::new(nodes(&ids, &f), &[]).place(&vol, &vol.groups[0], 1, &BTreeSet::new(), None);
    assert!(e.unwrap_err().to_string().contains("missing host volume media"));
    f[0].host_volumes
        .insert("media".into(), rabble_shared::msg::HostVolume { path: "/srv/media".into(), read_only: false });
    assert!(Planner::new(nodes(&ids, &f), &[]).place(&vol, &vol.groups[0], 1, &BTreeSet::new(), None).is_ok());
    // Static ports collide; dynamic ones are free ones from the range.
    let web = simple(2, 10, "network {\n port \"http\" { static = 8080 }\n port \"admin\" {}\n}");
    let mut p = Planner::new(nodes(&ids, &f), &[]);
    let r = place_all(&mut p, &web);
    let first = r[0].as_ref().unwrap();
    assert_eq!(first.ports[0].value, 8080);
    assert!(DYNAMIC_PORTS.contains(&first.ports[1].value), "{:?}", first.ports);
    assert_eq!(r[1].as_ref().unwrap_err().to_string(), "port 8080 in use filtered 1 node");
}

#[test]
fn distinct_property_limits_per_value() {
    let ids = ids(&["a", "b", "c"]);
    let mut f = [facts("x86_64", 4, 8), facts("x86_64", 4, 8), facts("x86_64", 4, 8)];
    f[0].meta.insert("rack".into(), "r1".into());
    f[1].meta.insert("rack".into(), "r1".into());
    f[2].meta.insert("rack".into(), "r2".into());
    let j = simple(3, 10, "constraint {\n distinct_property = \"${meta.rack}\"\n}");
    let mut p = Planner::new(nodes(&ids, &f), &[]);
    let r = place_all(&mut p, &j);
    assert!(r[0].is_ok() && r[1].is_ok());
    assert!(r[2].as_ref().unwrap_err().to_string().contains("distinct_property"), "{:?}", r[2]);
}

fn alloc(job: &str, node: &str, mem: u32, ports: &[u16]) -> Allocation {
    Allocation {
        id: rabble_shared::AllocId::new("0123456789abcdef").unwrap(),
        name: format!("{job}.g[0]"),
        job_id: job.into(),
        job_version: 0,
        spec_hash: None,
        group: "g".into(),
        index: 0,
        node: NodeId::new(node).unwrap(),
        desired: DesiredStatus::Run,
        desired_reason: String::new(),
        client_status: ClientStatus::Running,
        client_reason: String::new(),
        ports: ports.iter().map(|p| AllocPort { label: "p".into(), value: *p, to: None }).collect(),
        resources: Resources { cpu_mhz: 100, memory_mb: mem, memory_max_mb: None },
        create_ms: 0,
        modify_ms: 0,
        previous: None,
        reschedule_times_ms: vec![],
        restart_asked: 0,
        tasks: Default::default(),
    }
}

#[test]
fn the_kept_ranking_places_exactly_as_a_full_scan() {
    // A mixed cluster, busy in places; two jobs interleaved (one placement can change
    // another group's ranking). A penalty naming no node forces the full scan.
    let names: Vec<String> = (0..40).map(|i| format!("n{i:02}")).collect();
    let ids: Vec<NodeId> = names.iter().map(|n| NodeId::new(n.as_str()).unwrap()).collect();
    let f: Vec<NodeFacts> = (0..40)
        .map(|i| facts(if i % 3 == 0 { "x86_64" } else { "aarch64" }, 1 + (i % 4) as u32, 1 + (i % 5) as u64))
        .collect();
    let busy: Vec<Allocation> = (0..10).map(|i| alloc("other", names[i * 3].as_str(), 300 * i as u32, &[])).collect();
    let busy_refs: Vec<&Allocation> = busy.iter().collect();
    let a = simple(60, 700, "network {\n port \"p\" { static = 9000 }\n}");
    let mut b = simple(80, 250, "");
    b.id = "other-job".into();
    let ghost: BTreeSet<NodeId> = [NodeId::new("ghost").unwrap()].into();
    let run = |penalty: &BTreeSet<NodeId>| {
        let mut p = Planner::new(nodes(&ids, &f), &busy_refs);
        let mut out = Vec::new();
        for i in 0..80 {
            if i < 60 {
                out.push(p.place(&a, &a.groups[0], 60, penalty, None).map(|x| x.node).map_err(|e| e.to_string()));
            }
            out.push(p.place(&b, &b.groups[0], 80, penalty, None).map(|x| x.node).map_err(|e| e.to_string()));
        }
        out
    };
    let (ranked, scanned) = (run(&BTreeSet::new()), run(&ghost));
    assert_eq!(ranked, scanned);
    assert!(ranked.iter().any(|r| r.is_err()), "the cluster fills up, so both paths explain failures too");
}

/// A book with one volume of each backing (`media` on NFS, `disk` a host path on `a` and
/// `b`, `db` local to `b`), claimed by `claims`.
fn book(claims: &[(&str, &str, bool)]) -> super::volumes::Book {
    use rabble_shared::volume::{Backing, VolumeSpec};
    let spec = |name: &str, backing| {
        let spec = VolumeSpec { name: name.into(), backing };
        (name.to_owned(), std::sync::Arc::new(crate::catalog::volumes::Volume { spec, create_ms: 0 }))
    };
    let nfs = Backing::Nfs { server: "nas".into(), path: "/tank/media".into(), options: String::new() };
    let specs = [
        spec("media", nfs),
        spec("disk", Backing::Host { path: "/mnt/disk".into(), nodes: vec!["a".into(), "b".into()] }),
        spec("db", Backing::Local { node: "b".into(), path: "/srv/db".into() }),
    ];
    let claims = claims
        .iter()
        .map(|(v, n, w)| super::volumes::Claim { volume: (*v).into(), node: NodeId::new(*n).unwrap(), writer: *w })
        .collect();
    super::volumes::Book { specs: std::sync::Arc::new(specs.into_iter().collect()), claims }
}

/// A group of `count` using volume `source` (csi) with `access` mode.
fn csi(count: u32, source: &str, access: &str, read_only: bool) -> JobSpec {
    simple(
        count,
        10,
        &format!(
            "volume \"v\" {{\n type = \"csi\"\n source = \"{source}\"\n access_mode = \"{access}\"\n \
             attachment_mode = \"file-system\"\n read_only = {read_only}\n}}"
        ),
    )
}

/// Places every allocation of `j` on nodes `ids` with facts `f` and the volume claims.
fn run(ids: &[NodeId], f: &[NodeFacts], claims: &[(&str, &str, bool)], j: &JobSpec) -> Vec<Result<String, Unplaced>> {
    let mut p = Planner::new(nodes(ids, f), &[]).with_volumes(book(claims));
    place_all(&mut p, j).into_iter().map(|r| r.map(|p| p.node.to_string())).collect()
}

#[test]
fn named_volumes_go_where_they_can_be_mounted_and_keep_their_access_modes() {
    let ids = ids(&["a", "b", "c"]);
    let mut f = [facts("x86_64", 4, 8), facts("x86_64", 4, 8), facts("x86_64", 4, 8)];
    // NFS: only a node with an NFS client; the others are named.
    let media = csi(1, "media", "multi-node-multi-writer", false);
    let e = run(&ids, &f, &[], &media).remove(0);
    assert_eq!(e.unwrap_err().to_string(), "no NFS client for volume media filtered 3 nodes");
    f[2].storage = vec!["nfs".into()];
    assert_eq!(run(&ids, &f, &[], &media).remove(0).unwrap(), "c");
    // A host volume on its nodes, a local one on its node, a missing one nowhere.
    let all = |j: &JobSpec, claims: &[(&str, &str, bool)]| run(&ids, &f, claims, j);
    let disk = all(&csi(3, "disk", "", false), &[]);
    assert!(disk.iter().all(|r| matches!(r.as_deref(), Ok("a" | "b"))), "{disk:?}");
    assert_eq!(all(&csi(2, "db", "", false), &[]).iter().flatten().collect::<Vec<_>>(), ["b", "b"]);
    let e = all(&csi(1, "nope", "", false), &[]).remove(0).unwrap_err();
    assert_eq!(e.to_string(), "missing volume nope filtered 3 nodes");
    // single-node-writer: every user on the node that has it, placed ones included.
    let one = all(&csi(3, "disk", "single-node-writer", false), &[]);
    assert!(one.iter().all(|r| r == &one[0]) && one[0].is_ok(), "{one:?}");
    let one = all(&csi(2, "disk", "single-node-writer", false), &[("disk", "b", true)]);
    assert_eq!(one.iter().flatten().collect::<Vec<_>>(), ["b", "b"]);
    let e = all(&csi(1, "disk", "single-node-reader-only", true), &[("disk", "c", false)]).remove(0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "volume disk attached to c (single-node-reader-only) filtered 2 nodes; volume disk not on the node filtered 1 node"
    );
    // multi-node-single-writer: one writer anywhere, readers beside it.
    let writers = all(&csi(2, "disk", "multi-node-single-writer", false), &[]);
    assert!(writers[0].is_ok(), "{writers:?}");
    assert!(writers[1].as_ref().unwrap_err().to_string().contains("has its writer on"), "{writers:?}");
    let readers = all(&csi(2, "disk", "multi-node-single-writer", true), &[("disk", "a", true)]);
    assert!(readers.iter().all(Result::is_ok), "{readers:?}");
}
