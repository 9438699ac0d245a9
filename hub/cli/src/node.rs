//! `rabble node status [node]`: every node (the `rabble nodes` table), or one node as
//! Nomad's `node status <node>` shows it — its status and why, eligibility and drain,
//! facts, the last heartbeat, its allocations and its services with their checks.

use crate::{CliError, Client, table};
use rabble_shared::alloc::Allocation;
use rabble_shared::api::{NodeView, ServiceView};
use rabble_shared::support::clock::date;

pub fn status(client: &Client, node: Option<&str>, json: bool) -> Result<(), CliError> {
    let Some(node) = node else { return crate::print_nodes(client, json) };
    let n: NodeView = client.get(&format!("/api/v1/nodes/{node}"))?;
    let allocs: Vec<Allocation> = client.get("/api/v1/allocations")?;
    let mut allocs: Vec<Allocation> = allocs.into_iter().filter(|a| a.node == n.id).collect();
    allocs.sort_by_key(|a| std::cmp::Reverse(a.modify_ms));
    let services: Vec<ServiceView> = client.services()?;
    if json {
        let v = serde_json::json!({ "node": n, "allocations": allocs });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    print!("{}", render(&n, &allocs, &services));
    Ok(())
}

/// One node, in Nomad's `key = value` style, then its allocations and services.
pub fn render(n: &NodeView, allocs: &[Allocation], services: &[ServiceView]) -> String {
    let mut out = String::new();
    let mut kv = |k: &str, v: String| out.push_str(&format!("{k:<12} = {v}\n"));
    kv("Name", n.id.to_string());
    kv("Status", format!("{} ({})", format!("{:?}", n.status).to_lowercase(), n.reason));
    kv("Eligibility", if n.eligible { "eligible".into() } else { "ineligible".into() });
    kv("Drain", n.drain_deadline_ms.map_or("false".into(), |d| format!("true (deadline {})", date(d))));
    kv("Last seen", table::ago(n.last_seen_ago_ms));
    if let Some(f) = &n.facts {
        kv("Address", f.advertise.clone());
        kv("Class", if f.node_class.is_empty() { "<none>".into() } else { f.node_class.clone() });
        kv("Datacenter", f.datacenter.clone());
        kv("Arch / OS", format!("{} / {} {}", f.arch, f.os.name, f.os.version));
        kv("CPUs", f.cpus.to_string());
        kv("Memory", format!("{} MB", f.memory_bytes >> 20));
        let drivers: Vec<String> =
            f.drivers.iter().map(|(d, s)| if s.healthy { d.clone() } else { format!("{d} (unhealthy)") }).collect();
        kv("Drivers", drivers.join(", "));
        kv("Agent", f.agent_version.clone());
    }
    if let Some(h) = &n.heartbeat {
        kv("CPU", format!("{:.0}%", h.cpu_percent));
        kv("Memory used", format!("{} / {} MB", h.memory_used_bytes >> 20, h.memory_total_bytes >> 20));
        kv("Load", format!("{:.2} {:.2} {:.2}", h.load[0], h.load[1], h.load[2]));
        if let Some(t) = h.temperature_c {
            kv("Temperature", format!("{t:.0}°C"));
        }
    }
    out.push_str("\nAllocations\n");
    if allocs.is_empty() {
        out.push_str("No allocations placed\n");
    } else {
        let rows: Vec<Vec<String>> = allocs
            .iter()
            .map(|a| {
                vec![
                    a.id.as_str()[..8.min(a.id.as_str().len())].to_owned(),
                    a.name.clone(),
                    a.job_version.to_string(),
                    format!("{:?}", a.desired).to_lowercase(),
                    a.client_status.as_str().to_owned(),
                    date(a.modify_ms),
                ]
            })
            .collect();
        out.push_str(&table::render(&["ID", "NAME", "VERSION", "DESIRED", "STATUS", "MODIFIED"], &rows));
    }
    let mine: Vec<ServiceView> = services
        .iter()
        .map(|s| ServiceView {
            name: s.name.clone(),
            instances: s.instances.iter().filter(|i| i.node == n.id).cloned().collect(),
        })
        .filter(|s| !s.instances.is_empty())
        .collect();
    out.push_str("\nServices\n");
    if mine.is_empty() {
        out.push_str("No services\n");
    } else {
        out.push_str(&table::services(&mine));
    }
    out
}
