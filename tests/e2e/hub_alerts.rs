//! Alerts about the hub cluster itself, from real hubs to a loopback receiver: a member
//! killed → the leader says `HubMemberDown`; the leader killed too → the last member,
//! alone and without a leader (so without the alert task, which runs on the leader), says
//! `HubNoLeader` itself; a member back → a leader again → that is resolved.

use rabble_tests::hubs::Hubs;
use rabble_tests::receiver::{Got, header, receiver};
use rabble_tests::wait_for;
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn titled(got: &Mutex<Vec<Got>>, what: &str) -> Result<Instant, String> {
    let g = got.lock().unwrap();
    g.iter()
        .find(|r| header(r, "x-title").is_some_and(|t| t.contains(what)))
        .map(|r| r.at)
        .ok_or_else(|| format!("{:?}", g.iter().filter_map(|r| header(r, "x-title")).collect::<Vec<_>>()))
}

#[test]
fn a_silent_hub_and_a_cluster_without_a_leader_are_told() {
    let dir = tempfile::tempdir().unwrap();
    let (base, got) = receiver();
    let notify = format!("ntfy:{base}/phone");
    let mut hubs = Hubs::start(dir.path(), 3, &["--notify", &notify]);
    let leader = hubs.wait_leader(Duration::from_secs(30));
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();

    hubs.hubs[followers[0]].proc.stop("KILL");
    let killed = Instant::now();
    let at = wait_for("HubMemberDown", Duration::from_secs(40), || titled(&got, "[FIRING:1] HubMemberDown"));
    println!(
        "BENCH a hub member killed → HubMemberDown from the leader in {:.1} s",
        at.duration_since(killed).as_secs_f64()
    );

    hubs.hubs[leader].proc.stop("KILL");
    let killed = Instant::now();
    let at = wait_for("HubNoLeader", Duration::from_secs(45), || titled(&got, "[FIRING:1] HubNoLeader"));
    let took = at.duration_since(killed);
    println!("BENCH the leader killed too → HubNoLeader from the last member in {:.1} s", took.as_secs_f64());
    assert!(took >= Duration::from_secs(15), "it waits out an election: {took:?}");
    let body = got.lock().unwrap().iter().find(|r| r.body.contains("sees no leader")).map(|r| r.body.clone());
    assert!(body.is_some_and(|b| b.contains("voters")), "the member says why (its quorum)");

    hubs.relaunch(followers[0]);
    wait_for("HubNoLeader resolved", Duration::from_secs(60), || titled(&got, "[RESOLVED] HubNoLeader"));
}
