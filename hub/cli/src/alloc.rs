//! `rabble alloc status|restart`: one allocation as Nomad's `alloc status` shows it
//! (its tasks' states and recent events, restarts, resources, its services' checks),
//! and restarting its tasks in place; `rabble job restart` restarts a job's
//! allocations that way, a batch at a time, each batch back up before the next (as
//! Nomad's `job restart`, which its CLI drives too).

use crate::job::{JobError, ago};
use rabble_shared::alloc::{Allocation, TaskStatus};
use rabble_shared::api::{AllocRestarted, AllocationView, JobView};
use rabble_shared::support::clock::{date, datetime};
use std::time::Duration;

/// `rabble alloc status ID`.
pub fn status(client: &crate::Client, id: &str, json: bool) -> Result<(), JobError> {
    let v: AllocationView = client.get(&format!("/api/v1/allocations/{id}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    print!("{}", render(&v));
    Ok(())
}

fn with_reason(what: &str, reason: &str) -> String {
    if reason.is_empty() { what.to_owned() } else { format!("{what} ({reason})") }
}

/// The whole status text (pure, for the tests).
pub fn render(v: &AllocationView) -> String {
    let a = &v.alloc;
    let mut out = String::new();
    let mut line = |k: &str, val: String| out.push_str(&format!("{k:<15}= {val}\n"));
    line("ID", a.id.to_string());
    line("Name", a.name.clone());
    line("Node", a.node.to_string());
    line("Job", format!("{} (version {})", a.job_id, a.job_version));
    line("Desired", with_reason(&format!("{:?}", a.desired).to_lowercase(), &a.desired_reason));
    line("Client status", with_reason(a.client_status.as_str(), &a.client_reason));
    line("Created", ago(a.create_ms));
    line("Modified", ago(a.modify_ms));
    line("Resources", format!("{} MHz CPU, {} MB memory", a.resources.cpu_mhz, a.resources.memory_mb));
    for p in &a.ports {
        line(
            &format!("Port {}", p.label),
            format!("{}{}", p.value, p.to.map(|t| format!(" -> {t}")).unwrap_or_default()),
        );
    }
    if let Some(prev) = &a.previous {
        line("Replaces", prev.to_string());
    }
    if let Some(w) = &v.template_wait {
        line("Templates", format!("waiting for {w}"));
    }
    for (name, t) in &a.tasks {
        out.push_str(&task(name, t));
    }
    out.push_str(&checks(v));
    out
}

fn task(name: &str, t: &TaskStatus) -> String {
    let when = |ms: Option<u64>| ms.map_or("N/A".to_owned(), date);
    let mut out = format!("\nTask {name:?} is {:?}{}\n", t.state, if t.failed { " (failed)" } else { "" });
    out.push_str(&format!("Started At     = {}\n", when(t.started_ms)));
    out.push_str(&format!("Finished At    = {}\n", when(t.finished_ms)));
    out.push_str(&format!("Total Restarts = {}\n", t.restarts));
    if let Some(code) = t.exit_code {
        out.push_str(&format!("Exit Code      = {code}\n"));
    }
    if !t.events.is_empty() {
        out.push_str("\nRecent Events:\n");
        let rows: Vec<Vec<String>> = t.events.iter().rev().map(|e| vec![datetime(e.at_ms), e.text.clone()]).collect();
        out.push_str(&crate::table::render(&["TIME", "EVENT"], &rows));
    }
    out
}

fn checks(v: &AllocationView) -> String {
    if v.services.is_empty() {
        return String::new();
    }
    let mut rows = Vec::new();
    for i in &v.services {
        for c in &i.checks {
            let output = c.output.lines().next().unwrap_or_default().to_owned();
            rows.push(vec![i.name.clone(), c.name.clone(), c.status.as_str().to_owned(), output]);
        }
        if i.checks.is_empty() {
            rows.push(vec![i.name.clone(), "-".into(), i.status.as_str().to_owned(), String::new()]);
        }
    }
    format!("\nService Checks:\n{}", crate::table::render(&["SERVICE", "CHECK", "STATUS", "OUTPUT"], &rows))
}

/// `rabble alloc restart ID`: its node restarts its running tasks in place.
pub fn restart(client: &crate::Client, id: &str) -> Result<(), JobError> {
    let r: AllocRestarted = client.post(&format!("/api/v1/allocations/{id}/restart"), &())?;
    println!("==> Allocation {} restarting (restart {})", r.id, r.restart);
    Ok(())
}

/// When the allocation last heard of its tasks (ms), to tell a later restart from it.
fn last_event_ms(a: &Allocation) -> u64 {
    a.tasks.values().flat_map(|t| t.events.iter().map(|e| e.at_ms)).max().unwrap_or(0)
}

/// Whether the allocation runs again after a restart asked for after `since_ms`.
fn back(a: &Allocation, since_ms: u64) -> bool {
    let restarted =
        a.tasks.values().any(|t| t.events.iter().any(|e| e.at_ms > since_ms && e.text.starts_with("restarted")));
    restarted && a.client_status == rabble_shared::alloc::ClientStatus::Running
}

/// `rabble job restart JOB [-batch-size N] [-batch-wait D]`: its running allocations,
/// `batch` at a time, each batch running again before the next starts.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)] // a synchronous CLI: blocking polls, its own clock
pub fn restart_job(
    client: &crate::Client,
    id: &str,
    batch: usize,
    wait: Duration,
    timeout: Duration,
) -> Result<(), JobError> {
    let job: JobView = client.get(&format!("/api/v1/jobs/{}", crate::job::path_id(id)))?;
    let live: Vec<Allocation> = job
        .allocations
        .into_iter()
        .filter(|a| a.desired == rabble_shared::alloc::DesiredStatus::Run)
        .filter(|a| a.client_status == rabble_shared::alloc::ClientStatus::Running)
        .collect();
    if live.is_empty() {
        println!("==> Job {id:?} has no running allocation to restart");
        return Ok(());
    }
    println!("==> Restarting {} allocation(s) of job {id:?}, {batch} at a time", live.len());
    for (i, chunk) in live.chunks(batch.max(1)).enumerate() {
        if i > 0 && !wait.is_zero() {
            std::thread::sleep(wait);
        }
        let started = std::time::Instant::now();
        for a in chunk {
            let _: AllocRestarted = client.post(&format!("/api/v1/allocations/{}/restart", a.id), &())?;
        }
        for a in chunk {
            let since = last_event_ms(a);
            loop {
                let v: AllocationView = client.get(&format!("/api/v1/allocations/{}", a.id))?;
                if back(&v.alloc, since) {
                    println!("    {} on {}: running again ({:.1} s)", a.name, a.node, started.elapsed().as_secs_f64());
                    break;
                }
                if v.alloc.client_status.is_terminal() || started.elapsed() > timeout {
                    return Err(JobError::Gave(format!(
                        "{} did not come back ({}; waited {:.0} s); the rest were not restarted",
                        a.name,
                        v.alloc.client_status.as_str(),
                        started.elapsed().as_secs_f64()
                    )));
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
    println!("==> Job {id:?} restarted");
    Ok(())
}
