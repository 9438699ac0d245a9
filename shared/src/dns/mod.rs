//! The DNS zone as the hub hands it to every node, so each agent answers
//! `<service>.service.<domain>` itself (Unbound's `stub-addr: 127.0.0.1@8600` on every
//! host, as with a local Consul agent) and keeps answering while the hub is gone.
//!
//! On the wire the zone is retained MQTT messages: [`ZoneMeta`] on `rabble/hub/dns/zone`
//! (domain, TTLs, datacenters), one [`ServiceRecords`] per service on
//! `rabble/hub/dns/service/<name>` and one [`NodeRecords`] per node on
//! `rabble/hub/dns/node/<node>`; an empty message removes one. A node subscribing gets the
//! whole zone from the broker and every change after it. [`Zone`] is what an agent keeps;
//! [`answer`] answers a query from it (pure, the hub's semantics, fuzzed); [`wire`] reads
//! the messages in the agent.

pub mod answer;
pub mod wire;

use crate::msg::{DecodeError, Payload};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// The most services (and nodes) a zone holds: a bound on an agent's memory.
pub const MAX_NAMES: usize = 20_000;
/// The most instances one service's records carry.
pub const MAX_TARGETS: usize = 1_000;

/// Whether `s` can be a service or node name in the zone (and its topic level): one
/// lowercase DNS label.
pub fn valid_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The zone's settings, as the hub answers with them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneMeta {
    /// The catalog index the zone was built at (the SOA serial).
    pub index: u64,
    /// Lowercase labels, e.g. `["lab", "home", "arpa"]`.
    pub domain: Vec<String>,
    pub ttl: u32,
    pub negative_ttl: u32,
    /// At most this many address records per answer (0: no limit).
    #[serde(default)]
    pub a_record_limit: usize,
    /// Lowercase datacenter names (`<svc>.service.<dc>.<domain>`).
    #[serde(default)]
    pub datacenters: Vec<String>,
    /// Every service and node in the zone: a node that was away drops what is not
    /// listed (a retained message cleared while it was away never reaches it).
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub nodes: Vec<String>,
}

impl Payload for ZoneMeta {
    const WHAT: &'static str = "DNS zone settings";
    fn validate(&self) -> Result<(), DecodeError> {
        if self.domain.is_empty() || self.domain.iter().any(|l| l.is_empty() || l.len() > 63) {
            return Err(DecodeError::Invalid("DNS zone settings: the domain has an empty or over-long label".into()));
        }
        Ok(())
    }
}

/// One healthy instance of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The node whose address this is (SRV target `<node>.node.<domain>`); `None`: the
    /// instance has its own address (SRV target `<hex>.addr.<domain>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Lowercase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// A service's healthy instances (a service with none has no message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecords {
    pub index: u64,
    pub targets: Vec<Target>,
}

impl Payload for ServiceRecords {
    const WHAT: &'static str = "DNS service records";
    fn validate(&self) -> Result<(), DecodeError> {
        if self.targets.len() > MAX_TARGETS {
            return Err(DecodeError::Invalid(format!("DNS service records: over {MAX_TARGETS} targets")));
        }
        Ok(())
    }
}

/// A node's address and meta (`<node>.node.<domain>`: A/AAAA and TXT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecords {
    pub index: u64,
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    /// `key=value` from the node's meta.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub txt: Vec<String>,
}

impl Payload for NodeRecords {
    const WHAT: &'static str = "DNS node records";
}

/// The zone an agent answers from, as the retained messages built it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Zone {
    /// `None` until the settings arrive: nothing is answered before (REFUSED, so Unbound
    /// tries elsewhere).
    pub meta: Option<ZoneMeta>,
    pub services: HashMap<String, ServiceRecords>,
    pub nodes: HashMap<String, NodeRecords>,
}

/// One change to a [`Zone`]: a retained message, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Meta(ZoneMeta),
    Service(String, Option<ServiceRecords>),
    Node(String, Option<NodeRecords>),
}

impl Zone {
    /// Applies one change; `false` when it was refused (a name that is not a label, or
    /// the zone full).
    pub fn apply(&mut self, c: Change) -> bool {
        fn put<T>(map: &mut HashMap<String, T>, name: String, v: Option<T>) -> bool {
            if !valid_label(&name) {
                return false;
            }
            match v {
                None => drop(map.remove(&name)),
                Some(v) if map.len() < MAX_NAMES || map.contains_key(&name) => drop(map.insert(name, v)),
                Some(_) => return false,
            }
            true
        }
        match c {
            Change::Meta(m) => {
                let keep = |names: &[String]| names.iter().cloned().collect::<std::collections::HashSet<String>>();
                let (services, nodes) = (keep(&m.services), keep(&m.nodes));
                self.services.retain(|k, _| services.contains(k));
                self.nodes.retain(|k, _| nodes.contains(k));
                self.meta = Some(m);
            }
            Change::Service(name, v) => return put(&mut self.services, name, v),
            Change::Node(name, v) => return put(&mut self.nodes, name, v),
        }
        true
    }

    /// The highest catalog index any part of the zone carries.
    pub fn index(&self) -> u64 {
        let parts = self.services.values().map(|s| s.index).chain(self.nodes.values().map(|n| n.index));
        parts.chain(self.meta.as_ref().map(|m| m.index)).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_bounds() {
        assert!(valid_label("web") && valid_label("my_db-2"));
        for bad in ["", "Web", "a.b", "a/b", "+", "#", &"x".repeat(64)] {
            assert!(!valid_label(bad), "{bad}");
        }
        let mut z = Zone::default();
        let recs = || Some(ServiceRecords { index: 1, targets: vec![] });
        assert!(z.apply(Change::Service("web".into(), recs())));
        assert!(!z.apply(Change::Service("a/b".into(), recs())));
        assert!(z.apply(Change::Service("web".into(), None)));
        assert!(z.services.is_empty());
        for i in 0..MAX_NAMES {
            z.services.insert(format!("s{i}"), ServiceRecords { index: 1, targets: vec![] });
        }
        assert!(!z.apply(Change::Service("one-more".into(), recs())), "full");
        assert!(z.apply(Change::Service("s1".into(), recs())), "a replacement fits");
        // The settings list what the zone holds: the rest goes.
        let meta = ZoneMeta {
            index: 2,
            domain: vec!["rabble".into()],
            ttl: 0,
            negative_ttl: 0,
            a_record_limit: 0,
            datacenters: vec![],
            services: vec!["s1".into(), "s7".into()],
            nodes: vec![],
        };
        assert!(z.apply(Change::Meta(meta)));
        let mut left: Vec<&String> = z.services.keys().collect();
        left.sort();
        assert_eq!(left, ["s1", "s7"]);
    }
}
