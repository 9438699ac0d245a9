//! Fuzzes the Nomad job file reader (`rabble_core::jobspec::parse`): HCL with variables,
//! locals, functions and heredocs, as `rabble job run` and the API take it. It must
//! never panic; a job that parses must also be placeable (evaluated on a small cluster).
//!
//! Run: `bash tests/fuzz.sh jobspec 60`

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(parsed) = rabble_core::jobspec::parse("fuzz.hcl", &text, &Default::default()) {
        let _ = rabble_core::jobspec::check_spec(&parsed.job);
    }
});
