//! One instance's tags → what it adds to a lane, the way Traefik's consulCatalog
//! provider reads them: `<prefix>.enable=true`, `<prefix>.http.routers.<r>.*`,
//! `<prefix>.http.services.<s>.loadbalancer.*`, `<prefix>.http.middlewares.<m>.*`.
//! Keys are case-insensitive, names keep their case. Pure; every tag that cannot be
//! used becomes a [`Problem`] naming it, and never stops the rest.

use rabble_shared::routes::rule::{Rule, default_priority};
use rabble_shared::routes::*;
use std::collections::BTreeMap;

/// An instance as the lane sees it.
#[derive(Debug, Clone)]
pub struct Instance<'a> {
    /// The service's name (for default names and the default rule).
    pub service: &'a str,
    /// `<node>/<service id>`, for problems.
    pub id: String,
    pub tags: &'a [String],
    pub address: &'a str,
    pub port: Option<u16>,
}

/// What one instance adds to a lane.
#[derive(Debug, Default, PartialEq)]
pub struct Contribution {
    pub routers: BTreeMap<String, Router>,
    pub services: BTreeMap<String, LbService>,
    pub middlewares: BTreeMap<String, Middleware>,
    pub problems: Vec<Problem>,
}

#[derive(Default)]
struct RouterTags {
    rule: Option<String>,
    service: Option<String>,
    entry_points: Vec<String>,
    middlewares: Vec<String>,
    priority: Option<i64>,
    tls: bool,
    resolver: Option<String>,
    domains: std::collections::BTreeMap<usize, TlsDomain>,
}

#[derive(Default)]
struct ServiceTags {
    port: Option<u16>,
    scheme: Option<String>,
    pass_host_header: Option<bool>,
}

/// Traefik's `normalize`: every run of characters other than letters and digits
/// becomes one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

fn list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.split('@').next().unwrap_or(s).to_owned()).collect()
}

fn boolean(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{v:?} is not true or false")),
    }
}

fn number<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.trim().parse().map_err(|_| format!("{v:?} is not a number"))
}

/// Reads `inst`'s tags for the lane with `prefix`; `domain` gives the default rule
/// `Host(\`<service>.service.<domain>\`)`.
pub fn contribution(inst: &Instance<'_>, prefix: &str, domain: &str) -> Contribution {
    let mut c = Contribution::default();
    let problem = |tag: &str, reason: String| Problem {
        service: inst.service.to_owned(),
        instance: inst.id.clone(),
        tag: tag.to_owned(),
        reason,
    };
    let mut enabled = false;
    let mut routers: BTreeMap<String, RouterTags> = BTreeMap::new();
    let mut services: BTreeMap<String, ServiceTags> = BTreeMap::new();
    let mut middlewares: BTreeMap<String, (String, Middleware)> = BTreeMap::new();
    let mut problems = Vec::new();
    let head = format!("{prefix}.");
    for tag in inst.tags {
        let Some(rest) = tag.strip_prefix(&head) else { continue };
        let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
        let parts: Vec<&str> = key.split('.').collect();
        let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
        let l: Vec<&str> = lower.iter().map(String::as_str).collect();
        let result: Result<(), String> = match l.as_slice() {
            ["enable"] => boolean(value).map(|b| enabled = b),
            ["http", "routers", _, field @ ..] => {
                let r = routers.entry(parts[2].to_owned()).or_default();
                match field {
                    ["rule"] => {
                        r.rule = Some(value.to_owned());
                        Ok(())
                    }
                    ["service"] => {
                        r.service = Some(value.split('@').next().unwrap_or(value).to_owned());
                        Ok(())
                    }
                    ["entrypoints"] => {
                        r.entry_points = list(value);
                        Ok(())
                    }
                    ["middlewares"] => {
                        r.middlewares = list(value);
                        Ok(())
                    }
                    ["priority"] => number(value).map(|p| r.priority = Some(p)),
                    ["tls"] => boolean(value).map(|b| r.tls = b),
                    ["tls", "certresolver"] => {
                        r.tls = true;
                        r.resolver = Some(value.to_owned());
                        Ok(())
                    }
                    ["tls", d, which @ ("main" | "sans")] => match domain_index(d) {
                        Some(i) if i < 16 => {
                            r.tls = true;
                            let dom = r.domains.entry(i).or_default();
                            if *which == "main" {
                                dom.main = value.trim().to_ascii_lowercase();
                            } else {
                                dom.sans = list(&value.to_ascii_lowercase());
                            }
                            Ok(())
                        }
                        _ => Err(format!("{d:?} is not domains[0] to domains[15]")),
                    },
                    _ => Err(format!("router setting {:?} is not supported", field.join("."))),
                }
            }
            ["http", "services", _, "loadbalancer", field @ ..] => {
                let s = services.entry(parts[2].to_owned()).or_default();
                match field {
                    ["server", "port"] => number(value).map(|p| s.port = Some(p)),
                    ["server", "scheme"] => match value {
                        "http" | "https" => {
                            s.scheme = Some(value.to_owned());
                            Ok(())
                        }
                        _ => Err(format!("scheme {value:?}: http or https")),
                    },
                    ["passhostheader"] => boolean(value).map(|b| s.pass_host_header = Some(b)),
                    _ => Err(format!("load balancer setting {:?} is not supported", field.join("."))),
                }
            }
            ["http", "middlewares", _, kind, field @ ..] => {
                let name = parts[2].to_owned();
                let original_field = &parts[4..];
                middleware(&mut middlewares, name, tag, kind, field, original_field, value)
            }
            ["tcp" | "udp", ..] => Err("TCP and UDP routing are not supported (HTTP only)".to_owned()),
            _ => Err(format!("{key:?} is not a setting Rabble's lanes know")),
        };
        if let Err(reason) = result {
            problems.push(problem(tag, reason));
        }
    }
    if !enabled {
        return Contribution::default(); // not in this lane: its tags are not the lane's business
    }
    c.problems = problems;
    for (name, (tag, m)) in middlewares {
        match missing(&m) {
            Some(what) => c.problems.push(problem(&tag, format!("middleware {name:?} needs {what}"))),
            None => {
                c.middlewares.insert(name, m);
            }
        }
    }
    // Services: as tagged, else one named after the service.
    if services.is_empty() {
        services.insert(normalize(inst.service), ServiceTags::default());
    }
    for (name, s) in &services {
        let Some(port) = s.port.or(inst.port) else {
            c.problems.push(problem(
                &format!("{prefix}.http.services.{name}.loadbalancer.server.port"),
                "the instance has no port: register one or set loadbalancer.server.port".into(),
            ));
            continue;
        };
        let scheme = s.scheme.as_deref().unwrap_or("http");
        let host = if inst.address.contains(':') { format!("[{}]", inst.address) } else { inst.address.to_owned() };
        c.services.insert(
            name.clone(),
            LbService {
                servers: vec![Server { url: format!("{scheme}://{host}:{port}") }],
                pass_host_header: s.pass_host_header.unwrap_or(true),
            },
        );
    }
    // Routers: as tagged, else one named after the service with the default rule.
    if routers.is_empty() {
        routers.insert(normalize(inst.service), RouterTags::default());
    }
    for (name, r) in routers {
        let tag = format!("{prefix}.http.routers.{name}");
        let rule = r.rule.unwrap_or_else(|| format!("Host(`{}.service.{domain}`)", inst.service.to_ascii_lowercase()));
        if let Err(e) = Rule::parse(&rule) {
            c.problems.push(problem(&format!("{tag}.rule={rule}"), e.to_string()));
            continue;
        }
        let service = match r.service {
            Some(s) => s,
            None if services.len() == 1 => services.keys().next().cloned().unwrap_or_default(),
            None => {
                c.problems.push(problem(&tag, "several services are defined: name one with .service".into()));
                continue;
            }
        };
        let priority = r.priority.filter(|p| *p != 0).unwrap_or_else(|| default_priority(&rule));
        if let Some((i, _)) = r.domains.iter().find(|(_, d)| d.main.is_empty()) {
            c.problems.push(problem(&format!("{tag}.tls.domains[{i}]"), "sans without a main domain".into()));
            continue;
        }
        let domains = r.domains.into_values().collect();
        let tls = r.tls.then_some(RouterTls { cert_resolver: r.resolver, domains });
        let router = Router { rule, service, entry_points: r.entry_points, middlewares: r.middlewares, priority, tls };
        c.routers.insert(name, router);
    }
    c
}

/// `domains[3]` → 3.
fn domain_index(s: &str) -> Option<usize> {
    s.strip_prefix("domains[")?.strip_suffix(']')?.parse().ok()
}

/// The setting a middleware cannot work without, if it is missing.
fn missing(m: &Middleware) -> Option<&'static str> {
    match m {
        Middleware::RedirectScheme(r) if r.scheme.is_empty() => Some("redirectscheme.scheme"),
        Middleware::StripPrefix(s) if s.prefixes.is_empty() => Some("stripprefix.prefixes"),
        Middleware::AddPrefix(a) if a.prefix.is_empty() => Some("addprefix.prefix"),
        Middleware::BasicAuth(b) if b.users.is_empty() => Some("basicauth.users"),
        Middleware::IpAllowList(i) if i.source_range.is_empty() => Some("ipallowlist.sourcerange"),
        Middleware::RateLimit(r) if r.average == 0 => Some("ratelimit.average"),
        Middleware::ForwardAuth(f) if f.address.is_empty() => Some("forwardauth.address"),
        Middleware::Chain(c) if c.middlewares.is_empty() => Some("chain.middlewares"),
        _ => None,
    }
}

/// One `http.middlewares.<name>.<kind>.<field>=value` tag.
fn middleware(
    all: &mut BTreeMap<String, (String, Middleware)>,
    name: String,
    tag: &str,
    kind: &str,
    field: &[&str],
    original_field: &[&str],
    value: &str,
) -> Result<(), String> {
    let fresh = match kind {
        "redirectscheme" => Middleware::RedirectScheme(Default::default()),
        "stripprefix" => Middleware::StripPrefix(Default::default()),
        "addprefix" => Middleware::AddPrefix(Default::default()),
        "headers" => Middleware::Headers(Default::default()),
        "basicauth" => Middleware::BasicAuth(Default::default()),
        "ipallowlist" | "ipwhitelist" => Middleware::IpAllowList(Default::default()),
        "ratelimit" => Middleware::RateLimit(Default::default()),
        "forwardauth" => Middleware::ForwardAuth(Default::default()),
        "compress" => Middleware::Compress(Default::default()),
        "chain" => Middleware::Chain(Default::default()),
        other => return Err(format!("middleware type {other:?} is not supported")),
    };
    let (first_tag, m) = all.entry(name.clone()).or_insert_with(|| (tag.to_owned(), fresh.clone()));
    if std::mem::discriminant(m) != std::mem::discriminant(&fresh) {
        return Err(format!("middleware {name:?} already has another type (from {first_tag:?})"));
    }
    let unsupported = || Err(format!("{kind} setting {:?} is not supported", field.join(".")));
    match (m, field) {
        (Middleware::RedirectScheme(r), ["scheme"]) => r.scheme = value.to_owned(),
        (Middleware::RedirectScheme(r), ["permanent"]) => r.permanent = boolean(value)?,
        (Middleware::RedirectScheme(r), ["port"]) => r.port = Some(value.to_owned()),
        (Middleware::StripPrefix(s), ["prefixes"]) => s.prefixes = list(value),
        (Middleware::AddPrefix(a), ["prefix"]) => a.prefix = value.to_owned(),
        (Middleware::Headers(h), ["customrequestheaders", _]) => {
            h.custom_request_headers.insert(original_field[1].to_owned(), value.to_owned());
        }
        (Middleware::Headers(h), ["customresponseheaders", _]) => {
            h.custom_response_headers.insert(original_field[1].to_owned(), value.to_owned());
        }
        (Middleware::BasicAuth(b), ["users"]) => b.users = list(value),
        (Middleware::IpAllowList(i), ["sourcerange"]) => {
            let ranges = list(value);
            if let Some(bad) = ranges.iter().find(|r| rabble_shared::routes::rule::Net::parse(r).is_none()) {
                return Err(format!("{bad:?} is not an IP or CIDR"));
            }
            i.source_range = ranges;
        }
        (Middleware::RateLimit(r), ["average"]) => r.average = number(value)?,
        (Middleware::RateLimit(r), ["burst"]) => r.burst = number(value)?,
        (Middleware::ForwardAuth(f), ["address"]) => f.address = value.to_owned(),
        (Middleware::ForwardAuth(f), ["trustforwardheader"]) => f.trust_forward_header = boolean(value)?,
        (Middleware::ForwardAuth(f), ["authresponseheaders"]) => f.auth_response_headers = list(value),
        (Middleware::Compress(_), [] | [_]) => {}
        (Middleware::Chain(c), ["middlewares"]) => c.middlewares = list(value),
        _ => return unsupported(),
    }
    Ok(())
}

#[cfg(test)]
#[path = "tags_tests.rs"]
mod tests;
