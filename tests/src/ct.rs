//! Debian containers with systemd as PID 1 (tests/vm/build-ct.sh makes the root once per
//! suite, tests/vm/ct-run.sh boots a fresh copy of it under systemd-nspawn, unprivileged):
//! commands run inside through nsenter, host tools in the container's network.

use crate::card::run;
use crate::{tool, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// One booted container; shut down (and its cgroups removed) on drop.
pub struct Container {
    child: Child,
    leader: u32,
    name: String,
    pub root: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The root file system for a Debian suite (`bookworm`, `trixie`), built once into
/// target/ct-<suite>.
pub fn rootfs(suite: &str) -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let w = here.join(format!("../target/ct-{suite}"));
    run(Command::new("bash").arg(here.join("vm/build-ct.sh")).env("W", &w).env("SUITE", suite));
    w.join("rootfs")
}

impl Container {
    /// Boots a copy of `suite`'s root and waits until systemd says the system is up.
    /// Without `nesting`: no Proxmox here, so a stand-in for its AppArmor profile (which
    /// denies the mounts a unit's namespace needs): a seccomp filter denies unshare(2) to
    /// everything in the container — for systemd the same, a `DynamicUser=` unit fails
    /// with 226/NAMESPACE.
    pub fn boot(suite: &str, nesting: bool) -> Container {
        let nspawn: &[&str] = if nesting { &[] } else { &["--system-call-filter=~unshare"] };
        let base = rootfs(suite);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        run(Command::new("cp").arg("-a").arg(&base).arg(&root));
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("rabble-ct-{}-{n}", std::process::id());
        let log = dir.path().join("nspawn.log");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vm/ct-run.sh");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("bash")
            .arg(script)
            .arg(&name)
            .arg(&root)
            .args(nspawn)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut ct = Container { child, leader: 0, name, root, log, _dir: dir };
        // nspawn (the script execs it) forks the container's PID 1: systemd.
        ct.leader = wait_for("the container's systemd", Duration::from_secs(30), || {
            let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            kids.split_whitespace()
                .filter_map(|k| k.parse::<u32>().ok())
                .find(|k| std::fs::read_to_string(format!("/proc/{k}/comm")).is_ok_and(|c| c.trim() == "systemd"))
                .ok_or_else(|| ct.log_tail())
        });
        // Until its bus is up, systemctl cannot ask it.
        let state = wait_for("the container's boot", Duration::from_secs(60), || {
            let up = ct.exec(&["timeout", "60", "systemctl", "is-system-running", "--wait"]);
            let state = String::from_utf8_lossy(&up.stdout).trim().to_owned();
            if state.is_empty() {
                Err(format!("{}\n{}", String::from_utf8_lossy(&up.stderr), ct.log_tail()))
            } else {
                Ok(state)
            }
        });
        assert!(state == "running", "the container came up {state:?}: {}\n{}", ct.failed_units(), ct.log_tail());
        ct
    }

    /// A command inside the container: every namespace, as its root.
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new(tool("nsenter")).args(["-t", &self.leader.to_string(), "-a"]).args(args).output().unwrap()
    }

    /// A command inside that must succeed: its stdout.
    pub fn sh(&self, script: &str) -> String {
        let o = self.exec(&["sh", "-c", script]);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "in the container: {script}: {out}{}", String::from_utf8_lossy(&o.stderr));
        out
    }

    /// A host tool (dig, curl) in the container's network namespace only.
    pub fn net(&self, args: &[&str]) -> Output {
        Command::new(tool("nsenter")).args(["-t", &self.leader.to_string(), "-n"]).args(args).output().unwrap()
    }

    /// Puts a host file into the container (readable and executable by all: the user
    /// namespace maps the host's root to nobody).
    pub fn put(&self, path: &str, from: &Path) {
        self.write(path, &std::fs::read(from).unwrap(), 0o755);
    }

    /// Writes a file into the container, its directories made, owned by nobody inside.
    pub fn write(&self, path: &str, bytes: &[u8], mode: u32) {
        let to = self.root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(&to, bytes).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// curl in the container's network (the hub's API on its loopback): the body, or what
    /// went wrong.
    pub fn curl(&self, args: &[&str]) -> Result<String, String> {
        let mut a = vec!["curl", "-sS", "--fail-with-body", "--max-time", "5"];
        a.extend(args);
        let o = self.net(&a);
        if o.status.success() { Ok(String::from_utf8_lossy(&o.stdout).into_owned()) } else { Err(text(&o)) }
    }

    /// `curl` to the container's hub with the management token `rabble-hub install` left.
    pub fn api(&self, args: &[&str]) -> Result<String, String> {
        let token = self.sh("cat /etc/rabble/management.token 2>/dev/null || true");
        let header = format!("X-Consul-Token: {}", token.trim());
        let mut a = vec!["-H", header.as_str()];
        a.extend(args);
        self.curl(&a)
    }

    /// `rabble-hub install --name hub.lan` with the binary at /root/rabble-hub: its output.
    pub fn install_hub(&self) -> String {
        let o = self.exec(&["/root/rabble-hub", "install", "--name", "hub.lan"]);
        assert!(o.status.success(), "install: {}\n{}", text(&o), self.journal("rabble-hub"));
        text(&o)
    }

    /// Waits for the hub in the container to be up (its API answers, its MQTT client
    /// connected): the health answer.
    pub fn hub_health(&self) -> String {
        wait_for("the hub's API in the container", Duration::from_secs(20), || {
            match self.curl(&["http://127.0.0.1:8500/api/v1/health"]) {
                Ok(h) if h.contains("\"mqtt_connected\":true") => Ok(h),
                h => Err(format!("{h:?}\n{}", self.journal("rabble-hub"))),
            }
        })
    }

    /// The main process of a unit inside the container (its PID there).
    pub fn main_pid(&self, unit: &str) -> String {
        self.sh(&format!("systemctl show -p MainPID --value {unit}")).trim().to_owned()
    }

    /// `dig +short` against the hub's DNS on the container's loopback.
    pub fn dig(&self, name: &str, qtype: &str) -> String {
        let o = self.net(&["dig", "@127.0.0.1", "-p", "8600", name, qtype, "+short", "+time=3"]);
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    pub fn failed_units(&self) -> String {
        String::from_utf8_lossy(&self.exec(&["systemctl", "--failed", "--no-pager"]).stdout).into_owned()
    }

    pub fn journal(&self, unit: &str) -> String {
        String::from_utf8_lossy(&self.exec(&["journalctl", "-u", unit, "--no-pager", "-n", "40"]).stdout).into_owned()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// A command's stdout and stderr, one after the other.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

impl Drop for Container {
    fn drop(&mut self) {
        // SIGTERM: nspawn asks the container's systemd to power off, then exits.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for h in ["", "unified/", "systemd/"] {
            let top = PathBuf::from(format!("/sys/fs/cgroup/{h}{}", self.name));
            let mut rm = Command::new("find");
            rm.arg(&top).args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"]).stderr(Stdio::null());
            let _ = rm.status();
        }
    }
}
