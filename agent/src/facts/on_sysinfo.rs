//! The machine's readings where there is no `/proc` (Windows, macOS): sysinfo, and on
//! Windows the CPU times from `GetSystemTimes` (sysinfo reads CPU use and load through
//! PDH, which wine lacks). What cannot be read is left out rather than made up: no load
//! average on Windows, no temperature or throttling, no storage for volumes (NFS volumes
//! are mounted by Linux nodes).

use super::Machine;
use rabble_shared::msg::{MAX_METRIC_ITEMS, NetUse, NodeMetrics, Throttled};
use std::collections::BTreeMap;
use std::net::IpAddr;
use sysinfo::{Disks, Networks, System};

/// sysinfo's system, and what CPU usage is measured against (a difference between reads).
pub struct Os {
    sys: Option<System>,
    /// Windows: the last (idle, kernel, user) times.
    #[cfg(windows)]
    times: Option<(u64, u64, u64)>,
}

impl Os {
    pub fn new() -> Os {
        let mut sys = System::new().ok();
        if let Some(s) = sys.as_mut() {
            #[cfg(not(windows))]
            s.refresh_cpu_usage();
            s.refresh_memory();
        }
        #[cfg(windows)]
        return Os { sys, times: crate::win32::system_times() };
        #[cfg(not(windows))]
        Os { sys }
    }

    pub fn machine(&mut self) -> Machine {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let memory_bytes = self.sys.as_ref().map_or(0, System::total_memory);
        Machine {
            cpus,
            memory_bytes,
            os_name: System::name().ok(),
            os_version: System::os_version().ok(),
            kernel: System::kernel_version().unwrap_or_default(),
        }
    }

    #[cfg(windows)]
    pub fn cpu_percent(&mut self) -> f32 {
        let now = crate::win32::system_times();
        let p = match (self.times, now) {
            (Some((i0, k0, u0)), Some((i1, k1, u1))) => {
                let (idle, total) = (i1.saturating_sub(i0), (k1 + u1).saturating_sub(k0 + u0));
                if total == 0 { 0.0 } else { 100.0 * (total.saturating_sub(idle)) as f32 / total as f32 }
            }
            _ => 0.0,
        };
        self.times = now;
        p
    }

    #[cfg(not(windows))]
    pub fn cpu_percent(&mut self) -> f32 {
        self.sys.as_mut().map_or(0.0, |s| {
            s.refresh_cpu_usage();
            s.global_cpu_usage()
        })
    }

    /// (total, available, swap total, swap free) bytes.
    pub fn memory(&mut self) -> (u64, u64, u64, u64) {
        self.sys.as_mut().map_or((0, 0, 0, 0), |s| {
            s.refresh_memory();
            (s.total_memory(), s.available_memory(), s.total_swap(), s.free_swap())
        })
    }

    pub fn metrics(&mut self) -> NodeMetrics {
        let mut m = NodeMetrics::default();
        // node_exporter's modes: user, nice, system, idle, ... (100 ns units on Windows).
        #[cfg(windows)]
        if let Some((idle, kernel, user)) = crate::win32::system_times() {
            let s = |t: u64| t as f64 / 1e7;
            (m.cpu_seconds[0], m.cpu_seconds[2], m.cpu_seconds[3]) = (s(user), s(kernel.saturating_sub(idle)), s(idle));
        }
        (_, m.memory_available_bytes, m.swap_total_bytes, m.swap_free_bytes) = self.memory();
        if let Ok(nets) = Networks::new_with_refreshed_list() {
            let mut net: Vec<NetUse> = nets
                .iter()
                .map(|(name, d)| NetUse {
                    device: name.to_string_lossy().into_owned(),
                    rx_bytes: d.total_received(),
                    tx_bytes: d.total_transmitted(),
                })
                .collect();
            net.sort_by(|a, b| a.device.cmp(&b.device));
            net.truncate(MAX_METRIC_ITEMS);
            m.net = net;
        }
        m
    }
}

pub fn uptime() -> u64 {
    System::uptime().unwrap_or(0)
}

/// Windows has no load average (sysinfo's stand-in samples PDH in a thread of its own).
#[cfg(windows)]
pub fn loadavg() -> [f32; 3] {
    [0.0; 3]
}

#[cfg(not(windows))]
pub fn loadavg() -> [f32; 3] {
    System::load_average().map_or([0.0; 3], |l| [l.one as f32, l.five as f32, l.fifteen as f32])
}

pub fn temperature() -> Option<f32> {
    None
}

pub fn throttled() -> Option<Throttled> {
    None
}

/// The first `max` disks: (mount, file system, total, available).
pub fn disks(max: usize) -> Vec<(String, String, u64, u64)> {
    let Ok(disks) = Disks::new_with_refreshed_list() else { return Vec::new() };
    disks
        .iter()
        .filter(|d| d.total_space() > 0)
        .map(|d| {
            let mount = d.mount_point().display().to_string();
            (mount, d.file_system().to_string_lossy().into_owned(), d.total_space(), d.available_space())
        })
        .take(max)
        .collect()
}

pub fn storage() -> Vec<String> {
    Vec::new()
}

pub fn hostname() -> String {
    System::host_name().unwrap_or_default()
}

/// Non-loopback addresses, sorted, and the same by interface (at most `max`).
pub fn addresses(max: usize) -> (Vec<IpAddr>, BTreeMap<String, Vec<String>>) {
    let mut out = Vec::new();
    let mut by_name = BTreeMap::new();
    let Ok(nets) = Networks::new_with_refreshed_list() else { return (out, by_name) };
    for (name, d) in nets.iter() {
        let mut mine: Vec<IpAddr> = d.ip_networks().iter().map(|n| n.addr).filter(|a| !a.is_loopback()).collect();
        mine.sort();
        out.extend(&mine);
        if !mine.is_empty() && by_name.len() < max {
            by_name.insert(name.to_string_lossy().into_owned(), mine.iter().map(IpAddr::to_string).collect());
        }
    }
    out.sort();
    out.dedup();
    (out, by_name)
}
