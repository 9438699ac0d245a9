//! What the boot partition's files say and must say, pure: the first-boot hook in
//! `cmdline.txt` (the three tokens Raspberry Pi Imager uses for its `firstrun.sh`, added
//! once, replaced on a re-run, never disturbing Imager's own or cloud-init's `ds=`), where
//! the root file system mounts the boot partition (p2's `/etc/fstab`), and which CPU an
//! ELF binary is for.

/// The hook's tokens besides the script's own `systemd.run=`.
pub const SUCCESS: &str = "systemd.run_success_action=reboot";
pub const UNIT: &str = "systemd.unit=kernel-command-line.target";
/// Where Rabble's files go on the boot partition.
pub const DIR: &str = "rabble";
/// Imager's own first-boot script's token.
const IMAGER_RUN: &str = "systemd.run=/boot/firstrun.sh";

fn ours(token: &str) -> bool {
    token.strip_prefix("systemd.run=").is_some_and(|p| p.ends_with("/rabble/firstboot.sh"))
}

/// Whether Raspberry Pi Imager customised the card (its `firstrun.sh` hook is there).
pub fn imager_customised(cmdline: &str) -> bool {
    cmdline.split_whitespace().any(|t| t == IMAGER_RUN)
}

/// The script's path as the booted system sees it. With Imager's hook present its
/// initramfs fix-up rewrites every `/boot/` to `/boot/firmware/` on Bookworm and later,
/// so the path is written as `/boot/...` then, as Imager writes its own.
pub fn script_path(boot_mount: &str, cmdline: &str) -> String {
    let base = if imager_customised(cmdline) { "/boot" } else { boot_mount };
    format!("{base}/{DIR}/firstboot.sh")
}

/// `cmdline` with the hook for `script` (on its one line, the line ending kept), and the
/// tokens Rabble added (which `firstboot.sh` removes, and only those). A hook from an
/// earlier run is replaced; Imager's tokens are left alone and not doubled.
pub fn with_hook(cmdline: &str, script: &str) -> (String, Vec<String>) {
    let body = cmdline.trim_end_matches(['\r', '\n']);
    let ending = &cmdline[body.len()..];
    let mut tokens: Vec<&str> = body.split_whitespace().filter(|t| !ours(t)).collect();
    // Left by an earlier run of ours (no other systemd.run= needs them): drop, re-add below.
    if !tokens.iter().any(|t| t.starts_with("systemd.run=")) {
        tokens.retain(|t| *t != SUCCESS && *t != UNIT);
    }
    let run = format!("systemd.run={script}");
    let mut added = vec![run];
    for t in [SUCCESS, UNIT] {
        if !tokens.contains(&t) {
            added.push(t.to_owned());
        }
    }
    let mut line = tokens.join(" ");
    for t in &added {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(t);
    }
    line.push_str(if ending.is_empty() { "\n" } else { ending });
    (line, added)
}

/// Where the root file system mounts the FAT boot partition, from its `/etc/fstab`:
/// the `vfat` line at `/boot/firmware` or `/boot`.
pub fn boot_mount(fstab: &str) -> Option<String> {
    fstab
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && matches!(f[1], "/boot/firmware" | "/boot") && matches!(f[2], "vfat" | "auto"))
        .map(|f| f[1].to_owned())
}

/// The CPUs Rabble builds the agent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Arch {
    Aarch64,
    /// 32-bit ARM (armhf Pi OS, Pi Zero/1 with ARMv6, Pi 2/3 32-bit).
    Arm,
    X86_64,
}

impl Arch {
    /// The suffix of the agent's file on the card (`rabble-agent.aarch64`), matched by
    /// `firstboot.sh` against `uname -m`.
    pub fn suffix(self) -> &'static str {
        match self {
            Arch::Aarch64 => "aarch64",
            Arch::Arm => "arm",
            Arch::X86_64 => "x86_64",
        }
    }
}

/// The CPU of a little-endian ELF executable.
pub fn elf_arch(head: &[u8]) -> Option<Arch> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" || head[5] != 1 {
        return None;
    }
    match u16::from_le_bytes([head[18], head[19]]) {
        183 => Some(Arch::Aarch64),
        40 => Some(Arch::Arm),
        62 => Some(Arch::X86_64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOKWORM: &str = "console=serial0,115200 console=tty1 root=PARTUUID=6c9a1d2e-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n";

    #[test]
    fn the_hook_is_added_once_and_replaced_on_a_rerun() {
        let script = script_path("/boot/firmware", BOOKWORM);
        assert_eq!(script, "/boot/firmware/rabble/firstboot.sh");
        let (once, added) = with_hook(BOOKWORM, &script);
        assert_eq!(
            once,
            BOOKWORM.trim_end().to_owned()
                + " systemd.run=/boot/firmware/rabble/firstboot.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target\n"
        );
        assert_eq!(added.len(), 3);
        assert_eq!(with_hook(&once, &script).0, once, "a second run changes nothing");
        // A re-run with another path replaces the hook rather than adding one.
        let (moved, _) = with_hook(&once, "/boot/rabble/firstboot.sh");
        assert_eq!(moved.matches("systemd.run=").count(), 1);
        assert_eq!(moved.matches(SUCCESS).count(), 1);
        assert!(moved.ends_with("systemd.run=/boot/rabble/firstboot.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target\n"));
    }

    #[test]
    fn imager_and_cloud_init_tokens_are_kept() {
        let imager = "console=tty1 root=PARTUUID=1-02 rootwait quiet systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target ds=nocloud;i=abc\r\n";
        assert!(imager_customised(imager));
        let script = script_path("/boot/firmware", imager);
        assert_eq!(script, "/boot/rabble/firstboot.sh");
        let (line, added) = with_hook(imager, &script);
        assert_eq!(added, vec!["systemd.run=/boot/rabble/firstboot.sh".to_owned()], "Imager's tokens are not doubled");
        assert!(line.contains("systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot"), "{line}");
        assert!(line.contains("ds=nocloud;i=abc") && line.ends_with("systemd.run=/boot/rabble/firstboot.sh\r\n"));
        assert_eq!(with_hook(&line, &script).0, line);
        assert_eq!(with_hook("", "/boot/rabble/firstboot.sh").0.lines().count(), 1);
    }

    #[test]
    fn fstab_boot_mount() {
        let bookworm = "proc /proc proc defaults 0 0\nPARTUUID=6c9a1d2e-01  /boot/firmware  vfat    defaults          0       2\nPARTUUID=6c9a1d2e-02  /  ext4  defaults,noatime  0  1\n";
        assert_eq!(boot_mount(bookworm).as_deref(), Some("/boot/firmware"));
        let bullseye = "# a comment /boot/firmware vfat\nPARTUUID=x-01  /boot  vfat  defaults  0  2\n";
        assert_eq!(boot_mount(bullseye).as_deref(), Some("/boot"));
        assert_eq!(boot_mount("LABEL=root / ext4 defaults 0 1\n"), None);
    }

    #[test]
    fn elf_machines() {
        let mut h = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        h.resize(20, 0);
        h[18] = 183;
        assert_eq!(elf_arch(&h), Some(Arch::Aarch64));
        h[18] = 40;
        assert_eq!(elf_arch(&h), Some(Arch::Arm));
        assert_eq!(elf_arch(b"#!/bin/sh\n"), None);
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let here = match std::env::consts::ARCH {
            "aarch64" => Some(Arch::Aarch64),
            "arm" => Some(Arch::Arm),
            "x86_64" => Some(Arch::X86_64),
            _ => None,
        };
        assert_eq!(elf_arch(&me), here);
    }
}
