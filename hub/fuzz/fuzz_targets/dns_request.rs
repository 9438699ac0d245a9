//! Fuzzes the DNS request path: any bytes, over UDP or TCP, against a zone with
//! services, tags, nodes and an IPv6 instance. It must never panic.
//!
//! Run: `cd hub/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run dns_request -- -max_total_time=60`

#![no_main]

use libfuzzer_sys::fuzz_target;
use rabble_core::dns::answer::{answer, Transport};
use rabble_core::dns::fixture;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static FIXTURE: OnceLock<fixture::Fixture> = OnceLock::new();
    let f = FIXTURE.get_or_init(fixture::Fixture::new);
    for transport in [Transport::Udp, Transport::Tcp] {
        for recursion in [false, true] {
            let _ = answer(data, &f.zone, &f.settings, transport, recursion);
        }
    }
});
