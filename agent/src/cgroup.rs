//! cgroup v2 for the exec driver: a cgroup per task under `/sys/fs/cgroup/rabble/`,
//! with `memory.max` (memory_max, else memory) and `cpu.weight` from its resources.
//! Everything here is the kernel's pseudo-filesystem: no disk writes.
//!
//! Pi OS leaves the memory controller off unless `cgroup_enable=memory` is on
//! `cmdline.txt`: the probe says so, and exec tasks are refused there (raw_exec runs).

use rabble_shared::msg::DriverFacts;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// Whether exec's limits can be enforced here.
pub fn probe() -> DriverFacts {
    let controllers = std::fs::read_to_string(Path::new(ROOT).join("cgroup.controllers")).unwrap_or_default();
    let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
    let (healthy, detail) = if controllers.is_empty() {
        (false, "no cgroup v2 at /sys/fs/cgroup".to_owned())
    } else if !has("memory") {
        (false, "the memory controller is off (Pi OS: add cgroup_enable=memory to cmdline.txt)".to_owned())
    } else {
        match std::fs::create_dir_all(Path::new(ROOT).join("rabble")) {
            Ok(()) => (true, format!("cgroup v2: {controllers}").trim().to_owned()),
            Err(e) => (false, format!("cannot create /sys/fs/cgroup/rabble: {e}")),
        }
    };
    DriverFacts { healthy, version: "cgroup2".into(), detail }
}

/// One task's cgroup; removed on drop (once its processes are gone).
#[derive(Debug)]
pub struct TaskGroup {
    path: PathBuf,
}

impl TaskGroup {
    /// Creates `rabble/<name>` with the limits (memory in MB; `cpu_mhz` becomes a weight).
    pub fn create(name: &str, memory_mb: u32, cpu_mhz: u32) -> std::io::Result<TaskGroup> {
        let parent = Path::new(ROOT).join("rabble");
        // Let children use the memory and cpu controllers.
        let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+memory +cpu");
        let path = parent.join(name);
        std::fs::create_dir_all(&path)?;
        std::fs::write(path.join("memory.max"), (u64::from(memory_mb) * 1024 * 1024).to_string())?;
        // No swap beyond the limit: the limit means what it says.
        let _ = std::fs::write(path.join("memory.swap.max"), "0");
        // cpu.weight is 1..10000 (100 = a default share); 100 MHz ~ weight 10.
        let weight = (cpu_mhz / 10).clamp(1, 10_000);
        let _ = std::fs::write(path.join("cpu.weight"), weight.to_string());
        Ok(TaskGroup { path })
    }

    /// Moves a process (and so its future children) into the cgroup.
    pub fn add(&self, pid: u32) -> std::io::Result<()> {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string())
    }

    /// Whether the kernel killed something here for memory (`memory.events` oom_kill).
    pub fn oom_killed(&self) -> bool {
        std::fs::read_to_string(self.path.join("memory.events"))
            .map(|s| s.lines().any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim() != "0")))
            .unwrap_or(false)
    }
}

impl Drop for TaskGroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.path);
    }
}
