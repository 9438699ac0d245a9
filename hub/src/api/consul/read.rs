//! Consul's read endpoints from the catalog: nodes as Consul nodes (named by their node
//! id, as DNS names them), instances as services, and every instance's checks plus its
//! node's `serfHealth` (critical when the node is down), so a client aggregating
//! `Checks` the Consul way sees what Rabble's DNS and lanes see.

use super::{AppState, Fail, Params, answer, error, fail, snapshot};
use crate::api::door::may_read;
use crate::catalog::node::Node;
use crate::catalog::{Catalog, health};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rabble_core::acl::Resource;
use rabble_shared::api::NodeStatus;
use rabble_shared::consul;
use rabble_shared::msg::{CheckState, ServiceRegistration};
use rabble_shared::{NodeId, Status};
use std::collections::{BTreeMap, BTreeSet};

/// A Consul-style node id: a UUID made from the node id (stable across restarts).
fn uuid(id: &NodeId) -> String {
    let h = |seed: u64| {
        id.as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64 ^ seed, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
    };
    let (a, b) = (h(0), h(0x9e37_79b9_7f4a_7c15));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

fn datacenter(n: &Node) -> String {
    n.facts.as_ref().map_or_else(|| "dc1".to_owned(), |f| f.datacenter.to_ascii_lowercase())
}

pub(super) fn node(id: &NodeId, n: &Node, index: u64) -> consul::Node {
    let f = n.facts.as_ref();
    let address = f.map(|f| f.advertise.clone()).unwrap_or_default();
    let tagged = ["lan", "lan_ipv4", "wan", "wan_ipv4"].iter().map(|k| (k.to_string(), address.clone())).collect();
    consul::Node {
        id: uuid(id),
        node: id.to_string(),
        address,
        datacenter: datacenter(n),
        tagged_addresses: tagged,
        meta: f.map(|f| f.meta.clone()).unwrap_or_default(),
        create_index: 1,
        modify_index: index,
    }
}

fn service(reg: &ServiceRegistration, index: u64) -> consul::Service {
    consul::Service {
        id: reg.id.clone(),
        service: reg.name.clone(),
        tags: reg.tags.clone(),
        address: reg.address.clone().unwrap_or_default(),
        port: reg.port.unwrap_or(0),
        meta: reg.meta.clone(),
        enable_tag_override: false,
        create_index: 1,
        modify_index: index,
    }
}

fn status(s: Status) -> &'static str {
    match s {
        Status::Passing => "passing",
        Status::Warning => "warning",
        Status::Critical | Status::Maintenance => "critical",
    }
}

/// The node's own liveness, as Consul's `serfHealth` check.
fn serf(id: &NodeId, n: &Node, index: u64) -> consul::Check {
    let up = n.status == NodeStatus::Up;
    consul::Check {
        node: id.to_string(),
        check_id: "serfHealth".into(),
        name: "Serf Health Status".into(),
        status: if up { "passing" } else { "critical" }.into(),
        notes: String::new(),
        output: if up { "Agent alive and reachable".into() } else { format!("node is down: {}", n.reason) },
        service_id: String::new(),
        service_name: String::new(),
        service_tags: vec![],
        kind: String::new(),
        create_index: 1,
        modify_index: index,
    }
}

fn check(id: &NodeId, n: &Node, c: &CheckState, index: u64) -> consul::Check {
    let reg = c.service_id.as_ref().and_then(|sid| n.services.values().find(|r| &r.id == sid));
    let maintenance = c.status == Status::Maintenance;
    consul::Check {
        node: id.to_string(),
        check_id: match (maintenance, &c.service_id) {
            (true, Some(sid)) => format!("_service_maintenance:{sid}"),
            _ => c.id.clone(),
        },
        name: c.name.clone(),
        status: status(c.status).into(),
        notes: String::new(),
        output: c.output.clone(),
        service_id: c.service_id.clone().unwrap_or_default(),
        service_name: reg.map(|r| r.name.clone()).unwrap_or_default(),
        service_tags: reg.map(|r| r.tags.clone()).unwrap_or_default(),
        kind: format!("{:?}", c.kind).to_ascii_lowercase(),
        create_index: 1,
        modify_index: index,
    }
}

/// Every instance, with its node, filtered by `dc`.
fn instances<'a>(
    c: &'a Catalog,
    p: &'a Params,
) -> impl Iterator<Item = (&'a NodeId, &'a Node, &'a ServiceRegistration)> {
    c.nodes
        .iter()
        .filter(move |(_, n)| p.dc.as_ref().is_none_or(|dc| &datacenter(n) == dc))
        .flat_map(|(id, n)| n.services.values().map(move |r| (id, n, r)))
}

fn has_tags(reg: &ServiceRegistration, p: &Params) -> bool {
    p.tags.iter().all(|t| reg.tags.contains(t))
}

/// Parses the query, or the 400 Consul gives; and an unknown `dc` is Consul's 500.
fn params(c: &Catalog, raw: Option<&str>) -> Result<Params, Fail> {
    let p = Params::parse(raw).map_err(|e| fail(StatusCode::BAD_REQUEST, &e))?;
    if let Some(dc) = &p.dc
        && !c.nodes.is_empty()
        && !c.nodes.values().any(|n| &datacenter(n) == dc)
    {
        return Err(fail(StatusCode::INTERNAL_SERVER_ERROR, "No path to datacenter"));
    }
    Ok(p)
}

/// Parses, then waits as a blocking query asks.
async fn catalog_for(s: &AppState, raw: Option<String>) -> Result<(std::sync::Arc<Catalog>, Params), Fail> {
    let p = params(&s.catalog(), raw.as_deref())?;
    Ok((snapshot(s, &p).await, p))
}

pub async fn agent_self(State(s): State<AppState>) -> Response {
    let c = s.catalog();
    let mut dcs: BTreeMap<String, usize> = BTreeMap::new();
    for n in c.nodes.values() {
        *dcs.entry(datacenter(n)).or_default() += 1;
    }
    let dc = dcs.into_iter().max_by_key(|(_, n)| *n).map_or_else(|| "dc1".to_owned(), |(dc, _)| dc);
    let body = serde_json::json!({
        "Config": { "Datacenter": dc, "NodeName": "rabble-hub", "Server": true, "Version": "1.17.0",
                    "Revision": concat!("rabble-", env!("CARGO_PKG_VERSION")) },
        "Member": { "Name": "rabble-hub", "Status": 1, "Tags": { "role": "consul", "dc": dc } },
        "Meta": {},
    });
    answer(c.index, &body)
}

pub async fn leader(State(s): State<AppState>) -> Response {
    answer(s.catalog().index, &crate::api::cluster::leader(&s))
}

pub async fn peers(State(s): State<AppState>) -> Response {
    answer(s.catalog().index, &crate::api::cluster::peers(&s))
}

pub async fn datacenters(State(s): State<AppState>) -> Response {
    let c = s.catalog();
    let mut dcs: BTreeSet<String> = c.nodes.values().map(datacenter).collect();
    if dcs.is_empty() {
        dcs.insert("dc1".into());
    }
    answer(c.index, &dcs)
}

pub async fn catalog_services(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let (c, p) = match catalog_for(&s, q).await {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, _, reg) in instances(&c, &p) {
        if may_read(Resource::Service, &reg.name) {
            out.entry(reg.name.clone()).or_default().extend(reg.tags.iter().cloned());
        }
    }
    answer(c.index, &out)
}

pub async fn catalog_service(State(s): State<AppState>, Path(name): Path<String>, RawQuery(q): RawQuery) -> Response {
    let (c, p) = match catalog_for(&s, q).await {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let out: Vec<consul::CatalogService> = instances(&c, &p)
        .filter(|(_, _, r)| r.name == name && has_tags(r, &p))
        .map(|(id, n, r)| {
            let cn = node(id, n, c.index);
            consul::CatalogService {
                id: cn.id,
                node: cn.node,
                address: cn.address,
                datacenter: cn.datacenter,
                tagged_addresses: cn.tagged_addresses,
                node_meta: cn.meta,
                service_id: r.id.clone(),
                service_name: r.name.clone(),
                service_tags: r.tags.clone(),
                service_address: r.address.clone().unwrap_or_default(),
                service_port: r.port.unwrap_or(0),
                service_meta: r.meta.clone(),
                service_enable_tag_override: false,
                create_index: 1,
                modify_index: c.index,
            }
        })
        .collect();
    answer(c.index, &out)
}

pub async fn catalog_nodes(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let (c, p) = match catalog_for(&s, q).await {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let out: Vec<consul::Node> = c
        .nodes
        .iter()
        .filter(|(_, n)| p.dc.as_ref().is_none_or(|dc| &datacenter(n) == dc))
        .filter(|(id, _)| may_read(Resource::Node, id.as_str()))
        .map(|(id, n)| node(id, n, c.index))
        .collect();
    answer(c.index, &out)
}

pub async fn catalog_node(State(s): State<AppState>, Path(name): Path<String>, RawQuery(q): RawQuery) -> Response {
    let (c, _) = match catalog_for(&s, q).await {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let found = NodeId::from_name(&name).and_then(|id| c.nodes.get_key_value(&id));
    match found {
        // Consul answers an unknown node with `null`.
        None => answer(c.index, &serde_json::Value::Null),
        Some((id, n)) => {
            let services = n.services.values().map(|r| (r.id.clone(), service(r, c.index))).collect();
            answer(c.index, &consul::NodeServices { node: node(id, n, c.index), services })
        }
    }
}

/// The checks of one instance, its node's `serfHealth` first.
fn instance_checks(id: &NodeId, n: &Node, reg: &ServiceRegistration, index: u64) -> Vec<consul::Check> {
    std::iter::once(serf(id, n, index)).chain(health::checks(n, reg).map(|c| check(id, n, c, index))).collect()
}

pub async fn health_service(State(s): State<AppState>, Path(name): Path<String>, RawQuery(q): RawQuery) -> Response {
    let (c, p) = match catalog_for(&s, q).await {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let out: Vec<consul::HealthEntry> = instances(&c, &p)
        .filter(|(_, _, r)| r.name == name && has_tags(r, &p))
        .filter(|(_, n, r)| !p.passing || health::status(n, r) == Status::Passing)
        .map(|(id, n, r)| consul::HealthEntry {
            node: node(id, n, c.index),
            service: service(r, c.index),
            checks: instance_checks(id, n, r, c.index),
        })
        .collect();
    answer(c.index, &out)
}

pub async fn health_checks(State(s): State<AppState>, Path(name): Path<String>, RawQuery(q): RawQuery) -> Response {
    let (c, p) = match catalog_for(&s, q).await {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let out: Vec<consul::Check> = instances(&c, &p)
        .filter(|(_, _, r)| r.name == name)
        .flat_map(|(id, n, r)| {
            n.checks
                .values()
                .filter(|ch| ch.service_id.as_deref() == Some(r.id.as_str()))
                .map(|ch| check(id, n, ch, c.index))
        })
        .collect();
    answer(c.index, &out)
}

pub async fn health_node(State(s): State<AppState>, Path(name): Path<String>, RawQuery(q): RawQuery) -> Response {
    let (c, _) = match catalog_for(&s, q).await {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let out: Vec<consul::Check> = NodeId::from_name(&name)
        .and_then(|id| c.nodes.get_key_value(&id))
        .map(|(id, n)| {
            std::iter::once(serf(id, n, c.index)).chain(n.checks.values().map(|ch| check(id, n, ch, c.index))).collect()
        })
        .unwrap_or_default();
    answer(c.index, &out)
}

pub async fn health_state(State(s): State<AppState>, Path(state): Path<String>, RawQuery(q): RawQuery) -> Response {
    if !matches!(state.as_str(), "any" | "passing" | "warning" | "critical") {
        return error(StatusCode::BAD_REQUEST, &format!("Invalid state {state:?}: any, passing, warning or critical"));
    }
    let (c, p) = match catalog_for(&s, q).await {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let out: Vec<consul::Check> = c
        .nodes
        .iter()
        .filter(|(_, n)| p.dc.as_ref().is_none_or(|dc| &datacenter(n) == dc))
        .flat_map(|(id, n)| {
            std::iter::once(serf(id, n, c.index)).chain(n.checks.values().map(|ch| check(id, n, ch, c.index)))
        })
        .filter(|ch| state == "any" || ch.status == state)
        // A service's check as the service is readable; a node's own (serfHealth) as the node.
        .filter(|ch| match ch.service_name.as_str() {
            "" => may_read(Resource::Node, &ch.node),
            svc => may_read(Resource::Service, svc),
        })
        .collect();
    answer(c.index, &out)
}
