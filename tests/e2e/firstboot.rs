//! First boot for real: a Raspberry-Pi-OS-shaped card (tests/vm/build-vm.sh: a systemd
//! Debian arm64 root — Debian 12 and 13, what Pi OS Bookworm and Trixie are built from —,
//! Debian's arm64 kernel) made ready by the real `rabble image` with
//! the real aarch64 agent and a join token minted by the real hub, booted twice under
//! qemu-system-aarch64 (TCG): boot 1 runs firstboot.sh through `systemd.run=` and
//! reboots; boot 2 starts the agent's unit, which trades the join token at its first
//! connect and registers the card's service. The card's FAT is clean of Rabble's files
//! and hook afterwards, and the same join token is refused when replayed. Times go to
//! target/firstboot-<suite>.txt (printed by .ci/run). The guest reaches the hub on the host
//! through qemu's user network (restrict=on: nothing leaves qemu) and a guestfwd to
//! 10.0.2.100:1883.

use rabble_shared::api::NodeStatus;
use rabble_tests::card::run;
use rabble_tests::{Agent, Hub, aarch64_agent, bin, rabble_hub_cmd, tool, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The VM for a Debian suite (`bookworm`: target/vm, `trixie`: target/vm-trixie), built once.
fn vm_dir(suite: &str) -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let w = here.join(if suite == "bookworm" { "../target/vm".to_owned() } else { format!("../target/vm-{suite}") });
    run(Command::new("bash").arg(here.join("vm/build-vm.sh")).env("W", &w).env("SUITE", suite));
    w
}

/// The kernel command line the Pi firmware would pass: the card's cmdline.txt, with the
/// serial console mapped to qemu's PL011.
fn cmdline(card: &Path) -> String {
    let line = run(Command::new(tool("mtype")).args([
        "-i",
        &format!("{}@@{}", card.display(), 16_384 * 512),
        "::/cmdline.txt",
    ]));
    line.trim().replace("console=serial0,115200", "console=ttyAMA0,115200").replace(" console=tty1", "")
}

fn boot(vm: &Path, card: &Path, log: &Path, hub_port: u16) -> Child {
    let fwd = format!("user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:1883-cmd:socat - TCP:127.0.0.1:{hub_port}");
    Command::new(tool("qemu-system-aarch64"))
        .args(["-M", "virt", "-cpu", "cortex-a53", "-smp", "2", "-m", "1024", "-accel", "tcg,thread=multi"])
        .arg("-kernel")
        .arg(vm.join("vmlinuz"))
        .arg("-initrd")
        .arg(vm.join("initrd.gz"))
        .args(["-append", &cmdline(card)])
        .arg("-drive")
        .arg(format!("file={},format=raw,if=none,id=d0", card.display()))
        .args(["-device", "virtio-blk-pci,drive=d0", "-netdev", &fwd, "-device", "virtio-net-pci,netdev=n0,romfile="])
        .args(["-nographic", "-no-reboot", "-serial", "mon:stdio", "-display", "none"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_card_boots_installs_the_agent_and_joins_the_hub() {
    first_boot("bookworm");
}

/// The same on Debian 13 (systemd 257, kernel 6.12), what Pi OS Trixie is built from.
#[test]
fn a_trixie_card_boots_installs_the_agent_and_joins_the_hub() {
    first_boot("trixie");
}

fn first_boot(suite: &str) {
    let vm = vm_dir(suite);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &["--require-credentials", "true"]);
    let data = hub.data_dir.to_str().unwrap().to_owned();
    let (ok, join, err) = rabble_hub_cmd(&["--data-dir", &data, "node", "add", "pi-qemu", "--join", "--ttl", "1h"]);
    assert!(ok, "{err}");
    std::fs::write(d.join("pi-qemu.join"), &join).unwrap();
    let services = d.join("services");
    std::fs::create_dir_all(&services).unwrap();
    std::fs::write(services.join("web.toml"), "[[service]]\nname = \"web\"\nport = 8080\n").unwrap();

    let card = d.join("card.img");
    run(Command::new("cp").arg("--sparse=always").arg(vm.join("base.img")).arg(&card));
    let original_cmdline = cmdline(&card);
    let t = Instant::now();
    let out = Command::new(bin("rabble"))
        .arg("image")
        .arg(&card)
        .args(["--name", "pi-qemu", "--hub", "mqtt://10.0.2.100:1883", "--hub-key", &hub.key()])
        .arg("--join-token-file")
        .arg(d.join("pi-qemu.join"))
        .arg("--agent")
        .arg(aarch64_agent())
        .arg("--services-dir")
        .arg(&services)
        .output()
        .unwrap();
    let image_time = t.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();

    // Boot 1: firstboot.sh, then the reboot ends qemu (-no-reboot).
    let power_on = Instant::now();
    let mut q = boot(&vm, &card, &d.join("boot1.log"), hub.mqtt_port);
    let status = wait_for("boot 1 to install the agent and reboot", Duration::from_secs(300), || {
        q.try_wait().unwrap().ok_or_else(|| "running".to_owned())
    });
    let boot1 = power_on.elapsed();
    let log1 = String::from_utf8_lossy(&std::fs::read(d.join("boot1.log")).unwrap()).into_owned();
    assert!(status.success() && log1.contains("rabble firstboot: installed rabble-agent.aarch64"), "{log1}");
    let tail: String =
        log1.lines().filter(|l| l.contains("rabble") || l.contains("cmdline")).collect::<Vec<_>>().join("\n");
    assert_eq!(cmdline(&card), original_cmdline, "exactly our tokens removed:\n{tail}");
    let fat = format!("{}@@{}", card.display(), 16_384 * 512);
    let listing = run(Command::new(tool("mdir")).args(["-/", "-b", "-i", &fat, "::/"]));
    assert!(!listing.contains("rabble"), "the rabble/ folder (and its join token) is gone: {listing}");

    // Boot 2: the agent's unit starts, joins with its join token, registers the card's service.
    let boot2_on = Instant::now();
    let mut q = boot(&vm, &card, &d.join("boot2.log"), hub.mqtt_port);
    let up = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        hub.wait_node("pi-qemu", NodeStatus::Up, Duration::from_secs(300));
        wait_for("the card's service", Duration::from_secs(60), || {
            let i = hub.instances("web");
            if i == ["pi-qemu/web"] { Ok(()) } else { Err(format!("{i:?}")) }
        });
    }));
    let (node_up, boot2) = (power_on.elapsed(), boot2_on.elapsed());
    let _ = q.kill();
    let _ = q.wait();
    if up.is_err() {
        let log2 = String::from_utf8_lossy(&std::fs::read(d.join("boot2.log")).unwrap()).into_owned();
        panic!("the node did not come up; boot 2:\n{log2}");
    }
    assert!(hub.proc.log().contains("node joined"), "{}", hub.proc.log());

    // The card's join token, replayed by another agent: refused, and the hub says why.
    let state = d.join("replay");
    std::fs::create_dir_all(&state).unwrap();
    let token = state.join("token");
    let join_file = d.join("pi-qemu.join");
    let extra = ["--token-file", token.to_str().unwrap(), "--join-token-file", join_file.to_str().unwrap()];
    let url = format!("mqtt://127.0.0.1:{}", hub.mqtt_port);
    let replay = Agent::spawn(Command::new(bin("rabble-agent")), &state, "pi-qemu", &url, state.join("s"), &extra);
    wait_for("the replay refused", Duration::from_secs(20), || {
        if hub.proc.log().contains("refused a join token: it was already used") {
            Ok(())
        } else {
            Err("not yet".into())
        }
    });
    drop(replay);
    assert!(!token.exists());

    let agent_bytes: usize = summary
        .lines()
        .filter(|l| l.contains("rabble/"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        .sum();
    let report = format!(
        "{suite}: rabble image (debug build) on a 1.5 GB card: {:.1} s; {agent_bytes} bytes of Rabble's files on the card\n\
         {suite}: boot 1 (firstboot.sh, reboot): {:.1} s; boot 2 to node up with its service: {:.1} s\n\
         {suite}: power-on to node up (both boots, qemu TCG on this machine): {:.1} s (goal: 60 s)\n",
        image_time.as_secs_f64(),
        boot1.as_secs_f64(),
        boot2.as_secs_f64(),
        node_up.as_secs_f64()
    );
    eprint!("{report}");
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../target/firstboot-{suite}.txt"));
    std::fs::write(out, report).unwrap();
}
