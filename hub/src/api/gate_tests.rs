//! Every route the router has (read from its source, so a new `.route(...)` cannot be
//! missed) has a gate in `rabble_core::acl::route`, and the default anonymous rules
//! allow no write and no secret on any of them.

use rabble_core::acl::route::{Gate, gate};
use rabble_core::acl::{Authorizer, Cap, Resource, Rules, policy};

/// (method, path) of every `.route("path", get(..).post(..))` in `src`.
fn routes(src: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in src.split(".route(\"").skip(1) {
        let Some((path, rest)) = chunk.split_once('"') else { continue };
        let call = &rest[..rest.find("\n        .").unwrap_or(rest.len())];
        for m in ["get", "post", "put", "delete"] {
            let starts = [format!(" {m}("), format!(".{m}(")];
            if starts.iter().any(|s| call.contains(s.as_str())) {
                out.push((m.to_uppercase(), path.to_owned()));
            }
        }
    }
    out
}

/// A concrete path for a route's pattern.
fn sample(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|seg| match seg {
            s if s.starts_with("{*") => "app/config",
            s if s.starts_with('{') => "x1",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_route_has_a_gate_and_anonymous_gets_no_write_and_no_secret() {
    let all: Vec<(String, String)> =
        [include_str!("mod.rs"), include_str!("consul/mod.rs")].iter().flat_map(|s| routes(s)).collect();
    assert!(all.len() > 40, "the router's routes were not found in its source: {all:?}");
    let anon = Authorizer::anonymous(&Rules::parse("default", policy::ANONYMOUS_DEFAULT).unwrap());
    for (method, pattern) in &all {
        let path = sample(pattern);
        let g = gate(method, &path, None).unwrap_or_else(|| panic!("{method} {pattern} has no ACL gate"));
        let need = match &g {
            Gate::Open => continue,
            Gate::Need(n) => n.clone(),
            Gate::InBody(r, c) => rabble_core::acl::Need::new(*r, *c, ""),
            Gate::List(r) => rabble_core::acl::Need::new(*r, Cap::Read, ""),
            Gate::Alloc(c, _) => rabble_core::acl::Need::new(Resource::Alloc, *c, "x1"),
        };
        let write = method != "GET";
        let secret = matches!(need.resource, Resource::Kv | Resource::Var | Resource::Acl);
        if write || secret {
            assert!(!anon.allows(&need), "anonymous may {method} {pattern} ({need})");
            match g {
                Gate::InBody(r, c) => assert!(!anon.allows_some(r, c), "anonymous may {method} {pattern} on some name"),
                Gate::List(r) => assert!(!anon.allows_some(r, Cap::Read), "anonymous may list {pattern}"),
                _ => {}
            }
        }
        // A body's names are checked one by one by the handler (a transaction's reads need read).
        if write && !matches!(g, Gate::InBody(..)) {
            assert_ne!(need.cap, Cap::Read, "{method} {pattern} writes with a read capability");
        }
    }
}
