//! Synthetic Raspberry Pi OS cards for `rabble image` tests, made the way pi-gen makes
//! them and without root, loop devices or mounts: an MBR from `sfdisk`, a FAT boot
//! partition from `mkfs.vfat` filled with `mcopy`, an ext4 root from `mkfs.ext4 -d`,
//! stitched with `dd conv=notrunc`. Layouts: Bookworm, Trixie with cloud-init files, an
//! Imager-customised card, Bullseye (32-bit, `/boot`, 4 MiB offset).

use crate::tool;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which release's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Bookworm,
    TrixieCloudInit,
    Imager,
    Bullseye,
}

/// A made card: the image and where its partitions are (bytes).
#[derive(Debug, Clone)]
pub struct Card {
    pub path: PathBuf,
    pub boot: (u64, u64),
    pub root: (u64, u64),
}

pub const CMDLINE_BOOKWORM: &str = "console=serial0,115200 console=tty1 root=PARTUUID=6c9a1d2e-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n";
pub const CMDLINE_IMAGER: &str = "console=serial0,115200 console=tty1 root=PARTUUID=6c9a1d2e-02 rootfstype=ext4 fsck.repair=yes rootwait quiet systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target\n";
pub const CMDLINE_TRIXIE: &str = "console=serial0,115200 console=tty1 root=PARTUUID=6c9a1d2e-02 rootfstype=ext4 fsck.repair=yes rootwait quiet ds=nocloud;i=rpi-imager-1732450000\n";

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A minimal ELF header for `machine` (183 aarch64, 40 arm): what `/bin/sh` is for.
pub fn fake_elf(machine: u16) -> Vec<u8> {
    let mut h = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    h.resize(64, 0);
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h
}

/// Makes a card of `layout` in `dir`.
pub fn make(dir: &Path, layout: Layout) -> Card {
    let name = format!("{layout:?}").to_lowercase();
    let work = dir.join(format!("{name}-parts"));
    std::fs::create_dir_all(work.join("root/etc")).unwrap();
    std::fs::create_dir_all(work.join("root/bin")).unwrap();
    std::fs::create_dir_all(work.join("files")).unwrap();
    let (boot_start, boot_sectors, fw, machine) = match layout {
        Layout::Bullseye => (8192u64, 524_288u64, "/boot", 40),
        _ => (16_384, 1_048_576, "/boot/firmware", 183),
    };
    std::fs::create_dir_all(work.join(format!("root{fw}"))).unwrap();
    let root_start = boot_start + boot_sectors;
    let root_sectors = 65_536u64; // 32 MiB
    std::fs::write(
        work.join("root/etc/fstab"),
        format!("proc /proc proc defaults 0 0\nPARTUUID=6c9a1d2e-01  {fw}  vfat  defaults  0  2\nPARTUUID=6c9a1d2e-02  /  ext4  defaults,noatime  0  1\n"),
    )
    .unwrap();
    std::fs::write(work.join("root/bin/sh"), fake_elf(machine)).unwrap();
    let path = dir.join(format!("{name}.img"));
    let f = std::fs::File::create(&path).unwrap();
    f.set_len((root_start + root_sectors) * 512).unwrap();
    drop(f);
    let table = format!(
        "label: dos\nlabel-id: 0x6c9a1d2e\nstart={boot_start}, size={boot_sectors}, type=c\nstart={root_start}, size={root_sectors}, type=83\n"
    );
    let mut sf = Command::new(tool("sfdisk"));
    sf.arg("-q").arg(&path).stdin(std::process::Stdio::piped());
    let mut child = sf.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), table.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());

    let fat = work.join("boot.fat");
    // A used card: mkfs does not clear the data area, so free clusters hold old bytes
    // (here, bytes that read as directory entries named AAAAAAAA.AAA).
    std::fs::write(&fat, vec![b'A'; 32 << 20]).unwrap();
    std::fs::OpenOptions::new().write(true).open(&fat).unwrap().set_len(boot_sectors * 512).unwrap();
    let mut mkfs = Command::new(tool("mkfs.vfat"));
    match layout {
        Layout::Bullseye => mkfs.args(["-n", "boot", "-F", "32"]),
        _ => mkfs.args(["-n", "bootfs", "-F", "32", "-s", "1"]),
    };
    run(mkfs.arg(&fat));
    let files = work.join("files");
    let cmdline = match layout {
        Layout::Imager => CMDLINE_IMAGER,
        Layout::TrixieCloudInit => CMDLINE_TRIXIE,
        _ => CMDLINE_BOOKWORM,
    };
    let mut put = vec![("cmdline.txt".to_owned(), cmdline.as_bytes().to_vec())];
    put.push(("config.txt".into(), b"# synthetic config.txt\narm_64bit=1\n".to_vec()));
    put.push(("issue.txt".into(), b"Raspberry Pi reference 2025-12-04\n".to_vec()));
    // A used card: device trees and kernels, some deleted again, so free clusters hold
    // old bytes and the root directory spans several clusters.
    for i in 0..40 {
        let junk: Vec<u8> = (0..3000u32).map(|j| (j.wrapping_mul(31).wrapping_add(i * 7) % 251) as u8).collect();
        put.push((format!("bcm27{i:02}-rpi-model-with-a-long-name.dtb"), junk));
    }
    match layout {
        Layout::TrixieCloudInit => {
            put.push(("meta-data".into(), b"dsmode: local\ninstance_id: rpios-image\n".to_vec()));
            put.push(("user-data".into(), b"#cloud-config\nhostname: pi\n".to_vec()));
            put.push(("network-config".into(), b"version: 2\nethernets:\n  eth0:\n    dhcp4: true\n".to_vec()));
        }
        Layout::Imager => put.push(("firstrun.sh".into(), b"#!/bin/bash\nset +e\necho imager\n".to_vec())),
        _ => {}
    }
    for (n, b) in &put {
        std::fs::write(files.join(n), b).unwrap();
    }
    let mut mc = Command::new(tool("mcopy"));
    mc.arg("-i").arg(&fat);
    for (n, _) in &put {
        mc.arg(files.join(n));
    }
    run(mc.arg("::/"));
    let mut del = Command::new(tool("mdel"));
    del.arg("-i").arg(&fat);
    for i in (0..40).step_by(3) {
        del.arg(format!("::/bcm27{i:02}-rpi-model-with-a-long-name.dtb"));
    }
    run(&mut del);

    // Fill the root directory to the end of its last cluster, so Rabble's entry makes it
    // grow into a free (dirty) cluster: what fatfs 0.3.6 gets wrong.
    // (mcopy reuses the deleted files' slots first: fill until the end marker moves there.)
    let mut k = 0;
    loop {
        let (_, used, per_cluster) = root_dir(&std::fs::read(&fat).unwrap());
        let fill = (per_cluster - used % per_cluster) % per_cluster;
        if fill == 0 {
            break;
        }
        let mut mc = Command::new(tool("mcopy"));
        mc.arg("-i").arg(&fat);
        for _ in 0..fill {
            let f = files.join(format!("F{k:03}.DAT"));
            std::fs::write(&f, b"x").unwrap();
            mc.arg(f);
            k += 1;
        }
        run(mc.arg("::/"));
    }
    let (_, used, per_cluster) = root_dir(&std::fs::read(&fat).unwrap());
    assert_eq!(used % per_cluster, 0, "the root directory is full to its last cluster");

    let ext4 = work.join("root.ext4");
    std::fs::File::create(&ext4).unwrap().set_len(root_sectors * 512).unwrap();
    run(Command::new(tool("mkfs.ext4")).args(["-q", "-L", "rootfs", "-d"]).arg(work.join("root")).arg(&ext4));
    for (part, start) in [(&fat, boot_start), (&ext4, root_start)] {
        run(Command::new(tool("dd"))
            .arg(format!("if={}", part.display()))
            .arg(format!("of={}", path.display()))
            .args(["bs=512", &format!("seek={start}"), "conv=notrunc,sparse", "status=none"]));
    }
    std::fs::remove_dir_all(&work).unwrap();
    Card { path, boot: (boot_start * 512, boot_sectors * 512), root: (root_start * 512, root_sectors * 512) }
}

/// A FAT32 file system's root directory: (clusters in its chain, entries used before
/// the end marker, entries per cluster).
pub fn root_dir(fat: &[u8]) -> (usize, usize, usize) {
    let u16_at = |o: usize| u16::from_le_bytes([fat[o], fat[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes([fat[o], fat[o + 1], fat[o + 2], fat[o + 3]]) as usize;
    let (bps, spc, reserved, nfats) = (u16_at(11), fat[13] as usize, u16_at(14), fat[16] as usize);
    let (fat_size, mut cluster) = (u32_at(36), u32_at(44));
    let data = (reserved + nfats * fat_size) * bps;
    let cluster_bytes = bps * spc;
    let (mut chain, mut used, mut ended) = (0, 0, false);
    while (2..0x0fff_fff8).contains(&cluster) {
        chain += 1;
        let at = data + (cluster - 2) * cluster_bytes;
        for e in fat[at..at + cluster_bytes].chunks(32) {
            ended |= e[0] == 0;
            used += usize::from(!ended);
        }
        cluster = u32_at(reserved * bps + cluster * 4) & 0x0fff_ffff;
    }
    (chain, used, cluster_bytes / 32)
}

impl Card {
    /// mtools' `-i image@@offset` for the boot partition.
    pub fn mtools_image(&self) -> String {
        format!("{}@@{}", self.path.display(), self.boot.0)
    }

    /// A file on the boot partition, read with mtools.
    pub fn boot_file(&self, name: &str) -> Option<Vec<u8>> {
        let out =
            Command::new(tool("mtype")).args(["-i", &self.mtools_image(), &format!("::/{name}")]).output().unwrap();
        out.status.success().then_some(out.stdout)
    }

    /// Every path on the boot partition (`mdir -/ -b`: recursive, bare).
    pub fn boot_paths(&self) -> Vec<String> {
        let out = run(Command::new(tool("mdir")).args(["-/", "-b", "-i", &self.mtools_image(), "::/"]));
        let mut v: Vec<String> = out.lines().map(|l| l.trim_start_matches("::").to_owned()).collect();
        v.sort();
        v
    }

    /// `fsck.fat -n` on a copy of the boot partition: its output, panicking if unclean.
    pub fn fsck(&self) -> String {
        let bytes = self.bytes(self.boot);
        let copy = self.path.with_extension("p1");
        std::fs::write(&copy, bytes).unwrap();
        let out = Command::new(tool("fsck.fat")).arg("-n").arg(&copy).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        std::fs::remove_file(&copy).unwrap();
        assert!(out.status.success(), "fsck.fat -n: {text}");
        text
    }

    /// The bytes of a range of the image.
    pub fn bytes(&self, (start, len): (u64, u64)) -> Vec<u8> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&self.path).unwrap();
        f.seek(SeekFrom::Start(start)).unwrap();
        let mut b = vec![0u8; len as usize];
        f.read_exact(&mut b).unwrap();
        b
    }
}
