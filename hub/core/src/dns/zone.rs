//! The DNS view of the catalog, precomputed once per catalog change: which addresses,
//! ports and SRV targets each name has. Queries only look things up here.

use crate::catalog::{Catalog, health};
use hickory_proto::rr::Name;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// DNS settings that shape the zone and its answers.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// The domain, lowercased labels without the root (e.g. `["lab", "home", "arpa"]`).
    pub domain: Vec<String>,
    pub ttl: u32,
    pub negative_ttl: u32,
    /// Serve only passing instances (default: passing and warning).
    pub only_passing: bool,
    /// At most this many address records per answer (0: no limit).
    pub a_record_limit: usize,
}

impl DnsSettings {
    /// Parses a domain such as `rabble`, `consul` or `lab.home.arpa` (a trailing dot is fine).
    pub fn domain_labels(domain: &str) -> Result<Vec<String>, String> {
        let labels: Vec<String> = domain.trim_end_matches('.').split('.').map(|l| l.to_ascii_lowercase()).collect();
        if labels.iter().any(|l| l.is_empty() || l.len() > 63) {
            return Err(format!("{domain:?} is not a valid domain"));
        }
        Ok(labels)
    }

    pub fn domain_name(&self) -> String {
        format!("{}.", self.domain.join("."))
    }
}

/// One healthy instance, as DNS serves it.
#[derive(Debug, Clone)]
pub struct Target {
    pub ip: IpAddr,
    pub port: Option<u16>,
    /// The SRV target: `<node>.node.<domain>.`, or `<hex>.addr.<domain>.` when the
    /// instance's address is not its node's.
    pub srv_target: Name,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NodeRecords {
    pub ips: Vec<IpAddr>,
    pub txt: Vec<String>,
}

/// The whole zone at one catalog index.
#[derive(Debug, Default)]
pub struct Zone {
    pub index: u64,
    /// Lowercased service name → healthy instances. A service with none is absent.
    pub services: HashMap<String, Vec<Target>>,
    /// Lowercased node id → its address and meta.
    pub nodes: HashMap<String, NodeRecords>,
    /// Datacenters seen in node facts, for `<svc>.service.<dc>.<domain>` lookups.
    pub datacenters: HashSet<String>,
    /// Pre-encoded A / AAAA answer records per service, for the fast path.
    pub hot_a: HashMap<String, Vec<Vec<u8>>>,
    pub hot_aaaa: HashMap<String, Vec<Vec<u8>>>,
}

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;

/// Pre-encodes one answer record whose owner is the question name (`0xC00C` points at
/// the question), for the fast path.
pub fn encode_record(ttl: u32, ip: std::net::IpAddr) -> Vec<u8> {
    let (rtype, octets) = match ip {
        std::net::IpAddr::V4(v) => (TYPE_A, v.octets().to_vec()),
        std::net::IpAddr::V6(v) => (TYPE_AAAA, v.octets().to_vec()),
    };
    let mut r = vec![0xC0, 0x0C];
    r.extend_from_slice(&rtype.to_be_bytes());
    r.extend_from_slice(&1u16.to_be_bytes()); // class IN
    r.extend_from_slice(&ttl.to_be_bytes());
    r.extend_from_slice(&(octets.len() as u16).to_be_bytes());
    r.extend_from_slice(&octets);
    r
}

/// Consul's `.addr.` names (`c0a80001` for 192.168.0.1), as the nodes' responder spells them.
pub use rabble_shared::dns::answer::{hex_addr, parse_hex_addr};

impl Zone {
    pub fn build(catalog: &Catalog, s: &DnsSettings) -> Zone {
        let domain = s.domain_name();
        let mut zone = Zone { index: catalog.index, ..Default::default() };
        for (node_id, node) in &catalog.nodes {
            let facts = node.facts.as_ref();
            let node_ip: Option<IpAddr> = facts.and_then(|f| f.advertise.parse().ok());
            if let Some(f) = facts {
                zone.datacenters.insert(f.datacenter.to_ascii_lowercase());
            }
            zone.nodes.insert(
                node_id.to_string(),
                NodeRecords {
                    ips: node_ip.into_iter().collect(),
                    txt: facts.map(|f| f.meta.iter().map(|(k, v)| format!("{k}={v}")).collect()).unwrap_or_default(),
                },
            );
            for reg in node.services.values() {
                if !health::serves(health::status(node, reg), s.only_passing) {
                    continue;
                }
                let ip: Option<IpAddr> = health::address(node, reg).and_then(|a| a.parse().ok());
                let Some(ip) = ip else { continue };
                let target = if Some(ip) == node_ip {
                    format!("{node_id}.node.{domain}")
                } else {
                    format!("{}.addr.{domain}", hex_addr(ip))
                };
                let Ok(srv_target) = Name::from_ascii(&target) else { continue };
                zone.services.entry(reg.name.to_ascii_lowercase()).or_default().push(Target {
                    ip,
                    port: reg.port,
                    srv_target,
                    tags: reg.tags.iter().map(|t| t.to_ascii_lowercase()).collect(),
                });
            }
        }
        for (name, targets) in &zone.services {
            let (v4, v6): (Vec<&Target>, Vec<&Target>) = targets.iter().partition(|t| t.ip.is_ipv4());
            let enc = |ts: Vec<&Target>| ts.iter().map(|t| encode_record(s.ttl, t.ip)).collect();
            zone.hot_a.insert(name.clone(), enc(v4));
            zone.hot_aaaa.insert(name.clone(), enc(v6));
        }
        zone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_addresses_round_trip() {
        for ip in ["192.168.0.1", "10.0.0.255", "fd00::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(parse_hex_addr(&hex_addr(ip)), Some(ip));
        }
        assert_eq!(hex_addr("192.168.0.1".parse().unwrap()), "c0a80001");
        for bad in ["", "c0a8000", "zzzzzzzz", "c0a800011"] {
            assert_eq!(parse_hex_addr(bad), None, "{bad}");
        }
    }

    #[test]
    fn domains() {
        assert_eq!(DnsSettings::domain_labels("Lab.Home.Arpa.").unwrap(), ["lab", "home", "arpa"]);
        assert!(DnsSettings::domain_labels("a..b").is_err());
    }
}
