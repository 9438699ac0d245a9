//! raw_exec and exec tasks: a command run as a child of the agent in its own process
//! group (exec: in its own cgroup with the task's limits; Windows: in a job object, so
//! its children end with it), watched by a small task that reports its exit. No helper
//! process per task. Output is kept in memory, the last few kilobytes per stream, for
//! `rabble alloc logs` and for failure reasons. What differs by OS is in `sys`.

use crate::cgroup::TaskGroup;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

#[cfg(unix)]
#[path = "unix.rs"]
mod sys;
#[cfg(windows)]
#[path = "windows.rs"]
mod sys;
pub use sys::{Signal, signal};

/// Bytes of output kept per stream per task.
pub const TAIL_BYTES: usize = 8 * 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct Launch {
    pub command: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub user: Option<String>,
    /// exec: (cgroup name, memory MB, CPU MHz).
    pub cgroup: Option<(String, u32, u32)>,
    /// qemu with graceful_shutdown: the monitor's socket.
    pub monitor: Option<PathBuf>,
}

/// Which task instance an exit is about (a restarted task has a new generation).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskKey {
    pub alloc: rabble_shared::AllocId,
    pub task: String,
    pub generation: u64,
}

#[derive(Debug)]
pub struct TaskExit {
    pub key: TaskKey,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Why the task could not start or be watched (the engine's own words).
    pub reason: Option<String>,
}

/// The last bytes of a stream.
#[derive(Debug, Default)]
pub struct Tail {
    pub bytes: VecDeque<u8>,
    /// Bytes ever written to the stream (an offset for followers).
    pub total: u64,
}

/// A task's two streams.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub stdout: Arc<Mutex<Tail>>,
    pub stderr: Arc<Mutex<Tail>>,
}

impl Tail {
    pub fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend(chunk);
        self.total += chunk.len() as u64;
        let extra = self.bytes.len().saturating_sub(TAIL_BYTES);
        self.bytes.drain(..extra);
    }

    /// What was written after `offset` (as far as it is still kept), how many bytes
    /// after `offset` are no longer kept, and the new offset.
    pub fn since(&self, offset: u64) -> (Vec<u8>, u64, u64) {
        let new = self.total.saturating_sub(offset);
        let kept = new.min(self.bytes.len() as u64);
        let from = self.bytes.len() - kept as usize;
        (self.bytes.range(from..).copied().collect(), new - kept, self.total)
    }

    /// The last non-empty line, for a failure's reason.
    pub fn last_line(&self) -> Option<String> {
        let text: Vec<u8> = self.bytes.iter().copied().collect();
        let text = String::from_utf8_lossy(&text);
        text.lines().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim().chars().take(200).collect())
    }
}

/// A started task.
#[derive(Debug)]
pub struct Running {
    pub pid: u32,
    pub monitor: Option<PathBuf>,
    pub cgroup: Option<TaskGroup>,
    pub stdout: Arc<Mutex<Tail>>,
    pub stderr: Arc<Mutex<Tail>>,
}

/// Starts the task; its exit is sent on `exits`.
pub fn spawn(l: Launch, key: TaskKey, exits: mpsc::Sender<TaskExit>) -> Result<Running, String> {
    let mut cmd = tokio::process::Command::new(&l.command);
    cmd.args(&l.args).envs(&l.env).current_dir(&l.cwd).kill_on_drop(false);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    sys::prepare(&mut cmd, l.user.as_deref())?;
    let cgroup = match &l.cgroup {
        Some((name, mem, cpu)) => Some(TaskGroup::create(name, *mem, *cpu).map_err(|e| format!("cgroup: {e}"))?),
        None => None,
    };
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {:?}: {e}", l.command))?;
    let pid = child.id().unwrap_or(0);
    if let Err(e) = sys::contain(&child, cgroup.as_ref()) {
        signal(pid, Signal::KILL);
        return Err(e);
    }
    let (stdout, stderr) = (Arc::new(Mutex::new(Tail::default())), Arc::new(Mutex::new(Tail::default())));
    if let Some(out) = child.stdout.take() {
        tokio::spawn(drain(out, stdout.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(drain(err, stderr.clone()));
    }
    tokio::spawn(async move {
        let status = child.wait().await;
        sys::ended(pid);
        let (code, signal) = match status {
            Ok(s) => (s.code(), sys::exit_signal(&s)),
            Err(_) => (None, None),
        };
        let _ = exits.send(TaskExit { key, code, signal, reason: None }).await;
    });
    Ok(Running { pid, monitor: l.monitor, cgroup, stdout, stderr })
}

async fn drain(mut r: impl tokio::io::AsyncRead + Unpin, tail: Arc<Mutex<Tail>>) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            return;
        }
        if let Ok(mut t) = tail.lock() {
            t.push(&buf[..n]);
        }
    }
}

/// Nomad's `kill_signal` names.
pub fn parse_signal(name: Option<&str>) -> Result<Signal, String> {
    Ok(match name.unwrap_or("SIGTERM").trim_start_matches("SIG") {
        "TERM" => Signal::TERM,
        "INT" => Signal::INT,
        "QUIT" => Signal::QUIT,
        "HUP" => Signal::HUP,
        "KILL" => Signal::KILL,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        other => return Err(format!("kill_signal {other:?} is not one Rabble sends")),
    })
}

/// Asks a VM to power down through its monitor (`system_powerdown`, an ACPI button
/// press), in a task of its own: QEMU runs the command only if the connection stays
/// open until its prompt comes back. A monitor that cannot be reached gets the VM a
/// SIGTERM instead; either way the kill at `kill_timeout` follows if it does not end.
#[cfg(feature = "qemu")]
pub fn powerdown(monitor: &std::path::Path, pid: u32) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let monitor = monitor.to_owned();
    tokio::spawn(async move {
        let talk = async {
            let mut s = tokio::net::UnixStream::connect(&monitor).await?;
            s.write_all(b"system_powerdown\n").await?;
            // The banner's prompt, then the one after the command: read until the second.
            let mut seen = Vec::new();
            let mut buf = [0u8; 512];
            while seen.windows(6).filter(|w| *w == b"(qemu)").count() < 2 {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            Ok::<(), std::io::Error>(())
        };
        match tokio::time::timeout(std::time::Duration::from_secs(5), talk).await {
            Ok(Ok(())) => tracing::info!(pid, "asked the VM to power down (system_powerdown)"),
            Ok(Err(e)) => {
                tracing::warn!(pid, monitor = %monitor.display(), error = %e, "the VM's monitor did not take system_powerdown; SIGTERM");
                signal(pid, Signal::TERM);
            }
            Err(_) => tracing::warn!(pid, "the VM's monitor did not answer system_powerdown within 5s"),
        }
    });
    true
}
