//! The workload side of the harness: submitting jobs with the real `rabble` CLI,
//! where their allocations run, the hub's assignment key, and the task processes an
//! agent leaves on the machine.

use crate::{Hub, bin, wait_for};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

impl Hub {
    /// `rabble <args>` against this hub: (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(bin("rabble")).args(args).env("RABBLE_ADDR", &self.http).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Writes `text` to `file` and submits it with `rabble job run -detach`, which must
    /// succeed.
    pub fn run_job(&self, file: &Path, text: &str) {
        std::fs::write(file, text).unwrap();
        let (ok, out, err) = self.cli(&["job", "run", "-detach", &file.display().to_string()]);
        assert!(ok, "rabble job run {}: {out}{err}", file.display());
    }

    /// The job's allocations that are wanted and running, by node.
    pub fn running_on(&self, job: &str) -> Vec<String> {
        let j: rabble_shared::api::JobView = self.get(&format!("/api/v1/jobs/{}", job.replace('/', "%2F"))).unwrap();
        j.allocations
            .iter()
            .filter(|a| a.client_status == rabble_shared::alloc::ClientStatus::Running)
            .filter(|a| a.desired == rabble_shared::alloc::DesiredStatus::Run)
            .map(|a| a.node.to_string())
            .collect()
    }

    /// The hub's public assignment key, as agents are configured with it.
    pub fn key(&self) -> String {
        let data_dir = self.data_dir.display().to_string();
        let (ok, out, err) = crate::rabble_hub_cmd(&["--data-dir", &data_dir, "key"]);
        assert!(ok, "rabble-hub key: {err}");
        out.trim().to_owned()
    }

    /// Waits until every instance of service `name` has the aggregate status `want`
    /// (and there is at least one).
    pub fn wait_check_named(&self, name: &str, want: rabble_shared::Status, timeout: Duration) {
        wait_for(&format!("service {name} {want}"), timeout, || {
            let found: Vec<rabble_shared::Status> = self
                .services()
                .into_iter()
                .filter(|s| s.name == name)
                .flat_map(|s| s.instances)
                .map(|i| i.status)
                .collect();
            if !found.is_empty() && found.iter().all(|s| *s == want) { Ok(()) } else { Err(format!("{found:?}")) }
        });
    }
}

/// The processes whose working directory is under `dir` (an agent's tasks).
pub fn pids_under(dir: &Path) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir)) {
            out.push(pid);
        }
    }
    out
}

pub fn processes_under(dir: &Path) -> usize {
    pids_under(dir).len()
}

/// Kills (SIGKILL) every process whose working directory is under `dir`: the tasks a
/// dead agent left behind, as a power cut would take them. Returns how many.
pub fn kill_processes_under(dir: &Path) -> usize {
    let pids = pids_under(dir);
    for pid in &pids {
        // (One may have exited since it was listed.)
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
    }
    pids.len()
}
