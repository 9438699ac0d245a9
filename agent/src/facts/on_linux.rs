//! The machine's readings on Linux: `/proc`, `/sys` and rtnetlink, through the pure
//! parsers of `linux` and `netlink`.

use super::{Machine, linux, netlink};
use rabble_shared::msg::{MAX_METRIC_ITEMS, NetUse, NodeMetrics, ThermalZone, Throttled};
use std::collections::BTreeMap;
use std::net::IpAddr;

const THERMAL_ZONE: &str = "/sys/class/thermal/thermal_zone0/temp";
const PI_THROTTLED: &str = "/sys/devices/platform/soc/soc:firmware/get_throttled";

/// The last CPU ticks (usage is the difference to the next read).
pub struct Os {
    ticks: [u64; 8],
}

impl Os {
    pub fn new() -> Os {
        Os { ticks: linux::stat(&linux::read("/proc/stat")).0 }
    }

    pub fn machine(&mut self) -> Machine {
        let (os_name, os_version) = linux::os_release(&linux::read("/etc/os-release"));
        Machine {
            cpus: linux::stat(&linux::read("/proc/stat")).1,
            memory_bytes: linux::meminfo(&linux::read("/proc/meminfo")).0,
            os_name,
            os_version,
            kernel: linux::read("/proc/sys/kernel/osrelease").trim().to_owned(),
        }
    }

    pub fn cpu_percent(&mut self) -> f32 {
        let ticks = linux::stat(&linux::read("/proc/stat")).0;
        let p = linux::cpu_percent(&self.ticks, &ticks);
        self.ticks = ticks;
        p
    }

    /// (total, available, swap total, swap free) bytes.
    pub fn memory(&mut self) -> (u64, u64, u64, u64) {
        linux::meminfo(&linux::read("/proc/meminfo"))
    }

    pub fn metrics(&mut self) -> NodeMetrics {
        let (ticks, _) = linux::stat(&linux::read("/proc/stat"));
        // USER_HZ is 100 on Linux.
        let cpu_seconds = ticks.map(|t| t as f64 / 100.0);
        let mut m = NodeMetrics { cpu_seconds, ..Default::default() };
        (_, m.memory_available_bytes, m.swap_total_bytes, m.swap_free_bytes) = self.memory();
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

pub fn uptime() -> u64 {
    linux::uptime(&linux::read("/proc/uptime"))
}

pub fn loadavg() -> [f32; 3] {
    linux::loadavg(&linux::read("/proc/loadavg"))
}

pub fn temperature() -> Option<f32> {
    read_trimmed(THERMAL_ZONE).and_then(|s| s.parse::<f32>().ok()).map(|m| m / 1000.0)
}

/// A Pi's throttling and under-voltage flags, where its firmware reports them.
pub fn throttled() -> Option<Throttled> {
    read_trimmed(PI_THROTTLED)
        .and_then(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .map(Throttled::from_raw)
}

/// The first `max` disks: (mount, file system, total, available).
pub fn disks(max: usize) -> Vec<(String, String, u64, u64)> {
    linux::mounts(&linux::read("/proc/mounts"))
        .into_iter()
        .filter_map(|(_, mount, fs)| {
            let (total, avail) = linux::space(&mount).filter(|(t, _)| *t > 0)?;
            Some((mount, fs, total, avail))
        })
        .take(max)
        .collect()
}

/// The network file systems this node can mount for volumes (`nfs`).
pub fn storage() -> Vec<String> {
    // Loaded, or its modules installed for the kernel to load at the first mount.
    let modules = format!("/lib/modules/{}/kernel/fs/nfs", linux::read("/proc/sys/kernel/osrelease").trim());
    let installed = std::path::Path::new(&modules).is_dir();
    if installed || linux::nfs_client(&linux::read("/proc/filesystems")) { vec!["nfs".to_owned()] } else { Vec::new() }
}

/// The kernel's host name.
pub fn hostname() -> String {
    linux::read("/proc/sys/kernel/hostname").trim().to_owned()
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// Non-loopback addresses of real interfaces (not Docker bridges or veth pairs), sorted,
/// and the same by interface (at most `max`).
pub fn addresses(max: usize) -> (Vec<IpAddr>, BTreeMap<String, Vec<String>>) {
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
        if !mine.is_empty() && by_name.len() < max {
            by_name.insert(name.clone(), mine.iter().map(IpAddr::to_string).collect());
        }
    }
    out.sort();
    out.dedup();
    (out, by_name)
}
