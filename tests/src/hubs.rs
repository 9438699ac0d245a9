//! A hub cluster of real processes on loopback: each hub with its own broker, API, DNS
//! and cluster ports, all sharing one cluster key, each told of the others (`retry_join`),
//! and `bootstrap_expect` of them. Members are found by asking their APIs
//! (`/api/v1/cluster`); a killed member is started again on the same ports and data.

use crate::{Hub, bin, free_port, wait_for};
use rabble_shared::api::ClusterStatus;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Hubs {
    pub hubs: Vec<Hub>,
    /// Each member's `host:port` for other members.
    pub cluster: Vec<String>,
    dir: PathBuf,
    /// Data dirs mounted as small tmpfs disks, unmounted when dropped.
    mounts: Vec<PathBuf>,
}

impl Drop for Hubs {
    fn drop(&mut self) {
        // A member a test killed and left down is already gone.
        for h in &mut self.hubs {
            if h.proc.is_running() {
                h.proc.stop("KILL");
            }
        }
        for m in &self.mounts {
            let _ = std::process::Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

impl Hubs {
    /// `n` hubs that form one cluster; returns once it has a leader and `n` voters.
    pub fn start(dir: &Path, n: usize, extra: &[&str]) -> Hubs {
        Self::start_with(dir, n, false, extra)
    }

    /// The same, the last member a witness (`--witness`: no broker, DNS or API).
    pub fn start_with(dir: &Path, n: usize, witness: bool, extra: &[&str]) -> Hubs {
        Self::launch_all(dir, n, witness, None, extra)
    }

    /// `n` hubs each on a data dir of its own `mb`-megabyte disk (tmpfs), to fill one.
    pub fn start_on_small_disks(dir: &Path, n: usize, mb: u32) -> Hubs {
        Self::launch_all(dir, n, false, Some(mb), &[])
    }

    fn launch_all(dir: &Path, n: usize, witness: bool, disk_mb: Option<u32>, extra: &[&str]) -> Hubs {
        let key = dir.join("cluster.key");
        let out = std::process::Command::new(bin("rabble-hub")).args(["cluster", "keygen"]).output().unwrap();
        assert!(out.status.success(), "keygen: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(&key, &out.stdout).unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        // Each member on a loopback address of its own, so a partition can cut one off.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let net = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = format!("127.{}.{}", 20 + std::process::id() % 200, net % 250);
        let cluster: Vec<String> = (0..n).map(|i| format!("{base}.{}:{}", i + 1, free_port())).collect();
        let mut hubs = Vec::new();
        let mut mounts = Vec::new();
        for (i, me) in cluster.iter().enumerate() {
            let d = dir.join(format!("hub{}", i + 1));
            std::fs::create_dir_all(&d).unwrap();
            if let Some(mb) = disk_mb {
                let data = d.join("hub-data");
                std::fs::create_dir_all(&data).unwrap();
                let ok = std::process::Command::new("mount")
                    .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
                    .arg(&data)
                    .status()
                    .unwrap();
                assert!(ok.success(), "mount a {mb} MB tmpfs on {}", data.display());
                mounts.push(data);
            }
            let mut args: Vec<String> = vec![
                "--mqtt-listen".into(),
                format!("127.0.0.1:{}", free_port()),
                "--cluster-listen".into(),
                me.clone(),
                "--cluster-advertise".into(),
                me.clone(),
                "--cluster-key-file".into(),
                key.display().to_string(),
                "--bootstrap-expect".into(),
                n.to_string(),
            ];
            for other in cluster.iter().filter(|o| *o != me) {
                args.extend(["--retry-join".into(), other.clone()]);
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            if witness && i == n - 1 {
                args.push("--witness".into());
            }
            let mqtt: u16 = args[1].rsplit(':').next().unwrap().parse().unwrap();
            let name = format!("hub{}", i + 1);
            hubs.push(Hub::spawn_hub(&name, &d, mqtt, free_port(), d.join("hub-data"), args));
        }
        let hubs = Hubs { hubs, cluster, dir: dir.to_owned(), mounts };
        hubs.wait_formed(n, Duration::from_secs(30));
        hubs
    }

    pub fn status(&self, i: usize) -> Result<ClusterStatus, String> {
        self.hubs[i].get("/api/v1/cluster")
    }

    /// The index of the member every answering member names as leader.
    pub fn leader(&self) -> Result<usize, String> {
        let mut seen = Vec::new();
        for (i, h) in self.hubs.iter().enumerate() {
            if let Ok(s) = h.get::<ClusterStatus>("/api/v1/cluster")
                && let Some(l) = s.leader
                && s.this == l
            {
                seen.push(i);
            }
        }
        match seen.as_slice() {
            [one] => Ok(*one),
            [] => Err("no member says it leads".into()),
            many => Err(format!("several members say they lead: {many:?}")),
        }
    }

    pub fn wait_leader(&self, timeout: Duration) -> usize {
        wait_for("a leader", timeout, || self.leader())
    }

    /// Until a leader has `n` voters and every one of them answers.
    pub fn wait_formed(&self, n: usize, timeout: Duration) {
        wait_for("the cluster to form", timeout, || {
            let l = self.leader()?;
            let s = self.status(l)?;
            let voters = s.members.iter().filter(|m| m.voter).count();
            if voters < n {
                return Err(format!("{voters} voters of {n}: {s:?}"));
            }
            // Every member with an API (a witness has none) answers, following that leader.
            for (i, _) in self.hubs.iter().enumerate().filter(|(_, h)| !h.args().iter().any(|a| a == "--witness")) {
                let theirs = self.status(i)?;
                if theirs.leader != s.leader {
                    return Err(format!("member {i} follows {:?}, not {:?}", theirs.leader, s.leader));
                }
            }
            Ok(())
        });
    }

    /// Member `i`'s cluster address (without the port).
    pub fn ip(&self, i: usize) -> String {
        self.cluster[i].rsplit_once(':').unwrap().0.to_owned()
    }

    /// The URLs of every member's broker, for an agent's `--hub` list.
    pub fn brokers(&self) -> Vec<String> {
        self.hubs.iter().map(|h| format!("mqtt://127.0.0.1:{}", h.mqtt_port)).collect()
    }

    /// Starts member `i` again (after a kill, or when it stopped leading) on its ports and data.
    pub fn relaunch(&mut self, i: usize) {
        let h = &self.hubs[i];
        let http_port: u16 = h.http.rsplit(':').next().unwrap().parse().unwrap();
        let d = self.dir.join(format!("hub{}", i + 1));
        let fresh = Hub::spawn_hub(
            &format!("hub{}-again", i + 1),
            &d,
            h.mqtt_port,
            http_port,
            h.data_dir.clone(),
            h.args().to_vec(),
        );
        self.hubs[i] = fresh;
    }
}

/// A network partition on loopback: the kernel drops every packet between the two sides'
/// addresses (iptables, both directions) until dropped.
pub struct Partition {
    rules: Vec<Vec<String>>,
}

impl Partition {
    pub fn new(one: &[String], other: &[String]) -> Partition {
        let mut rules = Vec::new();
        for a in one {
            for b in other {
                for (s, d) in [(a, b), (b, a)] {
                    rules.push(vec![
                        "INPUT".into(),
                        "-s".into(),
                        s.clone(),
                        "-d".into(),
                        d.clone(),
                        "-j".into(),
                        "DROP".into(),
                    ]);
                }
            }
        }
        for r in &rules {
            let ok = std::process::Command::new("iptables").arg("-I").args(r).status().unwrap();
            assert!(ok.success(), "iptables -I {r:?}");
        }
        Partition { rules }
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        for r in &self.rules {
            let _ = std::process::Command::new("iptables").arg("-D").args(r).status();
        }
    }
}
