//! The machine as Linux tells it, from /proc, /sys and /etc (and `statvfs` for disks):
//! memory, CPU time, load, uptime, disks, bytes per interface, the OS. Read directly
//! rather than through sysinfo, which cost the agent ~30 KB for what these few files say.
//! The parsers are pure (text in), tested on real files' text.

use std::collections::BTreeMap;

pub fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `/proc/meminfo` in bytes: (MemTotal, MemAvailable, SwapTotal, SwapFree).
pub fn meminfo(text: &str) -> (u64, u64, u64, u64) {
    let kb = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (kb("MemTotal"), kb("MemAvailable"), kb("SwapTotal"), kb("SwapFree"))
}

/// `/proc/stat`: the all-CPU line's ticks per mode (user nice system idle iowait irq
/// softirq steal), and how many CPUs there are (`cpuN` lines).
pub fn stat(text: &str) -> ([u64; 8], u32) {
    let mut ticks = [0u64; 8];
    let mut first = text.lines().next().unwrap_or_default().split_whitespace();
    if first.next() == Some("cpu") {
        for (slot, v) in ticks.iter_mut().zip(first) {
            *slot = v.parse().unwrap_or(0);
        }
    }
    let cpus =
        text.lines().filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit)).count();
    (ticks, cpus as u32)
}

/// CPU use in percent between two `stat` readings (idle and iowait count as idle).
pub fn cpu_percent(before: &[u64; 8], now: &[u64; 8]) -> f32 {
    let total: u64 = now.iter().sum::<u64>().saturating_sub(before.iter().sum());
    let idle = (now[3] + now[4]).saturating_sub(before[3] + before[4]);
    if total == 0 { 0.0 } else { 100.0 * (1.0 - idle as f32 / total as f32) }
}

/// `/proc/loadavg`'s three averages.
pub fn loadavg(text: &str) -> [f32; 3] {
    let mut out = [0.0; 3];
    for (slot, v) in out.iter_mut().zip(text.split_whitespace()) {
        *slot = v.parse().unwrap_or(0.0);
    }
    out
}

/// `/proc/uptime`'s seconds.
pub fn uptime(text: &str) -> u64 {
    text.split_whitespace().next().and_then(|s| s.parse::<f64>().ok()).map_or(0, |s| s as u64)
}

/// `/proc/net/dev`: (interface, received bytes, transmitted bytes).
pub fn net_dev(text: &str) -> Vec<(String, u64, u64)> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
            Some((name.trim().to_owned(), *f.first()?, *f.get(8)?))
        })
        .collect()
}

/// `/etc/os-release`: (NAME, VERSION_ID), unquoted.
pub fn os_release(text: &str) -> (Option<String>, Option<String>) {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_owned())
    };
    (get("NAME"), get("VERSION_ID"))
}

/// File systems that hold no data of the node's (and mounts under /sys, /proc, /run).
const PSEUDO_FS: &[&str] = &[
    "sysfs",
    "proc",
    "devtmpfs",
    "tmpfs",
    "cgroup",
    "cgroup2",
    "pstore",
    "squashfs",
    "rpc_pipefs",
    "iso9660",
    "devpts",
    "hugetlbfs",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "bpf",
    "fusectl",
    "configfs",
    "binfmt_misc",
    "autofs",
    "nsfs",
    "efivarfs",
    "ramfs",
    "fuse.lxcfs",
    // Network file systems: a statvfs on a dead server hangs (the agent's volumes too).
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
];

/// `/proc/mounts`: (device, mount point, file system) of the disks worth reporting, each
/// device once (its first mount: a bind mount is the same disk).
pub fn mounts(text: &str) -> Vec<(String, String, String)> {
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [dev, mount, fs, ..] = f.as_slice() else { continue };
        let mount = mount.replace("\\040", " ");
        let system = ["/sys", "/proc", "/dev"].iter().any(|p| mount == *p || mount.starts_with(&format!("{p}/")));
        let run = mount.starts_with("/run") && !mount.starts_with("/run/media");
        if PSEUDO_FS.contains(fs) || system || run || dev.starts_with("sunrpc") {
            continue;
        }
        if seen.insert((*dev).to_owned(), ()).is_none() {
            out.push(((*dev).to_owned(), mount, (*fs).to_owned()));
        }
    }
    out
}

/// Whether the kernel has NFSv4 (`/proc/filesystems`; else its module may be installed).
pub fn nfs_client(filesystems: &str) -> bool {
    filesystems.lines().any(|l| l.split_whitespace().last() == Some("nfs4"))
}

/// A mount's (total, available) bytes.
pub fn space(mount: &str) -> Option<(u64, u64)> {
    let s = rustix::fs::statvfs(mount).ok()?;
    let unit = if s.f_frsize > 0 { s.f_frsize } else { s.f_bsize };
    Some((s.f_blocks * unit, s.f_bavail * unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_as_linux_writes_them() {
        let m = "MemTotal:        3884428 kB\nMemFree:          123 kB\nMemAvailable:    2000000 kB\nSwapTotal:     102396 kB\nSwapFree:       51198 kB\n";
        assert_eq!(meminfo(m), (3884428 * 1024, 2000000 * 1024, 102396 * 1024, 51198 * 1024));
        let s =
            "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\nintr 1\n";
        let (t0, cpus) = stat(s);
        assert_eq!((t0, cpus), ([100, 0, 50, 800, 50, 0, 0, 0], 2));
        let t1 = [160, 0, 80, 900, 60, 0, 0, 0];
        assert!((cpu_percent(&t0, &t1) - 45.0).abs() < 0.01, "{}", cpu_percent(&t0, &t1));
        assert_eq!(loadavg("0.52 0.58 0.59 2/345 6789\n"), [0.52, 0.58, 0.59]);
        assert_eq!(uptime("350735.47 234388.90\n"), 350735);
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 5000 10 0 0 0 0 0 0 7000 12 0 0 0 0 0 0\n";
        assert_eq!(net_dev(dev), [("lo".into(), 100, 100), ("eth0".into(), 5000, 7000)]);
        let os = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n";
        assert_eq!(os_release(os), (Some("Debian GNU/Linux".into()), Some("12".into())));
        let mounts_text = "/dev/root / ext4 rw 0 0\nproc /proc proc rw 0 0\ntmpfs /run tmpfs rw 0 0\n\
            /dev/mmcblk0p1 /boot/firmware vfat rw 0 0\n/dev/root /srv/bind ext4 rw 0 0\n\
            rpool/data/subvol-101-disk-0 / zfs rw 0 0\n/dev/sda1 /mnt/my\\040disk ext4 rw 0 0\n";
        assert_eq!(
            mounts(mounts_text),
            [
                ("/dev/root".into(), "/".into(), "ext4".into()),
                ("/dev/mmcblk0p1".into(), "/boot/firmware".into(), "vfat".into()),
                ("rpool/data/subvol-101-disk-0".into(), "/".into(), "zfs".into()),
                ("/dev/sda1".into(), "/mnt/my disk".into(), "ext4".into()),
            ]
        );
        let (total, avail) = space("/").unwrap();
        assert!(total > 0 && avail <= total);
        let fs = "nodev\tsysfs\nnodev\tnfs\nnodev\tnfs4\n\text4\n";
        assert!(nfs_client(fs) && !nfs_client("nodev\tsysfs\n\text4\n"));
    }
}
