//! Three hub processes that form one cluster (a shared key, `retry_join`,
//! `bootstrap_expect = 3`) and a real agent that knows all three. Writes through any hub
//! land on every hub; the leader killed with SIGKILL, the others elect a new one, writes
//! are accepted again, the agent is on the new leader, its node never goes down; the old
//! leader, started again, follows with everything it missed.

use rabble_shared::api::{ClusterStatus, NodeStatus};
use rabble_tests::hubs::Hubs;
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
    let mut extra: Vec<&str> = vec!["--keepalive", "2s"];
    for b in &brokers[1..] {
        extra.extend(["--hub", b.as_str()]);
    }
    let agent = Agent::spawn(Command::new(bin("rabble-agent")), d, "pi-a", &brokers[0], d.join("svc"), &extra);
    for h in &hubs.hubs {
        h.wait_node("pi-a", NodeStatus::Up, T);
    }

    // A write through a follower is forwarded to the leader and lands on every replica.
    kv_put(&hubs.hubs[followers[0]], "app/greeting", "hello").unwrap();
    for h in &hubs.hubs {
        wait_for("the key on every hub", T, || {
            kv_get(h, "app/greeting").and_then(|v| if v == "hello" { Ok(()) } else { Err(v) })
        });
    }
    let survivor = followers[0];
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
    // Longer than a heartbeat TTL after the kill: a node the old leader knew is not declared down.
    std::thread::sleep(Duration::from_secs(5));
    watching.store(false, Ordering::Relaxed);
    watcher.join().unwrap();
    assert_eq!(*down.lock().unwrap(), None, "pi-a went down during the fail-over");

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
         (a leader seen by {elected:?}), the agent on the new leader after {reconnected:?}"
    );
    assert!(writes_again < Duration::from_secs(5), "writes stopped for {writes_again:?}");
}
