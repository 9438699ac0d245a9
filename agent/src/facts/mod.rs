//! Node facts (what the node is), heartbeat stats (how it is doing) and the node's
//! metrics (node_exporter's counters). The readings come from `os`: on Linux `/proc`,
//! `/sys` and rtnetlink (`linux`, `netlink`: pure parsers), elsewhere (Windows, macOS)
//! sysinfo; this module puts them into the wire's shapes.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod netlink;
#[cfg(target_os = "linux")]
#[path = "on_linux.rs"]
mod os;
#[cfg(not(target_os = "linux"))]
#[path = "on_sysinfo.rs"]
mod os;

pub use os::hostname;
use rabble_shared::msg::{DiskFacts, DiskUse, Heartbeat, NodeFacts, NodeMetrics, OsFacts};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// At most this many disks are reported (bounded payloads on odd machines).
const MAX_DISKS: usize = 16;
/// Interfaces listed by name in the facts.
const MAX_INTERFACES: usize = 16;

/// Who the operator says the node is; the rest is read from the machine.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub name: String,
    pub datacenter: String,
    pub node_class: String,
    pub advertise: Option<IpAddr>,
    pub meta: BTreeMap<String, String>,
}

/// Reads the machine. Keeps what CPU usage is measured against (it is a difference
/// between two reads) and nothing else.
pub struct Sampler {
    os: os::Os,
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
        Sampler { os: os::Os::new(), seq: 0, metrics_every: 0 }
    }

    /// Facts: read at start and on reload.
    pub fn facts(&mut self, id: &Identity) -> NodeFacts {
        let (addrs, interfaces) = os::addresses(MAX_INTERFACES);
        let advertise =
            id.advertise.or_else(|| pick_advertise(&addrs)).map_or_else(|| "127.0.0.1".into(), |a| a.to_string());
        let m = self.os.machine();
        let disks = os::disks(MAX_DISKS)
            .into_iter()
            .map(|(mount, fs, total, _)| DiskFacts { mount, fs, total_bytes: total })
            .collect();
        NodeFacts {
            name: id.name.clone(),
            hostname: hostname(),
            arch: std::env::consts::ARCH.to_owned(),
            os: OsFacts {
                name: m.os_name.unwrap_or_else(|| std::env::consts::OS.to_owned()),
                version: m.os_version.unwrap_or_default(),
                kernel: m.kernel,
            },
            cpus: m.cpus.max(1),
            memory_bytes: m.memory_bytes,
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
            storage: os::storage(),
        }
    }

    /// One heartbeat's stats.
    pub fn heartbeat(&mut self) -> Heartbeat {
        self.seq += 1;
        let cpu_percent = self.os.cpu_percent();
        let (memory_total_bytes, available, _, _) = self.os.memory();
        let disks = os::disks(MAX_DISKS)
            .into_iter()
            .map(|(mount, _, total, avail)| DiskUse {
                mount,
                used_bytes: total.saturating_sub(avail),
                total_bytes: total,
            })
            .collect();
        let mut hb = Heartbeat {
            seq: self.seq,
            uptime_s: os::uptime(),
            cpu_percent,
            load: os::loadavg(),
            memory_used_bytes: memory_total_bytes.saturating_sub(available),
            memory_total_bytes,
            disks,
            temperature_c: os::temperature(),
            throttled: os::throttled(),
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
        self.os.metrics()
    }
}

/// What the machine is, as `os` reads it.
#[derive(Debug, Default)]
pub struct Machine {
    pub cpus: u32,
    pub memory_bytes: u64,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    pub kernel: String,
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
