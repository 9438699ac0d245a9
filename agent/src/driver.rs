//! Task drivers: what this node can run work with — Docker and Podman (bollard, behind
//! the default-on `docker` and `podman` cargo features), raw_exec and exec (`cgroup` says
//! whether exec's limits can be enforced), java and qemu (`programs`, behind their
//! features). The probe's result goes into the node facts, where the scheduler reads it.
//!
//! A driver task probes at start and every minute and sends the engine a new map only
//! when it changed, so a flapping socket costs one facts publish per change.

use rabble_shared::msg::DriverFacts;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

pub type Drivers = BTreeMap<String, DriverFacts>;

/// Where the Docker engine listens when nothing is configured (Docker Desktop's named
/// pipe on Windows).
#[cfg(unix)]
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";
#[cfg(windows)]
pub const DEFAULT_DOCKER_SOCKET: &str = "//./pipe/docker_engine";
const EVERY: Duration = Duration::from_secs(60);

/// Which drivers to probe.
#[derive(Debug, Clone, Default)]
pub struct DriverConfig {
    /// The Docker engine's Unix socket; `None` turns the Docker driver off.
    pub docker_socket: Option<PathBuf>,
    /// raw_exec (a command as a child of the agent) and exec (the same in a cgroup), and
    /// the programs run the same way (java, qemu) where they are installed.
    pub exec: bool,
    /// Podman's Docker-compatible socket; probed only where it exists or was set.
    pub podman_socket: Option<PathBuf>,
}

/// Where Podman listens (as root) when nothing is configured.
pub const DEFAULT_PODMAN_SOCKET: &str = "/run/podman/podman.sock";

/// Versions already asked of the programs (see `programs::Cache`).
#[derive(Debug, Default)]
pub struct Caches {
    #[cfg(feature = "java")]
    java: crate::programs::Cache,
    #[cfg(feature = "qemu")]
    qemu: crate::programs::Cache,
}

/// Probes every driver once.
pub async fn probe(cfg: &DriverConfig) -> Drivers {
    probe_with(cfg, &mut Caches::default()).await
}

async fn probe_with(cfg: &DriverConfig, caches: &mut Caches) -> Drivers {
    let _ = &caches;
    let mut out = local(cfg);
    if let Some(sock) = &cfg.docker_socket {
        out.insert("docker".to_owned(), docker::probe(sock).await);
    }
    #[cfg(feature = "podman")]
    if let Some(sock) = cfg.podman_socket.as_ref().filter(|s| s.exists()) {
        out.insert("podman".to_owned(), docker::probe(sock).await);
    }
    if cfg.exec {
        #[cfg(feature = "java")]
        if let Some(j) = crate::programs::java(&mut caches.java).await {
            out.insert("java".to_owned(), j);
        }
        #[cfg(feature = "qemu")]
        if let Some(q) = crate::programs::qemu(&mut caches.qemu).await {
            out.insert("qemu".to_owned(), q);
        }
    }
    out
}

/// The drivers that need no probe beyond a look at the cgroup tree: raw_exec and exec.
fn local(cfg: &DriverConfig) -> Drivers {
    let mut out = Drivers::new();
    if cfg.exec {
        let detail = "commands run as the agent's user".to_owned();
        out.insert("raw_exec".to_owned(), DriverFacts { healthy: true, version: String::new(), detail });
        out.insert("exec".to_owned(), crate::cgroup::probe());
    }
    out
}

/// Probes at start and every minute; sends only changes. Ends when the engine is gone.
/// raw_exec and exec are sent first, on their own: a node takes such work at once, not
/// after Docker's socket (up to 3 s when it hangs) or `java -version` have answered.
pub async fn run(cfg: DriverConfig, tx: mpsc::Sender<Drivers>) {
    let mut last = Some(local(&cfg)).filter(|d| !d.is_empty());
    if let Some(d) = &last
        && tx.send(d.clone()).await.is_err()
    {
        return;
    }
    let mut caches = Caches::default();
    loop {
        let now = probe_with(&cfg, &mut caches).await;
        if last.as_ref() != Some(&now) {
            if tx.send(now.clone()).await.is_err() {
                return;
            }
            last = Some(now);
        }
        tokio::time::sleep(EVERY).await;
    }
}

#[cfg(feature = "docker")]
pub use docker::connect as connect_engine;

#[cfg(feature = "docker")]
mod docker {
    use super::DriverFacts;
    use std::path::Path;

    /// A client for the engine at `sock`: its Unix socket, or on Windows its named pipe.
    pub fn connect(sock: &Path, timeout_s: u64) -> Result<bollard::Docker, bollard::errors::Error> {
        #[cfg(unix)]
        return bollard::Docker::connect_with_unix(&sock.to_string_lossy(), timeout_s, bollard::API_DEFAULT_VERSION);
        #[cfg(windows)]
        return bollard::Docker::connect_with_named_pipe(
            &sock.to_string_lossy(),
            timeout_s,
            bollard::API_DEFAULT_VERSION,
        );
    }

    /// Asks the engine for its version over its socket (2 s timeout).
    pub async fn probe(sock: &Path) -> DriverFacts {
        let scheme = if cfg!(windows) { "npipe" } else { "unix" };
        let detail = format!("{scheme}://{}", sock.display());
        let answer = match connect(sock, 2) {
            Ok(d) => tokio::time::timeout(std::time::Duration::from_secs(3), d.version())
                .await
                .map_err(|_| "no answer within 3s".to_owned())
                .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(e.to_string()),
        };
        match answer {
            Ok(v) => DriverFacts { healthy: true, version: v.version.unwrap_or_default(), detail },
            Err(e) => DriverFacts { healthy: false, version: String::new(), detail: format!("{detail}: {e}") },
        }
    }
}

#[cfg(not(feature = "docker"))]
mod docker {
    use super::DriverFacts;
    use std::path::Path;

    /// Built without the `docker` feature: say so rather than pretend it is absent.
    pub async fn probe(sock: &Path) -> DriverFacts {
        DriverFacts {
            healthy: false,
            version: String::new(),
            detail: format!("unix://{}: this agent was built without the docker feature", sock.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_socket_is_unhealthy_and_says_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("docker.sock");
        let d = probe(&DriverConfig { docker_socket: Some(sock.clone()), exec: false, podman_socket: None }).await;
        let docker = &d["docker"];
        assert!(!docker.healthy);
        assert!(docker.detail.contains(&sock.display().to_string()), "{docker:?}");
        assert!(probe(&DriverConfig::default()).await.is_empty());
    }

    /// Paused time: a report at start, silence while nothing changes (a minute's probes
    /// cost no publish), one report when something does.
    #[cfg(all(feature = "docker", unix))]
    #[tokio::test(start_paused = true)]
    async fn reports_at_start_then_only_changes() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("docker.sock");
        let (tx, mut rx) = mpsc::channel(1);
        let task =
            tokio::spawn(run(DriverConfig { docker_socket: Some(sock.clone()), exec: false, podman_socket: None }, tx));
        let first = rx.recv().await.unwrap();
        assert!(!first["docker"].healthy);
        let quiet = tokio::time::timeout(Duration::from_secs(150), rx.recv()).await;
        assert!(quiet.is_err(), "three unchanged probes sent {quiet:?}");
        // Something listens there now, but it is no Docker engine: it never answers.
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let next = tokio::time::timeout(Duration::from_secs(120), rx.recv()).await.unwrap().unwrap();
        assert!(!next["docker"].healthy && next["docker"] != first["docker"], "{next:?}");
        task.abort();
    }

    /// A Docker socket that never answers holds back only Docker: raw_exec and exec are
    /// reported at once, then everything after Docker's 3 s.
    #[cfg(all(feature = "docker", unix))]
    #[tokio::test(start_paused = true)]
    async fn raw_exec_is_reported_before_a_hung_docker_socket_answers() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("docker.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let task = tokio::spawn(run(DriverConfig { docker_socket: Some(sock), exec: true, podman_socket: None }, tx));
        let start = tokio::time::Instant::now();
        let first = rx.recv().await.unwrap();
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
        assert!(first["raw_exec"].healthy && first.contains_key("exec") && !first.contains_key("docker"), "{first:?}");
        let all = rx.recv().await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(3), "{:?}", start.elapsed());
        assert!(!all["docker"].healthy && all["raw_exec"] == first["raw_exec"], "{all:?}");
        task.abort();
    }
}
