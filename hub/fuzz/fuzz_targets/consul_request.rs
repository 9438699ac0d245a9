//! Fuzzes what a Consul client sends the hub (`rabble_hub::fuzzing::consul_request`):
//! catalog register / deregister bodies, KV transactions, query strings, KV keys and the
//! ACL route table on the paths they make. Never a panic.
//!
//! Run: `bash tests/fuzz.sh consul_request 60`

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rabble_hub::fuzzing::consul_request(data));
