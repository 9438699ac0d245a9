//! Placement, pure: which node the next allocation of a task group goes to, or why no
//! node can take it. Nomad's recipe (feasibility → rank → pick), its designs only:
//!
//! - feasibility: node ready (up, eligible, not draining), datacenter, drivers present
//!   and healthy, constraints (job, group, tasks), host volumes, named volumes
//!   ([`super::volumes`]: mountable here, access modes), `distinct_hosts`,
//!   `distinct_property`, CPU and memory left, static ports free;
//! - rank: BestFit v3 bin-packing (`20 − (10^freeCpu + 10^freeMem)`, clamped to 0..18,
//!   over 18), job anti-affinity `−(c+1)/count` when the node already runs `c` of the
//!   group, −1 on a node where the allocation failed before; the mean of those;
//! - pick: every feasible node is scored (homelab sizes), ties go to the lower node id.
//!
//! A [`Planner`] keeps what it placed, so a plan of many placements sees its own.

use super::constraint::{self, NodeRef};
use super::volumes::{self, Book};
use rabble_shared::NodeId;
use rabble_shared::alloc::{AllocPort, Allocation};
use rabble_shared::job::{Group, JobSpec, Operator, Resources};
use rabble_shared::msg::NodeFacts;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Dynamic host ports are drawn from here (Nomad's default range).
pub const DYNAMIC_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A node as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct NodeState<'a> {
    pub id: &'a NodeId,
    pub facts: &'a NodeFacts,
    /// `None` when the node can take work; otherwise why not (`down`, `ineligible`,
    /// `draining`).
    pub unready: Option<&'static str>,
}

/// Where one allocation goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub node: NodeId,
    pub ports: Vec<AllocPort>,
    pub score: f64,
}

/// Why a group could not be placed: how many nodes each filter removed, and how many
/// feasible nodes were short of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Unplaced {
    pub nodes_evaluated: usize,
    pub filtered: BTreeMap<String, usize>,
    pub exhausted: BTreeMap<String, usize>,
}

impl fmt::Display for Unplaced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nodes_evaluated == 0 {
            return f.write_str("no nodes are known to the hub");
        }
        let nodes = |n: usize| if n == 1 { "1 node".to_owned() } else { format!("{n} nodes") };
        let mut parts: Vec<String> =
            self.filtered.iter().map(|(why, n)| format!("{why} filtered {}", nodes(*n))).collect();
        parts.extend(self.exhausted.iter().map(|(what, n)| format!("{} short of {what}", nodes(*n))));
        write!(f, "{}", parts.join("; "))
    }
}

struct Cand<'a> {
    node: NodeState<'a>,
    cpu_used: u64,
    mem_used: u64,
    ports: BTreeSet<u16>,
    /// Allocations holding resources here, by (job, group).
    groups: BTreeMap<(String, String), u32>,
}

/// Places allocations on a cluster, remembering each placement.
pub struct Planner<'a> {
    cands: Vec<Cand<'a>>,
    /// Bumped on a node whenever a placement lands on it.
    versions: Vec<u64>,
    /// Every node a placement landed on, in order (rankings catch up from here).
    touched: Vec<usize>,
    /// Per (job, group): the feasible nodes by score. A placement changes only the
    /// node it lands on, so a ranking is kept and that node re-scored: O(log n) per
    /// placement instead of a scan of every node.
    rankings: BTreeMap<(String, String), Ranking>,
    /// Mixed into the next placement's dynamic-port seed: the allocation's id, so two
    /// clusters (two hubs on one test machine, two homelabs) running job "web" on node
    /// "pi1" do not pick the same host port, while one placement stays reproducible.
    port_salt: u64,
    /// Named volumes and their claims (placements add theirs).
    volumes: Book,
}

/// A max-heap of (score, node) with lazy invalidation by node version.
struct Ranking {
    heap: std::collections::BinaryHeap<Ranked>,
    synced: usize,
    /// Each node's last verdict: `Ok(())` fits; `Err((filtered?, label))` does not.
    verdicts: Vec<Result<(), (bool, String)>>,
}

impl Ranking {
    fn why(&self) -> Unplaced {
        let mut u = Unplaced { nodes_evaluated: self.verdicts.len(), ..Default::default() };
        for v in &self.verdicts {
            match v {
                Ok(()) => {}
                Err((true, label)) => *u.filtered.entry(label.clone()).or_default() += 1,
                Err((false, dim)) => *u.exhausted.entry(dim.clone()).or_default() += 1,
            }
        }
        u
    }
}

#[derive(Debug, PartialEq)]
struct Ranked {
    score: f64,
    ix: usize,
    version: u64,
}

impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    /// Higher score first; on a tie, the lower node id (a lower index) first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score.total_cmp(&other.score).then(other.ix.cmp(&self.ix))
    }
}

/// The resources an allocation of `g` reserves: the sum of its tasks'.
pub fn group_resources(g: &Group) -> Resources {
    g.tasks.iter().fold(Resources { cpu_mhz: 0, memory_mb: 0, memory_max_mb: None }, |acc, t| Resources {
        cpu_mhz: acc.cpu_mhz + t.resources.cpu_mhz,
        memory_mb: acc.memory_mb + t.resources.memory_mb,
        memory_max_mb: None,
    })
}

fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((pre, post)) => s.len() >= pre.len() + post.len() && s.starts_with(pre) && s.ends_with(post),
    }
}

impl<'a> Planner<'a> {
    /// `allocs`: every allocation that holds resources (see `Allocation::holds_resources`).
    pub fn new(mut nodes: Vec<NodeState<'a>>, allocs: &[&Allocation]) -> Planner<'a> {
        nodes.sort_by(|a, b| a.id.cmp(b.id));
        let mut cands: Vec<Cand<'a>> = nodes
            .into_iter()
            .map(|node| Cand { node, cpu_used: 0, mem_used: 0, ports: BTreeSet::new(), groups: BTreeMap::new() })
            .collect();
        for a in allocs {
            if let Some(c) = cands.iter_mut().find(|c| c.node.id == &a.node) {
                c.cpu_used += u64::from(a.resources.cpu_mhz);
                c.mem_used += u64::from(a.resources.memory_mb);
                c.ports.extend(a.ports.iter().map(|p| p.value));
                *c.groups.entry((a.job_id.clone(), a.group.clone())).or_default() += 1;
            }
        }
        let n = cands.len();
        Planner {
            cands,
            versions: vec![0; n],
            touched: Vec::new(),
            rankings: BTreeMap::new(),
            port_salt: 0,
            volumes: Book::default(),
        }
    }

    /// Places with the cluster's named volumes and their claims.
    pub fn with_volumes(mut self, volumes: Book) -> Planner<'a> {
        self.volumes = volumes;
        self
    }

    /// Seeds the next placement's dynamic ports with `id` (the allocation it makes).
    pub fn salt_ports(&mut self, id: &str) {
        self.port_salt = fnv1a(id.bytes());
    }

    /// Why `c` cannot take an allocation of `g` (`Err` is the filter's label; resource
    /// shortages are `Ok(Some(dimension))`), or `Ok(None)` when it can.
    fn check(&self, c: &Cand<'_>, job: &JobSpec, g: &Group, ask: &Resources) -> Result<Option<String>, String> {
        let n = NodeRef { id: c.node.id, facts: c.node.facts };
        if let Some(why) = c.node.unready {
            return Err(format!("node {why}"));
        }
        let dc = &c.node.facts.datacenter;
        if !job.datacenters.iter().any(|p| glob(p, dc)) {
            return Err(format!("datacenter not in [{}]", job.datacenters.join(", ")));
        }
        for t in &g.tasks {
            match c.node.facts.drivers.get(&t.driver) {
                None => return Err(format!("missing driver {}", t.driver)),
                Some(d) if !d.healthy => return Err(format!("driver {} unhealthy", t.driver)),
                Some(_) => {}
            }
        }
        let all = job.constraints.iter().chain(&g.constraints).chain(g.tasks.iter().flat_map(|t| &t.constraints));
        for k in all.clone() {
            if !constraint::satisfied(n, k) {
                return Err(
                    format!("constraint `{} {} {}`", k.attribute, k.operator.as_str(), k.value).replace("  ", " ")
                );
            }
        }
        self.volumes.check(c.node.id, c.node.facts, g)?;
        for v in g.volumes.values().filter(|v| v.kind == "host") {
            match c.node.facts.host_volumes.get(&v.source) {
                None => return Err(format!("missing host volume {}", v.source)),
                Some(h) if h.read_only && !v.read_only => return Err(format!("host volume {} is read-only", v.source)),
                Some(_) => {}
            }
        }
        let here = |c: &Cand<'_>, whole_job: bool| -> u32 {
            c.groups.iter().filter(|((j, gr), _)| j == &job.id && (whole_job || gr == &g.name)).map(|(_, n)| n).sum()
        };
        for k in &job.constraints {
            self.distinct(c, k, true, &here)?;
        }
        for k in g.constraints.iter().chain(g.tasks.iter().flat_map(|t| &t.constraints)) {
            self.distinct(c, k, false, &here)?;
        }
        let cap_cpu = constraint::capacity_mhz(c.node.facts);
        let cap_mem = c.node.facts.memory_bytes / (1024 * 1024);
        if c.cpu_used + u64::from(ask.cpu_mhz) > cap_cpu {
            return Ok(Some("cpu".into()));
        }
        if c.mem_used + u64::from(ask.memory_mb) > cap_mem {
            return Ok(Some("memory".into()));
        }
        for p in g.network.ports.iter().filter_map(|p| p.static_port) {
            if c.ports.contains(&p) {
                return Err(format!("port {p} in use"));
            }
        }
        Ok(None)
    }

    /// `distinct_hosts` and `distinct_property`, which depend on where the job's other
    /// allocations are (`whole_job`: a job-level constraint counts every group).
    fn distinct(
        &self,
        c: &Cand<'_>,
        k: &rabble_shared::job::Constraint,
        whole_job: bool,
        here: &dyn Fn(&Cand<'_>, bool) -> u32,
    ) -> Result<(), String> {
        match k.operator {
            Operator::DistinctHosts if k.value != "false" && here(c, whole_job) > 0 => {
                Err(format!("distinct_hosts: {} already on the node", if whole_job { "job" } else { "group" }))
            }
            Operator::DistinctProperty => {
                let limit: u32 = k.value.parse().unwrap_or(1).max(1);
                let mine = constraint::resolve(NodeRef { id: c.node.id, facts: c.node.facts }, &k.attribute);
                let Some(mine) = mine else { return Err(format!("distinct_property: {} not set", k.attribute)) };
                let used: u32 = self
                    .cands
                    .iter()
                    .filter(|o| {
                        constraint::resolve(NodeRef { id: o.node.id, facts: o.node.facts }, &k.attribute).as_ref()
                            == Some(&mine)
                    })
                    .map(|o| here(o, whole_job))
                    .sum();
                if used >= limit {
                    return Err(format!("distinct_property: {} = {mine} already used {used} time(s)", k.attribute));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Every node that could take an allocation of `g` now (for system jobs).
    pub fn feasible(&self, job: &JobSpec, g: &Group) -> Vec<NodeId> {
        let ask = group_resources(g);
        self.cands
            .iter()
            .filter(|c| matches!(self.check(c, job, g, &ask), Ok(None)))
            .map(|c| c.node.id.clone())
            .collect()
    }

    /// Places one allocation of `g` (`count` is the group's desired count, for
    /// anti-affinity), avoiding `penalty` nodes where it can; `only` restricts it to
    /// one node (system jobs). The placement is remembered.
    pub fn place(
        &mut self,
        job: &JobSpec,
        g: &Group,
        count: u32,
        penalty: &BTreeSet<NodeId>,
        only: Option<&NodeId>,
    ) -> Result<Placement, Unplaced> {
        let ask = group_resources(g);
        // Other nodes' feasibility moves with a placement under distinct_property or a
        // named volume's access mode: no ranking then; nor for a one-off question (a
        // penalty, a pinned node).
        let distinct_property = job
            .constraints
            .iter()
            .chain(&g.constraints)
            .chain(g.tasks.iter().flat_map(|t| &t.constraints))
            .any(|c| c.operator == Operator::DistinctProperty);
        let claims = volumes::csi(g).next().is_some();
        let picked = if distinct_property || claims || !penalty.is_empty() || only.is_some() {
            self.scan(job, g, &ask, count, penalty, only)
        } else {
            self.ranked(job, g, &ask, count)
        };
        let (i, score) = picked?;
        let c = &mut self.cands[i];
        let nth = c.groups.get(&(job.id.clone(), g.name.clone())).copied().unwrap_or(0);
        let seed = port_seed(&job.id, &g.name, c.node.id.as_str(), nth) ^ self.port_salt;
        let ports = assign_ports(g, &c.ports, seed);
        c.cpu_used += u64::from(ask.cpu_mhz);
        c.mem_used += u64::from(ask.memory_mb);
        c.ports.extend(ports.iter().map(|p| p.value));
        *c.groups.entry((job.id.clone(), g.name.clone())).or_default() += 1;
        self.versions[i] += 1;
        self.touched.push(i);
        self.volumes.claim(c.node.id, g);
        Ok(Placement { node: c.node.id.clone(), ports, score })
    }

    /// Every node checked and scored.
    fn scan(
        &self,
        job: &JobSpec,
        g: &Group,
        ask: &Resources,
        count: u32,
        penalty: &BTreeSet<NodeId>,
        only: Option<&NodeId>,
    ) -> Result<(usize, f64), Unplaced> {
        let mut why = Unplaced::default();
        let mut best: Option<(usize, f64)> = None;
        for (i, c) in self.cands.iter().enumerate() {
            if only.is_some_and(|o| o != c.node.id) {
                continue;
            }
            why.nodes_evaluated += 1;
            match self.check(c, job, g, ask) {
                Err(label) => *why.filtered.entry(label).or_default() += 1,
                Ok(Some(dim)) => *why.exhausted.entry(dim).or_default() += 1,
                Ok(None) => {
                    let s = score(c, ask, job, g, count, penalty);
                    if best.is_none_or(|(_, b)| s > b) {
                        best = Some((i, s));
                    }
                }
            }
        }
        best.ok_or(why)
    }

    /// The best node from the group's ranking, re-scoring only the nodes placements
    /// landed on since the ranking last looked.
    fn ranked(&mut self, job: &JobSpec, g: &Group, ask: &Resources, count: u32) -> Result<(usize, f64), Unplaced> {
        let key = (job.id.clone(), g.name.clone());
        let none = BTreeSet::new();
        if !self.rankings.contains_key(&key) {
            let mut heap = std::collections::BinaryHeap::new();
            let mut verdicts = Vec::with_capacity(self.cands.len());
            for (ix, c) in self.cands.iter().enumerate() {
                verdicts.push(match self.check(c, job, g, ask) {
                    Err(label) => Err((true, label)),
                    Ok(Some(dim)) => Err((false, dim)),
                    Ok(None) => {
                        heap.push(Ranked {
                            score: score(c, ask, job, g, count, &none),
                            ix,
                            version: self.versions[ix],
                        });
                        Ok(())
                    }
                });
            }
            self.rankings.insert(key.clone(), Ranking { heap, synced: self.touched.len(), verdicts });
        }
        let Some(mut r) = self.rankings.remove(&key) else { return Err(Unplaced::default()) };
        // Catch up with the nodes placements changed.
        let mut seen = BTreeSet::new();
        for &ix in &self.touched[r.synced..] {
            if seen.insert(ix) {
                self.rerank(&mut r, ix, job, g, ask, count);
            }
        }
        r.synced = self.touched.len();
        let out = loop {
            match r.heap.peek() {
                None => break Err(r.why()),
                Some(top) if top.version != self.versions[top.ix] => {
                    r.heap.pop();
                }
                Some(top) => break Ok((top.ix, top.score)),
            }
        };
        self.rankings.insert(key, r);
        out
    }

    /// Re-checks one node for a ranking: pushed back with its new score if it still
    /// fits, counted in the reasons if it does not.
    fn rerank(&self, r: &mut Ranking, ix: usize, job: &JobSpec, g: &Group, ask: &Resources, count: u32) {
        let c = &self.cands[ix];
        r.verdicts[ix] = match self.check(c, job, g, ask) {
            Ok(None) => {
                let s = score(c, ask, job, g, count, &BTreeSet::new());
                r.heap.push(Ranked { score: s, ix, version: self.versions[ix] });
                Ok(())
            }
            Ok(Some(dim)) => Err((false, dim)),
            Err(label) => Err((true, label)),
        };
    }
}

fn score(c: &Cand<'_>, ask: &Resources, job: &JobSpec, g: &Group, count: u32, penalty: &BTreeSet<NodeId>) -> f64 {
    let cap_cpu = constraint::capacity_mhz(c.node.facts).max(1) as f64;
    let cap_mem = (c.node.facts.memory_bytes / (1024 * 1024)).max(1) as f64;
    let free_cpu = 1.0 - (c.cpu_used + u64::from(ask.cpu_mhz)) as f64 / cap_cpu;
    let free_mem = 1.0 - (c.mem_used + u64::from(ask.memory_mb)) as f64 / cap_mem;
    let binpack = (20.0 - (10f64.powf(free_cpu) + 10f64.powf(free_mem))).clamp(0.0, 18.0) / 18.0;
    let (mut sum, mut n) = (binpack, 1.0);
    let collisions: u32 = c.groups.iter().filter(|((j, gr), _)| *j == job.id && *gr == g.name).map(|(_, n)| *n).sum();
    if collisions > 0 {
        sum -= f64::from(collisions + 1) / f64::from(count.max(1));
        n += 1.0;
    }
    if penalty.contains(c.node.id) {
        sum -= 1.0;
        n += 1.0;
    }
    sum / n
}

/// Static ports as asked; dynamic ones free in [`DYNAMIC_PORTS`], looked for from a
/// point `seed` picks (as Nomad picks them at random: a port some program outside Rabble
/// holds, or one just released, is less likely to be handed out again), deterministic
/// for the same placement.
fn assign_ports(g: &Group, used: &BTreeSet<u16>, seed: u64) -> Vec<AllocPort> {
    let mut taken = used.clone();
    let span = u64::from(DYNAMIC_PORTS.end - DYNAMIC_PORTS.start);
    let mut out = Vec::new();
    for (i, p) in g.network.ports.iter().enumerate() {
        let value = match p.static_port {
            Some(s) => s,
            None => {
                let start = (seed.wrapping_add(i as u64 * 7919)) % span;
                (0..span)
                    .map(|k| DYNAMIC_PORTS.start + ((start + k) % span) as u16)
                    .find(|v| !taken.contains(v))
                    .unwrap_or(DYNAMIC_PORTS.start)
            }
        };
        taken.insert(value);
        out.push(AllocPort { label: p.label.clone(), value, to: p.to });
    }
    out
}

/// FNV-1a over the placement's identity: where its dynamic ports are looked for.
fn port_seed(job: &str, group: &str, node: &str, nth: u32) -> u64 {
    fnv1a(job.bytes().chain(group.bytes()).chain(node.bytes()).chain(nth.to_le_bytes()))
}

fn fnv1a(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
