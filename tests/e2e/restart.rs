//! Restarting the hub: the catalog is served at once from redb, agents resync, and
//! nothing is duplicated or left behind.

use rabble_shared::api::NodeStatus;
use rabble_tests::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[test]
fn hub_restart_keeps_the_catalog_and_agents_resync() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut hub = Hub::start(d, &[]);
    let a = Agent::start(d, "a", hub.mqtt_port, &[]);
    let b = Agent::start(d, "b", hub.mqtt_port, &[]);
    a.write_service("web.toml", "[[service]]\nname = \"web\"\nport = 80\n");
    a.write_service("gone.toml", "[[service]]\nname = \"gone\"\n");
    b.write_service("web.toml", "[[service]]\nname = \"web\"\nport = 80\n");
    wait_for("three instances", T, || {
        let n = hub.instances("web").len() + hub.instances("gone").len();
        if n == 3 { Ok(()) } else { Err(format!("{n}")) }
    });
    let before = hub.instances("web");

    // kill -9: no goodbye, only what redb made durable survives.
    hub.proc.stop("KILL");
    // While the hub (and its embedded broker) is down, node a reboots with one service
    // file fewer (its deregistration can never be sent), and b is frozen, so what the
    // new hub serves can only come from redb.
    let mut a = a;
    a.proc.stop("KILL");
    std::fs::remove_file(a.services_dir.join("gone.toml")).unwrap();
    b.proc.signal("STOP");
    hub.relaunch();
    assert_eq!(hub.instances("web"), before, "catalog intact right after restart");
    assert_eq!(hub.instances("gone"), ["a/gone"], "served from redb, not yet reconciled");
    assert_eq!(hub.nodes().len(), 2);

    // a comes back knowing nothing of "gone": only its manifest can remove the ghost.
    let _a = Agent::start_with(d, "a", hub.mqtt_port, a.services_dir.clone(), &[]);
    b.proc.signal("CONT");
    wait_for("the ghost to be removed", T, || {
        if hub.instances("gone").is_empty() { Ok(()) } else { Err("ghost still there".into()) }
    });
    hub.wait_node("a", NodeStatus::Up, T);
    hub.wait_node("b", NodeStatus::Up, T);
    assert_eq!(hub.instances("web"), before, "no duplicates after resync");
    let nodes = hub.nodes();
    assert_eq!(nodes.len(), 2);
    assert!(nodes.iter().all(|n| n.last_seen_ago_ms.is_some_and(|ms| ms < 5_000)), "{nodes:?}");

    // A clean restart (SIGTERM) too.
    hub.restart("TERM");
    assert_eq!(hub.instances("web"), before);
    wait_for("agents to resync after a clean restart", T, || {
        let h = hub.health()?;
        if h.nodes_up == 2 && h.instances == 2 { Ok(()) } else { Err(format!("{h:?}")) }
    });
}

/// The hub down for a minute (a power cut on its Proxmox host, an upgrade gone slow)
/// while three nodes run work: when it comes back, agents are still in their reconnect
/// backoff, and none of them may be declared down for it — nothing lost, moved or
/// restarted (raw_exec processes and a Docker container alike). All the while the job's
/// name resolves on a node (its agent answers DNS), asked every 10 ms: not one query
/// fails. `RABBLE_OUTAGE_SECS` makes the outage longer (120 for the record).
#[test]
fn a_minute_without_the_hub_moves_no_work() {
    rabble_tests::docker::image();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grace = "15s";
    let mut hub = Hub::start(d, &["--restart-grace", grace]);
    let key = hub.key();
    let mut agents = Vec::new();
    let dns_port = free_port();
    let dns_listen = format!("127.0.0.1:{dns_port}");
    for (name, docker) in [("pi1", true), ("pi2", false), ("pi3", false)] {
        let alloc = d.join(format!("{name}-alloc")).display().to_string();
        let mut args = vec!["--hub-key", key.as_str(), "--alloc-dir", alloc.as_str()];
        if !docker {
            args.push("--no-docker");
        }
        if name == "pi2" {
            args.extend(["--dns-listen", dns_listen.as_str()]);
        }
        agents.push(Agent::start(d, name, hub.mqtt_port, &args));
        hub.wait_node(name, NodeStatus::Up, T);
    }
    let web = format!(
        r#"job "web" {{
  group "web" {{
    count = 3
    constraint {{
      distinct_hosts = true
    }}
    network {{
      port "http" {{}}
    }}
    service {{
      name = "web"
      port = "http"
    }}
    task "server" {{
      driver = "raw_exec"
      config {{
        command = "{}"
      }}
    }}
  }}
}}
"#,
        bin("tiny-http").display()
    );
    let whoami = format!(
        r#"job "whoami" {{
  group "web" {{
    constraint {{
      attribute = "${{node.unique.name}}"
      value     = "pi1"
    }}
    network {{
      port "http" {{}}
    }}
    task "server" {{
      driver = "docker"
      config {{
        image        = "{}"
        network_mode = "host"
        ports        = ["http"]
      }}
      resources {{
        memory = 64
      }}
    }}
  }}
}}
"#,
        rabble_tests::docker::IMAGE
    );
    hub.run_job(&d.join("web.nomad.hcl"), &web);
    hub.run_job(&d.join("whoami.nomad.hcl"), &whoami);
    wait_for("every allocation running", Duration::from_secs(60), || {
        let (w, c) = (hub.running_on("web").len(), hub.running_on("whoami").len());
        if (w, c) == (3, 1) { Ok(()) } else { Err(format!("web {w}, whoami {c}")) }
    });
    let placed = |hub: &Hub| {
        let mut all = Vec::new();
        for job in ["web", "whoami"] {
            let j: rabble_shared::api::JobView = hub.get(&format!("/api/v1/jobs/{job}")).unwrap();
            let allocs = j.allocations.into_iter();
            all.extend(allocs.map(|a| (job, a.id.to_string(), a.node.to_string(), a.client_status)));
        }
        all.sort();
        all
    };
    let before = placed(&hub);
    let pids: Vec<_> = ["pi1", "pi2", "pi3"].map(|n| rabble_tests::pids_under(&d.join(format!("{n}-alloc")))).into();
    let whoami_alloc = before.iter().find(|(job, ..)| *job == "whoami").map(|(_, id, ..)| id.clone()).unwrap();
    let _cleanup = rabble_tests::docker::RemoveOnDrop(whoami_alloc.clone());
    let container = wait_for("the container to run", T, || {
        let c = rabble_tests::docker::containers(&whoami_alloc);
        if c.len() == 1 { Ok(c) } else { Err(format!("{c:?}")) }
    });
    let started = rabble_tests::docker::started_at(&container[0]);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ask = || rabble_tests::ask_a(&udp, dns_port, "web.service.rabble", Duration::from_millis(500));
    wait_for("web in the node's zone", T, || if ask() == Some(3) { Ok(()) } else { Err(format!("{:?}", ask())) });

    let outage: u64 = std::env::var("RABBLE_OUTAGE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    hub.proc.stop("KILL");
    let down = std::time::Instant::now();
    let (mut asked, mut failed) = (0u64, 0u64);
    while down.elapsed() < Duration::from_secs(outage) {
        asked += 1;
        if ask() != Some(3) {
            failed += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("hub down {outage} s: {asked} DNS queries to a node, {failed} failed");
    assert_eq!(failed, 0, "of {asked} queries to the node's DNS while the hub was down");
    let restarted = std::time::Instant::now();
    hub.relaunch();
    for n in ["pi1", "pi2", "pi3"] {
        hub.wait_node(n, NodeStatus::Up, Duration::from_secs(30));
    }
    // Past the grace and a heartbeat TTL, every node has been judged: whatever a restart
    // would move has moved by now.
    let judged = Duration::from_secs(15 + 4 + 2);
    std::thread::sleep(judged.saturating_sub(restarted.elapsed()));
    let log = hub.proc.log();
    assert!(!log.contains(" down ("), "a node was declared down after the restart:\n{log}");
    assert_eq!(placed(&hub), before, "the same allocations, on the same nodes, still running");
    let now: Vec<_> = ["pi1", "pi2", "pi3"].map(|n| rabble_tests::pids_under(&d.join(format!("{n}-alloc")))).into();
    assert_eq!(now, pids, "no raw_exec task was restarted");
    assert_eq!(rabble_tests::docker::containers(&whoami_alloc), container);
    assert_eq!(rabble_tests::docker::started_at(&container[0]), started, "the container was not restarted");
    drop(agents);
}
