//! The built-in rules: what is wrong in a catalog right now, each as a condition with the
//! labels it fires with and how long it must hold (`for`). Thresholds come from hub.toml
//! (`[alert]`); every rule is on by default, as the homelab expects.

use super::Labels;
use crate::catalog::Catalog;
use rabble_shared::NodeId;
use rabble_shared::Status;
use rabble_shared::alloc::{ClientStatus, DesiredStatus};
use rabble_shared::api::NodeStatus;
use rabble_shared::msg::Heartbeat;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// The built-in rules' switches and thresholds (hub.toml `[alert.rules]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    pub node_down: bool,
    /// A check critical this long fires (Consul's `failures_before_critical` is the agent's).
    pub check_critical_for_ms: Option<u64>,
    pub alloc_failed: bool,
    /// More restarts than this in `restarts_window_ms` fires.
    pub restarts: u32,
    pub restarts_window_ms: u64,
    pub unplaceable: bool,
    pub disk_percent: Option<f64>,
    pub temperature_c: Option<f64>,
    pub throttled: bool,
    /// A periodic job's run not completed this long after it was due fires (`ops`).
    pub periodic_grace_ms: Option<u64>,
    /// A certificate expiring within this many days fires; one failing to renew too.
    pub cert_days: Option<u64>,
    pub reverted: bool,
    pub hub_member_down: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            node_down: true,
            check_critical_for_ms: Some(30_000),
            alloc_failed: true,
            restarts: 3,
            restarts_window_ms: 10 * 60_000,
            unplaceable: true,
            disk_percent: Some(90.0),
            temperature_c: Some(80.0),
            throttled: true,
            periodic_grace_ms: Some(3_600_000),
            cert_days: Some(14),
            reverted: true,
            hub_member_down: true,
        }
    }
}

/// Something wrong now: the labels it fires with, its words, how long it must hold, and
/// since when it holds where the catalog knows (a check's status change), so a hub that
/// restarts does not start a `for` over.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub for_ms: u64,
    pub since_ms: Option<u64>,
}

/// What the rules read beside the catalog.
pub struct Inputs<'a> {
    pub catalog: &'a Catalog,
    pub heartbeats: &'a HashMap<NodeId, Heartbeat>,
    /// Per (job, group): why it cannot be placed (the scheduler's words).
    pub unplaced: &'a BTreeMap<(String, String), String>,
    /// Jobs `auto_revert` rolled back: (the failed version, when).
    pub reverted: &'a BTreeMap<String, (u64, u64)>,
    /// The ACME certificates wanted, held and failing.
    pub certs: &'a [rabble_shared::api::CertStatus],
    /// The hub cluster as the leader sees it, when there is one.
    pub hubs: Option<&'a rabble_shared::api::ClusterStatus>,
    pub now_ms: u64,
}

pub(super) fn condition(
    name: &str,
    severity: &str,
    labels: &[(&str, &str)],
    summary: String,
    for_ms: u64,
) -> Condition {
    let mut l: Labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    l.insert("alertname".into(), name.into());
    l.insert("severity".into(), severity.into());
    Condition { labels: l, annotations: BTreeMap::from([("summary".to_owned(), summary)]), for_ms, since_ms: None }
}

/// A receiver whose last deliveries all failed (told to the others).
pub fn receiver_failing(receiver: &str, error: &str) -> Condition {
    let summary = format!("alerts cannot reach receiver {receiver}: {error}");
    condition("ReceiverFailing", "warning", &[("receiver", receiver)], summary, 0)
}

/// Every built-in condition that holds now.
pub fn conditions(t: &Thresholds, i: &Inputs<'_>) -> Vec<Condition> {
    let mut out = Vec::new();
    for (id, n) in &i.catalog.nodes {
        let node = id.as_str();
        if t.node_down && n.status == NodeStatus::Down && !n.is_external() {
            out.push(condition("NodeDown", "critical", &[("node", node)], format!("{node} is down: {}", n.reason), 0));
        }
        // A down node's other alerts keep their state (its last word): inhibited, not
        // resolved, so they neither say "resolved" now nor fire again when it is back.
        if let Some(after) = t.check_critical_for_ms {
            for c in n.checks.values().filter(|c| c.status == Status::Critical) {
                let service = c.service_id.as_ref().and_then(|sid| n.services.values().find(|s| &s.id == sid));
                let name = service.map_or("", |s| s.name.as_str());
                let labels = [("node", node), ("service", name), ("check", c.name.as_str())];
                let what = if name.is_empty() { format!("check {:?}", c.name) } else { format!("service {name}") };
                let summary = format!("{what} is critical on {node}: {}", c.output.lines().next().unwrap_or(""));
                let mut c2 = condition("CheckCritical", "critical", &labels, summary, after);
                c2.since_ms = Some(c.since_ms).filter(|s| *s > 0);
                out.push(c2);
            }
        }
        let Some(hb) = i.heartbeats.get(id) else { continue };
        if let Some(limit) = t.disk_percent {
            for d in hb.disks.iter().filter(|d| d.total_bytes > 0) {
                let pct = d.used_bytes as f64 * 100.0 / d.total_bytes as f64;
                if pct > limit {
                    let summary = format!("{} on {node} is {pct:.0} % full", d.mount);
                    out.push(condition("DiskFull", "warning", &[("node", node), ("mount", &d.mount)], summary, 60_000));
                }
            }
        }
        if let (Some(limit), Some(c)) = (t.temperature_c, hb.temperature_c)
            && f64::from(c) > limit
        {
            let summary = format!("{node} is at {c:.0} °C");
            out.push(condition("TemperatureHigh", "warning", &[("node", node)], summary, 60_000));
        }
        if let Some(th) = hb.throttled.as_ref().filter(|th| t.throttled && th.raw & 0xf != 0) {
            let now: Vec<&str> = th.flags.iter().filter(|f| !f.ends_with("-occurred")).map(String::as_str).collect();
            let summary = format!("{node}: {} (the Pi's power supply or cooling)", now.join(", "));
            out.push(condition("PiThrottled", "warning", &[("node", node)], summary, 0));
        }
    }
    for a in i.catalog.work.allocs.values().filter(|a| a.desired == DesiredStatus::Run) {
        let labels = [("job", a.job_id.as_str()), ("alloc", a.name.as_str()), ("node", a.node.as_str())];
        if t.alloc_failed && a.client_status == ClientStatus::Failed {
            let summary = format!("{} failed on {}: {}", a.name, a.node, a.client_reason);
            out.push(condition("AllocationFailed", "critical", &labels, summary, 0));
        }
        let since = i.now_ms.saturating_sub(t.restarts_window_ms);
        let recent = a
            .tasks
            .values()
            .flat_map(|t| &t.events)
            .filter(|e| e.at_ms >= since && e.text.contains("restarting in"))
            .count();
        if !a.client_status.is_terminal() && recent > t.restarts as usize {
            let mins = t.restarts_window_ms / 60_000;
            let summary = format!("{} restarted {recent} times in {mins} min on {}", a.name, a.node);
            out.push(condition("AllocationRestarting", "warning", &labels, summary, 0));
        }
    }
    if t.unplaceable {
        for ((job, group), why) in i.unplaced {
            let summary = format!("job {job}, group {group} cannot be placed: {why}");
            out.push(condition("JobUnplaceable", "warning", &[("job", job), ("group", group)], summary, 30_000));
        }
    }
    out.extend(super::ops::conditions(t, i));
    out
}
