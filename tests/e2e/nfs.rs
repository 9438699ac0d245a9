//! A volume that follows its workload, end to end. What runs where: the hub and a real NFS
//! server (nfs-ganesha, userspace, exporting a directory of this machine over NFSv4) run
//! here; each node is a qemu arm64 guest (TCG) booting Debian's kernel with the static
//! aarch64 agent (the SD-card build) started by its init — this machine's kernel has no
//! NFS client, the guests' has. A stateful job writes into its NFS volume on one node, that
//! node is powered off (its qemu killed), and the job comes back on the other node, which
//! finds the file through the same export.

use rabble_shared::api::NodeStatus;
use rabble_tests::{Hub, Proc, aarch64_agent, free_port, tool, wait_for};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The guest tests/vm/build-node-guest.sh makes (built once, kept in target/vm/node).
fn node_guest() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let w = here.join("../target/vm");
    let out = Command::new("bash").arg(here.join("vm/build-node-guest.sh")).env("W", &w).output().unwrap();
    assert!(out.status.success(), "build-node-guest.sh: {}", String::from_utf8_lossy(&out.stderr));
    w.join("node")
}

/// nfs-ganesha serving `dir` as `/export` (NFSv4 over TCP, on 127.0.0.1:`port`; the
/// guests reach it as 10.0.2.2, user-mode networking's address of this machine).
fn ganesha(d: &Path, dir: &Path, port: u16) -> Proc {
    let conf = d.join("ganesha.conf");
    let recovery = d.join("ganesha-recovery");
    std::fs::create_dir_all(&recovery).unwrap();
    std::fs::write(
        &conf,
        format!(
            "NFS_CORE_PARAM {{ Protocols = 4; NFS_Port = {port}; Bind_addr = 127.0.0.1; Enable_NLM = false; \
             Enable_RQUOTA = false; Enable_UDP = false; }}\n\
             NFSV4 {{ Graceless = true; RecoveryBackend = fs; RecoveryRoot = {rec}; Only_Numeric_Owners = true; }}\n\
             NFS_KRB5 {{ Active_krb5 = false; }}\n\
             EXPORT {{ Export_Id = 1; Path = {dir}; Pseudo = /export; Access_Type = RW; Squash = No_Root_Squash; \
             SecType = sys; Protocols = 4; Transports = TCP; FSAL {{ Name = VFS; }} }}\n\
             LOG {{ Default_Log_Level = EVENT; }}\n",
            rec = recovery.display(),
            dir = dir.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(tool("ganesha.nfsd"));
    cmd.args(["-F", "-L", "/dev/stderr", "-p"]).arg(d.join("ganesha.pid")).arg("-f").arg(&conf);
    let mut p = Proc::spawn("ganesha", &mut cmd, d);
    wait_for("ganesha listening", Duration::from_secs(20), || {
        assert!(p.is_running(), "ganesha exited:\n{}", p.log());
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())
    });
    p
}

/// A node: the guest's kernel and base initramfs, plus a cpio archive with `agent`.
fn boot(d: &Path, guest: &Path, agent: &Path, name: &str, hub: &Hub) -> Proc {
    let initrd = d.join(format!("{name}-initrd.gz"));
    let stage = d.join(format!("{name}-stage"));
    std::fs::create_dir_all(stage.join("bin")).unwrap();
    std::fs::copy(agent, stage.join("bin/rabble-agent")).unwrap();
    let pack = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cat '{base}' > '{out}' && cd '{stage}' && find bin | cpio -o -H newc --quiet | gzip -1 >> '{out}'",
            base = guest.join("base.cpio.gz").display(),
            out = initrd.display(),
            stage = stage.display()
        ))
        .status()
        .unwrap();
    assert!(pack.success());
    let append = format!(
        "console=ttyAMA0 quiet rabble.node={name} rabble.hub=10.0.2.2:{} rabble.key={}",
        hub.mqtt_port,
        hub.key()
    );
    let mut cmd = Command::new(tool("qemu-system-aarch64"));
    cmd.args(["-M", "virt", "-cpu", "cortex-a57", "-m", "256", "-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(guest.join("vmlinuz"))
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", &append, "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"]);
    Proc::spawn(&format!("guest-{name}"), &mut cmd, d)
}

const JOB: &str = r#"job "notes" {
  group "g" {
    volume "state" {
      type            = "csi"
      source          = "notes"
      attachment_mode = "file-system"
      access_mode     = "single-node-writer"
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo \"written on $node (found $(cat data/log 2>/dev/null | wc -l) lines)\" >> data/log; exec sleep 3600"]
      }
      env { node = "${node.unique.name}" }
      volume_mount {
        volume      = "state"
        destination = "/data"
      }
      resources { memory = 16 }
    }
  }
}
"#;

#[test]
fn a_stateful_job_finds_its_nfs_volume_on_the_node_it_moves_to() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let export = d.join("export");
    std::fs::create_dir_all(&export).unwrap();
    let nfs_port = free_port();
    let _server = ganesha(d, &export, nfs_port);
    let hub = Hub::start(d, &[]);
    let (guest, agent) = (node_guest(), aarch64_agent());
    let started = Instant::now();
    let mut nodes = vec![("pi1", boot(d, &guest, &agent, "pi1", &hub)), ("pi2", boot(d, &guest, &agent, "pi2", &hub))];
    for (n, g) in &mut nodes {
        wait_for(&format!("{n} up"), Duration::from_secs(120), || {
            assert!(g.is_running(), "{n}'s qemu exited:\n{}", g.log());
            match hub.node_status(n) {
                Some(NodeStatus::Up) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        println!(
            "BENCH nfs: guest {n} booted and joined {:.1} s after both started (TCG)",
            started.elapsed().as_secs_f64()
        );
        // The node's status and its facts are two messages: up may come first.
        let nfs = wait_for(&format!("{n}'s facts"), Duration::from_secs(30), || {
            let facts = hub.nodes().into_iter().find(|v| v.id.as_str() == *n).and_then(|v| v.facts);
            facts.map(|f| f.storage).ok_or_else(|| "no facts yet".to_owned())
        });
        assert_eq!(nfs, ["nfs".to_owned()], "the guest's kernel has an NFS client:\n{}", g.log());
    }
    let (ok, out, err) =
        hub.cli(&["volume", "create", "notes", "--nfs", "10.0.2.2:/export", "-o", &format!("port={nfs_port}")]);
    assert!(ok, "{out}{err}");
    // An export the server does not have: the allocation fails with the mount's reason.
    let (ok, out, err) =
        hub.cli(&["volume", "create", "nope", "--nfs", "10.0.2.2:/nope", "-o", &format!("port={nfs_port}")]);
    assert!(ok, "{out}{err}");
    hub.run_job(&d.join("nope.nomad.hcl"), &JOB.replace("\"notes\"", "\"nope\""));
    let why = wait_for("the nope allocation failed", Duration::from_secs(60), || {
        let j: rabble_shared::api::JobView = hub.get("/api/v1/jobs/nope").unwrap();
        let failed = j.allocations.into_iter().find(|a| a.client_status == rabble_shared::alloc::ClientStatus::Failed);
        failed.map(|a| a.client_reason).ok_or_else(|| "not failed yet".to_owned())
    });
    assert_eq!(why, "volume \"nope\": mount 10.0.2.2:/nope: no such export on the server (errno 2)");
    let (ok, _, err) = hub.cli(&["job", "stop", "-purge", "nope"]);
    assert!(ok, "{err}");
    hub.run_job(&d.join("notes.nomad.hcl"), JOB);
    let log = export.join("log");
    // The file appears (the shell's open) before its line does (NFS writes at close): a whole line is awaited.
    let first = wait_for("the first node's line in the export", Duration::from_secs(90), || {
        let text = std::fs::read_to_string(&log).map_err(|e| format!("{e}; job on {:?}", hub.running_on("notes")))?;
        if !text.ends_with('\n') {
            return Err(format!("{text:?} so far"));
        }
        let node = hub.running_on("notes").pop().ok_or("not running")?;
        Ok((node, text))
    });
    let (home, text) = first;
    assert_eq!(text, format!("written on {home} (found 0 lines)\n"));
    let i = nodes.iter().position(|(n, _)| *n == home).unwrap();
    let took =
        nodes[i].1.log().lines().find(|l| l.contains("NFS mount volume=notes")).map(str::to_owned).unwrap_or_default();
    assert!(took.contains("result=Ok(())"), "{}", nodes[i].1.log());
    println!(
        "BENCH nfs: mount on {home}: {}",
        took.split_whitespace().find(|w| w.starts_with("took_ms=")).unwrap_or("?")
    );

    // Power cut: the node's qemu is killed; the job comes back on the other node, which
    // reads what the first one wrote.
    let (home, mut gone) = nodes.remove(i);
    let (other, survivor) = &mut nodes[0];
    let cut = Instant::now();
    gone.stop("KILL");
    hub.wait_node(home, NodeStatus::Down, Duration::from_secs(30));
    let text = wait_for("the job's line from the other node", Duration::from_secs(120), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 2 && text.ends_with('\n') {
            Ok(text)
        } else {
            Err(format!("{text:?}; job on {:?}", hub.running_on("notes")))
        }
    });
    println!("BENCH nfs: power cut -> the job writing on {other} in {:.1} s", cut.elapsed().as_secs_f64());
    assert_eq!(text, format!("written on {home} (found 0 lines)\nwritten on {other} (found 1 lines)\n"));
    assert_eq!(hub.running_on("notes"), [other.to_string()]);
    let (_, show, _) = hub.cli(&["volume", "show", "notes"]);
    assert!(show.lines().any(|l| l.contains("notes/g") && l.contains(*other)), "{show}");

    // Stopped: the last user gone, the node unmounts the export.
    let (ok, _, err) = hub.cli(&["job", "stop", "notes"]);
    assert!(ok, "{err}");
    wait_for("the export unmounted", Duration::from_secs(60), || {
        let log = survivor.log();
        if log.contains("NFS export unmounted") {
            Ok(())
        } else {
            Err(log.lines().rev().take(3).collect::<Vec<_>>().join("\n"))
        }
    });
}
