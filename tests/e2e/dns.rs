//! The DNS interface with the real `dig`, a real Unbound in front (the seed's
//! stub-zone) and a real Unbound behind (as the recursor).

use rabble_shared::api::NodeStatus;
use rabble_tests::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

/// 60 instances of `big`, one per address, to overflow a 512-byte UDP answer.
fn big_services() -> String {
    (1..=60)
        .map(|i| format!("[[service]]\nname = \"big\"\nid = \"big-{i}\"\naddress = \"10.1.0.{i}\"\nport = 80\n"))
        .collect()
}

#[test]
fn dig_sees_services_nodes_and_negative_answers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let a = Agent::start(d, "pi-a", hub.mqtt_port, &["--meta", "rack=top"]);
    let b = Agent::start(d, "pi-b", hub.mqtt_port, &[]);
    a.write_service(
        "web.toml",
        "[[service]]\nname = \"web\"\naddress = \"10.0.0.1\"\nport = 8080\ntags = [\"primary\"]\n\
         [[service]]\nname = \"v6only\"\naddress = \"fd00::1\"\nport = 9\n",
    );
    b.write_service("web.toml", "[[service]]\nname = \"web\"\naddress = \"10.0.0.2\"\nport = 8081\n");
    b.write_service("big.toml", &big_services());
    wait_for("all instances", T, || {
        let n = hub.instances("web").len() + hub.instances("big").len();
        if n == 62 { Ok(()) } else { Err(format!("{n}")) }
    });
    let p = hub.dns_port;

    let r = dig(p, "web.service.rabble", "A", &[]);
    assert_eq!((r.status.as_str(), r.data()), ("NOERROR", vec!["10.0.0.1".to_owned(), "10.0.0.2".to_owned()]));
    assert!(r.flags.contains(&"aa".to_owned()), "{r:?}");
    assert_eq!(dig(p, "WEB.Service.Rabble", "A", &[]).data().len(), 2, "names are case-insensitive");
    assert_eq!(dig(p, "v6only.service.rabble", "AAAA", &[]).data(), ["fd00::1"]);
    assert_eq!(dig(p, "primary.web.service.rabble", "A", &[]).data(), ["10.0.0.1"], "tag filter");

    for name in ["web.service.rabble", "_web._tcp.service.rabble"] {
        let srv = dig(p, name, "SRV", &[]);
        assert_eq!(srv.answer.len(), 2, "{name}: {srv:?}");
        for rec in &srv.answer {
            let target = rec.split_whitespace().last().unwrap();
            assert!(srv.additional.iter().any(|a| a.starts_with(target) && a.contains(" A ")), "{name}: {srv:?}");
        }
    }
    assert_eq!(dig(p, "_web._primary.service.rabble", "SRV", &[]).answer.len(), 1);

    assert_eq!(dig(p, "pi-a.node.rabble", "A", &[]).data(), ["127.0.0.1"]);
    assert_eq!(dig(p, "pi-a.node.rabble", "TXT", &[]).data(), ["\"rack=top\""]);

    let nx = dig(p, "missing.service.rabble", "A", &[]);
    assert_eq!(nx.status, "NXDOMAIN");
    assert!(nx.authority.iter().any(|r| r.starts_with("rabble. SOA")), "{nx:?}");
    let nodata = dig(p, "web.service.rabble", "AAAA", &[]);
    assert_eq!((nodata.status.as_str(), nodata.answer.len()), ("NOERROR", 0));
    assert!(nodata.authority.iter().any(|r| r.contains(" SOA ")), "{nodata:?}");

    // Too big for 512 bytes of plain UDP: truncated; the same query over TCP has it all.
    let udp = dig(p, "big.service.rabble", "A", &["+noedns"]);
    assert!(udp.flags.contains(&"tc".to_owned()), "{udp:?}");
    let tcp = dig(p, "big.service.rabble", "A", &["+tcp"]);
    assert_eq!((tcp.answer.len(), tcp.flags.contains(&"tc".to_owned())), (60, false));

    // No recursors configured: names outside the domain are refused.
    assert_eq!(dig(p, "example.test", "A", &[]).status, "REFUSED");
}

#[test]
fn answers_follow_health_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let a = Agent::start(d, "pi-a", hub.mqtt_port, &[]);
    let mut b = Agent::start(d, "pi-b", hub.mqtt_port, &["--keepalive", "2s"]);
    for (ag, ip) in [(&a, "10.0.0.1"), (&b, "10.0.0.2")] {
        ag.write_service(
            "web.toml",
            &format!("[[service]]\nname = \"web\"\naddress = \"{ip}\"\n[[service.checks]]\nid = \"ttl-{ip}\"\nttl = \"10m\"\nstatus = \"passing\"\n"),
        );
    }
    wait_for("both instances", T, || {
        let got = dig(hub.dns_port, "web.service.rabble", "A", &[]).data();
        if got.len() == 2 { Ok(()) } else { Err(format!("{got:?}")) }
    });
    // The next answer after the catalog changes reflects it: no window of staleness.
    let (ok, err) = a.ctl(&["check", "fail", "ttl-10.0.0.1"]);
    assert!(ok, "{err}");
    hub.wait_check("ttl-10.0.0.1", rabble_shared::Status::Critical, T);
    assert_eq!(dig(hub.dns_port, "web.service.rabble", "A", &[]).data(), ["10.0.0.2"]);
    a.ctl(&["check", "warn", "ttl-10.0.0.1"]);
    hub.wait_check("ttl-10.0.0.1", rabble_shared::Status::Warning, T);
    assert_eq!(dig(hub.dns_port, "web.service.rabble", "A", &[]).data().len(), 2, "warning is served");

    b.proc.stop("KILL");
    hub.wait_node("pi-b", NodeStatus::Down, T);
    assert_eq!(dig(hub.dns_port, "web.service.rabble", "A", &[]).data(), ["10.0.0.1"]);
    a.ctl(&["check", "fail", "ttl-10.0.0.1"]);
    hub.wait_check("ttl-10.0.0.1", rabble_shared::Status::Critical, T);
    assert_eq!(dig(hub.dns_port, "web.service.rabble", "A", &[]).status, "NXDOMAIN", "no healthy instance left");
}

#[test]
fn unbound_stub_zone_in_front_and_recursion_behind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Behind: an Unbound standing in for the LAN's upstream resolver.
    let upstream = Unbound::start(
        d,
        "unbound-upstream",
        "  local-zone: \"example.test.\" static\n  local-data: \"www.example.test. A 10.9.9.9\"",
        "",
    );
    let hub = Hub::start(d, &["--recursor", &format!("127.0.0.1:{}", upstream.port)]);
    let a = Agent::start(d, "pi-a", hub.mqtt_port, &[]);
    a.write_service("web.toml", "[[service]]\nname = \"web\"\naddress = \"10.0.0.7\"\n");
    wait_for("web", T, || if hub.instances("web").len() == 1 { Ok(()) } else { Err("none".into()) });

    let r = dig(hub.dns_port, "www.example.test", "A", &[]);
    assert_eq!((r.status.as_str(), r.data()), ("NOERROR", vec!["10.9.9.9".to_owned()]), "relayed over UDP");
    assert!(r.flags.contains(&"ra".to_owned()), "{r:?}");
    assert_eq!(dig(hub.dns_port, "www.example.test", "A", &["+tcp"]).data(), ["10.9.9.9"], "relayed over TCP");
    assert_eq!(dig(hub.dns_port, "nope.example.test", "A", &[]).status, "NXDOMAIN");

    // In front: Unbound configured exactly like the seed's stub-zone (domain rabble).
    let front = Unbound::start(
        d,
        "unbound-front",
        "  do-not-query-localhost: no\n  domain-insecure: \"rabble\"",
        &format!("stub-zone:\n  name: \"rabble\"\n  stub-addr: 127.0.0.1@{}", hub.dns_port),
    );
    let r = dig(front.port, "web.service.rabble", "A", &[]);
    assert_eq!((r.status.as_str(), r.data()), ("NOERROR", vec!["10.0.0.7".to_owned()]), "{}", front.proc.log());
}

#[test]
fn hostile_packets_neither_crash_nor_stall_the_server() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), &[]);
    let a = Agent::start(dir.path(), "pi-a", hub.mqtt_port, &[]);
    a.write_service("web.toml", "[[service]]\nname = \"web\"\naddress = \"10.0.0.1\"\n");
    wait_for("web", T, || if hub.instances("web").len() == 1 { Ok(()) } else { Err("none".into()) });
    let target = ("127.0.0.1", hub.dns_port);

    // UDP: random bytes, a header claiming 65535 records, a compression loop, a response.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = 0x1234_5678_u32;
    for i in 0..2000u32 {
        let len = (i % 600) as usize;
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 17;
                rng ^= rng << 5;
                rng as u8
            })
            .collect();
        udp.send_to(&junk, target).unwrap();
    }
    udp.send_to(&[0xab, 0xcd, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], target).unwrap();
    udp.send_to(&[0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1], target).unwrap();
    udp.send_to(&[0xab, 0xcd, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0], target).unwrap();

    // TCP: garbage, a length prefix with nothing behind it, and idle connections.
    let mut idle = Vec::new();
    for i in 0..20 {
        let mut s = std::net::TcpStream::connect(target).unwrap();
        match i % 3 {
            0 => s.write_all(b"\x00\x10GET / HTTP/1.1\r\n\r\n").unwrap(),
            1 => s.write_all(&[0xff, 0xff, 1, 2, 3]).unwrap(),
            _ => {}
        }
        idle.push(s);
    }
    // The server still answers at once, over both transports.
    let start = std::time::Instant::now();
    assert_eq!(dig(hub.dns_port, "web.service.rabble", "A", &[]).data(), ["10.0.0.1"]);
    assert_eq!(dig(hub.dns_port, "web.service.rabble", "A", &["+tcp"]).data(), ["10.0.0.1"]);
    assert!(start.elapsed() < Duration::from_secs(2), "answers took {:?}", start.elapsed());
    assert!(hub.health().is_ok());
    drop(idle);
}
