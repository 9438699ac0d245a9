//! `rabble image` on synthetic Raspberry Pi OS cards (tests/src/card.rs) of every layout
//! it must handle: only the boot partition's FAT changes (`fsck.fat -n` clean, its
//! other files untouched, p2 and the MBR byte-identical), `cmdline.txt` gets exactly one
//! hook with the right path, the `rabble/` folder holds what first boot installs, and a
//! second run changes no byte. `.img.xz` in, `.img` out.

use rabble_tests::card::{self, Card, Layout};
use rabble_tests::{bin, tool};
use std::path::{Path, PathBuf};
use std::process::Command;

fn agent_aarch64() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/aarch64-unknown-linux-musl/agent-release/rabble-agent");
    assert!(p.exists(), "{} is missing: bash .ci/test builds it", p.display());
    p
}

struct Inputs {
    ca: PathBuf,
    token: PathBuf,
    services: PathBuf,
    arm: PathBuf,
}

fn inputs(d: &Path) -> Inputs {
    let services = d.join("services");
    std::fs::create_dir_all(&services).unwrap();
    std::fs::write(services.join("node-exporter.toml"), "[[service]]\nname = \"node-exporter\"\nport = 9100\n")
        .unwrap();
    std::fs::write(services.join("README.md"), "not a service file\n").unwrap();
    std::fs::write(d.join("ca.pem"), "-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n").unwrap();
    std::fs::write(d.join("token"), "rbl_secret_token_1234\n").unwrap();
    // The real 32-bit build (static armv7, for armhf Pi OS).
    Inputs { ca: d.join("ca.pem"), token: d.join("token"), services, arm: rabble_tests::armv7_agent() }
}

fn image(target: &Path, i: &Inputs, extra: &[&str]) -> String {
    let out = Command::new(bin("rabble"))
        .arg("image")
        .arg(target)
        .args(["--name", "pi-kitchen", "--hub", "mqtts://hub.lan:8883", "--class", "pi4", "--meta", "room=kitchen"])
        .arg("--ca")
        .arg(&i.ca)
        .arg("--token-file")
        .arg(&i.token)
        .arg("--services-dir")
        .arg(&i.services)
        .arg("--agent")
        .arg(agent_aarch64())
        .arg("--agent")
        .arg(&i.arm)
        .args(extra)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "rabble image: {text}");
    text
}

/// The boot partition's files other than Rabble's, with their contents.
fn others(c: &Card) -> Vec<(String, Vec<u8>)> {
    c.boot_paths()
        .into_iter()
        .filter(|p| p != "/cmdline.txt" && !p.starts_with("/rabble"))
        .filter_map(|p| c.boot_file(&p[1..]).map(|b| (p, b)))
        .collect()
}

fn check_layout(d: &Path, layout: Layout, mount: &str, script: &str) -> Card {
    let i = inputs(d);
    let c = card::make(d, layout);
    let before = std::fs::read(&c.path).unwrap();
    let other_files = others(&c);
    let cmdline_before = String::from_utf8(c.boot_file("cmdline.txt").unwrap()).unwrap();
    let (root_clusters, ..) = card::root_dir(&c.bytes(c.boot));
    let summary = image(&c.path, &i, &[]);
    assert!(summary.contains(&format!("boot partition mounted at {mount}")), "{summary}");

    c.fsck();
    let (grown, ..) = card::root_dir(&c.bytes(c.boot));
    assert_eq!(grown, root_clusters + 1, "the root directory grew into a dirty cluster");
    assert!(!c.boot_paths().iter().any(|p| p.contains("AAAA")), "no garbage entries: {:?}", c.boot_paths());
    let after = std::fs::read(&c.path).unwrap();
    assert_eq!(&after[..c.boot.0 as usize], &before[..c.boot.0 as usize], "the MBR and the gap");
    let root = (c.root.0 as usize)..((c.root.0 + c.root.1) as usize);
    assert!(after[root.clone()] == before[root], "p2 is byte-identical");
    assert_eq!(others(&c), other_files, "the rest of p1 is as it was");

    let cmdline = String::from_utf8(c.boot_file("cmdline.txt").unwrap()).unwrap();
    assert_eq!(cmdline.lines().count(), 1, "{cmdline:?}");
    assert!(cmdline.starts_with(cmdline_before.trim_end()), "{cmdline}");
    assert_eq!(cmdline.matches(&format!("systemd.run={script}")).count(), 1, "{cmdline}");
    for t in ["systemd.run_success_action=reboot", "systemd.unit=kernel-command-line.target"] {
        assert_eq!(cmdline.matches(t).count(), 1, "{cmdline}");
    }

    let files: Vec<String> =
        c.boot_paths().into_iter().filter(|p| p.starts_with("/rabble/") && !p.ends_with('/')).collect();
    let want = [
        "/rabble/agent.toml",
        "/rabble/ca.pem",
        "/rabble/cmdline.added",
        "/rabble/firstboot.sh",
        "/rabble/rabble-agent.aarch64",
        "/rabble/rabble-agent.service",
        "/rabble/rabble-agent.service.d/10-token.conf",
        "/rabble/services/node-exporter.toml",
        "/rabble/token",
    ];
    let mut want: Vec<&str> = want.to_vec();
    if layout == Layout::Bullseye {
        want.push("/rabble/rabble-agent.arm"); // an armhf image: the 32-bit build too
        want.sort();
    }
    assert_eq!(files, want);
    if layout == Layout::Bullseye {
        assert_eq!(
            c.boot_file("rabble/rabble-agent.arm").unwrap(),
            std::fs::read(rabble_tests::armv7_agent()).unwrap()
        );
    }
    assert_eq!(c.boot_file("rabble/rabble-agent.aarch64").unwrap(), std::fs::read(agent_aarch64()).unwrap());
    assert_eq!(c.boot_file("rabble/token").unwrap(), b"rbl_secret_token_1234\n");
    let toml = String::from_utf8(c.boot_file("rabble/agent.toml").unwrap()).unwrap();
    assert!(toml.contains("name = \"pi-kitchen\"") && toml.contains("room = \"kitchen\""), "{toml}");
    assert!(!toml.contains("rbl_secret"), "the token is its own root-only file, not in the config");

    // Twice: not one byte more changes.
    let summary = image(&c.path, &i, &[]);
    assert!(summary.contains("(unchanged)"), "{summary}");
    assert!(std::fs::read(&c.path).unwrap() == after, "a second run changed the image");
    c
}

#[test]
fn bookworm_card() {
    let dir = tempfile::tempdir().unwrap();
    check_layout(dir.path(), Layout::Bookworm, "/boot/firmware", "/boot/firmware/rabble/firstboot.sh");
}

#[test]
fn trixie_card_with_cloud_init_files() {
    let dir = tempfile::tempdir().unwrap();
    let c = check_layout(dir.path(), Layout::TrixieCloudInit, "/boot/firmware", "/boot/firmware/rabble/firstboot.sh");
    assert_eq!(c.boot_file("network-config").unwrap(), b"version: 2\nethernets:\n  eth0:\n    dhcp4: true\n");
    let cmdline = String::from_utf8(c.boot_file("cmdline.txt").unwrap()).unwrap();
    assert!(cmdline.contains(" ds=nocloud;i=rpi-imager-1732450000 "), "{cmdline}");
}

#[test]
fn imager_customised_card() {
    let dir = tempfile::tempdir().unwrap();
    // Imager's initramfs fix-up rewrites /boot/ to /boot/firmware/: our path is written as /boot/.
    let c = check_layout(dir.path(), Layout::Imager, "/boot/firmware", "/boot/rabble/firstboot.sh");
    let cmdline = String::from_utf8(c.boot_file("cmdline.txt").unwrap()).unwrap();
    assert!(
        cmdline.contains("systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot"),
        "Imager's own hook stays first: {cmdline}"
    );
    assert_eq!(c.boot_file("rabble/cmdline.added").unwrap(), b"systemd.run=/boot/rabble/firstboot.sh\n");
}

#[test]
fn bullseye_32_bit_card() {
    let dir = tempfile::tempdir().unwrap();
    check_layout(dir.path(), Layout::Bullseye, "/boot", "/boot/rabble/firstboot.sh");
}

#[test]
fn an_img_xz_in_an_img_out_and_clear_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let i = inputs(d);
    let c = card::make(d, Layout::Bookworm);
    let original = std::fs::read(&c.path).unwrap();
    card::run(Command::new(tool("xz")).args(["-T2", "-3", "-k"]).arg(&c.path));
    std::fs::remove_file(&c.path).unwrap();
    let xz = c.path.with_extension("img.xz");
    image(&xz, &i, &[]);
    assert!(c.path.exists(), "bookworm.img written beside the .xz");
    c.fsck();
    assert_eq!(std::fs::metadata(&c.path).unwrap().len(), original.len() as u64);
    assert!(c.boot_file("rabble/firstboot.sh").is_some());
    let root = (c.root.0 as usize)..((c.root.0 + c.root.1) as usize);
    assert!(std::fs::read(&c.path).unwrap()[root.clone()] == original[root], "p2 decompressed as it was");

    // Mistakes are named.
    let fail = |args: &[&str], target: &Path| {
        let out = Command::new(bin("rabble")).arg("image").arg(target).args(args).output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let base = ["--name", "x", "--hub", "mqtt://h:1883"];
    let e = fail(&[&base[..], &["--agent", i.arm.to_str().unwrap()]].concat(), &c.path);
    assert!(e.contains("the image runs aarch64 binaries; the agents given are for arm"), "{e}");
    std::fs::write(d.join("junk.img"), vec![0u8; 4096]).unwrap();
    let e = fail(&[&base[..], &["--agent", i.arm.to_str().unwrap()]].concat(), &d.join("junk.img"));
    assert!(e.contains("junk.img: no MBR partition table"), "{e}");
    let truncated = d.join("short.img");
    std::fs::write(&truncated, &original[..(c.root.0 as usize + 4096)]).unwrap();
    let e = fail(&[&base[..], &["--agent", i.arm.to_str().unwrap()]].concat(), &truncated);
    assert!(e.contains("ends past the image's end"), "{e}");
}

/// The first-boot installer is plain POSIX sh that shellcheck finds nothing in.
#[test]
fn firstboot_sh_passes_shellcheck() {
    let script = rabble_tests::images("pi/firstboot.sh");
    let out = Command::new(tool("shellcheck")).args(["-s", "sh"]).arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// firstboot.sh's `unhook`, run by the host's sh: it removes exactly the tokens Rabble
/// added (Imager's stay), also from a CRLF file. (The qemu first-boot test runs it too.)
#[test]
fn firstboot_unhook_removes_exactly_our_tokens() {
    let script = std::fs::read_to_string(rabble_tests::images("pi/firstboot.sh")).unwrap();
    let start = script.find("unhook() {").unwrap();
    let func = &script[start..start + script[start..].find("\n}\n").unwrap() + 3];
    let dir = tempfile::tempdir().unwrap();
    let fw = dir.path();
    std::fs::create_dir_all(fw.join("rabble")).unwrap();
    std::fs::write(fw.join("rabble/cmdline.added"), "systemd.run=/boot/rabble/firstboot.sh\n").unwrap();
    std::fs::write(
        fw.join("cmdline.txt"),
        format!("{}systemd.run=/boot/rabble/firstboot.sh\r\n", card::CMDLINE_IMAGER.trim_end().to_owned() + " "),
    )
    .unwrap();
    let sh = format!("SRC={0}/rabble; FW={0}; {func}\nunhook", fw.display());
    card::run(Command::new("sh").args(["-c", &sh]));
    assert_eq!(std::fs::read_to_string(fw.join("cmdline.txt")).unwrap(), card::CMDLINE_IMAGER, "Imager's hook stays");
    // Without cmdline.added (an older card): our systemd.run= still goes, nothing else.
    std::fs::remove_file(fw.join("rabble/cmdline.added")).unwrap();
    std::fs::write(fw.join("cmdline.txt"), "a b systemd.run=/boot/firmware/rabble/firstboot.sh c\n").unwrap();
    card::run(Command::new("sh").args(["-c", &sh]));
    assert_eq!(std::fs::read_to_string(fw.join("cmdline.txt")).unwrap(), "a b c\n");
}

/// A real block device: a loop device over a file (no card reader here). Writing to it
/// is refused without --force (a loop device is not removable), then the image is
/// flashed with --out (4 MiB chunks, synced, read back) and changed in place on the
/// device; the device's file passes fsck.fat and holds the hook once.
#[test]
fn writing_to_a_block_device() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let i = inputs(d);
    let c = card::make(d, Layout::Bookworm);
    let backing = d.join("sdcard");
    std::fs::File::create(&backing).unwrap().set_len(std::fs::metadata(&c.path).unwrap().len() + (64 << 20)).unwrap();
    let dev = card::run(Command::new(tool("losetup")).args(["--find", "--show"]).arg(&backing)).trim().to_owned();
    struct Detach(String);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = Command::new("losetup").args(["-d", &self.0]).status();
        }
    }
    let _detach = Detach(dev.clone());
    let out = Command::new(bin("rabble"))
        .arg("image")
        .arg(&c.path)
        .args(["--name", "x", "--hub", "mqtt://h:1883", "--agent", agent_aarch64().to_str().unwrap(), "--yes"])
        .args(["--out", &dev])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("is not a removable disk: --force"), "{e}");

    image(&c.path, &i, &["--out", &dev, "--force", "--yes"]);
    let on_card = Card { path: backing.clone(), ..c.clone() };
    on_card.fsck();
    assert!(on_card.boot_file("rabble/firstboot.sh").is_some());
    // In place on the device, a second time: still one hook, nothing else changed.
    let before = std::fs::read(&backing).unwrap();
    image(Path::new(&dev), &i, &["--force", "--yes"]);
    on_card.fsck();
    let cmdline = String::from_utf8(on_card.boot_file("cmdline.txt").unwrap()).unwrap();
    assert_eq!(cmdline.matches("systemd.run=").count(), 1, "{cmdline}");
    assert!(std::fs::read(&backing).unwrap() == before, "identical files are not rewritten on the card either");
}

/// `rabble image --join` asks the hub for the node's join token (and its hub_key): the
/// token on the card is one the hub accepts, once; a hub without node credentials says why.
#[test]
fn join_tokens_straight_from_the_hub() {
    use rabble_shared::api::NodeStatus;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = card::make(d, Layout::Bookworm);
    let ask = |hub: &rabble_tests::Hub| {
        Command::new(bin("rabble"))
            .arg("image")
            .arg(&c.path)
            .args(["--name", "pi-den", "--hub", "mqtt://h:1883", "--join", "--addr", &hub.http])
            .args(["--agent", agent_aarch64().to_str().unwrap()])
            .output()
            .unwrap()
    };
    std::fs::create_dir_all(d.join("plain")).unwrap();
    let plain = rabble_tests::Hub::start(&d.join("plain"), &[]);
    let out = ask(&plain);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("does not use node credentials"), "{e}");
    drop(plain);

    let hub = rabble_tests::Hub::start(d, &["--require-credentials", "true"]);
    let out = ask(&hub);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(c.boot_file("rabble/join-token").unwrap()).unwrap();
    let toml = String::from_utf8(c.boot_file("rabble/agent.toml").unwrap()).unwrap();
    assert!(toml.contains(&format!("hub_key = \"{}\"", hub.key())), "{toml}");
    // The card's join token lets that node in (an agent on this host stands in for the Pi).
    std::fs::write(d.join("join"), &token).unwrap();
    let state = d.join("den");
    std::fs::create_dir_all(&state).unwrap();
    let (tok, join) = (state.join("token"), d.join("join"));
    let extra = ["--token-file", tok.to_str().unwrap(), "--join-token-file", join.to_str().unwrap()];
    let url = format!("mqtt://127.0.0.1:{}", hub.mqtt_port);
    let _a =
        rabble_tests::Agent::spawn(Command::new(bin("rabble-agent")), &state, "pi-den", &url, state.join("s"), &extra);
    hub.wait_node("pi-den", NodeStatus::Up, std::time::Duration::from_secs(15));

    // On the LAN: the hub's API over HTTPS with its CA, ACLs on; the join token is minted
    // for a token that may write pi-* nodes, and refused without one.
    let lan = d.join("lan");
    std::fs::create_dir_all(&lan).unwrap();
    let c2 = card::make(&lan, Layout::Bookworm);
    let port = rabble_tests::free_port();
    let listen = format!("127.0.0.1:{port}");
    let (hub, tls) = rabble_tests::Hub::start_tls(&lan, &["--https-listen", &listen]);
    let root = hub.bootstrap_acl();
    let imager = hub.token_with(&root, "imager", "node \"pi-\" {\n  policy = \"write\"\n}\n");
    let ask = |token: Option<&str>| {
        let mut cmd = Command::new(bin("rabble"));
        cmd.arg("image").arg(&c2.path).args(["--name", "pi-lan", "--hub", &tls.url(), "--join"]);
        cmd.args(["--addr", &format!("https://localhost:{port}"), "--ca-cert", tls.ca.to_str().unwrap()]);
        cmd.args(["--agent", agent_aarch64().to_str().unwrap()]).env_remove("RABBLE_TOKEN_FILE");
        cmd.env("XDG_CONFIG_HOME", lan.join("cfg"));
        match token {
            Some(t) => cmd.env("RABBLE_TOKEN", t),
            None => cmd.env_remove("RABBLE_TOKEN"),
        };
        cmd.output().unwrap()
    };
    let out = ask(None);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("needs node:write on \"pi-lan\""), "{e}");
    let out = ask(Some(&imager));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(c2.boot_file("rabble/join-token").unwrap()).unwrap().trim().len(), 64);
}
