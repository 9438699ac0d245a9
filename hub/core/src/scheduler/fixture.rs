//! Node facts for the scheduler's tests: a node of an architecture, cores and memory,
//! with healthy drivers.

use rabble_shared::msg::{DriverFacts, NodeFacts, OsFacts};

pub fn facts(name: &str, arch: &str, cpus: u32, mem_gb: u64, drivers: &[&str]) -> NodeFacts {
    NodeFacts {
        name: name.into(),
        hostname: name.into(),
        arch: arch.into(),
        os: OsFacts { name: "Debian".into(), version: "12".into(), kernel: "6.6".into() },
        cpus,
        memory_bytes: mem_gb << 30,
        disks: vec![],
        addresses: vec![],
        advertise: "10.0.0.1".into(),
        agent_version: "0.1.0".into(),
        node_class: String::new(),
        datacenter: "dc1".into(),
        meta: Default::default(),
        drivers: drivers
            .iter()
            .map(|d| (d.to_string(), DriverFacts { healthy: true, version: "1".into(), detail: String::new() }))
            .collect(),
        host_volumes: Default::default(),
        cpu_total_mhz: None,
        tls_lanes: Vec::new(),
        interfaces: Default::default(),
        alloc_dir: String::new(),
        storage: Vec::new(),
    }
}
