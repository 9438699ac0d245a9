//! The Windows agent under wine. What runs where: the hub, an HTTP server for the check
//! and the `rabble` CLI run here; the agent is the `x86_64-pc-windows-gnu` build (Debian's
//! mingw-w64), run by wine64. It joins over TLS with its node token (the hub's CA given,
//! credentials required), reports Windows facts, registers a service from a file whose
//! HTTP check follows the server, runs a raw_exec task (`cmd.exe`) whose exit
//! code and output come back, and stops a long task through its job object.
//!
//! As a Windows service: `service install` registers it with wine's service manager,
//! `sc start` starts it (the node comes up, its log in ProgramData), `service uninstall`
//! stops it (the node goes down at once: a clean stop) and removes it.
//!
//! What wine cannot cover: Windows' own service manager (wine's stands in: no recovery
//! actions, no LocalSystem rights), Docker Desktop's named pipe (no engine under wine: the driver is probed and
//! reported unhealthy), whether a console program honours CTRL_BREAK (wine's console
//! events are partial: the stop is checked to end within the kill_timeout either way),
//! disk facts (wine reports no volumes to sysinfo). Wine 8 also lacks
//! `bcryptprimitives.dll` (Rust's std asks it for random bytes): tests/windows has a
//! stand-in the test builds with mingw, next to the agent.

use rabble_shared::Status;
use rabble_shared::api::NodeStatus;
use rabble_tests::{Agent, FlipServer, Hub, node_token, release_agent, secret_file, tool, wait_for};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn wine64() -> PathBuf {
    let debian = Path::new("/usr/lib/wine/wine64");
    if debian.exists() { debian.to_owned() } else { tool("wine64") }
}

/// A wine prefix whose processes (its services, its device drivers) all end with the test.
struct Session(PathBuf);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new(wine64().with_file_name("wineserver")).env("WINEPREFIX", &self.0).arg("-k").status();
    }
}

/// The agent.exe and the DLL stand-in wine needs beside it, in `dir`.
fn windows_agent(dir: &Path) -> PathBuf {
    let exe = dir.join("rabble-agent.exe");
    std::fs::copy(release_agent("x86_64-pc-windows-gnu"), &exe).unwrap();
    let shim = Path::new(env!("CARGO_MANIFEST_DIR")).join("windows/bcryptprimitives.c");
    let out = Command::new(tool("x86_64-w64-mingw32-gcc"))
        .args(["-shared", "-O2", "-o"])
        .arg(dir.join("bcryptprimitives.dll"))
        .arg(&shim)
        .arg("-ladvapi32")
        .output()
        .unwrap();
    assert!(out.status.success(), "the DLL stand-in: {}", String::from_utf8_lossy(&out.stderr));
    exe
}

fn job(id: &str, kind: &str, args: &str, kill_timeout: &str) -> String {
    format!(
        r#"job "{id}" {{
  type = "{kind}"
  group "g" {{
    reschedule {{
      attempts  = 0
      unlimited = false
    }}
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "cmd.exe"
        args    = [{args}]
      }}
      kill_timeout = "{kill_timeout}"
      restart {{
        attempts = 0
        mode     = "fail"
      }}
      resources {{ memory = 16 }}
    }}
  }}
}}
"#
    )
}

#[test]
fn the_windows_agent_joins_checks_and_runs_raw_exec_under_wine() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let exe = windows_agent(d);
    let (hub, mqtts) = Hub::start_tls(d, &["--require-credentials", "true"]);
    let token = secret_file(d, "win1.token", &node_token(&hub.data_dir, "win1", &[]));
    let web = FlipServer::start();
    let services = rabble_tests::http_service_dir(d, "win", "winweb", &web.url);
    // A wine prefix of the test's own (made at the first start, a few seconds).
    let _session = Session(d.join("wine"));
    let mut cmd = Command::new(wine64());
    cmd.env("WINEPREFIX", d.join("wine")).env("WINEDEBUG", "-all").arg(&exe);
    let key = hub.key();
    let alloc = d.join("win-alloc").display().to_string();
    let started = Instant::now();
    let (ca, token) = (mqtts.ca.display().to_string(), token.display().to_string());
    let login = ["--ca", &ca, "--token-file", &token];
    let mut win = Agent::spawn(
        cmd,
        d,
        "win1",
        &mqtts.url(),
        services,
        &[&login[..], &["--hub-key", &key, "--alloc-dir", &alloc]].concat(),
    );
    hub.wait_node("win1", NodeStatus::Up, Duration::from_secs(90));
    println!("BENCH windows: wine start to the node up in {:.1} s", started.elapsed().as_secs_f64());
    // The node's status and its facts are two messages: up may come first.
    let facts = wait_for("win1's facts", Duration::from_secs(30), || {
        hub.nodes()
            .into_iter()
            .find(|n| n.id.as_str() == "win1")
            .and_then(|n| n.facts)
            .ok_or_else(|| "no facts yet".to_owned())
    });
    assert_eq!((facts.os.name.as_str(), facts.arch.as_str()), ("Windows", "x86_64"), "{facts:?}");
    assert!(facts.cpus >= 1 && facts.memory_bytes > 0, "{facts:?}");
    assert!(facts.drivers["raw_exec"].healthy, "{:?}", facts.drivers);
    let docker = &facts.drivers["docker"];
    assert!(!docker.healthy && docker.detail.starts_with("npipe:////./pipe/docker_engine"), "{docker:?}");

    // The service file's check follows the server.
    hub.wait_check("winweb-http", Status::Passing, Duration::from_secs(30));
    web.set(500);
    hub.wait_check("winweb-http", Status::Critical, Duration::from_secs(30));
    let hb = |hub: &Hub| hub.nodes().into_iter().find(|n| n.id.as_str() == "win1").and_then(|n| n.heartbeat);
    let first = hb(&hub).map(|h| h.seq);
    wait_for("heartbeats from wine", Duration::from_secs(20), || match hb(&hub) {
        Some(h) if Some(h.seq) > first && h.memory_total_bytes > 0 => Ok(()),
        other => Err(format!("{other:?}")),
    });

    // raw_exec: cmd.exe's output and exit code come back.
    let args = r#""/c", "echo hello from %NOMAD_ALLOC_NAME% & exit 3""#;
    hub.run_job(&d.join("hello.nomad.hcl"), &job("hello", "batch", args, "5s"));
    let failed = wait_for("hello failed with its code", Duration::from_secs(60), || {
        let j: rabble_shared::api::JobView = hub.get("/api/v1/jobs/hello").unwrap();
        let a = j.allocations.into_iter().find(|a| a.client_status == rabble_shared::alloc::ClientStatus::Failed);
        a.ok_or_else(|| "not failed yet".to_owned())
    });
    assert!(failed.client_reason.contains("exited with code 3"), "{}", failed.client_reason);
    let (ok, out, err) = hub.cli(&["alloc", "logs", failed.id.as_str()]);
    assert!(ok && out.contains("hello from hello.g[0]"), "{out}{err}");

    // A long task, stopped: CTRL_BREAK, then its job object terminated at kill_timeout.
    let args = r#""/c", "ping -n 300 127.0.0.1""#;
    hub.run_job(&d.join("long.nomad.hcl"), &job("long", "service", args, "2s"));
    wait_for("long running", Duration::from_secs(60), || match hub.running_on("long").as_slice() {
        [n] if n == "win1" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let stop = Instant::now();
    let (ok, _, err) = hub.cli(&["job", "stop", "long"]);
    assert!(ok, "{err}");
    wait_for("long stopped", Duration::from_secs(30), || {
        let j: rabble_shared::api::JobView = hub.get("/api/v1/jobs/long").unwrap();
        let done = j.allocations.iter().all(|a| a.client_status.is_terminal());
        if done {
            Ok(())
        } else {
            Err(format!("{:?}", j.allocations.iter().map(|a| a.client_status).collect::<Vec<_>>()))
        }
    });
    println!("BENCH windows: job stop -> the task gone in {:.1} s (kill_timeout 2s)", stop.elapsed().as_secs_f64());
    assert!(win.proc.is_running(), "the agent exited:\n{}", win.proc.log());
}

/// `wine64 <args>` in `prefix`: (success, its output). The output goes through a file:
/// wine's own background processes inherit a pipe and would hold it open for ever.
fn wine(prefix: &Path, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = prefix.with_extension("out");
    let file = std::fs::File::create(&out).unwrap();
    let status = Command::new(wine64())
        .env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .unwrap();
    (status.success(), std::fs::read_to_string(&out).unwrap_or_default())
}

#[test]
fn the_windows_agent_installs_runs_and_uninstalls_as_a_service_under_wine() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let exe = windows_agent(d);
    let hub = Hub::start(d, &[]);
    let prefix = d.join("wine");
    // The prefix made first, to the end of its first session (which would stop services
    // started meanwhile); then wine's session (its service manager with it) lives while
    // its server does: kept up for the test, ended with it.
    wine(&prefix, &["wineboot".as_ref(), "-i".as_ref()]);
    let waited = Command::new(wine64().with_file_name("wineserver")).env("WINEPREFIX", &prefix).arg("-w").status();
    assert!(waited.is_ok_and(|s| s.success()));
    let mut server = Command::new(wine64().with_file_name("wineserver"));
    server.env("WINEPREFIX", &prefix).args(["-p", "-f"]);
    let _server = rabble_tests::Proc::spawn("wineserver", &mut server, d);
    let _session = Session(prefix.clone()); // dropped first: ends the session while its server is up
    let key = hub.key();
    let mqtt = format!("mqtt://127.0.0.1:{}", hub.mqtt_port);
    let alloc = d.join("svc-alloc");
    let install: Vec<&std::ffi::OsStr> = [exe.as_os_str()]
        .into_iter()
        .chain(["service", "install", "--name", "winsvc", "--hub", &mqtt, "--hub-key", &key].map(std::ffi::OsStr::new))
        .chain([std::ffi::OsStr::new("--alloc-dir"), alloc.as_os_str()])
        .collect();
    let (ok, out) = wine(&prefix, &install);
    assert!(ok && out.contains("installed the service rabble-agent"), "{out}");
    // (An auto-start service may already be running in this session: `sc start` then says so.)
    let (_, sc) = wine(&prefix, &["sc", "start", "rabble-agent"].map(std::ffi::OsStr::new));
    wait_for("the service's node up", Duration::from_secs(60), || match hub.node_status("winsvc") {
        Some(NodeStatus::Up) => Ok(()),
        other => Err(format!("{other:?}; sc start said {sc:?}")),
    });
    let log = prefix.join("drive_c/ProgramData/rabble/agent.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("agent starting node=winsvc"), "the service's log: {text}");

    let (ok, out) = wine(&prefix, &[exe.as_os_str(), "service".as_ref(), "uninstall".as_ref()]);
    assert!(ok && out.contains("removed the service rabble-agent"), "{out}");
    // Stopped cleanly: the agent says so to the hub (no keepalive to wait out) and in its log.
    hub.wait_node("winsvc", NodeStatus::Down, Duration::from_secs(5));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("agent stopped node=winsvc"), "the service's log: {text}");
    let (ok, out) = wine(&prefix, &["sc", "qc", "rabble-agent"].map(std::ffi::OsStr::new));
    assert!(!ok, "the service is still there: {out}");
}
