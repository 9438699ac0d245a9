//! Node facts (what the node is), heartbeat stats (how it is doing) and the node's
//! metrics (node_exporter's counters), from /proc, /sys and rtnetlink (`linux`,
//! `netlink`).

mod linux;
mod netlink;

use rabble_shared::msg::{
    DiskFacts, DiskUse, Heartbeat, MAX_METRIC_ITEMS, NetUse, NodeFacts, NodeMetrics, OsFacts, ThermalZone, Throttled,
};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// At most this many disks are reported (bounded payloads on odd machines).
const MAX_DISKS: usize = 16;
/// Interfaces listed by name in the facts.
const MAX_INTERFACES: usize = 16;
const THERMAL_ZONE: &str = "/sys/class/thermal/thermal_zone0/temp";
const PI_THROTTLED: &str = "/sys/devices/platform/soc/soc:firmware/get_throttled";

/// Who the operator says the node is; the rest is read from the machine.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub name: String,
    pub datacenter: String,
    pub node_class: String,
    pub advertise: Option<IpAddr>,
    pub meta: BTreeMap<String, String>,
}

/// Reads the machine. Keeps the last CPU ticks between heartbeats (CPU usage is a
/// difference between two reads) and nothing else.
pub struct Sampler {
    ticks: [u64; 8],
    seq: u64,
    /// Metrics ride on every `metrics_every`-th heartbeat (the first included); 0: never.
    pub metrics_every: u64,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler").field("seq", &self.seq).finish()
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Sampler {
        Sampler { ticks: linux::stat(&linux::read("/proc/stat")).0, seq: 0, metrics_every: 0 }
    }

    /// Facts: read at start and on reload.
    pub fn facts(&mut self, id: &Identity) -> NodeFacts {
        let (addrs, interfaces) = addresses();
        let advertise =
            id.advertise.or_else(|| pick_advertise(&addrs)).map_or_else(|| "127.0.0.1".into(), |a| a.to_string());
        let cpus = linux::stat(&linux::read("/proc/stat")).1.max(1);
        let memory_bytes = linux::meminfo(&linux::read("/proc/meminfo")).0;
        let disks = disks(|_, mount, fs, total, _| DiskFacts {
            mount: mount.to_owned(),
            fs: fs.to_owned(),
            total_bytes: total,
        });
        let (os_name, os_version) = linux::os_release(&linux::read("/etc/os-release"));
        NodeFacts {
            name: id.name.clone(),
            hostname: hostname(),
            arch: std::env::consts::ARCH.to_owned(),
            os: OsFacts {
                name: os_name.unwrap_or_else(|| std::env::consts::OS.to_owned()),
                version: os_version.unwrap_or_default(),
                kernel: linux::read("/proc/sys/kernel/osrelease").trim().to_owned(),
            },
            cpus,
            memory_bytes,
            disks,
            addresses: addrs.iter().map(|a| a.to_string()).collect(),
            advertise,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            node_class: id.node_class.clone(),
            datacenter: id.datacenter.clone(),
            meta: id.meta.clone(),
            drivers: Default::default(), // filled in by the driver task (crate::driver)
            host_volumes: Default::default(),
            cpu_total_mhz: None,
            tls_lanes: Vec::new(), // filled in from the lanes (engine)
            interfaces,
            alloc_dir: String::new(),
            storage: storage(),
        }
    }

    /// One heartbeat's stats.
    pub fn heartbeat(&mut self) -> Heartbeat {
        self.seq += 1;
        let ticks = linux::stat(&linux::read("/proc/stat")).0;
        let cpu_percent = linux::cpu_percent(&self.ticks, &ticks);
        self.ticks = ticks;
        let (memory_total_bytes, available, _, _) = linux::meminfo(&linux::read("/proc/meminfo"));
        let memory_used_bytes = memory_total_bytes.saturating_sub(available);
        let load = linux::loadavg(&linux::read("/proc/loadavg"));
        let disks = disks(|_, mount, _, total, avail| DiskUse {
            mount: mount.to_owned(),
            used_bytes: total.saturating_sub(avail),
            total_bytes: total,
        });
        let mut hb = Heartbeat {
            seq: self.seq,
            uptime_s: linux::uptime(&linux::read("/proc/uptime")),
            cpu_percent,
            load,
            memory_used_bytes,
            memory_total_bytes,
            disks,
            temperature_c: read_trimmed(THERMAL_ZONE).and_then(|s| s.parse::<f32>().ok()).map(|m| m / 1000.0),
            throttled: read_trimmed(PI_THROTTLED)
                .and_then(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                .map(Throttled::from_raw),
            assignments_refused: 0, // the engine fills it in
            metrics: None,
        };
        if self.metrics_every > 0 && (self.seq - 1) % self.metrics_every == 0 {
            hb.metrics = Some(self.metrics());
        }
        hb
    }

    /// The node's counters for `/metrics`: CPU time per mode, memory available, swap,
    /// bytes per interface, every thermal zone.
    pub fn metrics(&mut self) -> NodeMetrics {
        let (ticks, _) = linux::stat(&linux::read("/proc/stat"));
        // USER_HZ is 100 on Linux.
        let cpu_seconds = ticks.map(|t| t as f64 / 100.0);
        let mut m = NodeMetrics { cpu_seconds, ..Default::default() };
        (_, m.memory_available_bytes, m.swap_total_bytes, m.swap_free_bytes) =
            linux::meminfo(&linux::read("/proc/meminfo"));
        m.net = linux::net_dev(&linux::read("/proc/net/dev"))
            .into_iter()
            .filter(|(name, ..)| name != "lo" && !name.starts_with("veth"))
            .take(MAX_METRIC_ITEMS)
            .map(|(device, rx_bytes, tx_bytes)| NetUse { device, rx_bytes, tx_bytes })
            .collect();
        m.thermal = (0..MAX_METRIC_ITEMS as u32)
            .map_while(|zone| {
                let dir = format!("/sys/class/thermal/thermal_zone{zone}");
                let milli = read_trimmed(&format!("{dir}/temp"))?.parse::<f32>().ok()?;
                let kind = read_trimmed(&format!("{dir}/type")).unwrap_or_default();
                Some(ThermalZone { zone, kind, celsius: milli / 1000.0 })
            })
            .collect();
        m
    }
}

/// The first [`MAX_DISKS`] disks, each mapped by `f(device, mount, fs, total, available)`.
fn disks<T>(f: impl Fn(&str, &str, &str, u64, u64) -> T) -> Vec<T> {
    linux::mounts(&linux::read("/proc/mounts"))
        .iter()
        .filter_map(|(dev, mount, fs)| {
            let (total, avail) = linux::space(mount).filter(|(t, _)| *t > 0)?;
            Some(f(dev, mount, fs, total, avail))
        })
        .take(MAX_DISKS)
        .collect()
}

/// The kernel's host name.
/// The network file systems this node can mount for volumes (`nfs`).
fn storage() -> Vec<String> {
    // Loaded, or its modules installed for the kernel to load at the first mount.
    let modules = format!("/lib/modules/{}/kernel/fs/nfs", linux::read("/proc/sys/kernel/osrelease").trim());
    let installed = std::path::Path::new(&modules).is_dir();
    if installed || linux::nfs_client(&linux::read("/proc/filesystems")) { vec!["nfs".to_owned()] } else { Vec::new() }
}

pub fn hostname() -> String {
    linux::read("/proc/sys/kernel/hostname").trim().to_owned()
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// Non-loopback addresses of real interfaces (not Docker bridges or veth pairs), sorted,
/// and the same by interface (at most [`MAX_INTERFACES`]).
fn addresses() -> (Vec<IpAddr>, BTreeMap<String, Vec<String>>) {
    let mut out: Vec<IpAddr> = Vec::new();
    let mut by_name = BTreeMap::new();
    let names = netlink::names();
    for (index, addrs) in netlink::addresses() {
        let Some(name) = names.get(&index) else { continue };
        if name == "lo" || name.starts_with("docker") || name.starts_with("br-") || name.starts_with("veth") {
            continue;
        }
        let mut mine: Vec<IpAddr> = addrs.into_iter().filter(|a| !a.is_loopback()).collect();
        mine.sort();
        out.extend(&mine);
        if !mine.is_empty() && by_name.len() < MAX_INTERFACES {
            by_name.insert(name.clone(), mine.iter().map(IpAddr::to_string).collect());
        }
    }
    out.sort();
    out.dedup();
    (out, by_name)
}

/// The address to advertise: a private IPv4 first, then any IPv4, then a global IPv6.
pub fn pick_advertise(addrs: &[IpAddr]) -> Option<IpAddr> {
    let v4 = |private: bool| {
        addrs.iter().copied().find(|a| match a {
            IpAddr::V4(v) => !v.is_link_local() && !v.is_loopback() && v.is_private() == private,
            IpAddr::V6(_) => false,
        })
    };
    v4(true).or_else(|| v4(false)).or_else(|| {
        addrs.iter().copied().find(|a| match a {
            IpAddr::V6(v) => !v.is_loopback() && (v.segments()[0] & 0xffc0) != 0xfe80,
            IpAddr::V4(_) => false,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertise_prefers_private_ipv4() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(pick_advertise(&[a("fe80::1"), a("8.8.8.8"), a("192.168.1.5")]), Some(a("192.168.1.5")));
        assert_eq!(pick_advertise(&[a("fe80::1"), a("8.8.8.8")]), Some(a("8.8.8.8")));
        assert_eq!(pick_advertise(&[a("fe80::1"), a("2001:db8::1")]), Some(a("2001:db8::1")));
        assert_eq!(pick_advertise(&[a("169.254.1.1"), a("fe80::1")]), None);
    }

    #[test]
    fn reads_this_machine() {
        let mut s = Sampler::new();
        let f = s.facts(&Identity { name: "t".into(), datacenter: "dc1".into(), ..Default::default() });
        assert!(f.cpus >= 1 && f.memory_bytes > 0, "{f:?}");
        assert!(!f.os.kernel.is_empty());
        let h1 = s.heartbeat();
        let h2 = s.heartbeat();
        assert_eq!((h1.seq, h2.seq), (1, 2));
        assert!(h2.memory_used_bytes > 0 && h2.memory_total_bytes >= h2.memory_used_bytes);
        assert!(h2.uptime_s > 0);
        assert!(h1.metrics.is_none(), "no metrics unless asked for");
    }

    #[test]
    fn metrics_ride_on_one_heartbeat_in_n_and_read_this_machine() {
        let mut s = Sampler::new();
        s.metrics_every = 3;
        let beats: Vec<bool> = (0..7).map(|_| s.heartbeat().metrics.is_some()).collect();
        assert_eq!(beats, [true, false, false, true, false, false, true], "the first, then every third");
        let m = s.metrics();
        let idle = m.cpu_seconds[3];
        assert!(idle > 0.0 && m.cpu_seconds.iter().sum::<f64>() >= idle, "{m:?}");
        assert!(m.memory_available_bytes > 0, "{m:?}");
        assert!(m.swap_free_bytes <= m.swap_total_bytes);
        assert!(m.net.iter().all(|n| n.device != "lo"), "{:?}", m.net);
    }
}
