//! The services a running allocation declares, as the engine registers any service:
//! ports resolved from the allocation's ports, the node's address, tags and checks as
//! written (Traefik tags included). A task's services are registered while that task
//! runs; a group's while any of its main tasks runs. Pure.

use super::Allocs;
use crate::services::{CheckDef, Probe, ServiceDef};
use rabble_shared::assign::Assignment;
use rabble_shared::job::{Check, CheckType, Service};
use rabble_shared::msg::{NodeFacts, ServiceRegistration};
use rabble_shared::{Status, TopicId};
use std::time::Duration;

/// A port label (or a number) to the port on the node.
fn resolve_port(a: &Assignment, p: Option<&str>) -> Option<u16> {
    let p = p?;
    a.ports.iter().find(|x| x.label == p).map(|x| x.value).or_else(|| p.parse().ok())
}

fn def(a: &Assignment, owner: &str, s: &Service, facts: &NodeFacts) -> Option<ServiceDef> {
    let id = format!("_rabble-{}-{owner}-{}", a.alloc, s.name);
    let key = TopicId::from_name(&id)?;
    let port = resolve_port(a, s.port.as_deref());
    let addr = s.address.clone().unwrap_or_else(|| facts.advertise.clone());
    let host = if addr.contains(':') { format!("[{addr}]") } else { addr.clone() };
    let checks = s
        .checks
        .iter()
        .enumerate()
        .filter_map(|(i, c)| check(&id, i, c, &host, c.port.as_deref().map_or(port, |p| resolve_port(a, Some(p)))))
        .collect();
    let mut meta = s.meta.clone();
    meta.insert("alloc_id".into(), a.alloc.to_string());
    meta.insert("job".into(), a.job_id.clone());
    let reg = ServiceRegistration {
        id: id.clone(),
        name: s.name.clone(),
        tags: s.tags.clone(),
        address: s.address.clone(),
        port,
        meta,
        source: format!("job {} allocation {}", a.job_id, a.name),
    };
    Some(ServiceDef { key, reg, checks })
}

fn check(service_id: &str, i: usize, c: &Check, host: &str, port: Option<u16>) -> Option<CheckDef> {
    let id = format!("{service_id}-check-{i}");
    let probe = match c.kind {
        CheckType::Http => {
            let scheme = c.protocol.as_deref().unwrap_or("http");
            Probe::Http {
                url: format!("{scheme}://{host}:{}{}", port?, c.path.as_deref().unwrap_or("/")),
                method: c.method.clone().unwrap_or_else(|| "GET".into()),
                headers: c.header.iter().flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone()))).collect(),
                body: c.body.clone().unwrap_or_default(),
                tls_skip_verify: c.tls_skip_verify,
            }
        }
        CheckType::Tcp => Probe::Tcp { addr: format!("{host}:{}", port?) },
        CheckType::Script => Probe::Script { args: c.command.iter().cloned().chain(c.args.iter().cloned()).collect() },
    };
    let initial = match c.initial_status.as_deref() {
        Some("passing") => Status::Passing,
        Some("warning") => Status::Warning,
        _ => Status::Critical,
    };
    Some(CheckDef {
        key: TopicId::from_name(&id)?,
        name: if c.name.is_empty() { format!("service {service_id} check") } else { c.name.clone() },
        id,
        service_id: Some(service_id.to_owned()),
        probe,
        interval: Duration::from_millis(c.interval_ms).max(crate::services::MIN_INTERVAL),
        timeout: Duration::from_millis(c.timeout_ms),
        initial,
        deregister_critical_after: None,
        success_before_passing: c.success_before_passing,
        failures_before_critical: c.failures_before_critical,
    })
}

/// Every service of every running allocation.
pub fn service_defs(allocs: &Allocs, facts: &NodeFacts) -> Vec<ServiceDef> {
    let mut out = Vec::new();
    for (a, running) in allocs.running() {
        let main_running = a.tasks.iter().any(|t| t.lifecycle.is_none() && running.contains(&t.name.as_str()));
        if main_running {
            out.extend(a.services.iter().filter_map(|s| def(a, &a.group, s, facts)));
        }
        for t in a.tasks.iter().filter(|t| running.contains(&t.name.as_str())) {
            out.extend(t.services.iter().filter_map(|s| def(a, &t.name, s, facts)));
        }
    }
    out
}
