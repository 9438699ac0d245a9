//! Fuzzes DNS on the node: the agent's responder (`rabble_shared::dns::answer`) on any
//! bytes, over UDP and TCP, against the fixture zone as the nodes receive it
//! (`rabble_core::dns::publish`), and the reader of the zone's messages
//! (`rabble_shared::dns::wire`) on any payload. Never a panic; every answer echoes the
//! request's id and fits what the transport allows; whatever the reader takes, the zone
//! applies.
//!
//! Run: `bash tests/fuzz.sh agent_dns 60`

#![no_main]

use libfuzzer_sys::fuzz_target;
use rabble_core::dns::{fixture, publish};
use rabble_shared::dns::answer::{Transport, answer};
use rabble_shared::dns::{Change, Zone, wire};
use rabble_shared::topic::Topic;
use std::sync::OnceLock;

fn zone() -> &'static Zone {
    static ZONE: OnceLock<Zone> = OnceLock::new();
    ZONE.get_or_init(|| {
        let f = fixture::Fixture::new();
        let p = publish::published(&f.zone, &f.settings);
        let mut z = Zone::default();
        z.apply(Change::Meta(p.meta));
        for (name, s) in p.services {
            z.apply(Change::Service(name, Some(s)));
        }
        for (name, n) in p.nodes {
            z.apply(Change::Node(name, Some(n)));
        }
        z
    })
}

fuzz_target!(|data: &[u8]| {
    let z = zone();
    for (transport, limit) in [(Transport::Udp, 4096), (Transport::Tcp, 65535)] {
        if let Some(reply) = answer(data, z, transport, 7) {
            assert!(reply.len() >= 12 && reply.len() <= limit, "{} bytes", reply.len());
            assert_eq!(&reply[..2], &data[..2], "the request's id");
        }
    }
    let mut mine = z.clone();
    for topic in [Topic::DnsZone, Topic::DnsService("web".into()), Topic::DnsNode("n0".into())] {
        if let Ok(Some(change)) = wire::change(&topic, data) {
            mine.apply(change);
        }
    }
});
