//! The zone as the nodes get it (`rabble_shared::dns`): what each retained topic under
//! `rabble/hub/dns/` should hold, from the hub's own [`Zone`]. Pure; the hub's `dns-mirror`
//! task keeps the topics (`crate::retained` in the hub), and every agent answers from them.

use super::zone::{DnsSettings, Zone};
use rabble_shared::dns::{self, NodeRecords, ServiceRecords, Target, ZoneMeta};
use std::collections::BTreeMap;

/// The zone's retained messages: the settings, and one message per service and node
/// whose name can be a topic level (a name that cannot is no DNS label either).
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub meta: ZoneMeta,
    pub services: BTreeMap<String, ServiceRecords>,
    pub nodes: BTreeMap<String, NodeRecords>,
}

/// The node a target's SRV name points at (`<node>.node.<domain>.`), if it does.
fn node_of(t: &super::zone::Target) -> Option<String> {
    let mut labels = t.srv_target.iter();
    let first = String::from_utf8_lossy(labels.next()?).into_owned();
    (labels.next() == Some(b"node".as_slice())).then_some(first)
}

pub fn published(zone: &Zone, s: &DnsSettings) -> Published {
    let mut datacenters: Vec<String> = zone.datacenters.iter().cloned().collect();
    datacenters.sort();
    let services: BTreeMap<String, ServiceRecords> = zone
        .services
        .iter()
        .filter(|(name, _)| dns::valid_label(name))
        .map(|(name, targets)| {
            let targets = targets
                .iter()
                .take(dns::MAX_TARGETS)
                .map(|t| Target { ip: t.ip, port: t.port, node: node_of(t), tags: t.tags.clone() })
                .collect();
            (name.clone(), ServiceRecords { index: zone.index, targets })
        })
        .collect();
    let nodes = zone
        .nodes
        .iter()
        .filter(|(name, _)| dns::valid_label(name))
        .map(|(name, n)| (name.clone(), NodeRecords { index: zone.index, ips: n.ips.clone(), txt: n.txt.clone() }))
        .collect::<BTreeMap<String, NodeRecords>>();
    let meta = ZoneMeta {
        index: zone.index,
        domain: s.domain.clone(),
        ttl: s.ttl,
        negative_ttl: s.negative_ttl,
        a_record_limit: s.a_record_limit,
        datacenters,
        services: services.keys().cloned().collect(),
        nodes: nodes.keys().cloned().collect(),
    };
    Published { meta, services, nodes }
}

#[cfg(test)]
#[path = "publish_tests.rs"]
mod tests;
