//! Reads the zone's messages the way the agent can afford: through `serde_json::Value`
//! (whose decoder the agent already carries) and plain field reads, instead of serde's
//! derived visitors for each type (12 KB of the agent's size budget, measured on
//! aarch64). The same checks as `msg::decode`: size, version, bounds. A test holds the
//! two decoders to the same results.

use super::{Change, MAX_TARGETS, NodeRecords, ServiceRecords, Target, ZoneMeta};
use crate::msg::{MAX_PAYLOAD, WIRE_VERSION};
use crate::topic::Topic;
use serde_json::Value;
use std::net::IpAddr;

fn field<'a>(o: &'a Value, name: &str) -> Option<&'a Value> {
    o.get(name).filter(|v| !v.is_null())
}

fn u64_of(o: &Value, name: &str) -> Result<u64, String> {
    match field(o, name) {
        None => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| format!("{name}: not a number")),
    }
}

fn u32_of(o: &Value, name: &str) -> Result<u32, String> {
    u32::try_from(u64_of(o, name)?).map_err(|_| format!("{name}: too large"))
}

fn strings(o: &Value, name: &str) -> Result<Vec<String>, String> {
    let Some(v) = field(o, name) else { return Ok(Vec::new()) };
    let a = v.as_array().ok_or_else(|| format!("{name}: not a list"))?;
    a.iter().map(|s| s.as_str().map(str::to_owned).ok_or_else(|| format!("{name}: not a string"))).collect()
}

fn ip(v: &Value, name: &str) -> Result<IpAddr, String> {
    v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| format!("{name}: not an IP address"))
}

fn meta(o: &Value) -> Result<ZoneMeta, String> {
    let m = ZoneMeta {
        index: u64_of(o, "index")?,
        domain: strings(o, "domain")?,
        ttl: u32_of(o, "ttl")?,
        negative_ttl: u32_of(o, "negative_ttl")?,
        a_record_limit: usize::try_from(u64_of(o, "a_record_limit")?).map_err(|_| "a_record_limit: too large")?,
        datacenters: strings(o, "datacenters")?,
        services: strings(o, "services")?,
        nodes: strings(o, "nodes")?,
    };
    if m.domain.is_empty() || m.domain.iter().any(|l| l.is_empty() || l.len() > 63) {
        return Err("domain: an empty or over-long label".into());
    }
    Ok(m)
}

fn service(o: &Value) -> Result<ServiceRecords, String> {
    let list = field(o, "targets").and_then(Value::as_array).ok_or("targets: not a list")?;
    if list.len() > MAX_TARGETS {
        return Err(format!("targets: over {MAX_TARGETS}"));
    }
    let mut targets = Vec::with_capacity(list.len());
    for t in list {
        let port = match field(t, "port") {
            None => None,
            Some(p) => Some(p.as_u64().and_then(|p| u16::try_from(p).ok()).ok_or("port: not a port")?),
        };
        let node = match field(t, "node") {
            None => None,
            Some(n) => Some(n.as_str().ok_or("node: not a string")?.to_owned()),
        };
        targets.push(Target {
            ip: ip(field(t, "ip").ok_or("ip: missing")?, "ip")?,
            port,
            node,
            tags: strings(t, "tags")?,
        });
    }
    Ok(ServiceRecords { index: u64_of(o, "index")?, targets })
}

fn node(o: &Value) -> Result<NodeRecords, String> {
    let ips = match field(o, "ips") {
        None => Vec::new(),
        Some(v) => v.as_array().ok_or("ips: not a list")?.iter().map(|a| ip(a, "ips")).collect::<Result<_, _>>()?,
    };
    Ok(NodeRecords { index: u64_of(o, "index")?, ips, txt: strings(o, "txt")? })
}

/// The change a message on a `rabble/hub/dns/...` topic makes (`None`: not a zone topic,
/// or an empty settings message, which changes nothing); an error names what is wrong.
pub fn change(topic: &Topic, payload: &[u8]) -> Result<Option<Change>, String> {
    let empty = payload.is_empty();
    match topic {
        Topic::DnsService(name) if empty => return Ok(Some(Change::Service(name.clone(), None))),
        Topic::DnsNode(name) if empty => return Ok(Some(Change::Node(name.clone(), None))),
        Topic::DnsZone | Topic::DnsService(_) | Topic::DnsNode(_) if !empty => {}
        _ => return Ok(None),
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(format!("{} bytes, over the {MAX_PAYLOAD}-byte limit", payload.len()));
    }
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    match v.get("v").and_then(Value::as_u64) {
        Some(found) if found == u64::from(WIRE_VERSION) => {}
        Some(found) => {
            return Err(format!("payload version {found} is not supported (this build reads v{WIRE_VERSION})"));
        }
        None => return Err("no numeric \"v\" version field".into()),
    }
    Ok(Some(match topic {
        Topic::DnsZone => Change::Meta(meta(&v)?),
        Topic::DnsService(name) => Change::Service(name.clone(), Some(service(&v)?)),
        Topic::DnsNode(name) => Change::Node(name.clone(), Some(node(&v)?)),
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg;

    #[test]
    fn reads_what_serde_reads_and_refuses_what_it_refuses() {
        let meta = ZoneMeta {
            index: 7,
            domain: vec!["lab".into(), "home".into()],
            ttl: 3,
            negative_ttl: 5,
            a_record_limit: 2,
            datacenters: vec!["home".into()],
            services: vec!["web".into()],
            nodes: vec!["pi1".into()],
        };
        let svc = ServiceRecords {
            index: 8,
            targets: vec![
                Target {
                    ip: "10.0.0.1".parse().unwrap(),
                    port: Some(80),
                    node: Some("pi1".into()),
                    tags: vec!["a".into()],
                },
                Target { ip: "fd00::1".parse().unwrap(), port: None, node: None, tags: vec![] },
            ],
        };
        let node = NodeRecords { index: 9, ips: vec!["10.0.0.1".parse().unwrap()], txt: vec!["rack=top".into()] };
        let ok = |t: Topic, b: Vec<u8>| change(&t, &b).unwrap().unwrap();
        assert_eq!(ok(Topic::DnsZone, msg::encode(&meta)), Change::Meta(msg::decode(&msg::encode(&meta)).unwrap()));
        assert_eq!(
            ok(Topic::DnsService("web".into()), msg::encode(&svc)),
            Change::Service("web".into(), Some(svc.clone()))
        );
        assert_eq!(ok(Topic::DnsNode("pi1".into()), msg::encode(&node)), Change::Node("pi1".into(), Some(node)));
        assert_eq!(ok(Topic::DnsService("web".into()), vec![]), Change::Service("web".into(), None));
        assert_eq!(change(&Topic::DnsZone, b"").unwrap(), None);
        assert_eq!(change(&Topic::HubStatus, b"online").unwrap(), None);
        // Refused, each with its reason, by both decoders.
        let svc_json = String::from_utf8(msg::encode(&svc)).unwrap();
        for (bad, why) in [
            (svc_json.replace("\"v\":1", "\"v\":2"), "version"),
            (svc_json.replace("\"v\":1,", ""), "version"),
            (svc_json.replace("10.0.0.1", "10.0.0.300"), "ip"),
            (svc_json.replace("\"port\":80", "\"port\":70000"), "port"),
            (svc_json.replace("\"tags\":[\"a\"]", "\"tags\":[1]"), "tags"),
            ("{\"v\":1,\"index\":1}".into(), "targets"),
            ("[1,2".into(), "JSON"),
        ] {
            let e = change(&Topic::DnsService("web".into()), bad.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(msg::decode::<ServiceRecords>(bad.as_bytes()).is_err(), "serde took {bad}");
        }
        let too_many = ServiceRecords { index: 1, targets: vec![svc.targets[1].clone(); MAX_TARGETS + 1] };
        assert!(change(&Topic::DnsService("web".into()), &msg::encode(&too_many)).unwrap_err().contains("over"));
        let no_domain = String::from_utf8(msg::encode(&meta)).unwrap().replace("[\"lab\",\"home\"]", "[]");
        assert!(change(&Topic::DnsZone, no_domain.as_bytes()).unwrap_err().contains("domain"));
    }
}
