//! Fuzzes the agent's service files (`rabble_agent::services::parse_text`): Consul's HCL
//! and JSON, Rabble's TOML, as users drop them in services.d. Never a panic.
//!
//! Run: `bash tests/fuzz.sh service_file 60`

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else { return };
    let ext = ["hcl", "json", "toml"][usize::from(kind) % 3];
    let _ = rabble_agent::services::parse_text(&String::from_utf8_lossy(rest), ext, "fuzz");
});
