//! Catalogs and a small zone for the DNS tests, the fuzz target and the randomized
//! test of the request path: services with tags, a critical instance, an IPv6
//! instance, nodes with meta.

use super::zone::{DnsSettings, Zone};
use crate::catalog::{Catalog, NodeUpdate, Update};
use rabble_shared::msg::{CheckKind, CheckState, NodeFacts, OsFacts, ServiceRegistration};
use rabble_shared::{NodeId, Status, TopicId};

#[derive(Debug)]
pub struct Fixture {
    pub zone: Zone,
    pub settings: DnsSettings,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        let settings = DnsSettings {
            domain: vec!["rabble".into()],
            ttl: 0,
            negative_ttl: 0,
            only_passing: false,
            a_record_limit: 0,
        };
        let mut c = Catalog::default();
        add(&mut c, "n0", "192.168.1.1", "web", &["primary"], None, Status::Passing);
        add(&mut c, "n1", "192.168.1.2", "web", &[], Some("fd00::9"), Status::Warning);
        add(&mut c, "n2", "192.168.1.3", "db", &[], Some("10.0.0.9"), Status::Critical);
        add(&mut c, "n3", "192.168.1.4", "big", &["primary"], None, Status::Passing);
        Fixture { zone: Zone::build(&c, &settings), settings }
    }
}

/// Facts for a node advertising `ip`, in datacenter `home`, with meta `rack=top`.
pub fn facts(ip: &str) -> NodeFacts {
    NodeFacts {
        name: "n".into(),
        hostname: "n".into(),
        arch: "x86_64".into(),
        os: OsFacts { name: "l".into(), version: "1".into(), kernel: "6".into() },
        cpus: 1,
        memory_bytes: 1,
        disks: vec![],
        addresses: vec![],
        advertise: ip.into(),
        agent_version: "0".into(),
        node_class: String::new(),
        datacenter: "home".into(),
        meta: [("rack".to_owned(), "top".to_owned())].into(),
        drivers: Default::default(),
        host_volumes: Default::default(),
        cpu_total_mhz: None,
        tls_lanes: Vec::new(),
        interfaces: Default::default(),
        alloc_dir: String::new(),
        storage: Vec::new(),
    }
}

/// Registers service `svc` (port 8080) on `node`, with one TTL check in `status`.
pub fn add(c: &mut Catalog, node: &str, ip: &str, svc: &str, tags: &[&str], addr: Option<&str>, status: Status) {
    let (Ok(n), Some(key)) = (NodeId::new(node), TopicId::from_name(svc)) else { return };
    c.apply(Update::Node(n.clone(), NodeUpdate::Facts(Box::new(facts(ip)))));
    c.apply(Update::Node(
        n.clone(),
        NodeUpdate::Service(
            key.clone(),
            Some(ServiceRegistration {
                id: svc.into(),
                name: svc.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                address: addr.map(str::to_owned),
                port: Some(8080),
                meta: Default::default(),
                source: String::new(),
            }),
        ),
    ));
    c.apply(Update::Node(
        n,
        NodeUpdate::Check(
            key,
            Some(CheckState {
                id: svc.into(),
                name: svc.into(),
                service_id: Some(svc.into()),
                kind: CheckKind::Ttl,
                status,
                output: String::new(),
                since_ms: 0,
            }),
        ),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::answer::{Transport, answer};

    /// A deterministic fuzz run on stable Rust, so CI exercises hostile input on every
    /// run: random bytes, and real queries with random bytes flipped.
    #[test]
    fn random_and_mutated_requests_never_panic() {
        let f = Fixture::new();
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        let mut q = hickory_proto::op::Message::query();
        q.add_query(hickory_proto::op::Query::query(
            hickory_proto::rr::Name::from_ascii("_web._primary.service.rabble.").unwrap(),
            hickory_proto::rr::RecordType::SRV,
        ));
        let valid = q.to_vec().unwrap();
        for round in 0..50_000 {
            let data: Vec<u8> = if round % 2 == 0 {
                (0..rng.usize(0..600)).map(|_| rng.u8(..)).collect()
            } else {
                let mut v = valid.clone();
                for _ in 0..rng.usize(1..6) {
                    let i = rng.usize(..v.len());
                    v[i] = rng.u8(..);
                }
                v.truncate(rng.usize(0..=v.len()));
                v
            };
            for t in [Transport::Udp, Transport::Tcp] {
                let _ = answer(&data, &f.zone, &f.settings, t, round % 3 == 0);
            }
        }
    }
}
