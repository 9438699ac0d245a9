//! A node's attributes under Nomad's names (`attr.cpu.arch`, `node.unique.name`,
//! `meta.rack`), read from its facts: the scheduler checks constraints with them and the
//! agent interpolates them into task configs. Pure.
//!
//! `${attr.cpu.arch}` is Go's name for the architecture (`amd64`, `arm64`, `arm`), as
//! Nomad reports it, so job files written for Nomad keep working.

use crate::NodeId;
use crate::msg::NodeFacts;

/// The node an attribute is read from.
#[derive(Debug, Clone, Copy)]
pub struct NodeRef<'a> {
    pub id: &'a NodeId,
    pub facts: &'a NodeFacts,
}

/// Go's architecture names, as Nomad's `attr.cpu.arch` gives them.
pub fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" | "i686" | "i386" => "386",
        a if a.starts_with("arm") => "arm",
        a => a,
    }
}

/// Resolves one attribute name (`attr.cpu.arch`, `node.class`, `meta.rack`).
pub fn attribute(node: NodeRef<'_>, name: &str) -> Option<String> {
    let f = node.facts;
    if let Some(key) = name.strip_prefix("meta.") {
        return f.meta.get(key).cloned();
    }
    if let Some(rest) = name.strip_prefix("attr.driver.") {
        let (driver, what) = rest.split_once('.').unwrap_or((rest, ""));
        let d = f.drivers.get(driver).filter(|d| d.healthy)?;
        return match what {
            "" => Some("1".into()),
            "version" => Some(d.version.clone()),
            _ => None,
        };
    }
    Some(match name {
        "attr.cpu.arch" => go_arch(&f.arch).to_owned(),
        "attr.cpu.numcores" => f.cpus.to_string(),
        "attr.cpu.totalcompute" => capacity_mhz(f).to_string(),
        "attr.memory.totalbytes" => f.memory_bytes.to_string(),
        "attr.kernel.name" => "linux".into(),
        "attr.kernel.version" => f.os.kernel.clone(),
        "attr.kernel.arch" => f.arch.clone(),
        "attr.os.name" => f.os.name.to_ascii_lowercase(),
        "attr.os.version" => f.os.version.clone(),
        "attr.unique.hostname" => f.hostname.clone(),
        "attr.unique.network.ip-address" => f.advertise.clone(),
        "attr.nomad.version" | "attr.rabble.version" => f.agent_version.clone(),
        "node.unique.name" => f.name.clone(),
        "node.unique.id" => node.id.to_string(),
        "node.class" => f.node_class.clone(),
        "node.datacenter" => f.datacenter.clone(),
        _ => return None,
    })
}

/// The node's CPU capacity in MHz: what the agent measured, else 1,000 MHz a core.
pub fn capacity_mhz(f: &NodeFacts) -> u64 {
    f.cpu_total_mhz.filter(|m| *m > 0).unwrap_or(u64::from(f.cpus.max(1)) * 1000)
}
