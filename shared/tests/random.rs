//! Every MQTT payload's `decode` on seeded mutations of the real encodings (the golden
//! files): never a panic, whatever arrives (the fuzz target `mqtt_payload` goes further).

use rabble_shared::alloc::Allocation;
use rabble_shared::assign::{AllocState, Signed};
use rabble_shared::certs::CertMessage;
use rabble_shared::logs::{LogChunk, SignedRequest};
use rabble_shared::msg::{self, Availability, CheckState, Heartbeat, Manifest, NodeFacts, ServiceRegistration};
use rabble_shared::rendered::RenderedMessage;
use rabble_shared::support::mutate::mutations;

fn decode_all(bytes: &[u8]) {
    let _ = msg::decode::<NodeFacts>(bytes);
    let _ = msg::decode::<Heartbeat>(bytes);
    let _ = msg::decode::<ServiceRegistration>(bytes);
    let _ = msg::decode::<CheckState>(bytes);
    let _ = msg::decode::<Manifest>(bytes);
    let _ = msg::decode::<Allocation>(bytes);
    let _ = msg::decode::<Signed>(bytes);
    let _ = msg::decode::<AllocState>(bytes);
    let _ = msg::decode::<SignedRequest>(bytes);
    let _ = msg::decode::<LogChunk>(bytes);
    let _ = msg::decode::<RenderedMessage>(bytes);
    let _ = msg::decode::<CertMessage>(bytes);
    let _ = Availability::decode(bytes);
}

#[test]
fn payload_decoders_take_any_mutation_of_real_payloads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|t| !t.starts_with('{') || t.contains("\"v\""))
        .collect();
    let seeds: Vec<&str> = files.iter().map(String::as_str).collect();
    assert!(seeds.len() >= 10, "{} golden payloads", seeds.len());
    mutations(&seeds, b"{}[]\":,0123456789-.eE truefalsn\\u", 20_000, 0x5eed, decode_all);
}
