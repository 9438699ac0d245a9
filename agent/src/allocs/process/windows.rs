//! Tasks on Windows: each in a job object of its own (closing it ends the task's
//! children too) and a new process group, so a stop is Nomad's: CTRL_BREAK to the group,
//! then the job terminated at `kill_timeout`. No users (tasks run as the agent), no cgroups.
//! The Win32 calls are `crate::win32`'s.

use crate::cgroup::TaskGroup;
use crate::win32::{self, Job};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What a `kill_signal` becomes: every signal but KILL is a CTRL_BREAK (Nomad's choice
/// on Windows); KILL terminates the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(bool);

impl Signal {
    pub const TERM: Signal = Signal(false);
    pub const INT: Signal = Signal(false);
    pub const QUIT: Signal = Signal(false);
    pub const HUP: Signal = Signal(false);
    pub const USR1: Signal = Signal(false);
    pub const USR2: Signal = Signal(false);
    pub const KILL: Signal = Signal(true);
}

/// Running tasks' job objects, by the task's pid.
static JOBS: Mutex<BTreeMap<u32, Job>> = Mutex::new(BTreeMap::new());

pub fn prepare(cmd: &mut tokio::process::Command, user: Option<&str>) -> Result<(), String> {
    if let Some(u) = user {
        return Err(format!("user {u:?}: tasks on Windows run as the agent's account"));
    }
    // CREATE_NEW_PROCESS_GROUP: the task leads a group CTRL_BREAK can be sent to.
    cmd.creation_flags(0x0000_0200);
    Ok(())
}

/// After the start: into a job object that kills what is left in it when closed.
pub fn contain(child: &tokio::process::Child, _cgroup: Option<&TaskGroup>) -> Result<(), String> {
    let (Some(pid), Some(process)) = (child.id(), child.raw_handle()) else { return Ok(()) };
    let job = win32::job_for(process)?;
    JOBS.lock().unwrap_or_else(|e| e.into_inner()).insert(pid, job);
    Ok(())
}

/// The task has exited: its job is closed, which ends whatever it left running.
pub fn ended(pid: u32) {
    if let Some(job) = JOBS.lock().unwrap_or_else(|e| e.into_inner()).remove(&pid) {
        win32::close(job);
    }
}

pub fn exit_signal(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// CTRL_BREAK to the task's process group, or (KILL) its job terminated.
pub fn signal(pid: u32, sig: Signal) {
    if sig == Signal::KILL {
        if let Some(job) = JOBS.lock().unwrap_or_else(|e| e.into_inner()).get(&pid) {
            win32::terminate(*job);
        }
    } else {
        win32::ctrl_break(pid);
    }
}
