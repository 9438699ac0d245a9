//! `PUT /v1/catalog/register` and `/v1/catalog/deregister`: services on machines
//! without an agent (a Proxmox host's UI, a printer, a NAS), as py-consul and Ansible
//! register them. They become an *external* node ([`EXTERNAL`] as its agent version):
//! up until deregistered (no heartbeat expected), never given work, its checks set by
//! whoever registers them (a check registered without a status is critical, as
//! Consul's are). A node run by a Rabble agent cannot be registered over.

use super::super::AppState;
use super::{Fail, error, fail};
use crate::catalog::Update;
use crate::catalog::node::NodeUpdate;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rabble_shared::consul::{Deregister, Register, RegisterCheck};
use rabble_shared::msg::{CheckKind, CheckState, NodeFacts, OsFacts, ServiceRegistration};
use rabble_shared::support::clock::now_ms;
use rabble_shared::{NodeId, Status, TopicId};

use crate::catalog::node::EXTERNAL;
use rabble_core::acl::{Cap, Need, Resource};

/// What writing a registration needs (Consul's rules, folded to Rabble's): a service's
/// name `service:register`; the external node alone (its facts, its own checks, forgetting
/// it) `node:write` on its name.
#[allow(clippy::result_large_err)] // the refusal itself, built once per refused request
fn allowed(node: &str, service: Option<&str>) -> Result<(), Response> {
    let need = match service {
        Some(name) => Need::new(Resource::Service, Cap::Register, name),
        None => Need::new(Resource::Node, Cap::Write, node),
    };
    crate::api::door::check(&need)
}

/// The name of the service `service_id` on `node` in the catalog, if registered there.
fn service_name(s: &AppState, node: &str, service_id: &str) -> Option<String> {
    let c = s.catalog();
    let n = c.nodes.get(&NodeId::from_name(node)?)?;
    n.services.values().find(|r| r.id == service_id).map(|r| r.name.clone())
}

async fn write(s: &AppState, updates: Vec<Update>) -> Result<u64, Fail> {
    let mut index = 0;
    for update in updates {
        index = s.commit(update).await.map_err(|e| fail(e.0, &e.1))?.index;
    }
    Ok(index)
}

/// Consul's field names, which it matches case-insensitively (Go's JSON decoder does;
/// py-consul sends `node`, `address`).
const FIELDS: [&str; 15] = [
    "Node",
    "Address",
    "Datacenter",
    "NodeMeta",
    "Service",
    "Check",
    "Checks",
    "ID",
    "Tags",
    "Port",
    "Meta",
    "CheckID",
    "Name",
    "Status",
    "ServiceID",
];

/// Renames keys to Consul's casing, except inside user maps (`Meta`, `NodeMeta`).
fn canonical(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let k = FIELDS.iter().find(|f| f.eq_ignore_ascii_case(&k)).map_or(k, |f| f.to_string());
                    let v = if k == "Meta" || k == "NodeMeta" { v } else { canonical(v) };
                    (k, v)
                })
                .collect(),
        ),
        serde_json::Value::Array(a) => serde_json::Value::Array(a.into_iter().map(canonical).collect()),
        other => other,
    }
}

pub(super) fn json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Fail> {
    let bad = |e: serde_json::Error| fail(StatusCode::BAD_REQUEST, &format!("Request decode failed: {e}"));
    let v: serde_json::Value = serde_json::from_slice(body).map_err(bad)?;
    serde_json::from_value(canonical(v)).map_err(bad)
}

/// The external node's id, refusing an agent's node.
fn external_node(s: &AppState, name: &str) -> Result<NodeId, Fail> {
    let id = NodeId::from_name(name)
        .ok_or_else(|| fail(StatusCode::BAD_REQUEST, &format!("Node {name:?} has no character usable as an id")))?;
    let c = s.catalog();
    if let Some(n) = c.nodes.get(&id)
        && n.facts.as_ref().is_some_and(|f| f.agent_version != EXTERNAL)
    {
        return Err(fail(
            StatusCode::CONFLICT,
            &format!(
                "node {id} is run by a Rabble agent: its services come from its own files; register under another node name"
            ),
        ));
    }
    Ok(id)
}

fn status(s: Option<&str>) -> Result<Status, Fail> {
    match s.unwrap_or("critical") {
        "passing" => Ok(Status::Passing),
        "warning" => Ok(Status::Warning),
        "critical" => Ok(Status::Critical),
        other => Err(fail(StatusCode::BAD_REQUEST, &format!("Invalid check status {other:?}"))),
    }
}

fn check_update(node: &NodeId, c: &RegisterCheck, service: Option<&str>) -> Result<Update, Fail> {
    let id = c.check_id.clone().unwrap_or_else(|| c.name.clone());
    let key =
        TopicId::from_name(&id).ok_or_else(|| fail(StatusCode::BAD_REQUEST, "a check needs a CheckID or Name"))?;
    let output = if c.output.is_empty() { c.notes.clone() } else { c.output.clone() };
    let state = CheckState {
        id,
        name: if c.name.is_empty() { key.to_string() } else { c.name.clone() },
        service_id: c.service_id.clone().or_else(|| service.map(str::to_owned)),
        kind: CheckKind::Ttl,
        status: status(c.status.as_deref())?,
        output,
        since_ms: now_ms(),
    };
    Ok(Update::Node(node.clone(), NodeUpdate::Check(key, Some(state))))
}

pub async fn register(State(s): State<AppState>, body: Bytes) -> Response {
    let r: Register = match json(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    // The body's service; each check bound to another service of the node, that one's.
    let mut names: Vec<Option<String>> = vec![r.service.as_ref().map(|svc| svc.service.clone())];
    for c in r.check.iter().chain(&r.checks) {
        if let Some(sid) = &c.service_id
            && r.service.as_ref().is_none_or(|svc| svc.id.as_ref().unwrap_or(&svc.service) != sid)
        {
            names.push(service_name(&s, &r.node, sid));
        }
    }
    for name in &names {
        if let Err(denied) = allowed(&r.node, name.as_deref()) {
            return denied;
        }
    }
    let node = match external_node(&s, &r.node) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    if r.address.is_empty() {
        return error(StatusCode::BAD_REQUEST, "Must provide address");
    }
    let facts = NodeFacts {
        name: r.node.clone(),
        hostname: r.node.clone(),
        arch: String::new(),
        os: OsFacts { name: String::new(), version: String::new(), kernel: String::new() },
        cpus: 0,
        memory_bytes: 0,
        disks: vec![],
        addresses: vec![r.address.clone()],
        advertise: r.address.clone(),
        agent_version: EXTERNAL.into(),
        node_class: "external".into(),
        datacenter: r.datacenter.clone().unwrap_or_else(|| "dc1".into()),
        meta: r.node_meta.clone(),
        drivers: Default::default(),
        host_volumes: Default::default(),
        cpu_total_mhz: None,
        tls_lanes: Vec::new(),
        interfaces: Default::default(),
        alloc_dir: String::new(),
        storage: Vec::new(),
    };
    let mut updates = vec![
        Update::Node(node.clone(), NodeUpdate::Facts(Box::new(facts))),
        Update::Node(node.clone(), NodeUpdate::Eligibility(false)),
    ];
    let mut service_id = None;
    if let Some(svc) = &r.service {
        let id = svc.id.clone().unwrap_or_else(|| svc.service.clone());
        let Some(key) = TopicId::from_name(&id) else {
            return error(StatusCode::BAD_REQUEST, "a service needs an ID or a Service name");
        };
        let reg = ServiceRegistration {
            id: id.clone(),
            name: svc.service.clone(),
            tags: svc.tags.clone(),
            address: (!svc.address.is_empty()).then(|| svc.address.clone()),
            port: (svc.port != 0).then_some(svc.port),
            meta: svc.meta.clone(),
            source: "consul api: /v1/catalog/register".into(),
        };
        updates.push(Update::Node(node.clone(), NodeUpdate::Service(key, Some(reg))));
        service_id = Some(id);
    }
    for c in r.check.iter().chain(&r.checks) {
        match check_update(&node, c, service_id.as_deref()) {
            Ok(u) => updates.push(u),
            Err(e) => return e.into_response(),
        }
    }
    match write(&s, updates).await {
        Ok(index) => super::answer(index, &true),
        Err(e) => e.into_response(),
    }
}

pub async fn deregister(State(s): State<AppState>, body: Bytes) -> Response {
    let d: Deregister = match json(&body) {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let service = match (&d.service_id, &d.check_id) {
        (Some(sid), _) => service_name(&s, &d.node, sid),
        (None, Some(cid)) => {
            let sid = {
                let c = s.catalog();
                let n = NodeId::from_name(&d.node).and_then(|id| c.nodes.get(&id));
                n.and_then(|n| n.checks.values().find(|ch| &ch.id == cid)?.service_id.clone())
            };
            sid.and_then(|sid| service_name(&s, &d.node, &sid))
        }
        (None, None) => None,
    };
    if let Err(denied) = allowed(&d.node, service.as_deref()) {
        return denied;
    }
    let node = match external_node(&s, &d.node) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let c = s.catalog();
    let Some(n) = c.nodes.get(&node) else { return super::answer(c.index, &true) };
    let mut updates = Vec::new();
    match (&d.service_id, &d.check_id) {
        (Some(sid), _) => {
            if let Some(key) = n.services.iter().find(|(_, r)| &r.id == sid).map(|(k, _)| k.clone()) {
                updates.push(Update::Node(node.clone(), NodeUpdate::Service(key, None)));
            }
            for (k, ch) in &n.checks {
                if ch.service_id.as_deref() == Some(sid.as_str()) {
                    updates.push(Update::Node(node.clone(), NodeUpdate::Check(k.clone(), None)));
                }
            }
        }
        (None, Some(cid)) => {
            if let Some(k) = n.checks.iter().find(|(_, ch)| &ch.id == cid).map(|(k, _)| k.clone()) {
                updates.push(Update::Node(node.clone(), NodeUpdate::Check(k, None)));
            }
        }
        (None, None) => updates.push(Update::Node(node.clone(), NodeUpdate::Forget)),
    }
    match write(&s, updates).await {
        Ok(index) => super::answer(index.max(c.index), &true),
        Err(e) => e.into_response(),
    }
}
