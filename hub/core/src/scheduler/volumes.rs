//! Placement with named volumes, pure: which nodes can mount a group's `csi` volumes (an
//! NFS export needs the node's NFS client, a host or local volume its nodes), and CSI's
//! access modes against the allocations already using each volume (its claims).

use rabble_shared::NodeId;
use rabble_shared::alloc::Allocation;
use rabble_shared::job::{Group, JobSpec, Volume};
use rabble_shared::msg::NodeFacts;
use rabble_shared::volume::{Attach, Backing, VolumeSpec};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The catalog's volume records.
pub type Records = BTreeMap<String, Arc<crate::catalog::volumes::Volume>>;

/// An allocation's use of a named volume, on its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub volume: String,
    pub node: NodeId,
    pub writer: bool,
}

/// The named volumes and who uses them, as placement sees them.
#[derive(Debug, Clone, Default)]
pub struct Book {
    pub specs: BTreeMap<String, VolumeSpec>,
    pub claims: Vec<Claim>,
}

/// The `csi` volumes of a group.
pub fn csi(g: &Group) -> impl Iterator<Item = &Volume> {
    g.volumes.values().filter(|v| v.kind == "csi")
}

impl Book {
    /// The book for a cluster: `specs` from the catalog, claims from the allocations
    /// holding resources (`jobs` gives each its group's volumes).
    pub fn new<'a>(specs: &Records, holding: &[&Allocation], job: impl Fn(&str) -> Option<&'a JobSpec>) -> Book {
        let specs = specs.iter().map(|(k, v)| (k.clone(), v.spec.clone())).collect();
        let mut claims = Vec::new();
        for a in holding {
            let Some(g) = job(&a.job_id).and_then(|j| j.groups.iter().find(|g| g.name == a.group)) else { continue };
            claims.extend(csi(g).map(|v| Claim {
                volume: v.source.clone(),
                node: a.node.clone(),
                writer: !v.read_only,
            }));
        }
        Book { specs, claims }
    }

    /// Why `node` cannot take an allocation of `g` for its volumes, if it cannot.
    pub fn check(&self, node: &NodeId, facts: &NodeFacts, g: &Group) -> Result<(), String> {
        for v in csi(g) {
            let name = &v.source;
            let Some(spec) = self.specs.get(name) else { return Err(format!("missing volume {name}")) };
            match &spec.backing {
                Backing::Nfs { .. } if !facts.storage.iter().any(|s| s == "nfs") => {
                    return Err(format!("no NFS client for volume {name}"));
                }
                Backing::Host { nodes, .. } if !nodes.iter().any(|n| n == node.as_str()) => {
                    return Err(format!("volume {name} not on the node"));
                }
                Backing::Local { node: home, .. } if home != node.as_str() => {
                    return Err(format!("volume {name} is local to {home}"));
                }
                _ => {}
            }
            let mut others = self.claims.iter().filter(|c| &c.volume == name);
            match v.access_mode.as_str() {
                mode @ ("single-node-writer" | "single-node-reader-only") => {
                    if let Some(c) = others.find(|c| &c.node != node) {
                        return Err(format!("volume {name} attached to {} ({mode})", c.node));
                    }
                }
                "multi-node-single-writer" if !v.read_only => {
                    if let Some(c) = others.find(|c| c.writer) {
                        return Err(format!("volume {name} has its writer on {}", c.node));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// An allocation of `g` placed on `node`: its claims count from now on.
    pub fn claim(&mut self, node: &NodeId, g: &Group) {
        let new: Vec<Claim> =
            csi(g).map(|v| Claim { volume: v.source.clone(), node: node.clone(), writer: !v.read_only }).collect();
        self.claims.extend(new);
    }
}

/// The backings an allocation of `g` needs, by volume name (what its assignment carries).
pub fn backings(specs: &Records, g: &Group) -> BTreeMap<String, Attach> {
    csi(g).filter_map(|v| Some((v.source.clone(), specs.get(&v.source)?.spec.backing.attach()))).collect()
}
