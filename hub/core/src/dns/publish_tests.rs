//! The agents' answers against the hub's: the zone published, received as an agent
//! receives it, and every query asked of both (`rabble_shared::dns::answer` and
//! `crate::dns::answer`), record for record (the order of shuffled records aside).

use super::*;
use crate::catalog::Catalog;
use crate::dns::answer::{Outcome, Transport, answer};
use crate::dns::fixture::add;
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, Record, RecordType};
use rabble_shared::Status;
use rabble_shared::dns::{Change, answer as agent};

fn settings(limit: usize) -> DnsSettings {
    DnsSettings {
        domain: vec!["lab".into(), "home".into()],
        ttl: 3,
        negative_ttl: 7,
        only_passing: false,
        a_record_limit: limit,
    }
}

fn catalog() -> Catalog {
    let mut c = Catalog::default();
    add(&mut c, "pi1", "192.168.1.1", "web", &["primary"], None, Status::Passing);
    add(&mut c, "pi2", "192.168.1.2", "web", &[], None, Status::Warning);
    add(&mut c, "pi3", "192.168.1.3", "web", &[], None, Status::Critical);
    add(&mut c, "pi4", "192.168.1.4", "db", &["Main"], Some("fd00::4"), Status::Passing);
    add(&mut c, "pi5", "192.168.1.5", "db", &[], Some("10.0.0.9"), Status::Passing);
    for i in 0..60 {
        add(&mut c, &format!("n{i}"), &format!("10.1.0.{i}"), "many", &[], None, Status::Passing);
    }
    add(&mut c, "pi6", "192.168.1.6", "Odd.Name", &[], None, Status::Passing);
    c
}

/// The zone as an agent builds it from the retained messages.
fn received(p: &Published) -> rabble_shared::dns::Zone {
    let mut z = rabble_shared::dns::Zone::default();
    assert!(z.apply(Change::Meta(p.meta.clone())));
    for (name, s) in &p.services {
        assert!(z.apply(Change::Service(name.clone(), Some(s.clone()))));
    }
    for (name, n) in &p.nodes {
        assert!(z.apply(Change::Node(name.clone(), Some(n.clone()))));
    }
    z
}

fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut q = Message::query();
    q.metadata.id = 4242;
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        q.edns = Some(e);
    }
    q.to_vec().unwrap()
}

/// What a reply says, in an order-free form; with `data` false, without the records'
/// data (which instances an `a_record_limit` picks is random).
fn described(bytes: &[u8], data: bool) -> String {
    let m = Message::from_vec(bytes).unwrap_or_else(|e| panic!("unparsable reply: {e}"));
    let set = |rs: &[Record]| {
        let mut v: Vec<String> = rs
            .iter()
            .map(|r| {
                let d =
                    if data || r.record_type() == RecordType::SOA { format!("{:?}", r.data) } else { String::new() };
                let owner = if data || r.record_type() == RecordType::SOA { r.name.to_string() } else { String::new() };
                format!("{owner} {} {} {d}", r.ttl, r.record_type())
            })
            .collect();
        v.sort();
        v
    };
    let h = &m.metadata;
    format!(
        "id={} rcode={:?} aa={} tc={} rd={} q={:?}\nan={:#?}\nns={:#?}\nar={:#?} edns={:?}",
        h.id,
        h.response_code,
        h.authoritative,
        h.truncation,
        h.recursion_desired,
        m.queries,
        set(&m.answers),
        set(&m.authorities),
        set(&m.additionals),
        m.edns.as_ref().map(|e| e.max_payload())
    )
}

#[test]
fn an_agent_answers_every_query_as_the_hub_does() {
    for limit in [0, 2] {
        let s = settings(limit);
        let zone = Zone::build(&catalog(), &s);
        let p = published(&zone, &s);
        assert!(p.services.contains_key("web") && !p.services.contains_key("odd.name"), "{:?}", p.services.keys());
        let mine = received(&p);
        let names = [
            "web.service.lab.home.",
            "WEB.Service.Lab.Home.",
            "primary.web.service.lab.home.",
            "nope.web.service.lab.home.",
            "db.service.lab.home.",
            "main.db.service.lab.home.",
            "web.service.home.lab.home.",
            "_web._tcp.service.lab.home.",
            "_db._main.service.lab.home.",
            "_web._nope.service.lab.home.",
            "many.service.lab.home.",
            "missing.service.lab.home.",
            "pi1.node.lab.home.",
            "pi4.node.home.lab.home.",
            "ghost.node.lab.home.",
            "c0a80101.addr.lab.home.",
            "fd000000000000000000000000000004.addr.lab.home.",
            "zz.addr.lab.home.",
            "lab.home.",
            "what.lab.home.",
            "a.b.c.d.lab.home.",
            "example.com.",
            "home.",
        ];
        let types = [
            RecordType::A,
            RecordType::AAAA,
            RecordType::SRV,
            RecordType::TXT,
            RecordType::SOA,
            RecordType::ANY,
            RecordType::MX,
        ];
        let mut compared = 0;
        for name in names {
            for qtype in types {
                for (transport, edns) in [(Transport::Udp, None), (Transport::Udp, Some(1232)), (Transport::Tcp, None)]
                {
                    let req = query(name, qtype, edns);
                    let hub = match answer(&req, &zone, &s, transport, false) {
                        Outcome::Reply(b) => b,
                        other => panic!("{name} {qtype}: the hub said {other:?}"),
                    };
                    let t = if transport == Transport::Udp { agent::Transport::Udp } else { agent::Transport::Tcp };
                    let ours = agent::answer(&req, &mine, t, 99).unwrap_or_else(|| panic!("{name} {qtype}: no answer"));
                    let (h, o) = (described(&hub, limit == 0), described(&ours, limit == 0));
                    // Truncated answers keep as many records as fit: the count may differ by
                    // name compression, the flag may not.
                    if h.contains("tc=true") {
                        assert!(o.contains("tc=true"), "{name} {qtype} {transport:?}:\nhub {h}\nagent {o}");
                    } else {
                        assert_eq!(h, o, "{name} {qtype} {transport:?} limit {limit}");
                    }
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, names.len() * types.len() * 3);
    }
}

#[test]
fn the_published_zone_names_nodes_for_srv_and_addresses_otherwise() {
    let s = settings(0);
    let p = published(&Zone::build(&catalog(), &s), &s);
    let db = &p.services["db"].targets;
    assert!(db.iter().all(|t| t.node.is_none() && t.port == Some(8080)), "{db:?}");
    let web = &p.services["web"].targets;
    assert_eq!(web.len(), 2, "the critical instance is left out");
    assert!(web.iter().any(|t| t.node.as_deref() == Some("pi1") && t.tags == ["primary"]));
    assert_eq!(p.nodes["pi4"].txt, ["rack=top"]);
    assert_eq!(p.meta.datacenters, ["home"]);
}
