//! Fuzzes every MQTT payload decoder (`rabble_shared::msg::decode` for each payload
//! type the hub or an agent reads). Never a panic; a decoded payload re-encodes.
//!
//! Run: `bash tests/fuzz.sh mqtt_payload 60`

#![no_main]

use libfuzzer_sys::fuzz_target;
use rabble_shared::msg::{self, Availability};

fn one<T: msg::Payload>(data: &[u8]) {
    if let Ok(v) = msg::decode::<T>(data) {
        let _ = msg::encode(&v);
    }
}

fuzz_target!(|data: &[u8]| {
    one::<msg::NodeFacts>(data);
    one::<msg::Heartbeat>(data);
    one::<msg::ServiceRegistration>(data);
    one::<msg::CheckState>(data);
    one::<msg::Manifest>(data);
    one::<rabble_shared::alloc::Allocation>(data);
    one::<rabble_shared::assign::Signed>(data);
    one::<rabble_shared::assign::AllocState>(data);
    one::<rabble_shared::logs::SignedRequest>(data);
    one::<rabble_shared::logs::LogChunk>(data);
    one::<rabble_shared::rendered::RenderedMessage>(data);
    one::<rabble_shared::certs::CertMessage>(data);
    let _ = Availability::decode(data);
});
