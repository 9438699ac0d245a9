//! The program drivers end to end, against a real hub and agent on this machine: `java`
//! (a jar the test compiles with the machine's JDK, serving HTTP with the JDK's own
//! server; fingerprinted from `java -version`), and `qemu` (a tiny guest: Debian's arm64
//! kernel from the tests' VM with an initramfs whose /init serves HTTP, booted with TCG or
//! KVM through the job's `args`, reached on a forwarded port, checked through its service
//! and DNS, and powered down through the monitor on stop).

use rabble_shared::Status;
use rabble_shared::api::{JobView, NodeView};
use rabble_tests::{Agent, Hub, dig, tool, wait_for};
use std::process::Command;
use std::time::Duration;

const HELLO: &str = r#"
import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;

public class Hello {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(System.getenv("NOMAD_PORT_http"));
        String who = args.length > 0 ? args[0] : "nobody";
        HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
        s.createContext("/", x -> {
            byte[] b = ("hello from java, " + who + ", max heap " + Runtime.getRuntime().maxMemory() / 1048576 + " MB\n").getBytes();
            x.sendResponseHeaders(200, b.length);
            x.getResponseBody().write(b);
            x.close();
        });
        s.start();
    }
}
"#;

/// The start of every driver test's group: one dynamic port `http`, and a service `name`
/// on it with an HTTP check.
fn served(name: &str) -> String {
    format!(
        r#"    network {{
      port "http" {{}}
    }}
    service {{
      name = "{name}"
      port = "http"
      check {{
        type     = "http"
        path     = "/"
        interval = "1s"
        timeout  = "2s"
      }}
    }}
"#
    )
}

fn facts_driver(hub: &Hub, node: &str, driver: &str) -> Option<rabble_shared::msg::DriverFacts> {
    let n: NodeView = hub.get(&format!("/api/v1/nodes/{node}")).ok()?;
    n.facts?.drivers.get(driver).cloned()
}

#[test]
fn a_java_jar_runs_serves_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The jar, compiled here.
    let src = d.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("Hello.java"), HELLO).unwrap();
    let out = Command::new(tool("javac")).arg("-d").arg(&src).arg(src.join("Hello.java")).output().unwrap();
    assert!(out.status.success(), "javac: {}", String::from_utf8_lossy(&out.stderr));
    let jar = d.join("hello.jar");
    let out = Command::new(tool("jar"))
        .arg("--create")
        .arg("--file")
        .arg(&jar)
        .arg("--main-class=Hello")
        .arg("-C")
        .arg(&src)
        .arg("Hello.class")
        .output()
        .unwrap();
    assert!(out.status.success(), "jar: {}", String::from_utf8_lossy(&out.stderr));

    let hub = Hub::start(d, &[]);
    let _pi = Agent::worker(d, &hub, "pi1");
    let java = hub.wait_driver("pi1", "java", Duration::from_secs(20));
    assert!(java.healthy && java.version.starts_with(|c: char| c.is_ascii_digit()), "{java:?}");
    let job = format!(
        r#"job "hello" {{
  group "g" {{
{served}    task "java" {{
      driver = "java"
      config {{
        jar_path    = "{jar}"
        jvm_options = ["-Xmx48m", "-Xss512k"]
        args        = ["${{NOMAD_ALLOC_NAME}}"]
      }}
      resources {{
        memory = 128
      }}
    }}
  }}
}}
"#,
        jar = jar.display(),
        served = served("hello")
    );
    hub.run_job(&d.join("hello.nomad.hcl"), &job);
    hub.wait_check_named("hello", Status::Passing, Duration::from_secs(40));
    let j: JobView = hub.get("/api/v1/jobs/hello").unwrap();
    let port = j.allocations[0].ports[0].value;
    let srv = dig(hub.dns_port, "hello.service.rabble", "SRV", &[]);
    assert!(srv.data().iter().any(|r| r.contains(&format!(" {port} "))), "{:?}", srv.data());
    let body = ureq::get(&format!("http://127.0.0.1:{port}/")).call().unwrap().into_body().read_to_string().unwrap();
    assert!(body.starts_with("hello from java, hello.g[0], max heap "), "{body}");
    let heap: u64 = body.split("max heap ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(heap <= 48, "jvm_options reached the JVM: {body}");
    // Stopped: the JVM ends (SIGTERM to its process group), the port closes.
    let (ok, _, err) = hub.cli(&["job", "stop", "hello"]);
    assert!(ok, "{err}");
    wait_for("the JVM gone", Duration::from_secs(20), || match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Ok(_) => Err("still listening".to_owned()),
        Err(_) => Ok(()),
    });
}

/// The guest tests/vm/build-qemu-guest.sh makes (built once, kept in target/vm/guest).
fn guest() -> std::path::PathBuf {
    let here = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let w = here.join("../target/vm");
    let out = Command::new("bash").arg(here.join("vm/build-qemu-guest.sh")).env("W", &w).output().unwrap();
    assert!(out.status.success(), "build-qemu-guest.sh: {}", String::from_utf8_lossy(&out.stderr));
    w.join("guest")
}

/// What runs where: the hub and the agent on this machine; the agent starts
/// qemu-system-aarch64 (TCG: an arm64 guest on this x86_64 host), whose guest serves HTTP
/// on its port 80, forwarded from the allocation's host port by user-mode networking.
#[test]
fn a_qemu_guest_boots_serves_through_its_forwarded_port_and_powers_down() {
    let g = guest();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let pi = Agent::worker(d, &hub, "host1");
    let q = hub.wait_driver("host1", "qemu", Duration::from_secs(20));
    assert!(q.healthy && q.detail.contains("aarch64"), "{q:?}");
    let job = format!(
        r#"job "vm" {{
  group "g" {{
{served}    task "guest" {{
      driver       = "qemu"
      kill_timeout = "60s"
      config {{
        image_path        = "{g}/disk.img"
        emulator          = "aarch64"
        machine_type      = "virt"
        accelerator       = "tcg"
        drive_interface   = "virtio"
        graceful_shutdown = true
        args = ["-cpu", "cortex-a57", "-kernel", "{g}/vmlinuz", "-initrd", "{g}/initrd.gz", "-append", "console=ttyAMA0 quiet"]
        port_map {{
          http = 80
        }}
      }}
      resources {{
        memory = 256
      }}
    }}
  }}
}}
"#,
        g = g.display(),
        served = served("tiny-vm")
    );
    let t0 = std::time::Instant::now();
    hub.run_job(&d.join("vm.nomad.hcl"), &job);
    hub.wait_check_named("tiny-vm", Status::Passing, Duration::from_secs(120));
    println!("BENCH qemu guest (aarch64 on TCG): job run -> check passing in {:.1} s", t0.elapsed().as_secs_f64());
    let j: JobView = hub.get("/api/v1/jobs/vm").unwrap();
    let port = j.allocations[0].ports[0].value;
    let srv = dig(hub.dns_port, "tiny-vm.service.rabble", "SRV", &[]);
    assert!(srv.data().iter().any(|r| r.contains(&format!(" {port} "))), "{:?}", srv.data());
    let body = ureq::get(&format!("http://127.0.0.1:{port}/")).call().unwrap().into_body().read_to_string().unwrap();
    assert_eq!(body.trim(), "rabble qemu guest");
    // Stopped: the monitor's system_powerdown presses the power button and the guest
    // powers itself off — long before the 60 s kill_timeout would have killed it.
    let t1 = std::time::Instant::now();
    let (ok, _, err) = hub.cli(&["job", "stop", "vm"]);
    assert!(ok, "{err}");
    wait_for("the guest powered off", Duration::from_secs(30), || {
        let v: JobView = hub.get("/api/v1/jobs/vm").map_err(|e| e.to_string())?;
        let a = &v.allocations[0];
        if a.client_status.is_terminal() {
            return Ok(());
        }
        let (_, out, _) = hub.cli(&["alloc", "logs", a.id.as_str(), "guest"]);
        Err(format!("{:?} {:?}\nconsole: {out}\nagent: {}", a.client_status, a.tasks, pi.proc.log()))
    });
    let took = t1.elapsed();
    println!("BENCH qemu guest: stop -> powered off in {:.1} s (graceful_shutdown)", took.as_secs_f64());
    assert!(took < Duration::from_secs(30), "powered down, not killed at kill_timeout");
    assert!(!pi.proc.log().contains("did not take system_powerdown"), "the monitor took it");
}

/// Podman's API, served for this test only: `podman system service` on a socket in the
/// test's directory, with a containers.conf for this machine (runc and cgroupfs: its
/// cgroups are hybrid, which crun refuses; no default ulimits: its nofile limit is below
/// Podman's default). Stopped (and its containers removed) when dropped.
struct PodmanService {
    proc: rabble_tests::Proc,
    sock: std::path::PathBuf,
    conf: std::path::PathBuf,
}

impl PodmanService {
    fn start(d: &std::path::Path) -> PodmanService {
        let conf = d.join("containers.conf");
        std::fs::write(
            &conf,
            "[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n",
        )
        .unwrap();
        let sock = d.join("podman.sock");
        let mut cmd = Command::new(tool("podman"));
        cmd.args(["system", "service", "--time=0", &format!("unix://{}", sock.display())])
            .env("CONTAINERS_CONF", &conf);
        let proc = rabble_tests::Proc::spawn("podman", &mut cmd, d);
        wait_for("podman's socket", Duration::from_secs(20), || {
            if sock.exists() { Ok(()) } else { Err("no socket yet".to_owned()) }
        });
        PodmanService { proc, sock, conf }
    }

    fn podman(&self, args: &[&str]) -> String {
        let out = Command::new(tool("podman")).args(args).env("CONTAINERS_CONF", &self.conf).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned() + &String::from_utf8_lossy(&out.stderr)
    }
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        let ids = self.podman(&["ps", "-aq", "--filter", "label=rabble.node=pod1"]);
        for id in ids.lines().filter(|l| !l.trim().is_empty()) {
            self.podman(&["rm", "-f", id.trim()]);
        }
        self.proc.stop("TERM");
    }
}

/// What runs where: the hub, the agent and Podman's API service on this machine; the
/// task is a container of the tests' static tiny-http imported into Podman's store (no
/// image can be pulled here), on the host's network.
#[test]
fn a_podman_task_runs_is_adopted_across_an_agent_restart_and_stops_with_its_kill_signal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let podman = PodmanService::start(d);
    // The image: tiny-http FROM scratch, as `podman import` makes it.
    let bin = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/x86_64-unknown-linux-musl/debug/tiny-http");
    let ctx = d.join("img");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(&bin, ctx.join("tiny-http")).unwrap();
    let tar = d.join("img.tar");
    assert!(Command::new("tar").arg("-cf").arg(&tar).arg("-C").arg(&ctx).arg("tiny-http").status().unwrap().success());
    let imported = podman.podman(&[
        "import",
        "--change",
        "ENTRYPOINT [\"/tiny-http\"]",
        &tar.display().to_string(),
        "localhost/rabble-test/tiny-http:1",
    ]);
    assert!(imported.contains("sha256:") || imported.len() == 64, "podman import: {imported}");

    let hub = Hub::start(d, &[]);
    let key = hub.key();
    let alloc = d.join("pod1-alloc").display().to_string();
    let sock = podman.sock.display().to_string();
    let flags = ["--hub-key", &key, "--alloc-dir", &alloc, "--no-docker", "--podman-socket", &sock];
    let mut agent = Agent::start(d, "pod1", hub.mqtt_port, &flags);
    let p = wait_for("the podman driver fingerprinted", Duration::from_secs(20), || {
        facts_driver(&hub, "pod1", "podman").filter(|p| p.healthy).ok_or_else(|| "no healthy podman yet".to_owned())
    });
    assert_eq!(p.version, "4.3.1", "{p:?}");
    let job = String::from("job \"pod\" {\n  group \"g\" {\n")
        + &served("pod-web")
        + r#"    task "web" {
      driver       = "podman"
      kill_signal  = "SIGKILL"
      kill_timeout = "40s"
      config {
        image        = "localhost/rabble-test/tiny-http:1"
        args         = ["${NOMAD_PORT_http}"]
        network_mode = "host"
        working_dir  = "/"
      }
      resources {
        memory = 32
      }
    }
  }
}
"#;
    hub.run_job(&d.join("pod.nomad.hcl"), &job);
    hub.wait_check_named("pod-web", Status::Passing, Duration::from_secs(60));
    let j: JobView = hub.get("/api/v1/jobs/pod").unwrap();
    let a = &j.allocations[0];
    let port = a.ports[0].value;
    let srv = dig(hub.dns_port, "pod-web.service.rabble", "SRV", &[]);
    assert!(srv.data().iter().any(|r| r.contains(&format!(" {port} "))), "{:?}", srv.data());
    let name = format!("rabble-{}-web", a.id);
    let started = podman.podman(&["inspect", "-f", "{{.State.StartedAt}}", &name]);
    assert!(!started.is_empty() && !started.contains("Error"), "{started}");

    // The agent restarts: the container keeps running and is adopted, not replaced.
    agent.proc.stop("TERM");
    let mut agent = Agent::start(d, "pod1", hub.mqtt_port, &flags);
    std::thread::sleep(Duration::from_secs(3));
    hub.wait_check_named("pod-web", Status::Passing, Duration::from_secs(30));
    assert_eq!(podman.podman(&["inspect", "-f", "{{.State.StartedAt}}", &name]), started, "adopted, not restarted");
    assert!(agent.proc.log().contains("adopted the running container"), "{}", agent.proc.log());

    // Stopped with its kill_signal: tiny-http is PID 1 in its container, which ignores a
    // SIGTERM it has no handler for; Podman's `stop` would send that and wait out the 40 s.
    let t0 = std::time::Instant::now();
    let (ok, _, err) = hub.cli(&["job", "stop", "pod"]);
    assert!(ok, "{err}");
    // Gone: stopped and removed (`ps -a`: a container still "Stopping" is not running yet there).
    wait_for("the container gone", Duration::from_secs(30), || {
        let ps = podman.podman(&["ps", "-a", "--filter", &format!("name={name}"), "--format", "{{.Status}}"]);
        if ps.trim().is_empty() { Ok(()) } else { Err(ps) }
    });
    println!("BENCH podman: stop -> container gone in {:.1} s", t0.elapsed().as_secs_f64());
    assert!(t0.elapsed() < Duration::from_secs(30), "SIGKILL first, not SIGTERM and the 40 s timeout");
    agent.proc.stop("TERM");
}
