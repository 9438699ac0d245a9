//! The catalog → one [`LaneTable`] per lane, pure. Instances that are served (passing
//! or warning, on an up node: the DNS rule) and tagged `<prefix>.enable=true` add
//! their routers, services and middlewares ([`super::tags`]); the same service from
//! several instances gathers their servers; a router or middleware that instances
//! define differently is left out and reported, as Traefik does; a router whose
//! service or middlewares do not exist is left out and reported.

use super::tags::{Contribution, Instance, contribution};
use crate::catalog::{Catalog, health};
use rabble_shared::routes::*;
use std::collections::BTreeMap;

/// A lane as configured (`[[lane]] name = "routing"  prefix = "routing"`): its name
/// and the tag prefix it reads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lane {
    pub name: String,
    pub prefix: String,
}

impl Lane {
    /// The seed's two lanes: `routing` (inside the house) and `ingress`.
    pub fn defaults() -> Vec<Lane> {
        ["routing", "ingress"].into_iter().map(|n| Lane { name: n.into(), prefix: n.into() }).collect()
    }
}

/// Every lane's table at the catalog's index.
pub fn build(catalog: &Catalog, lanes: &[Lane], domain: &str) -> Vec<LaneTable> {
    lanes.iter().map(|lane| build_lane(catalog, lane, domain)).collect()
}

fn build_lane(catalog: &Catalog, lane: &Lane, domain: &str) -> LaneTable {
    let mut parts = Vec::new();
    for (node_id, node) in &catalog.nodes {
        for reg in node.services.values() {
            if !reg.tags.iter().any(|t| t.starts_with(&lane.prefix)) {
                continue;
            }
            if !health::serves(health::status(node, reg), false) {
                continue;
            }
            let Some(address) = health::address(node, reg) else { continue };
            let inst = Instance {
                service: &reg.name,
                id: format!("{node_id}/{}", reg.id),
                tags: &reg.tags,
                address,
                port: reg.port,
            };
            parts.push(contribution(&inst, &lane.prefix, domain));
        }
    }
    merge(lane, catalog.index, parts)
}

/// Gathers instances' contributions into a lane's table.
pub fn merge(lane: &Lane, index: u64, parts: Vec<Contribution>) -> LaneTable {
    let mut t = LaneTable { lane: lane.name.clone(), prefix: lane.prefix.clone(), index, ..Default::default() };
    let mut conflicts: BTreeMap<String, String> = BTreeMap::new();
    for c in parts {
        t.problems.extend(c.problems);
        for (name, s) in c.services {
            match t.services.get_mut(&name) {
                None => {
                    t.services.insert(name, s);
                }
                Some(have) => {
                    if have.pass_host_header != s.pass_host_header {
                        conflicts.insert(format!("service {name}"), "instances disagree on passhostheader".into());
                    }
                    have.servers.extend(s.servers);
                    have.servers.sort();
                    have.servers.dedup();
                }
            }
        }
        for (name, r) in c.routers {
            match t.routers.get(&name) {
                Some(have) if have != &r => {
                    conflicts.insert(format!("router {name}"), "instances define it differently".into());
                }
                _ => {
                    t.routers.insert(name, r);
                }
            }
        }
        for (name, m) in c.middlewares {
            match t.middlewares.get(&name) {
                Some(have) if have != &m => {
                    conflicts.insert(format!("middleware {name}"), "instances define it differently".into());
                }
                _ => {
                    t.middlewares.insert(name, m);
                }
            }
        }
    }
    for (what, reason) in conflicts {
        let (kind, name) = what.split_once(' ').unwrap_or(("", &what));
        if kind == "router" {
            t.routers.remove(name);
        } else if kind == "middleware" {
            t.middlewares.remove(name);
        }
        t.problems.push(lane_problem(what, format!("{reason}; left out")));
    }
    // References: a chain's members, a router's service and middlewares.
    let known: Vec<String> = t.middlewares.keys().cloned().collect();
    let problems = &mut t.problems;
    t.middlewares.retain(|name, m| match m {
        Middleware::Chain(c) => match c.middlewares.iter().find(|x| !known.contains(x) || *x == name) {
            Some(bad) => {
                problems.push(lane_problem(
                    format!("middleware {name}"),
                    format!("chain names {bad:?}, which is not a middleware of this lane (or itself)"),
                ));
                false
            }
            None => true,
        },
        _ => true,
    });
    let (services, middlewares) = (&t.services, &t.middlewares);
    let mut dropped = Vec::new();
    t.routers.retain(|name, r| {
        let why = if !services.contains_key(&r.service) {
            Some(format!("its service {:?} is not in this lane", r.service))
        } else {
            r.middlewares
                .iter()
                .find(|m| !middlewares.contains_key(*m))
                .map(|m| format!("its middleware {m:?} is not defined in this lane"))
        };
        match why {
            Some(reason) => {
                dropped.push(lane_problem(format!("router {name}"), format!("{reason}; left out")));
                false
            }
            None => true,
        }
    });
    t.problems.extend(dropped);
    t.problems.sort();
    t.problems.dedup();
    t
}

/// A problem with the lane as a whole (a conflict, a dangling reference).
fn lane_problem(what: String, reason: String) -> Problem {
    Problem { service: String::new(), instance: String::new(), tag: what, reason }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
