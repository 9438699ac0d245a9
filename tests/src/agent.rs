//! The agent side of the harness: `rabble-agent` processes (the host build, or the
//! aarch64 build under qemu-user), and `rabble-hub`'s offline admin commands.

use crate::{Proc, bin};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A static `agent-release` build of the agent for `target` (`cargo build --profile
/// agent-release --target <target> -p rabble-agent`; `.ci/test` builds aarch64,
/// `tests/budget-agent.sh` both).
pub fn release_agent(target: &str) -> PathBuf {
    let host_bin = bin("rabble-agent");
    let target_dir = host_bin.parent().and_then(Path::parent).expect("target dir");
    let exe = if target.contains("windows") { "rabble-agent.exe" } else { "rabble-agent" };
    let p = target_dir.join(target).join("agent-release").join(exe);
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build --profile agent-release --target {target} -p rabble-agent` \
         (bash .ci/test and tests/budget-agent.sh do)",
        p.display()
    );
    p
}

/// The static aarch64 agent, the one that goes on a Pi's SD card.
pub fn aarch64_agent() -> PathBuf {
    release_agent("aarch64-unknown-linux-musl")
}

/// The static armv7 agent, for 32-bit Pi OS (glibc, linked statically).
pub fn armv7_agent() -> PathBuf {
    release_agent("armv7-unknown-linux-gnueabihf")
}

/// A services directory `<dir>/<node>-services` with one service file: service `name` on
/// port 8080 whose HTTP check `<name>-http` asks `url` every second. Returns the directory.
pub fn http_service_dir(dir: &Path, node: &str, name: &str, url: &str) -> PathBuf {
    let services = dir.join(format!("{node}-services"));
    std::fs::create_dir_all(&services).unwrap();
    let text = format!(
        "service {{\n  name = \"{name}\"\n  port = 8080\n  check {{\n    id = \"{name}-http\"\n    http = \"{url}\"\n    \
         interval = \"1s\"\n  }}\n}}\n"
    );
    std::fs::write(services.join(format!("{name}.hcl")), text).unwrap();
    services
}

/// Runs `rabble-hub <args>` to completion; returns (success, stdout, stderr).
pub fn rabble_hub_cmd(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin("rabble-hub")).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

/// A running agent process with its own services directory and control socket.
pub struct Agent {
    pub proc: Proc,
    pub name: String,
    pub services_dir: PathBuf,
    pub socket: PathBuf,
    /// `--alloc-dir`, when given: the tasks left there are killed with the agent.
    pub alloc_dir: Option<PathBuf>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(d) = &self.alloc_dir {
            crate::kill_processes_under(d);
        }
    }
}

impl Agent {
    pub fn start(dir: &Path, name: &str, broker_port: u16, extra: &[&str]) -> Agent {
        let services_dir = dir.join(format!("{name}-services"));
        std::fs::create_dir_all(&services_dir).unwrap();
        Self::start_with(dir, name, broker_port, services_dir, extra)
    }

    pub fn start_with(dir: &Path, name: &str, broker_port: u16, services_dir: PathBuf, extra: &[&str]) -> Agent {
        let hub = format!("mqtt://127.0.0.1:{broker_port}");
        Self::spawn(Command::new(bin("rabble-agent")), dir, name, &hub, services_dir, extra)
    }

    /// An agent that runs work: the hub's key, its own alloc dir (`<dir>/<name>-alloc`),
    /// no Docker (tests that want Docker pass their own flags); waits until it is up.
    pub fn worker(dir: &Path, hub: &crate::Hub, name: &str) -> Agent {
        let key = hub.key();
        let alloc = dir.join(format!("{name}-alloc")).display().to_string();
        let a = Self::start(dir, name, hub.mqtt_port, &["--hub-key", &key, "--alloc-dir", &alloc, "--no-docker"]);
        hub.wait_node(name, rabble_shared::api::NodeStatus::Up, std::time::Duration::from_secs(15));
        a
    }

    /// An agent run by `cmd` (the host build, or the aarch64 one under qemu) against `hub`.
    pub fn spawn(mut cmd: Command, dir: &Path, name: &str, hub: &str, services_dir: PathBuf, extra: &[&str]) -> Agent {
        std::fs::create_dir_all(&services_dir).unwrap();
        let socket = dir.join(format!("{name}.sock"));
        cmd.arg("--hub")
            .arg(hub)
            .arg("--name")
            .arg(name)
            .arg("--services-dir")
            .arg(&services_dir)
            .arg("--socket")
            .arg(&socket)
            .arg("--advertise")
            .arg("127.0.0.1")
            .arg("--heartbeat-interval")
            .arg("1s")
            .args(extra);
        let proc = Proc::spawn(&format!("agent-{name}"), &mut cmd, dir);
        let alloc_dir =
            extra.iter().position(|a| *a == "--alloc-dir").and_then(|i| extra.get(i + 1)).map(PathBuf::from);
        Agent { proc, name: name.to_owned(), services_dir, socket, alloc_dir }
    }

    /// Runs `rabble-agent <args> --socket <ours>`; returns (success, stderr).
    pub fn ctl(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(bin("rabble-agent")).args(args).arg("--socket").arg(&self.socket).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    pub fn write_service(&self, file: &str, text: &str) {
        std::fs::write(self.services_dir.join(file), text).unwrap();
    }

    pub fn remove_service(&self, file: &str) {
        std::fs::remove_file(self.services_dir.join(file)).unwrap();
    }
}
