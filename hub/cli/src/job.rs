//! `rabble job ...`: job files in, the hub's answers out. `validate` reads the file
//! here (no hub needed); the others talk to the hub's jobs API.

use rabble_hub::jobspec::{self, Given, Options};
use rabble_shared::api::{JobPlanView, JobStopped, JobSubmitted, JobVersion, JobView, NodeDrained, NodeEligibility};
use std::path::PathBuf;

/// What every command that reads a job file takes (Nomad's flags).
#[derive(Debug, Clone, clap::Args)]
pub struct FileArgs {
    /// The job file (Nomad HCL2).
    pub file: PathBuf,
    /// Set a variable: -var name=value (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from a file (HCL `name = value` lines, or JSON).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Accept blocks Rabble does not run yet (they are listed, not silently dropped).
    #[arg(long = "ignore-unsupported")]
    pub ignore_unsupported: bool,
    /// Print the job as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error(transparent)]
    File(#[from] jobspec::JobFileError),
    #[error(transparent)]
    Hub(#[from] crate::CliError),
    /// A command that waits gave up (`job restart`: an allocation did not come back).
    #[error("{0}")]
    Gave(String),
    /// A malformed argument (`-meta` without `=`).
    #[error("{0}")]
    Usage(String),
}

impl FileArgs {
    /// Reads and parses the file with its variables.
    pub fn parse(&self) -> Result<jobspec::Parsed, JobError> {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).map_err(|e| JobError::Read { path: p.display().to_string(), error: e })
        };
        let text = read(&self.file)?;
        let mut var_files = Vec::new();
        for f in &self.var_files {
            var_files.push((f.display().to_string(), read(f)?));
        }
        let opts = Options {
            given: Given { vars: self.vars.clone(), var_files },
            ignore_unsupported: self.ignore_unsupported,
        };
        Ok(jobspec::parse(&self.file.display().to_string(), &text, &opts)?)
    }
}

/// `rabble job validate FILE`: the file's problems with their places, or the job.
pub fn validate(args: &FileArgs) -> Result<(), JobError> {
    let parsed = args.parse()?;
    for w in &parsed.warnings {
        eprintln!("warning: {w}");
    }
    for i in &parsed.job.ignored {
        eprintln!("ignored: {i}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&parsed.job).unwrap_or_default());
    } else {
        let j = &parsed.job;
        let tasks: usize = j.groups.iter().map(|g| g.tasks.len()).sum();
        println!(
            "Job validation successful: {} ({}), {} group(s), {} task(s)",
            j.id,
            j.kind.as_str(),
            j.groups.len(),
            tasks
        );
    }
    Ok(())
}

/// Nomad writes long flags with one dash (`-var`, `-ignore-unsupported`, `-purge`):
/// accept that spelling too, by giving such words a second dash before clap reads them.
pub fn nomad_style_flags(args: impl Iterator<Item = String>) -> Vec<String> {
    args.map(|a| {
        let word = a.split('=').next().unwrap_or("");
        let is_long_single = word.len() > 2
            && word.starts_with('-')
            && !word.starts_with("--")
            && word[1..].chars().all(|c| c.is_ascii_lowercase() || c == '-');
        if is_long_single { format!("-{a}") } else { a }
    })
    .collect()
}

/// `/` in a job id (periodic launches: `backup/periodic-1700000000`) travels as `%2F`.
pub fn path_id(id: &str) -> String {
    id.replace('%', "%25").replace('/', "%2F")
}

pub(crate) fn ago(ms: u64) -> String {
    crate::table::ago(Some(rabble_shared::support::clock::now_ms().saturating_sub(ms)))
}

/// "in 59m" (or "now") until a unix-milliseconds time.
fn until(ms: u64) -> String {
    match crate::table::ago(Some(ms.saturating_sub(rabble_shared::support::clock::now_ms()))) {
        s if s == "0s ago" => "now".into(),
        s => format!("in {}", s.trim_end_matches(" ago")),
    }
}

/// The allocation table `job status` and `job run` print.
pub fn alloc_table(allocs: &[rabble_shared::alloc::Allocation]) -> String {
    let mut rows = Vec::new();
    for a in allocs {
        let status = match a.client_reason.as_str() {
            "" => a.client_status.as_str().to_owned(),
            r => format!("{} ({r})", a.client_status.as_str()),
        };
        let desired = if a.desired == rabble_shared::alloc::DesiredStatus::Run { "run" } else { "stop" };
        rows.push(vec![
            a.id.as_str().chars().take(8).collect(),
            a.node.to_string(),
            a.group.clone(),
            a.job_version.to_string(),
            desired.into(),
            status,
            ago(a.create_ms),
        ]);
    }
    crate::table::render(&["ID", "Node", "Group", "Version", "Desired", "Status", "Created"], &rows)
}

/// A job's summary as `job status ID` prints it.
pub fn print_job(v: &rabble_shared::api::JobView) {
    println!("ID            = {}", v.id);
    println!("Type          = {}", v.kind.as_str());
    println!("Priority      = {}", v.priority);
    println!("Version       = {}", v.version);
    println!("Status        = {}{}", v.status, if v.stopped { " (stopped)" } else { "" });
    if let Some(n) = v.next_launch_s {
        println!("Next launch   = {n} (Unix seconds)");
    }
    if let Some(q) = v.queue {
        println!("Parameterized = true");
        println!(
            "Dispatched    = {} queued, {} running, {} complete, {} failed",
            q.queued, q.running, q.complete, q.failed
        );
    }
    for i in &v.ignored {
        println!("Ignored       = {i}");
    }
    println!("\nSummary");
    let mut rows = Vec::new();
    for g in &v.groups {
        rows.push(vec![
            g.name.clone(),
            g.desired.to_string(),
            g.pending.to_string(),
            g.running.to_string(),
            g.complete.to_string(),
            g.failed.to_string(),
            g.lost.to_string(),
        ]);
    }
    print!(
        "{}",
        crate::table::render(&["Group", "Desired", "Pending", "Running", "Complete", "Failed", "Lost"], &rows)
    );
    for g in v.groups.iter().filter(|g| g.unplaced.is_some()) {
        println!("\nPlacement failure in group {:?}: {}", g.name, g.unplaced.as_deref().unwrap_or_default());
    }
    if !v.allocations.is_empty() {
        println!("\nAllocations");
        print!("{}", alloc_table(&v.allocations));
    }
}

/// `rabble job run FILE`: submits the job, then shows where it went.
#[allow(clippy::disallowed_methods)] // a synchronous CLI: a blocking sleep between polls is right
pub fn run(client: &crate::Client, args: &FileArgs, detach: bool) -> Result<(), JobError> {
    let parsed = args.parse()?;
    for w in &parsed.warnings {
        eprintln!("warning: {w}");
    }
    let r: JobSubmitted = client.post("/api/v1/jobs", &parsed.job)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        return Ok(());
    }
    match r.changed {
        true => println!("==> Job {:?} submitted: version {} (index {})", r.id, r.version, r.index),
        false => println!("==> Job {:?} is already running version {}: nothing to do", r.id, r.version),
    }
    if detach {
        return Ok(());
    }
    // Placements follow within moments: show them (Nomad's CLI monitors too).
    let path = format!("/api/v1/jobs/{}", path_id(&r.id));
    let mut view: JobView = client.get(&path)?;
    for _ in 0..50 {
        let placed =
            view.groups.iter().all(|g| g.unplaced.is_some() || g.pending + g.running + g.complete >= g.desired);
        if placed && !view.allocations.is_empty() || view.groups.iter().any(|g| g.unplaced.is_some()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        view = client.get(&path)?;
    }
    println!();
    print_job(&view);
    Ok(())
}

/// `rabble job plan FILE`: what running it would do. Exit code as Nomad's: 0 nothing
/// would be placed or stopped, 1 something would.
pub fn plan(client: &crate::Client, args: &FileArgs) -> Result<i32, JobError> {
    let parsed = args.parse()?;
    let p: JobPlanView = client.post("/api/v1/jobs/plan", &parsed.job)?;
    for w in &p.warnings {
        eprintln!("warning: {w}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
    } else {
        let sign = match p.change.as_str() {
            "new" => "+",
            "update" => "+/-",
            _ => " ",
        };
        println!("{sign} Job: {:?} ({}, version {})", p.id, p.change, p.version);
        // Field by field, as Nomad's `job plan -diff` (its default) shows them.
        if !p.diff.is_empty() {
            print_diff(&p.diff);
        }
        for a in &p.placements {
            println!("    + {} on {}", a.name, a.node);
        }
        for s in &p.stops {
            println!("    - {} on {} ({})", s.name, s.node, s.reason);
        }
        if p.in_place > 0 {
            println!("    ~ {} allocation(s) updated in place", p.in_place);
        }
        for (g, why) in &p.unplaced {
            println!("\nGroup {g:?} cannot be placed: {why}");
        }
        for t in &p.templates {
            println!("    template {} ({}/{}): {} {}", t.destination, t.group, t.task, t.status, t.detail);
        }
        if p.placements.is_empty() && p.stops.is_empty() && p.in_place == 0 && p.unplaced.is_empty() {
            println!("    (no changes)");
        }
    }
    Ok(if p.placements.is_empty() && p.stops.is_empty() { 0 } else { 1 })
}

/// `rabble job status [ID]`.
pub fn status(client: &crate::Client, id: Option<&str>, json: bool) -> Result<(), JobError> {
    match id {
        Some(id) => {
            let v: JobView = client.get(&format!("/api/v1/jobs/{}", path_id(id)))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print_job(&v);
            }
        }
        None => {
            let jobs: Vec<JobView> = client.get("/api/v1/jobs")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs).unwrap_or_default());
            } else {
                let rows: Vec<Vec<String>> = jobs
                    .iter()
                    .map(|j| {
                        vec![
                            j.id.clone(),
                            j.kind.as_str().into(),
                            j.priority.to_string(),
                            j.status.clone(),
                            ago(j.submit_ms),
                        ]
                    })
                    .collect();
                print!("{}", crate::table::render(&["ID", "Type", "Priority", "Status", "Submitted"], &rows));
            }
        }
    }
    Ok(())
}

/// `rabble job stop ID [-purge]`.
pub fn stop(client: &crate::Client, id: &str, purge: bool) -> Result<(), JobError> {
    let q = if purge { "?purge=true" } else { "" };
    let r: JobStopped = client.delete(&format!("/api/v1/jobs/{}{q}", path_id(id)))?;
    let what = match (purge, r.changed) {
        (true, _) => "stopped and purged",
        (false, true) => "stopped",
        (false, false) => "was already stopped",
    };
    println!("==> Job {id:?} {what}");
    Ok(())
}

/// `rabble job history ID`.
pub fn history(client: &crate::Client, id: &str, diffs: bool, json: bool) -> Result<(), JobError> {
    let q = if diffs { "?diffs=true" } else { "" };
    let versions: Vec<JobVersion> = client.get(&format!("/api/v1/jobs/{}/versions{q}", path_id(id)))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&versions).unwrap_or_default());
        return Ok(());
    }
    for (i, v) in versions.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let groups: Vec<&str> = v.job.groups.iter().map(|g| g.name.as_str()).collect();
        println!("Version     = {}", v.version);
        println!(
            "Submit Date = {}",
            v.submit_ms.map(rabble_shared::support::clock::date).unwrap_or_else(|| "-".into())
        );
        println!("Groups      = {}", groups.join(", "));
        if diffs && i + 1 < versions.len() {
            println!("Diff        =");
            print_diff(&v.diff);
        }
    }
    Ok(())
}

/// Field changes as Nomad prints them: `+` added, `-` removed, `~` changed.
fn print_diff(diff: &[rabble_shared::api::FieldChange]) {
    let show = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    if diff.is_empty() {
        println!("  (no field changed)");
    }
    for d in diff {
        match (&d.old, &d.new) {
            (None, _) => println!("  + {}: {}", d.path, show(&d.new)),
            (_, None) => println!("  - {}: {}", d.path, show(&d.old)),
            _ => println!("  ~ {}: {} => {}", d.path, show(&d.old), show(&d.new)),
        }
    }
}

/// `rabble job dispatch <job> [-meta k=v]... [payload file | -]`: one child job, queued
/// until a node has room; prints its id (scripts read the last line).
pub fn dispatch(
    client: &crate::Client,
    id: &str,
    meta: &[String],
    payload: Option<&std::path::Path>,
) -> Result<(), JobError> {
    let mut req = rabble_shared::job::dispatch::DispatchRequest::default();
    for m in meta {
        let Some((k, v)) = m.split_once('=') else {
            return Err(JobError::Usage(format!("-meta {m:?}: expected key=value")));
        };
        req.meta.insert(k.to_owned(), v.to_owned());
    }
    if let Some(p) = payload {
        let bytes = if p.as_os_str() == "-" {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map(|_| b)
        } else {
            std::fs::read(p)
        };
        let bytes = bytes.map_err(|e| JobError::Read { path: p.display().to_string(), error: e })?;
        use base64::Engine as _;
        req.payload = base64::engine::general_purpose::STANDARD.encode(bytes);
    }
    let r: rabble_shared::job::dispatch::Dispatched =
        client.post(&format!("/api/v1/jobs/{}/dispatch", path_id(id)), &req)?;
    println!("Dispatched Job ID = {}", r.id);
    Ok(())
}

/// `rabble job revert <job> <version>`: that version's spec runs again, as a new version.
pub fn revert(client: &crate::Client, id: &str, version: u64) -> Result<(), JobError> {
    let req = rabble_shared::api::RevertRequest { version };
    let r: JobSubmitted = client.post(&format!("/api/v1/jobs/{}/revert", path_id(id)), &req)?;
    println!("==> Job {id:?} reverted to version {version}: now version {}", r.version);
    Ok(())
}

/// `rabble node drain NODE [-disable] [-deadline 1h]` and `rabble node eligibility`.
pub fn drain(client: &crate::Client, node: &str, enable: bool, deadline_s: Option<u64>) -> Result<(), JobError> {
    let req = rabble_shared::api::DrainRequest { enable, deadline_s };
    let r: NodeDrained = client.post(&format!("/api/v1/nodes/{node}/drain"), &req)?;
    match r.drain_deadline_ms {
        Some(d) => println!("==> Node {node:?}: draining; what is left is stopped {}", until(d)),
        None => println!("==> Node {node:?}: drain ended, eligible again"),
    }
    Ok(())
}

pub fn eligibility(client: &crate::Client, node: &str, eligible: bool) -> Result<(), JobError> {
    let req = rabble_shared::api::EligibilityRequest { eligible };
    let r: NodeEligibility = client.post(&format!("/api/v1/nodes/{node}/eligibility"), &req)?;
    println!("==> Node {node:?} is {}", if r.eligible { "eligible" } else { "ineligible" });
    Ok(())
}

/// `rabble node forget <node>`: a down node leaves the catalog with its services.
pub fn forget(client: &crate::Client, node: &str) -> Result<(), JobError> {
    let r: rabble_shared::api::NodeForgotten = client.post(&format!("/api/v1/nodes/{node}/forget"), &())?;
    println!("==> Node {:?} forgotten, with its services and checks (catalog index {})", r.node.as_str(), r.index);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn nomad_style_flags_get_a_second_dash() {
        let args =
            ["rabble", "job", "run", "-var", "a=1", "-ignore-unsupported", "-var-file=x.hcl", "-f", "--json", "-"];
        let out = super::nomad_style_flags(args.iter().map(|s| s.to_string()));
        assert_eq!(
            out,
            ["rabble", "job", "run", "--var", "a=1", "--ignore-unsupported", "--var-file=x.hcl", "-f", "--json", "-"]
        );
    }
}
