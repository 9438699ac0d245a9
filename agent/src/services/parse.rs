//! Parsing one service file into validated [`Definitions`].

use super::spec::{CheckSpec, FileSpec, ServiceSpec};
use super::{CheckDef, Definitions, LoadError, MAX_FILE_BYTES, MIN_INTERVAL, Probe, ServiceDef};
use rabble_shared::msg::ServiceRegistration;
use rabble_shared::{Status, TopicId};
use std::path::Path;

/// Parses and validates one file; the error names the file and, where the format
/// gives one, the line; semantic errors name the field path.
pub fn parse_file(path: &Path) -> Result<Definitions, LoadError> {
    let err = |message: String| LoadError { path: path.to_owned(), message };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(format!("file is {} bytes, over the {MAX_FILE_BYTES}-byte limit", meta.len())));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    parse_text(&text, ext, &path.display().to_string()).map_err(err)
}

/// Parses and validates a file's text (`ext`: its format; `source`: its name).
pub fn parse_text(text: &str, ext: &str, source: &str) -> Result<Definitions, String> {
    to_definitions(parse_str(text, ext)?, source)
}

/// Parses file text by format (`toml`, `hcl` or `json`).
///
/// Every format is read into a `serde_json::Value` first and the model is taken from
/// that one form (with the ignored fields noted and the error's field path): one
/// instantiation of the model's deserializer, not one per format (the agent has a size
/// budget: this saved ~30 KB on aarch64). A JSON or TOML file the model refuses is read
/// once more, typed, for the line its error is on.
pub(crate) fn parse_str(text: &str, ext: &str) -> Result<FileSpec, String> {
    let value: serde_json::Value = match ext {
        "json" => serde_json::from_str(text).map_err(|e| e.to_string())?,
        "toml" => toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?,
        "hcl" => {
            rabble_shared::support::hcl::check_nesting(text).map_err(|e| format!("line {e}"))?;
            hcl::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?
        }
        other => return Err(format!("unknown file type {other:?} (use .toml, .hcl or .json)")),
    };
    let mut ignored = Vec::new();
    let mut note = |p: serde_ignored::Path<'_>| ignored.push(p.to_string());
    let de = serde_ignored::Deserializer::new(value, &mut note);
    let spec: FileSpec = serde_path_to_error::deserialize(de).map_err(|e| {
        let at = match ext {
            "json" => serde_json::from_str::<FileSpec>(text).err().map(|t| format!("line {}: ", t.line())),
            "toml" => toml::from_str::<FileSpec>(text).err().and_then(|t| t.span()).map(|s| line_of(text, s.start)),
            _ => None,
        };
        describe(e.path(), &format!("{}{}", at.unwrap_or_default(), e.inner()))
    })?;
    for field in ignored {
        tracing::warn!(field, "service file field is not supported by Rabble and was ignored");
    }
    Ok(spec)
}

/// `line N: ` for a byte offset, as the JSON and HCL parsers report it.
fn line_of(text: &str, offset: usize) -> String {
    let line = text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1;
    format!("line {line}: ")
}

fn describe(path: &serde_path_to_error::Path, inner: &dyn std::fmt::Display) -> String {
    let p = path.to_string();
    let inner = inner.to_string();
    let inner = inner.trim_end();
    if p == "." || p.is_empty() { inner.to_owned() } else { format!("{p}: {inner}") }
}

fn to_definitions(spec: FileSpec, source: &str) -> Result<Definitions, String> {
    let mut defs = Definitions::default();
    let services: Vec<ServiceSpec> = spec.service.into_vec().into_iter().chain(spec.services.into_vec()).collect();
    for (i, s) in services.into_iter().enumerate() {
        defs.services.push(to_service(s, source).map_err(|e| format!("service #{}: {e}", i + 1))?);
    }
    let node_checks: Vec<CheckSpec> = spec.check.into_vec().into_iter().chain(spec.checks.into_vec()).collect();
    for (i, c) in node_checks.into_iter().enumerate() {
        let Some(id) = c.id.clone().or_else(|| c.name.clone()) else {
            return Err(format!("check #{}: a node check needs an id or a name", i + 1));
        };
        let service_id = c.service_id.clone();
        let def = to_check(c, id, service_id).map_err(|e| format!("check #{}: {e}", i + 1))?;
        if let Some(sid) = &def.service_id {
            match defs.services.iter_mut().find(|s| &s.reg.id == sid) {
                Some(svc) => svc.checks.push(def),
                None => return Err(format!("check {:?}: service_id {sid:?} is not defined in this file", def.id)),
            }
        } else {
            defs.node_checks.push(def);
        }
    }
    Ok(defs)
}

fn to_service(s: ServiceSpec, source: &str) -> Result<ServiceDef, String> {
    if s.name.trim().is_empty() {
        return Err("name is empty".into());
    }
    let id = s.id.filter(|i| !i.is_empty()).unwrap_or_else(|| s.name.clone());
    let key = TopicId::from_name(&id).ok_or_else(|| format!("id {id:?} has no character usable in a topic"))?;
    if s.meta.len() > 64 {
        return Err(format!("{:?}: meta has {} pairs, more than 64", s.name, s.meta.len()));
    }
    let specs: Vec<CheckSpec> = s.check.into_vec().into_iter().chain(s.checks.into_vec()).collect();
    let many = specs.len() > 1;
    let mut checks = Vec::with_capacity(specs.len());
    for (n, c) in specs.into_iter().enumerate() {
        // Consul's CheckID: service:<id>, or service:<id>:<n> when there are several.
        let default_id = if many { format!("service:{id}:{}", n + 1) } else { format!("service:{id}") };
        let check_id = c.id.clone().unwrap_or(default_id);
        checks
            .push(to_check(c, check_id, Some(id.clone())).map_err(|e| format!("{:?} check #{}: {e}", s.name, n + 1))?);
    }
    let reg = ServiceRegistration {
        id,
        name: s.name,
        tags: s.tags,
        address: s.address.filter(|a| !a.is_empty()),
        port: s.port,
        meta: s.meta,
        source: source.to_owned(),
    };
    Ok(ServiceDef { key, reg, checks })
}

fn to_check(c: CheckSpec, id: String, service_id: Option<String>) -> Result<CheckDef, String> {
    let key = TopicId::from_name(&id).ok_or_else(|| format!("check id {id:?} has no character usable in a topic"))?;
    let mut probes = Vec::new();
    if let Some(url) = c.http {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("http: {url:?} is not an http:// or https:// URL"));
        }
        let mut headers = Vec::new();
        for (k, vs) in c.header {
            for v in vs {
                headers.push((k.clone(), v));
            }
        }
        headers.sort();
        probes.push(Probe::Http {
            url,
            method: c.method.unwrap_or_else(|| "GET".into()).to_ascii_uppercase(),
            headers,
            body: c.body.unwrap_or_default(),
            tls_skip_verify: c.tls_skip_verify,
        });
    }
    if let Some(addr) = c.tcp {
        if !addr.contains(':') {
            return Err(format!("tcp: {addr:?} needs host:port"));
        }
        probes.push(Probe::Tcp { addr });
    }
    if let Some(args) = c.args {
        if args.is_empty() || args[0].is_empty() {
            return Err("args: needs at least the program to run".into());
        }
        probes.push(Probe::Script { args });
    }
    if let Some(ttl) = c.ttl {
        probes.push(Probe::Ttl { ttl: ttl.0 });
    }
    let probe = match probes.len() {
        1 => probes.remove(0),
        0 => return Err("needs one of http, tcp, args or ttl".into()),
        _ => return Err("has more than one of http, tcp, args and ttl".into()),
    };
    let interval = match (&probe, super::dur(c.interval)) {
        (Probe::Ttl { .. }, _) => std::time::Duration::ZERO,
        (_, None) => return Err("interval is required for http, tcp and args checks".into()),
        (_, Some(i)) => i.max(MIN_INTERVAL),
    };
    let timeout = super::dur(c.timeout).unwrap_or_else(|| super::default_timeout(&probe));
    let initial = match c.status.as_deref() {
        None | Some("") => Status::Critical,
        Some(s) => match Status::parse(s) {
            Some(Status::Maintenance) | None => {
                return Err(format!("status: {s:?} is not passing, warning or critical"));
            }
            Some(st) => st,
        },
    };
    Ok(CheckDef {
        key,
        name: c.name.unwrap_or_else(|| id.clone()),
        id,
        service_id,
        probe,
        interval,
        timeout,
        initial,
        deregister_critical_after: super::dur(c.deregister_critical_service_after),
        success_before_passing: c.success_before_passing,
        failures_before_critical: c.failures_before_critical,
    })
}

#[cfg(test)]
pub(crate) fn to_definitions_for_test(spec: FileSpec) -> Definitions {
    to_definitions(spec, "test").unwrap()
}
