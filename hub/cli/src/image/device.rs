//! Writing to an SD card: which block devices `rabble image` will touch (pure:
//! [`refuse`] over a [`Device`] description read from sysfs and the mount table), and
//! [`flash`], which copies an image onto a device (or any file) in 4 MiB aligned chunks
//! with progress (bytes, rate, time left), syncs, and reads it back to verify.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The chunk written at a time (a multiple of any erase block size that matters).
pub const CHUNK: usize = 4 << 20;

/// What the system says about a block device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Device {
    /// `sdb`, `mmcblk0`.
    pub name: String,
    pub model: String,
    pub bytes: u64,
    pub removable: bool,
    /// Mount points of the device or its partitions.
    pub mounts: Vec<String>,
}

/// Why writing to `d` is refused; `force` allows a non-removable disk, never a mounted one
/// or the one holding `/`.
pub fn refuse(d: &Device, force: bool) -> Option<String> {
    if d.mounts.iter().any(|m| m == "/") {
        return Some(format!("/dev/{} holds this system's root file system", d.name));
    }
    if !d.mounts.is_empty() {
        return Some(format!("/dev/{} is mounted at {}: unmount it first", d.name, d.mounts.join(", ")));
    }
    if !d.removable && !d.name.starts_with("mmcblk") && !force {
        return Some(format!(
            "/dev/{} ({}, {}) is not a removable disk: --force if it really is the card",
            d.name,
            d.model,
            size(d.bytes)
        ));
    }
    None
}

/// `31.9 GB`.
pub fn size(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// The disk a device path names (`/dev/sdb1` → `sdb`, `/dev/mmcblk0p1` → `mmcblk0`).
pub fn disk_name(dev: &str) -> String {
    let n = dev.trim_start_matches("/dev/");
    if n.starts_with("mmcblk") || n.starts_with("nvme") || n.starts_with("loop") {
        match n.rsplit_once('p') {
            Some((disk, part))
                if !part.is_empty()
                    && part.bytes().all(|b| b.is_ascii_digit())
                    && disk.ends_with(|c: char| c.is_ascii_digit()) =>
            {
                disk.to_owned()
            }
            _ => n.to_owned(),
        }
    } else {
        n.trim_end_matches(|c: char| c.is_ascii_digit()).to_owned()
    }
}

/// Describes `/dev/<name>` from `sys` (normally `/sys`) and a mount table (`/proc/mounts`).
pub fn describe(sys: &Path, mounts: &str, name: &str) -> Result<Device, String> {
    let block = sys.join("class/block").join(name);
    if !block.exists() {
        return Err(format!("/dev/{name} is not a block device this system knows"));
    }
    let read = |p: PathBuf| std::fs::read_to_string(p).map(|s| s.trim().to_owned()).unwrap_or_default();
    let sectors: u64 = read(block.join("size")).parse().unwrap_or(0);
    let mounts = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.next()?))
        })
        .filter(|(dev, _)| dev.starts_with("/dev/") && disk_name(dev) == name)
        .map(|(_, at)| at.to_owned())
        .collect();
    Ok(Device {
        name: name.to_owned(),
        model: read(block.join("device/model")),
        bytes: sectors * 512,
        removable: read(block.join("removable")) == "1",
        mounts,
    })
}

/// Copies `src` onto `dst` in [`CHUNK`]s, reporting progress with `progress(done, total)`,
/// syncs, then reads `dst` back and compares. Returns the bytes written.
pub fn flash(src: &Path, dst: &mut std::fs::File, mut progress: impl FnMut(u64, u64)) -> Result<u64, String> {
    let mut input = std::fs::File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let total = input.metadata().map_err(|e| e.to_string())?.len();
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    loop {
        let n = read_full(&mut input, &mut buf).map_err(|e| format!("{}: {e}", src.display()))?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n]).map_err(|e| format!("writing at byte {done}: {e}"))?;
        done += n as u64;
        progress(done, total);
    }
    dst.sync_all().map_err(|e| format!("sync: {e}"))?;
    // Read back and compare, chunk by chunk.
    input.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    dst.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut back = vec![0u8; CHUNK];
    let mut at = 0u64;
    while at < done {
        let n = read_full(&mut input, &mut buf).map_err(|e| e.to_string())?;
        let m = read_full(dst, &mut back[..n]).map_err(|e| format!("reading back at byte {at}: {e}"))?;
        if m != n || buf[..n] != back[..n] {
            return Err(format!("verify failed: the card differs from the image near byte {at} (a failing card?)"));
        }
        at += n as u64;
    }
    Ok(done)
}

/// Reads until `buf` is full or the input ends; the bytes read.
pub(super) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> Device {
        Device {
            name: "sdb".into(),
            model: "SD Card Reader".into(),
            bytes: 31_914_983_424,
            removable: true,
            mounts: vec![],
        }
    }

    #[test]
    fn what_is_refused() {
        assert_eq!(refuse(&card(), false), None);
        let root = Device { mounts: vec!["/".into(), "/boot".into()], ..card() };
        assert!(refuse(&root, true).unwrap().contains("root file system"), "never, even forced");
        let mounted = Device { mounts: vec!["/media/pi/bootfs".into()], ..card() };
        assert!(refuse(&mounted, true).unwrap().contains("unmount it first"));
        let fixed = Device { removable: false, name: "sda".into(), model: "Samsung SSD".into(), ..card() };
        assert!(refuse(&fixed, false).unwrap().contains("--force"));
        assert_eq!(refuse(&fixed, true), None);
        let mmc = Device { removable: false, name: "mmcblk0".into(), ..card() };
        assert_eq!(refuse(&mmc, false), None, "a built-in SD slot reports removable=0");
    }

    #[test]
    fn disk_names_and_a_fake_sysfs() {
        assert_eq!(disk_name("/dev/sdb1"), "sdb");
        assert_eq!(disk_name("/dev/mmcblk0p2"), "mmcblk0");
        assert_eq!(disk_name("/dev/nvme0n1p3"), "nvme0n1");
        assert_eq!((disk_name("/dev/loop1"), disk_name("/dev/loop1p2")), ("loop1".into(), "loop1".into()));
        // There is no card reader here: a sysfs tree that describes one.
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("class/block/sdb");
        std::fs::create_dir_all(b.join("device")).unwrap();
        std::fs::write(b.join("size"), "62333952\n").unwrap();
        std::fs::write(b.join("removable"), "1\n").unwrap();
        std::fs::write(b.join("device/model"), "STORAGE DEVICE  \n").unwrap();
        let mounts = "/dev/sda2 / ext4 rw 0 0\n/dev/sdb1 /media/me/bootfs vfat rw 0 0\nproc /proc proc rw 0 0\n";
        let d = describe(dir.path(), mounts, "sdb").unwrap();
        assert_eq!((d.model.as_str(), d.bytes, d.removable), ("STORAGE DEVICE", 31_914_983_424, true));
        assert_eq!(d.mounts, ["/media/me/bootfs"]);
        assert!(refuse(&d, false).unwrap().contains("mounted at /media/me/bootfs"));
        let sda = describe(dir.path(), mounts, "sda");
        assert!(sda.unwrap_err().contains("not a block device"));
    }

    #[test]
    fn flash_writes_verifies_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("pi.img");
        let data: Vec<u8> = (0..(CHUNK * 2 + 1234)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&img, &data).unwrap();
        let out = dir.path().join("card");
        let mut f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&out).unwrap();
        let mut seen = Vec::new();
        assert_eq!(flash(&img, &mut f, |d, t| seen.push((d, t))).unwrap(), data.len() as u64);
        assert_eq!(std::fs::read(&out).unwrap(), data);
        assert_eq!(seen.len(), 3);
        assert_eq!(seen.last(), Some(&(data.len() as u64, data.len() as u64)));
    }
}
