//! The built-in rules about running the homelab rather than its nodes: a periodic job
//! that has not completed a run it was due to (a dead man's switch, as Healthchecks.io:
//! its next run after the last success was due more than `periodic_grace` ago — failed,
//! stuck or never launched), a deployment rolled back by `auto_revert`, a certificate
//! expiring within `cert_days` or failing to renew, and a hub of the cluster the leader no
//! longer hears from.

use super::rules::{Condition, Inputs, Thresholds, condition};
use crate::scheduler::periodic::next_launch;
use rabble_shared::alloc::ClientStatus;
use rabble_shared::support::clock::date;

/// How a launch of a periodic job ended, as far as the catalog says.
#[derive(Debug, PartialEq)]
enum Run {
    Running,
    Done,
    Failed(String),
}

fn run_of(i: &Inputs<'_>, child: &str) -> Run {
    let allocs: Vec<_> = i.catalog.work.allocs.values().filter(|a| a.job_id == child).collect();
    if allocs.is_empty() || allocs.iter().any(|a| !a.client_status.is_terminal()) {
        return Run::Running;
    }
    match allocs.iter().find(|a| a.client_status == ClientStatus::Failed) {
        Some(a) => Run::Failed(a.client_reason.clone()),
        None => Run::Done,
    }
}

/// Every operations condition that holds now.
pub fn conditions(t: &Thresholds, i: &Inputs<'_>) -> Vec<Condition> {
    let mut out = Vec::new();
    if let Some(grace) = t.periodic_grace_ms {
        out.extend(periodic(grace, i));
    }
    if t.reverted {
        for (job, (failed, at_ms)) in i.reverted {
            let current = i.catalog.work.jobs.get(job).filter(|j| !j.stopped);
            if current.is_some_and(|j| j.version <= failed + 1) {
                let summary = format!(
                    "job {job}: version {failed} failed to deploy and was rolled back (auto_revert) at {}",
                    date(*at_ms)
                );
                let mut c = condition("DeploymentReverted", "warning", &[("job", job)], summary, 0);
                c.since_ms = Some(*at_ms);
                out.push(c);
            }
        }
    }
    if let Some(days) = t.cert_days {
        for cert in i.certs {
            let name = cert.domains.first().map_or("", String::as_str);
            let labels = [("domain", name), ("resolver", cert.resolver.as_str())];
            let left_s = cert.not_after.map(|na| na as i64 - (i.now_ms / 1000) as i64);
            if let Some(e) = &cert.error {
                let summary = format!("the certificate for {name} cannot be issued or renewed: {e}");
                // Worth a warning while the old one is good; critical when there is none.
                let sev = if left_s.is_some_and(|s| s > 0) { "warning" } else { "critical" };
                out.push(condition("CertificateFailing", sev, &labels, summary, 0));
            }
            if let Some(left) = left_s.filter(|s| *s < (days * 86_400) as i64) {
                let summary = if left > 0 {
                    format!("the certificate for {name} expires in {} days", left / 86_400)
                } else {
                    format!("the certificate for {name} has expired")
                };
                out.push(condition("CertificateExpiring", "warning", &labels, summary, 0));
            }
        }
    }
    if let Some(hubs) = i.hubs.filter(|_| t.hub_member_down) {
        for m in hubs.members.iter().filter(|m| m.id != hubs.this && m.voter) {
            let silent = m.last_contact_ms.is_none_or(|ms| ms > 10_000);
            if silent {
                let since =
                    m.last_contact_ms.map_or("never heard from".into(), |ms| format!("silent for {} s", ms / 1000));
                let summary =
                    format!("hub {} ({}) is {since}; the cluster keeps going while a majority is up", m.name, m.addr);
                out.push(condition("HubMemberDown", "critical", &[("hub", m.name.as_str())], summary, 0));
            }
        }
    }
    out
}

/// Periodic jobs whose run after their last success was due `grace` ago and has not done.
fn periodic(grace: u64, i: &Inputs<'_>) -> Vec<Condition> {
    let mut out = Vec::new();
    let now_s = (i.now_ms / 1000) as i64;
    for (id, j) in
        i.catalog.work.jobs.iter().filter(|(_, j)| !j.stopped && j.spec.periodic.as_ref().is_some_and(|p| p.enabled))
    {
        let prefix = format!("{id}/periodic-");
        let mut runs: Vec<(i64, Run)> = i
            .catalog
            .work
            .jobs
            .keys()
            .filter_map(|k| Some((k.strip_prefix(&prefix)?.parse::<i64>().ok()?, k)))
            .map(|(at, k)| (at, run_of(i, k)))
            .collect();
        runs.sort_by_key(|(at, _)| *at);
        let baseline =
            runs.iter().rev().find(|(_, r)| *r == Run::Done).map_or((j.submit_ms / 1000) as i64, |(at, _)| *at);
        let Some(due) = next_launch(&j.spec, baseline) else { continue };
        if due > now_s || ((now_s - due) as u64) * 1000 < grace {
            continue;
        }
        let why = match runs.iter().rev().find(|(_, r)| *r != Run::Running) {
            Some((at, Run::Failed(reason))) if *at >= due => {
                format!("its run launched {} failed: {reason}", date(*at as u64 * 1000))
            }
            _ if runs.last().is_some_and(|(at, r)| *at >= due && *r == Run::Running) => "its run is still going".into(),
            _ => "it has not run".into(),
        };
        let summary = format!("periodic job {id} has not completed the run due at {}: {why}", date(due as u64 * 1000));
        let mut c = condition("PeriodicMissed", "warning", &[("job", id)], summary, 0);
        c.since_ms = Some(due as u64 * 1000 + grace);
        out.push(c);
    }
    out
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
