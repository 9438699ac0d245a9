//! Fuzzes the Traefik rule parser and matcher (`rabble_shared::routes::rule`) and the
//! tag reader (`rabble_core::routes::tags`): any text as a rule, and as a tag. They must
//! never panic, and a rule that parses must be matchable.
//!
//! Run: `cd hub/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run route_rule -- -max_total_time=60`

#![no_main]

use libfuzzer_sys::fuzz_target;
use rabble_core::routes::tags::{Instance, contribution};
use rabble_shared::routes::rule::{Request, Rule};

struct Req;

impl Request for Req {
    fn method(&self) -> &str {
        "GET"
    }
    fn host(&self) -> &str {
        "web.lan"
    }
    fn path(&self) -> &str {
        "/a/b"
    }
    fn query(&self) -> Option<&str> {
        Some("x=1&y=%zz&z")
    }
    fn header(&self, _: &str) -> Vec<&str> {
        vec!["v"]
    }
    fn client_ip(&self) -> Option<std::net::IpAddr> {
        Some([192, 168, 1, 2].into())
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(rule) = Rule::parse(&text) {
        let _ = rule.matches(&Req);
        let _ = rule.hosts();
    }
    let tags = vec![format!("routing.{text}"), "routing.enable=true".to_owned()];
    let inst = Instance { service: "web", id: "n/web".into(), tags: &tags, address: "10.0.0.1", port: Some(80) };
    let _ = contribution(&inst, "routing", "rabble");
});
