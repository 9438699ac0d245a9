//! Tasks on Unix: a process group of their own (signals reach the task's children), the
//! task's user from /etc/passwd, exec's cgroup.

use crate::cgroup::TaskGroup;
pub use rustix::process::Signal;
use rustix::process::{Pid, kill_process_group};

/// A user's uid and gid from /etc/passwd.
fn lookup_user(name: &str) -> Result<(u32, u32), String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("reading /etc/passwd: {e}"))?;
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
        .next()
        .ok_or_else(|| format!("no user {name:?} on this node"))
}

/// Before the start: its own process group, its user.
pub fn prepare(cmd: &mut tokio::process::Command, user: Option<&str>) -> Result<(), String> {
    cmd.process_group(0);
    if let Some(user) = user {
        let (uid, gid) = lookup_user(user)?;
        cmd.uid(uid).gid(gid);
    }
    Ok(())
}

/// After the start: into its cgroup (exec).
pub fn contain(child: &tokio::process::Child, cgroup: Option<&TaskGroup>) -> Result<(), String> {
    match (cgroup, child.id()) {
        (Some(g), Some(pid)) => g.add(pid).map_err(|e| format!("cgroup: cannot add the task: {e}")),
        _ => Ok(()),
    }
}

/// The task has exited (nothing to release here).
pub fn ended(_pid: u32) {}

pub fn exit_signal(s: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(s)
}

/// Sends `sig` to the task's process group.
pub fn signal(pid: u32, sig: Signal) {
    if let Some(p) = Pid::from_raw(pid as i32) {
        let _ = kill_process_group(p, sig);
    }
}
