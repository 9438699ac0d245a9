//! DNS on every node: real agents answer from the zone the hub publishes, as the hub
//! answers (the real `dig` against both), keep answering while the hub is dead, and
//! follow the zone again when it is back. Hostile packets change nothing.

use rabble_tests::*;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(15);

/// What two servers must agree on: status, aa/tc, records (sorted; only their number when
/// truncated: which of the shuffled ones fit is chance), the SOA's presence. Not the SOA's
/// serial: it is the catalog index of the last change each has seen, and a commit that
/// changes nothing in the zone (a node's drivers probed) moves the hub's alone.
fn said(d: &Dig) -> String {
    let mut additional: Vec<&String> = d.additional.iter().filter(|r| !r.contains(" OPT ")).collect();
    additional.sort();
    let soa = d.authority.iter().any(|r| r.contains(" SOA "));
    let flags: Vec<&String> = d.flags.iter().filter(|f| *f == "aa" || *f == "tc").collect();
    let records = if flags.iter().any(|f| *f == "tc") {
        format!("{} records", d.answer.len())
    } else {
        let data: Vec<String> = d
            .data()
            .into_iter()
            .map(|r| {
                // An SOA's data: mname rname serial refresh retry expire minimum.
                let f: Vec<&str> = r.split_whitespace().collect();
                let soa = f.len() == 7
                    && f[..2].iter().all(|n| n.ends_with('.'))
                    && f[2..].iter().all(|n| n.parse::<u32>().is_ok());
                if soa { format!("{} {} <serial> {}", f[0], f[1], f[3..].join(" ")) } else { r }
            })
            .collect();
        format!("{data:?}")
    };
    format!("{} {flags:?} {records} soa={soa} additional={additional:?}", d.status)
}

#[test]
fn every_agent_answers_as_the_hub_and_goes_on_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut hub = Hub::start(d, &[]);
    let (pa, pb) = (free_port(), free_port());
    let a = Agent::start(d, "pi-a", hub.mqtt_port, &["--meta", "rack=top", "--dns-listen", &format!("127.0.0.1:{pa}")]);
    let b = Agent::start(d, "pi-b", hub.mqtt_port, &["--dns-listen", &format!("127.0.0.1:{pb}")]);
    a.write_service(
        "web.toml",
        "[[service]]\nname = \"web\"\naddress = \"10.0.0.1\"\nport = 8080\ntags = [\"primary\"]\n",
    );
    b.write_service("web.toml", "[[service]]\nname = \"web\"\naddress = \"10.0.0.2\"\nport = 8081\n");
    let big: String = (1..=60)
        .map(|i| format!("[[service]]\nname = \"big\"\nid = \"big-{i}\"\naddress = \"10.1.0.{i}\"\nport = 80\n"))
        .collect();
    b.write_service("big.toml", &big);
    wait_for("the zone on both agents", T, || {
        let n = [pa, pb].map(|p| {
            dig(p, "web.service.rabble", "A", &[]).answer.len()
                + dig(p, "big.service.rabble", "A", &["+tcp"]).answer.len()
        });
        if n == [62, 62] { Ok(()) } else { Err(format!("{n:?}")) }
    });

    // The same answers as the hub's, query by query.
    let queries: &[(&str, &str, &[&str])] = &[
        ("web.service.rabble", "A", &[]),
        ("WEB.Service.Rabble", "A", &[]),
        ("primary.web.service.rabble", "A", &[]),
        ("web.service.rabble", "SRV", &[]),
        ("_web._tcp.service.rabble", "SRV", &[]),
        ("_web._primary.service.rabble", "SRV", &[]),
        ("web.service.dc1.rabble", "A", &[]),
        ("web.service.rabble", "AAAA", &[]),
        ("missing.service.rabble", "A", &[]),
        ("pi-a.node.rabble", "A", &[]),
        ("pi-a.node.rabble", "TXT", &[]),
        ("ghost.node.rabble", "A", &[]),
        ("0a000001.addr.rabble", "A", &[]),
        ("rabble", "SOA", &[]),
        ("big.service.rabble", "A", &["+noedns"]),
        ("big.service.rabble", "A", &["+tcp"]),
        ("big.service.rabble", "SRV", &["+bufsize=1232"]),
    ];
    for (name, qtype, extra) in queries {
        let (h, n) = (dig(hub.dns_port, name, qtype, extra), dig(pa, name, qtype, extra));
        assert_eq!(said(&h), said(&n), "{name} {qtype} {extra:?}\nhub {h:?}\nagent {n:?}");
    }
    // Names outside the domain: refused (Unbound in front recurses), never forwarded.
    assert_eq!(dig(pa, "example.test", "A", &[]).status, "REFUSED");

    // Hostile packets: junk, a response, a truncated query; the agent answers on.
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for junk in [&[][..], &[0xff; 11], &[0x12, 0x34, 0x81, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w'], &[0u8; 4000]] {
        s.send_to(junk, ("127.0.0.1", pa)).unwrap();
    }
    assert_eq!(dig(pa, "web.service.rabble", "A", &[]).answer.len(), 2);

    // The hub dies: every query on the agents is still answered, from the last zone.
    hub.proc.stop("KILL");
    let until = Instant::now() + Duration::from_secs(3);
    let (mut asked, mut failed) = (0, Vec::new());
    while Instant::now() < until {
        for p in [pa, pb] {
            let r = dig(p, "web.service.rabble", "A", &[]);
            asked += 1;
            if r.status != "NOERROR" || r.answer.len() != 2 {
                failed.push(format!("{p}: {r:?}"));
            }
        }
    }
    assert!(asked > 10 && failed.is_empty(), "{} of {asked} failed without the hub: {failed:?}", failed.len());

    // Back: what changed while it was gone reaches the agents (its broker lost every
    // retained message; the hub publishes the zone again).
    hub.relaunch();
    b.write_service("big.toml", "");
    wait_for("big gone from the agents' zone", T, || {
        let r = [pa, pb].map(|p| dig(p, "big.service.rabble", "A", &[]).status);
        if r == ["NXDOMAIN", "NXDOMAIN"] { Ok(()) } else { Err(format!("{r:?}")) }
    });
    assert_eq!(dig(pb, "web.service.rabble", "A", &[]).answer.len(), 2);
    for log in [a.proc.log(), b.proc.log()] {
        assert!(log.contains("answering DNS from the hub's zone") && !log.contains("panicked"), "{log}");
    }
}

/// Beside a hub (the hub's LXC, `rabble dev`) the agent leaves DNS to the hub by default;
/// asked for a port already taken, it runs without DNS and says why.
#[test]
fn beside_the_hub_the_agent_leaves_dns_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let quiet = Agent::start(d, "pi-a", hub.mqtt_port, &[]);
    let taken = format!("127.0.0.1:{}", hub.dns_port);
    let clash = Agent::start(d, "pi-b", hub.mqtt_port, &["--dns-listen", &taken]);
    hub.wait_node("pi-b", rabble_shared::api::NodeStatus::Up, T);
    wait_for("the agent's warning", T, || {
        if clash.proc.log().contains("cannot answer DNS there") { Ok(()) } else { Err(clash.proc.log()) }
    });
    assert!(!quiet.proc.log().contains("answering DNS"), "{}", quiet.proc.log());
    hub.wait_node("pi-a", rabble_shared::api::NodeStatus::Up, T);
}
