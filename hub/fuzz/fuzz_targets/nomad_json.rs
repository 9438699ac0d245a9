//! Fuzzes the reader of Nomad's JSON job form (`rabble_core::nomad::from_json`), as the
//! hub's Nomad API takes jobs from python-nomad, Ansible and Nomad's CLI: it must never
//! panic, and a job it reads must pass the hub's own check.
//!
//! Run: `bash tests/fuzz.sh nomad_json 60`

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Some(job) = rabble_core::nomad::job_field(&v) else { return };
    if let Ok(parsed) = rabble_core::nomad::from_json(job, &Default::default()) {
        assert!(rabble_core::jobspec::check_spec(&parsed.job).is_ok(), "read but refused by check_spec");
    }
});
