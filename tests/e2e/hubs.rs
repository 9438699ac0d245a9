//! Three hub processes that form one cluster (a shared key, `retry_join`,
//! `bootstrap_expect = 3`) and a real agent that knows all three. Writes through any hub
//! land on every hub; the leader killed with SIGKILL, the others elect a new one, writes
//! are accepted again, the agent is on the new leader, its node never goes down; the old
//! leader, started again, follows with everything it missed; a counter incremented with CAS
//! by three clients through random hubs across the kill holds every acknowledged increment;
//! a raw_exec task and a Docker container on the node are neither moved nor restarted, and
//! a job submitted after the kill is placed by the new leader's scheduler.

use rabble_shared::api::{ClusterStatus, NodeStatus};
use rabble_tests::hubs::{Hubs, Partition};
use rabble_tests::*;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

fn kv_put(h: &Hub, key: &str, value: &str) -> Result<(), String> {
    let url = format!("{}/v1/kv/{key}", h.http);
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(3))).build().into();
    let mut r = agent.put(&url).send(value).map_err(|e| format!("PUT {url}: {e}"))?;
    let body = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
    if body.trim() == "true" { Ok(()) } else { Err(format!("PUT {url}: {body}")) }
}

/// One CAS increment of `key` through the API at `http`: `Ok(true)` acknowledged, `Ok(false)`
/// not done (someone else won the race, or the hub could not be asked), `Err` unknown (a
/// write was sent and not answered: it may or may not have been applied).
fn cas_increment(http: &str, key: &str) -> Result<bool, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{http}/v1/kv/{key}");
    // Not read (that hub is down): nothing was sent.
    let Ok(mut r) = agent.get(&url).call() else { return Ok(false) };
    let (index, n) = if r.status() == 404 {
        (0, 0)
    } else if r.status() == 200 {
        let v: serde_json::Value = r.body_mut().read_json().map_err(|e| e.to_string())?;
        let raw = v[0]["Value"].as_str().unwrap_or("");
        let text = base64_decode(raw);
        (v[0]["ModifyIndex"].as_u64().unwrap_or(0), text.parse::<u64>().unwrap_or(0))
    } else {
        return Ok(false); // not read: nothing was sent
    };
    let mut w = match agent.put(&format!("{url}?cas={index}")).send((n + 1).to_string()) {
        Ok(w) => w,
        Err(e) => return Err(format!("PUT: {e}")),
    };
    let body = w.body_mut().read_to_string().unwrap_or_default();
    match (w.status().as_u16(), body.trim()) {
        (200, "true") => Ok(true),
        (200, "false") => Ok(false),
        (s, b) => Err(format!("PUT: {s} {b}")),
    }
}

fn base64_decode(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        let Some(v) = A.iter().position(|a| *a == c) else { continue };
        bits = (bits << 6) | v as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `X-Consul-KnownLeader` and `X-Consul-LastContact` of a catalog read.
fn leader_headers(h: &Hub) -> (String, String) {
    let r = ureq::get(&format!("{}/v1/catalog/services", h.http)).call().unwrap();
    let header = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (header("x-consul-knownleader"), header("x-consul-lastcontact"))
}

/// A raw_exec job of one tiny HTTP server on the node.
fn raw_exec_job(name: &str) -> String {
    format!(
        r#"job "{name}" {{
  group "web" {{
    network {{
      port "http" {{}}
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
    )
}

/// A Docker job of one container (the tests' image, host network).
fn docker_job() -> String {
    format!(
        r#"job "whoami" {{
  group "web" {{
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
    )
}

fn kv_get(h: &Hub, key: &str) -> Result<String, String> {
    let url = format!("{}/v1/kv/{key}?raw", h.http);
    let mut r = ureq::get(&url).call().map_err(|e| format!("GET {url}: {e}"))?;
    r.body_mut().read_to_string().map_err(|e| e.to_string())
}

#[test]
fn three_hubs_replicate_and_one_takes_over_when_the_leader_dies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t0 = Instant::now();
    let mut hubs = Hubs::start(d, 3, &[]);
    let formed = t0.elapsed();
    let leader = hubs.wait_leader(T);
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();

    // The agent knows every hub; followers refuse it, so it settles on the leader.
    let brokers = hubs.brokers();
    let dns_port = free_port();
    let dns_listen = format!("127.0.0.1:{dns_port}");
    rabble_tests::docker::image();
    let key = hubs.hubs[leader].key();
    let alloc_dir = d.join("pi-a-alloc");
    let alloc = alloc_dir.display().to_string();
    let mut extra: Vec<&str> =
        vec!["--keepalive", "2s", "--dns-listen", dns_listen.as_str(), "--hub-key", &key, "--alloc-dir", &alloc];
    for b in &brokers[1..] {
        extra.extend(["--hub", b.as_str()]);
    }
    let agent = Agent::spawn(Command::new(bin("rabble-agent")), d, "pi-a", &brokers[0], d.join("svc"), &extra);
    for h in &hubs.hubs {
        h.wait_node("pi-a", NodeStatus::Up, T);
    }
    // Work on the node, submitted through a follower: a raw_exec task and a container.
    let submit = &hubs.hubs[followers[1]];
    submit.run_job(&d.join("web.nomad.hcl"), &raw_exec_job("web"));
    submit.run_job(&d.join("whoami.nomad.hcl"), &docker_job());
    let running = |h: &Hub| {
        wait_for("the work running", Duration::from_secs(60), || {
            let (w, c) = (h.running_on("web").len(), h.running_on("whoami").len());
            if (w, c) == (1, 1) { Ok(()) } else { Err(format!("web {w}, whoami {c}")) }
        })
    };
    running(&hubs.hubs[leader]);
    let placed = |h: &Hub| {
        let mut all = Vec::new();
        for job in ["web", "whoami"] {
            let j: rabble_shared::api::JobView = h.get(&format!("/api/v1/jobs/{job}")).unwrap();
            all.extend(j.allocations.into_iter().map(|a| (a.id.to_string(), a.node.to_string(), a.client_status)));
        }
        all.sort();
        all
    };
    let before = placed(&hubs.hubs[leader]);
    let whoami: rabble_shared::api::JobView = hubs.hubs[leader].get("/api/v1/jobs/whoami").unwrap();
    let whoami_alloc = whoami.allocations[0].id.to_string();
    let _cleanup = rabble_tests::docker::RemoveOnDrop(whoami_alloc.clone());
    let container = wait_for("the container", T, || {
        let c = rabble_tests::docker::containers(&whoami_alloc);
        if c.len() == 1 { Ok(c) } else { Err(format!("{c:?}")) }
    });
    let started = rabble_tests::docker::started_at(&container[0]);
    let pids = rabble_tests::pids_under(&alloc_dir);
    assert!(!pids.is_empty(), "the raw_exec task's process");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    wait_for("the node's own name from its DNS", T, || {
        ask_a(&socket, dns_port, "pi-a.node.rabble", Duration::from_millis(500)).ok_or("no answer".to_owned())
    });

    // A write through a follower is forwarded to the leader and lands on every replica.
    kv_put(&hubs.hubs[followers[0]], "app/greeting", "hello").unwrap();
    for h in &hubs.hubs {
        wait_for("the key on every hub", T, || {
            kv_get(h, "app/greeting").and_then(|v| if v == "hello" { Ok(()) } else { Err(v) })
        });
    }
    let survivor = followers[0];
    // Consul's words on a follower: the leader's cluster address, every voter, a fresh copy.
    let leader_addr: String = hubs.hubs[survivor].get("/v1/status/leader").unwrap();
    assert_eq!(leader_addr, hubs.cluster[leader]);
    let peers: Vec<String> = hubs.hubs[survivor].get("/v1/status/peers").unwrap();
    assert_eq!(peers.len(), 3, "{peers:?}");
    let (known, contact) = leader_headers(&hubs.hubs[survivor]);
    assert_eq!(known, "true");
    assert!(contact.parse::<u64>().unwrap() < 2_000, "last contact {contact} ms");
    let s: ClusterStatus = hubs.status(survivor).unwrap();
    assert_eq!(s.members.len(), 3, "{s:?}");
    assert_eq!(s.members.iter().filter(|m| m.role == "leader").count(), 1, "{s:?}");

    // Nothing may go down while the leader changes, watched from a survivor's replica (its
    // liveness is unknown, not down, until the new leader hears from it).
    let down = Arc::new(std::sync::Mutex::new(None::<String>));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (down, watching, http) = (down.clone(), watching.clone(), hubs.hubs[survivor].http.clone());
        std::thread::spawn(move || {
            while watching.load(Ordering::Relaxed) {
                let url = format!("{http}/api/v1/nodes/pi-a");
                if let Ok(mut r) = ureq::get(&url).call()
                    && let Ok(v) = r.body_mut().read_json::<rabble_shared::api::NodeView>()
                    && v.status == NodeStatus::Down
                {
                    down.lock().unwrap().get_or_insert(format!("{:?} ({})", v.status, v.reason));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    // DNS asked on the node every 10 ms across the kill: it answers from its copy of the zone.
    let asking = Arc::new(AtomicBool::new(true));
    let dns = {
        let asking = asking.clone();
        std::thread::spawn(move || {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let (mut asked, mut failed) = (0u32, 0u32);
            while asking.load(Ordering::Relaxed) {
                asked += 1;
                if ask_a(&socket, dns_port, "pi-a.node.rabble", Duration::from_millis(500)).is_none_or(|n| n == 0) {
                    failed += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            (asked, failed)
        })
    };
    // Three clients increment one counter with CAS through random hubs, across the kill:
    // every acknowledged increment must be in the final count.
    let https: Vec<String> = hubs.hubs.iter().map(|h| h.http.clone()).collect();
    let counting = Arc::new(AtomicBool::new(true));
    let clients: Vec<_> = (0..3)
        .map(|c| {
            let (https, counting) = (https.clone(), counting.clone());
            std::thread::spawn(move || {
                let (mut acked, mut unknown) = (0u64, 0u64);
                let mut pick = c * 7 + 1;
                while counting.load(Ordering::Relaxed) {
                    // A cheap spread over the hubs (no RNG crate in the tests).
                    pick = (pick * 31 + 17) % 1009;
                    match cas_increment(&https[pick % https.len()], "app/counter") {
                        Ok(true) => acked += 1,
                        Ok(false) => {}
                        Err(_) => {
                            unknown += 1;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
                (acked, unknown)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));

    hubs.hubs[leader].proc.stop("KILL");
    let killed = Instant::now();
    let mut n = 0;
    wait_for("a write accepted again", T, || {
        n += 1;
        kv_put(&hubs.hubs[survivor], "app/after", &n.to_string())
    });
    let writes_again = killed.elapsed();
    let new_leader = hubs.wait_leader(T);
    let elected = killed.elapsed();
    assert_ne!(new_leader, leader);
    let new_port = hubs.hubs[new_leader].mqtt_port;
    wait_for("the agent on the new leader", T, || {
        let log = agent.proc.log();
        let last = log.lines().rev().find(|l| l.contains("connected to the hub")).unwrap_or("");
        if last.contains(&format!(":{new_port}")) { Ok(()) } else { Err(last.to_owned()) }
    });
    let reconnected = killed.elapsed();
    wait_for("pi-a heard by the new leader", T, || {
        let v: rabble_shared::api::NodeView = hubs.hubs[new_leader].get("/api/v1/nodes/pi-a")?;
        if v.last_seen_ago_ms.is_some() { Ok(()) } else { Err(format!("{v:?}")) }
    });
    // The new leader's scheduler places a job submitted after the kill (through a follower).
    let asked = Instant::now();
    hubs.hubs[survivor].run_job(&d.join("after.nomad.hcl"), &raw_exec_job("after"));
    wait_for("the job submitted after the kill running", T, || {
        let n = hubs.hubs[new_leader].running_on("after").len();
        if n == 1 { Ok(()) } else { Err(format!("{n} running")) }
    });
    let scheduled = asked.elapsed();
    let scheduling_again = killed.elapsed();
    // Longer than a heartbeat TTL after the kill: a node the old leader knew is not declared down.
    std::thread::sleep(Duration::from_secs(5));
    counting.store(false, Ordering::Relaxed);
    asking.store(false, Ordering::Relaxed);
    let (asked, failed) = dns.join().unwrap();
    assert_eq!(failed, 0, "{failed} of {asked} DNS queries to the node failed during the fail-over");
    let (acked, unknown) =
        clients.into_iter().map(|c| c.join().unwrap()).fold((0, 0), |(a, u), (ca, cu)| (a + ca, u + cu));
    let counted: u64 = kv_get(&hubs.hubs[new_leader], "app/counter").unwrap().parse().unwrap();
    assert!(acked > 50, "the clients got through: {acked} acknowledged");
    assert!(
        counted >= acked && counted <= acked + unknown,
        "acknowledged increments lost or invented: counter {counted}, {acked} acknowledged, {unknown} unknown"
    );
    watching.store(false, Ordering::Relaxed);
    watcher.join().unwrap();
    assert_eq!(*down.lock().unwrap(), None, "pi-a went down during the fail-over");
    assert_eq!(placed(&hubs.hubs[new_leader]), before, "the same allocations, on the same node, running");
    let mut now = rabble_tests::pids_under(&alloc_dir);
    now.retain(|p| pids.contains(p));
    assert_eq!(now, pids, "the raw_exec task was not restarted");
    assert_eq!(rabble_tests::docker::started_at(&container[0]), started, "the container was not restarted");

    // The old leader, started again, follows and catches up on what it missed.
    hubs.relaunch(leader);
    wait_for("the old leader caught up", T, || {
        let v = kv_get(&hubs.hubs[leader], "app/after")?;
        if v == n.to_string() { Ok(()) } else { Err(v) }
    });
    let s: ClusterStatus = hubs.status(leader).unwrap();
    assert_eq!(s.leader.map(|l| l != s.this), Some(true), "it follows: {s:?}");
    println!(
        "hub cluster of 3: formed in {formed:?}; leader killed: writes accepted again after {writes_again:?} \
         (a leader seen by {elected:?}), the agent on the new leader after {reconnected:?}, a job submitted then \
         placed in {scheduled:?} ({scheduling_again:?} after the kill), nothing moved or restarted; CAS counter \
         {counted}: {acked} increments acknowledged, {unknown} with no answer, none lost; DNS on the node: \
         {asked} queries, none failed"
    );
    assert!(writes_again < Duration::from_secs(5), "writes stopped for {writes_again:?}");
}

#[test]
fn a_cluster_that_lost_its_quorum_is_recovered_on_a_survivor() {
    let dir = tempfile::tempdir().unwrap();
    let mut hubs = Hubs::start(dir.path(), 3, &[]);
    let leader = hubs.wait_leader(T);
    kv_put(&hubs.hubs[leader], "app/kept", "yes").unwrap();
    let survivor = (leader + 1) % 3;
    wait_for("the key on the survivor", T, || kv_get(&hubs.hubs[survivor], "app/kept"));

    // Two of three gone for good: the survivor answers reads, and refuses writes saying why.
    for i in (0..3).filter(|i| *i != survivor) {
        hubs.hubs[i].proc.stop("KILL");
    }
    assert_eq!(kv_get(&hubs.hubs[survivor], "app/kept").unwrap(), "yes");
    let refused = kv_put(&hubs.hubs[survivor], "app/new", "no").unwrap_err();
    assert!(refused.contains("500") || refused.contains("timed out"), "{refused}");
    let status: ClusterStatus = wait_for("the survivor to see no leader", T, || {
        let s: ClusterStatus = hubs.status(survivor)?;
        if s.problem.is_some() { Ok(s) } else { Err(format!("{s:?}")) }
    });
    assert!(status.problem.as_deref().unwrap().contains("no leader"), "{status:?}");
    assert_eq!(leader_headers(&hubs.hubs[survivor]).0, "false", "stale reads say so");

    // The documented way back: stop it, `rabble-hub cluster reset`, start it.
    hubs.hubs[survivor].proc.stop("TERM");
    let data = hubs.hubs[survivor].data_dir.clone();
    let out = Command::new(bin("rabble-hub")).arg("--data-dir").arg(&data).args(["cluster", "reset"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cluster of one"));
    hubs.relaunch(survivor);
    wait_for("a cluster of one", T, || {
        let s: ClusterStatus = hubs.status(survivor)?;
        if s.leader == Some(s.this) && s.members.len() == 1 { Ok(()) } else { Err(format!("{s:?}")) }
    });
    assert_eq!(kv_get(&hubs.hubs[survivor], "app/kept").unwrap(), "yes", "the catalog is kept");
    wait_for("writes again", T, || kv_put(&hubs.hubs[survivor], "app/new", "yes"));

    // The others, emptied, join it and receive everything.
    for i in (0..3).filter(|i| *i != survivor) {
        std::fs::remove_dir_all(&hubs.hubs[i].data_dir).unwrap();
        hubs.relaunch(i);
    }
    hubs.wait_formed(3, T);
    for h in &hubs.hubs {
        wait_for("the new key everywhere", T, || kv_get(h, "app/new"));
    }
}

#[test]
fn a_leader_cut_off_from_the_others_steps_down_and_rejoins_with_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hubs = Hubs::start(d, 3, &[]);
    let leader = hubs.wait_leader(T);
    let brokers = hubs.brokers();
    let mut extra: Vec<&str> = vec!["--keepalive", "2s"];
    for b in &brokers[1..] {
        extra.extend(["--hub", b.as_str()]);
    }
    let agent = Agent::spawn(Command::new(bin("rabble-agent")), d, "pi-p", &brokers[0], d.join("svc"), &extra);
    hubs.hubs[leader].wait_node("pi-p", NodeStatus::Up, T);
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();

    let cut = Partition::new(&[hubs.ip(leader)], &others.iter().map(|i| hubs.ip(*i)).collect::<Vec<_>>());
    let t = Instant::now();
    // The minority does not take writes (no split brain)...
    assert!(kv_put(&hubs.hubs[leader], "app/minority", "no").is_err(), "the cut-off leader took a write");
    // ...the majority elects a leader and goes on...
    let new = wait_for("a leader in the majority", T, || match hubs.leader() {
        Ok(l) if l != leader => Ok(l),
        other => Err(format!("{other:?}")),
    });
    let elected = t.elapsed();
    wait_for("writes in the majority", T, || kv_put(&hubs.hubs[new], "app/majority", "yes"));
    // ...and the node follows it (the cut-off leader stepped down and lets go of it).
    let port = hubs.hubs[new].mqtt_port;
    wait_for("the agent on the majority's leader", T, || {
        let log = agent.proc.log();
        let last = log.lines().rev().find(|l| l.contains("connected to the hub")).unwrap_or("");
        if last.contains(&format!(":{port}")) { Ok(()) } else { Err(last.to_owned()) }
    });
    let moved = t.elapsed();
    assert_eq!(hubs.hubs[new].node_status("pi-p"), Some(NodeStatus::Up));

    // Healed: the old leader follows, with the majority's data and without its own refused write.
    drop(cut);
    wait_for("the old leader caught up", T, || {
        let v = kv_get(&hubs.hubs[leader], "app/majority")?;
        if v == "yes" { Ok(()) } else { Err(v) }
    });
    let s: ClusterStatus = hubs.status(leader).unwrap();
    assert_eq!(s.leader, Some(hubs.status(new).unwrap().this), "{s:?}");
    for h in &hubs.hubs {
        assert!(kv_get(h, "app/minority").is_err_and(|e| e.contains("404")), "the refused write is nowhere");
    }
    println!("partition: the majority elected a leader after {elected:?}; the node on it after {moved:?}");
}

#[test]
fn two_hubs_and_a_witness_survive_the_loss_of_either_hub() {
    let dir = tempfile::tempdir().unwrap();
    let mut hubs = Hubs::start_with(dir.path(), 3, true, &[]);
    let witness = 2;
    // The witness serves nothing: no API, no DNS, no broker.
    assert!(hubs.hubs[witness].health().is_err(), "the witness answers HTTP");
    assert!(std::net::TcpStream::connect(("127.0.0.1", hubs.hubs[witness].mqtt_port)).is_err());
    let hwm = hwm_kb(hubs.hubs[witness].proc.pid());
    for round in 0..2 {
        let leader = hubs.wait_leader(T);
        assert_ne!(leader, witness, "a witness never keeps the leadership");
        kv_put(&hubs.hubs[leader], "app/round", &round.to_string()).unwrap();
        hubs.hubs[leader].proc.stop("KILL");
        let other = 1 - leader;
        let t = Instant::now();
        wait_for("the other hub leads, with the witness's vote", T, || match hubs.leader() {
            Ok(l) if l == other => Ok(()),
            got => Err(format!("{got:?}")),
        });
        println!("2 hubs + a witness, round {round}: the other hub leads after {:?}", t.elapsed());
        // Nothing acknowledged is lost (a new leader applies what it holds once it commits in its term).
        wait_for("the acknowledged write on the new leader", T, || {
            let v = kv_get(&hubs.hubs[other], "app/round")?;
            if v == round.to_string() { Ok(()) } else { Err(v) }
        });
        wait_for("writes", T, || kv_put(&hubs.hubs[other], "app/after", "yes"));
        hubs.relaunch(leader);
        hubs.wait_formed(3, T);
    }
    println!("witness peak RSS: {hwm} kB");
}

#[test]
fn a_power_cut_of_every_hub_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut hubs = Hubs::start(dir.path(), 3, &[]);
    hubs.wait_leader(T);
    // Acknowledged through every hub (the followers' forwarded), then every process killed at once.
    for i in 0..60 {
        kv_put(&hubs.hubs[i % 3], &format!("app/k{i}"), &i.to_string()).unwrap();
    }
    for h in &mut hubs.hubs {
        h.proc.signal("KILL");
    }
    for i in 0..3 {
        hubs.hubs[i].proc.stop("KILL");
        hubs.relaunch(i);
    }
    let t = Instant::now();
    hubs.wait_formed(3, T);
    println!("power cut: the cluster back with a leader after {:?}", t.elapsed());
    for h in &hubs.hubs {
        for i in 0..60 {
            let v = wait_for("every acknowledged write on every hub", T, || kv_get(h, &format!("app/k{i}")));
            assert_eq!(v, i.to_string());
        }
    }
    let leader = hubs.wait_leader(T);
    wait_for("writes again", T, || kv_put(&hubs.hubs[leader], "app/after", "yes"));
}

#[test]
fn a_leader_whose_disk_fills_says_why_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut hubs = Hubs::start_on_small_disks(dir.path(), 3, 32);
    let leader = hubs.wait_leader(T);
    for i in 0..20 {
        kv_put(&hubs.hubs[leader], &format!("app/k{i}"), "v").unwrap();
    }
    // Fill the leader's disk to the last byte.
    let filler = hubs.hubs[leader].data_dir.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&block[..512]).is_ok() {}
        let _ = f.sync_all();
    }
    // The leader's files still have room inside them: write big values until it runs out.
    let other = (leader + 1) % 3;
    let big = "x".repeat(64 * 1024);
    let mut acked = Vec::new();
    let t = Instant::now();
    for i in 0..2000 {
        if kv_put(&hubs.hubs[other], &format!("app/fill{i}"), &big).is_ok() {
            acked.push(i);
        }
        if i % 10 == 9 && hubs.leader().is_ok_and(|l| l != leader) {
            break;
        }
    }
    wait_for("writes through the others", T, || kv_put(&hubs.hubs[other], "app/after", "yes"));
    let back = t.elapsed();
    let new = hubs.wait_leader(T);
    assert_ne!(new, leader, "the full-disk hub no longer leads");
    for i in &acked {
        let v = wait_for("every acknowledged write", T, || kv_get(&hubs.hubs[new], &format!("app/fill{i}")));
        assert_eq!(v.len(), big.len(), "acknowledged write {i} lost");
    }
    wait_for("the full hub says why", T, || {
        let log = hubs.hubs[leader].proc.log();
        if log.contains("No space left on device") { Ok(()) } else { Err("not yet".into()) }
    });
    for i in 0..20 {
        assert_eq!(kv_get(&hubs.hubs[new], &format!("app/k{i}")).unwrap(), "v", "acknowledged write {i} lost");
    }
    // Room again: started again, it follows and catches up.
    std::fs::remove_file(&filler).unwrap();
    hubs.hubs[leader].proc.stop("KILL");
    hubs.relaunch(leader);
    wait_for("the old leader caught up", T, || kv_get(&hubs.hubs[leader], "app/after"));
    println!(
        "disk full on the leader: {} big writes acknowledged until it gave up, none lost; writes through the \
         others {back:?} after the disk filled",
        acked.len()
    );
}

#[test]
fn a_follower_killed_while_it_installs_a_snapshot_catches_up_when_started_again() {
    let dir = tempfile::tempdir().unwrap();
    // Snapshots often and few entries kept behind them, so a member away for a while
    // catches up by a snapshot, not the log.
    let mut hubs = Hubs::start(dir.path(), 3, &["--snapshot-threshold", "100", "--trailing-logs", "10"]);
    let leader = hubs.wait_leader(T);
    let away = (leader + 1) % 3;
    hubs.hubs[away].proc.stop("KILL");
    // A catalog of a few MB written while it is away: 400 keys of 8 KB, 4 writers.
    let value = "v".repeat(8 * 1024);
    std::thread::scope(|s| {
        for w in 0..4 {
            let (h, value) = (&hubs.hubs[leader], &value);
            s.spawn(move || {
                for i in (w..400).step_by(4) {
                    kv_put(h, &format!("big/k{i:03}"), value).unwrap();
                }
            });
        }
    });
    kv_put(&hubs.hubs[leader], "big/last", "yes").unwrap();

    // Started again, it is sent a snapshot; killed the moment it has one to install.
    hubs.relaunch(away);
    let t = Instant::now();
    wait_for("the snapshot to arrive", T, || {
        if hubs.hubs[away].proc.log().contains("received a catalog snapshot") { Ok(()) } else { Err("not yet".into()) }
    });
    hubs.hubs[away].proc.stop("KILL");
    let mid_install = !hubs.hubs[away].proc.log().contains("installed a catalog snapshot");
    let log_before = hubs.hubs[away].proc.log();

    // Started once more: it has the whole catalog, nothing torn.
    hubs.relaunch(away);
    wait_for("the follower caught up", T, || kv_get(&hubs.hubs[away], "big/last"));
    let caught_up = t.elapsed();
    let keys: Vec<String> = hubs.hubs[away].get("/v1/kv/big/?keys").unwrap();
    assert_eq!(keys.len(), 401, "the follower's keys after the kill and restart");
    for i in [0, 199, 399] {
        assert_eq!(kv_get(&hubs.hubs[away], &format!("big/k{i:03}")).unwrap().len(), value.len());
    }
    // It is a follower in step: a write through it lands everywhere.
    kv_put(&hubs.hubs[away], "big/after", "yes").unwrap();
    for h in &hubs.hubs {
        wait_for("the write everywhere", T, || kv_get(h, "big/after"));
    }
    assert!(log_before.contains("received a catalog snapshot"), "{log_before}");
    println!(
        "a follower killed {} installing a 3.3 MB snapshot: caught up {caught_up:?} after it was started again",
        if mid_install { "while" } else { "just after" }
    );
}
