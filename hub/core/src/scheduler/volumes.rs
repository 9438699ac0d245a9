//! Placement with named volumes, pure: which nodes can mount a group's `csi` volumes (an
//! NFS export needs the node's NFS client, a host or local volume its nodes), and CSI's
//! access modes against the allocations already using each volume (its claims).

use rabble_shared::NodeId;
use rabble_shared::alloc::Allocation;
use rabble_shared::job::{Group, JobSpec, Volume};
use rabble_shared::msg::NodeFacts;
use rabble_shared::volume::{Attach, Backing};
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
    /// The catalog's records (shared, not copied).
    pub specs: Arc<Records>,
    pub claims: Vec<Claim>,
}

/// The `csi` volumes of a group.
pub fn csi(g: &Group) -> impl Iterator<Item = &Volume> {
    g.volumes.values().filter(|v| v.kind == "csi")
}

impl Book {
    /// The book for a cluster: `specs` from the catalog, claims from the allocations
    /// holding resources (`jobs` gives each its group's volumes). Without volumes there
    /// is nothing to claim: the allocations are not read.
    pub fn new<'a>(specs: &Arc<Records>, holding: &[&Allocation], job: impl Fn(&str) -> Option<&'a JobSpec>) -> Book {
        let mut book = Book { specs: specs.clone(), claims: Vec::new() };
        if book.specs.is_empty() {
            return book;
        }
        for a in holding {
            if let Some(g) = job(&a.job_id).and_then(|j| j.groups.iter().find(|g| g.name == a.group)) {
                book.claim(&a.node, g);
            }
        }
        book
    }

    /// Why `node` cannot take an allocation of `g` for its volumes, if it cannot.
    pub fn check(&self, node: &NodeId, facts: &NodeFacts, g: &Group) -> Result<(), String> {
        for v in csi(g) {
            let name = &v.source;
            let Some(spec) = self.specs.get(name) else { return Err(format!("missing volume {name}")) };
            match &spec.spec.backing {
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
        self.claims.extend(csi(g).map(|v| Claim {
            volume: v.source.clone(),
            node: node.clone(),
            writer: !v.read_only,
        }));
    }
}

/// The backings an allocation of `g` needs, by volume name (what its assignment carries).
pub fn backings(specs: &Records, g: &Group) -> BTreeMap<String, Attach> {
    csi(g).filter_map(|v| Some((v.source.clone(), specs.get(&v.source)?.spec.backing.attach()))).collect()
}
