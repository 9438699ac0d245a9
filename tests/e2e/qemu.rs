//! The real targets under qemu-user: the static aarch64 agent (the `agent-release` build
//! that goes on a Pi's SD card) joins a hub started here, registers a service from a file
//! and turns its HTTP check to passing; the static armv7 build (32-bit Pi OS) does the same
//! and runs a raw_exec task.

use rabble_shared::Status;
use rabble_shared::api::NodeStatus;
use rabble_tests::{Agent, FlipServer, Hub, aarch64_agent, tool, wait_for};
use std::time::Duration;

#[test]
fn the_aarch64_build_joins_a_hub_under_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let binary = aarch64_agent();
    let head = std::fs::read(&binary).unwrap();
    // ELF, 64-bit, little-endian, e_machine = 183 (AArch64): not the host binary by mistake.
    assert_eq!((&head[..4], head[4], head[5], u16::from_le_bytes([head[18], head[19]])), (&b"\x7fELF"[..], 2, 1, 183));

    // The SD-card build is the full one: TLS is always in, the Docker driver by default.
    let v = std::process::Command::new(tool("qemu-aarch64-static")).arg(&binary).arg("--version").output().unwrap();
    let v = String::from_utf8_lossy(&v.stdout);
    assert!(v.starts_with("rabble-agent ") && v.contains("(docker driver)"), "{v}");

    let hub = Hub::start(d, &[]);
    let web = FlipServer::start();
    let services = rabble_tests::http_service_dir(d, "pi", "web", &web.url);
    let mut cmd = std::process::Command::new(tool("qemu-aarch64-static"));
    cmd.arg(&binary);
    let mut pi = Agent::spawn(cmd, d, "pi4", &format!("mqtt://127.0.0.1:{}", hub.mqtt_port), services, &[]);

    // Emulation is slow to start; the bounds are generous.
    hub.wait_node("pi4", NodeStatus::Up, Duration::from_secs(60));
    hub.wait_check("web-http", Status::Passing, Duration::from_secs(30));
    let node = hub.nodes().into_iter().find(|n| n.id.as_str() == "pi4").expect("pi4 in the catalog");
    assert_eq!(node.facts.as_ref().map(|f| f.arch.as_str()), Some("aarch64"), "facts come from the aarch64 build");
    assert_eq!(hub.instances("web"), ["pi4/web"]);
    // And a failing endpoint is seen by the emulated agent too.
    web.set(500);
    hub.wait_check("web-http", Status::Critical, Duration::from_secs(30));
    // Still alive after the check turned, and still heard from: a crash (panic=abort
    // prints nothing) or a hang would show here.
    assert!(pi.proc.is_running(), "the emulated agent exited:\n{}", pi.proc.log());
    let seen =
        |hub: &Hub| hub.nodes().into_iter().find(|n| n.id.as_str() == "pi4").and_then(|n| n.heartbeat).map(|h| h.seq);
    let before = seen(&hub);
    wait_for("a newer heartbeat from the emulated agent", Duration::from_secs(20), || {
        if seen(&hub) > before { Ok(()) } else { Err(format!("heartbeat seq still {before:?}")) }
    });
    assert!(pi.proc.is_running(), "the emulated agent exited:\n{}", pi.proc.log());
}

/// 32-bit Pi OS: the static armv7 build (glibc, linked statically) under qemu-arm-static
/// joins the hub, registers a service whose check passes, and runs a raw_exec task (the
/// task itself is this machine's /bin/sh: qemu-user runs only the agent).
#[test]
fn the_armv7_build_joins_registers_and_runs_raw_exec_under_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let binary = rabble_tests::armv7_agent();
    let head = std::fs::read(&binary).unwrap();
    // ELF, 32-bit, little-endian, e_machine = 40 (ARM).
    assert_eq!((&head[..4], head[4], head[5], u16::from_le_bytes([head[18], head[19]])), (&b"\x7fELF"[..], 1, 1, 40));
    let hub = Hub::start(d, &[]);
    let web = FlipServer::start();
    let services = rabble_tests::http_service_dir(d, "pi2", "web32", &web.url);
    let key = hub.key();
    let alloc = d.join("pi2-alloc").display().to_string();
    let mut cmd = std::process::Command::new(tool("qemu-arm-static"));
    cmd.arg(&binary);
    let pi = Agent::spawn(
        cmd,
        d,
        "pi2",
        &format!("mqtt://127.0.0.1:{}", hub.mqtt_port),
        services,
        &["--hub-key", &key, "--alloc-dir", &alloc, "--no-docker"],
    );
    hub.wait_node("pi2", NodeStatus::Up, Duration::from_secs(60));
    hub.wait_check("web32-http", Status::Passing, Duration::from_secs(30));
    let node = hub.nodes().into_iter().find(|n| n.id.as_str() == "pi2").expect("pi2 in the catalog");
    assert_eq!(node.facts.as_ref().map(|f| f.arch.as_str()), Some("arm"), "facts come from the armv7 build");
    let out = d.join("ran.txt");
    let job = format!(
        "job \"chore\" {{\n type = \"batch\"\n group \"g\" {{\n task \"t\" {{\n driver = \"raw_exec\"\n config {{\n command = \"/bin/sh\"\n args = [\"-c\", \"echo ran on $NOMAD_ALLOC_NAME > {}\"]\n }}\n }}\n }}\n}}\n",
        out.display()
    );
    hub.run_job(&d.join("chore.nomad.hcl"), &job);
    wait_for("the raw_exec task's output", Duration::from_secs(60), || {
        std::fs::read_to_string(&out).map_err(|e| e.to_string())
    });
    assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), "ran on chore.g[0]");
    wait_for("the batch job complete", Duration::from_secs(30), || {
        let j: rabble_shared::api::JobView = hub.get("/api/v1/jobs/chore").map_err(|e| e.to_string())?;
        let done = j.allocations.iter().any(|a| a.client_status == rabble_shared::alloc::ClientStatus::Complete);
        if done {
            Ok(())
        } else {
            Err(format!("{:?}", j.allocations.iter().map(|a| a.client_status).collect::<Vec<_>>()))
        }
    });
    let mut pi = pi;
    assert!(pi.proc.is_running(), "the emulated agent exited:\n{}", pi.proc.log());
}
