//! Fuzzes ACL policy rules (`rabble_core::acl::Rules::parse`) and the decisions made
//! with them, and the API's route table (`acl::route::gate`) on any method, path and
//! query. Never a panic.
//!
//! Run: `bash tests/fuzz.sh acl_policy 60`

#![no_main]

use libfuzzer_sys::fuzz_target;
use rabble_core::acl::{Cap, Need, Resource, Rules, route};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(r) = Rules::parse("fuzz.hcl", &text) {
        for res in Resource::ALL {
            let mut n = Need::new(res, Cap::Read, text.get(..8).unwrap_or(""));
            let _ = r.allows(&n);
            n.subtree = true;
            let _ = r.allows(&n);
        }
    }
    let (path, query) = text.split_once('?').map_or((&*text, None), |(p, q)| (p, Some(q)));
    for m in ["GET", "PUT", "POST", "DELETE"] {
        let _ = route::gate(m, path, query);
    }
});
