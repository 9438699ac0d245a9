//! The node's side of the hub's named volumes: an NFS export is mounted once under
//! `<alloc_dir>/.volumes/<name>` for every allocation using it (by a thread: a dead
//! server never stalls the agent) and unmounted when the last one has gone; host and local
//! volumes are paths found on the node. A task sees its `volume_mount` bound into its
//! container, or linked at `<task dir>/<destination>` for a process.

use rabble_shared::AllocId;
use rabble_shared::assign::Assignment;
use rabble_shared::volume::Attach;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long a mount may take before its users fail (the kernel's own retries go on).
const MOUNT_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq)]
enum State {
    Mounting,
    Ready,
    Failed(String),
}

#[derive(Debug)]
struct Mount {
    users: BTreeSet<AllocId>,
    state: Arc<Mutex<State>>,
    asked: Instant,
}

/// Whether an allocation's volumes are there for its tasks.
#[derive(Debug, PartialEq)]
pub enum Ready {
    Yes,
    NotYet,
    Failed(String),
}

#[derive(Debug)]
pub struct Volumes {
    dir: PathBuf,
    mounts: BTreeMap<String, Mount>,
}

impl Volumes {
    pub fn new(alloc_dir: &Path) -> Volumes {
        Volumes { dir: alloc_dir.join(".volumes"), mounts: BTreeMap::new() }
    }

    /// An allocation arrives: its NFS exports are mounted, or their mount retried after
    /// a failure.
    pub fn claim(&mut self, a: &Assignment, now: Instant) {
        for (name, b) in &a.csi_volumes {
            let Attach { nfs: server, path, options } = b;
            if server.is_empty() {
                continue;
            }
            let m = self.mounts.entry(name.clone()).or_insert_with(|| Mount {
                users: BTreeSet::new(),
                state: Arc::new(Mutex::new(State::Failed(String::new()))),
                asked: now,
            });
            m.users.insert(a.alloc.clone());
            let mut st = m.state.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(*st, State::Failed(_)) {
                *st = State::Mounting;
                m.asked = now;
                let (state, dir) = (m.state.clone(), self.dir.join(name));
                let (name, server, path, options) = (name.clone(), server.clone(), path.clone(), options.clone());
                // On tokio's blocking pool: a dead server holds one of its threads, not the agent.
                tokio::task::spawn_blocking(move || {
                    let started = std::time::SystemTime::now();
                    let r = mount_nfs(&server, &path, &options, &dir);
                    let took = started.elapsed().unwrap_or_default().as_millis() as u64;
                    tracing::info!(volume = %name, export = %format!("{server}:{path}"), took_ms = took, result = ?r, "NFS mount");
                    *state.lock().unwrap_or_else(|e| e.into_inner()) = r.map_or_else(State::Failed, |()| State::Ready);
                });
            }
        }
    }

    /// Whether `a`'s volumes are ready: mounted, or present on this node.
    pub fn ready(&self, a: &Assignment, now: Instant) -> Ready {
        for (source, Attach { nfs: server, path, .. }) in &a.csi_volumes {
            let why = if server.is_empty() {
                if Path::new(path).is_dir() {
                    continue;
                }
                format!("{path} is not a directory on this node")
            } else {
                let Some(m) = self.mounts.get(source) else { return Ready::NotYet };
                match &*m.state.lock().unwrap_or_else(|e| e.into_inner()) {
                    State::Ready => continue,
                    State::Mounting if now.duration_since(m.asked) < MOUNT_WAIT => return Ready::NotYet,
                    State::Mounting => format!("no answer from {server} in {}s", MOUNT_WAIT.as_secs()),
                    State::Failed(e) => format!("mount {server}:{path}: {e}"),
                }
            };
            return Ready::Failed(format!("volume {source:?}: {why}"));
        }
        Ready::Yes
    }

    /// Where each of `a`'s group volumes is on this node, by the group's name for it
    /// (`host`: the node's host volumes).
    pub fn paths(&self, a: &Assignment, host: &BTreeMap<String, PathBuf>) -> BTreeMap<String, PathBuf> {
        let mut out = BTreeMap::new();
        for (name, v) in &a.volumes {
            let path = match (v.kind.as_str(), a.csi_volumes.get(&v.source)) {
                ("csi", Some(at)) if at.nfs.is_empty() => Some(PathBuf::from(&at.path)),
                ("csi", Some(_)) => Some(self.dir.join(&v.source)),
                ("csi", None) => None,
                _ => host.get(&v.source).cloned(),
            };
            out.extend(path.map(|p| (name.clone(), p)));
        }
        out
    }

    /// An allocation is gone: the exports it used lose a user; the last one unmounts.
    pub fn release(&mut self, alloc: &AllocId) {
        let mut unused = Vec::new();
        for (name, m) in self.mounts.iter_mut() {
            if m.users.remove(alloc) && m.users.is_empty() {
                unused.push(name.clone());
            }
        }
        for name in unused {
            self.mounts.remove(&name);
            let dir = self.dir.join(&name);
            // Lazily: a process still holding a file keeps it until it lets go.
            #[cfg(target_os = "linux")]
            match rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::DETACH) {
                Ok(()) => tracing::info!(volume = %name, "NFS export unmounted (no user left)"),
                Err(e) => tracing::debug!(volume = %name, error = %e, "nothing to unmount"),
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

/// Links `<task dir>/<destination>` to each volume a process task mounts.
pub fn link(task_dir: &Path, t: &rabble_shared::job::Task, paths: &BTreeMap<String, PathBuf>) -> Result<(), String> {
    for m in &t.volume_mounts {
        let Some(target) = paths.get(&m.volume) else { return Err(format!("volume_mount: no volume {:?}", m.volume)) };
        let rel = Path::new(m.destination.trim_start_matches('/'));
        if !rel.components().all(|c| matches!(c, std::path::Component::Normal(_))) {
            return Err(format!("volume_mount: destination {:?} is not a path in the task's directory", m.destination));
        }
        let at = task_dir.join(rel);
        if let Some(dir) = at.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let _ = std::fs::remove_file(&at); // a link from the task's last start
        #[cfg(unix)]
        let linked = std::os::unix::fs::symlink(target, &at);
        #[cfg(windows)]
        let linked = std::os::windows::fs::symlink_dir(target, &at);
        linked.map_err(|e| format!("cannot link {}: {e}", at.display()))?;
    }
    Ok(())
}

/// NFS volumes are mounted by Linux nodes only.
#[cfg(not(target_os = "linux"))]
fn mount_nfs(_server: &str, _path: &str, _options: &str, _dir: &Path) -> Result<(), String> {
    Err(format!("NFS volumes are mounted on Linux nodes, not on {}", std::env::consts::OS))
}

/// Mounts `server:path` on `dir` with the kernel's NFS client (NFSv4 unless `options`
/// ask for `vers=3`): a directory already mounted (the agent restarted) is kept.
#[cfg(target_os = "linux")]
fn mount_nfs(server: &str, path: &str, options: &str, dir: &Path) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    use std::os::unix::fs::MetadataExt;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    if dir.parent().is_some_and(|parent| dev(parent) != dev(dir)) {
        return Ok(());
    }
    let host = server.trim_start_matches('[').trim_end_matches(']');
    let addr = (host, 2049)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("cannot resolve {server}"))?;
    let v3 = options.split(',').any(|o| matches!(o, "vers=3" | "nfsvers=3" | "vers=2" | "nfsvers=2"));
    let data = match options {
        "" => format!("addr={}", addr.ip()),
        o => format!("{o},addr={}", addr.ip()),
    };
    let data = std::ffi::CString::new(data).map_err(|_| "options with a NUL byte".to_owned())?;
    let fs = if v3 { "nfs" } else { "nfs4" };
    let flags = rustix::mount::MountFlags::empty();
    rustix::mount::mount(format!("{server}:{path}"), dir, fs, flags, data.as_c_str()).map_err(reason)
}

/// What a failed mount means, in the words mount.nfs uses.
#[cfg(target_os = "linux")]
fn reason(e: rustix::io::Errno) -> String {
    use rustix::io::Errno;
    let what = match e {
        Errno::ACCESS => "access denied by server",
        Errno::PERM => "operation not permitted (the agent mounts as root)",
        Errno::NOENT => "no such export on the server",
        Errno::TIMEDOUT => "the server did not answer",
        Errno::CONNREFUSED => "connection refused (no NFS server there?)",
        Errno::HOSTUNREACH | Errno::NETUNREACH => "no route to the server",
        Errno::NODEV => "this kernel has no NFS client",
        Errno::INVAL => "the server or the options were refused",
        _ => "",
    };
    match what {
        "" => format!("{e}"),
        w => format!("{w} (errno {})", e.raw_os_error()),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn failures_read_as_mount_nfs_says_them() {
        assert_eq!(reason(rustix::io::Errno::ACCESS), "access denied by server (errno 13)");
        assert!(reason(rustix::io::Errno::NOMEM).len() > 3);
    }
}
