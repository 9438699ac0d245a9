//! Whether a node satisfies a constraint. Pure: facts in, a verdict out. The node's
//! attributes under Nomad's names are `rabble_shared::attr` (the agent reads them too).

use rabble_shared::job::{Constraint, Operator};
use std::cmp::Ordering;

pub use rabble_shared::attr::{NodeRef, attribute, capacity_mhz, go_arch};

/// Interpolates `${...}` node references in a constraint operand; a string without
/// any is itself. `None` when a referenced attribute is not set on the node.
pub fn resolve(node: NodeRef<'_>, text: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        out.push_str(&attribute(node, rest[start + 2..end].trim())?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Whether `node` satisfies `c`. `distinct_hosts` and `distinct_property` depend on
/// other allocations and are the planner's; here they are always satisfied.
pub fn satisfied(node: NodeRef<'_>, c: &Constraint) -> bool {
    let lhs = resolve(node, &c.attribute);
    let rhs = resolve(node, &c.value);
    match c.operator {
        Operator::IsSet => lhs.is_some(),
        Operator::IsNotSet => lhs.is_none(),
        Operator::DistinctHosts | Operator::DistinctProperty => true,
        op => match (lhs, rhs) {
            (Some(l), Some(r)) => compare(op, &l, &r),
            _ => false,
        },
    }
}

fn compare(op: Operator, l: &str, r: &str) -> bool {
    match op {
        Operator::Eq => l == r,
        Operator::Ne => l != r,
        Operator::Lt => order(l, r) == Ordering::Less,
        Operator::Le => order(l, r) != Ordering::Greater,
        Operator::Gt => order(l, r) == Ordering::Greater,
        Operator::Ge => order(l, r) != Ordering::Less,
        Operator::Regexp => regex_lite::Regex::new(r).is_ok_and(|re| re.is_match(l)),
        Operator::Version | Operator::Semver => version_matches(l, r),
        Operator::SetContains => {
            let have: Vec<&str> = l.split(',').map(str::trim).collect();
            r.split(',').map(str::trim).all(|x| have.contains(&x))
        }
        Operator::SetContainsAny => {
            let have: Vec<&str> = l.split(',').map(str::trim).collect();
            r.split(',').map(str::trim).any(|x| have.contains(&x))
        }
        Operator::IsSet | Operator::IsNotSet | Operator::DistinctHosts | Operator::DistinctProperty => true,
    }
}

/// Nomad's ordering: numbers as numbers when both sides are, else lexical.
fn order(l: &str, r: &str) -> Ordering {
    match (l.parse::<f64>(), r.parse::<f64>()) {
        (Ok(a), Ok(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        _ => l.cmp(r),
    }
}

/// `1.2.3`, `v1.2`, `6.6.31-v8+` → numeric segments (pre-release and build cut off).
fn segments(v: &str) -> Option<Vec<u64>> {
    let core = v.trim().trim_start_matches('v');
    let core = core.split(['-', '+']).next()?;
    core.split('.').map(|s| s.parse().ok()).collect()
}

fn cmp_versions(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0)))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// A version constraint as go-version reads it: comma-separated `op version` terms
/// (`=`, `!=`, `>`, `<`, `>=`, `<=`, `~>`), all of which must hold.
pub fn version_matches(version: &str, constraint: &str) -> bool {
    let Some(have) = segments(version) else { return false };
    constraint.split(',').all(|term| {
        let term = term.trim();
        let (op, v) = ["~>", ">=", "<=", "!=", ">", "<", "="]
            .iter()
            .find_map(|op| term.strip_prefix(op).map(|v| (*op, v)))
            .unwrap_or(("=", term));
        let Some(want) = segments(v) else { return false };
        let o = cmp_versions(&have, &want);
        match op {
            "=" => o == Ordering::Equal,
            "!=" => o != Ordering::Equal,
            ">" => o == Ordering::Greater,
            "<" => o == Ordering::Less,
            ">=" => o != Ordering::Less,
            "<=" => o != Ordering::Greater,
            // Pessimistic: >= want, and below the next release of its second-to-last segment.
            _ => {
                let mut upper = want[..want.len().saturating_sub(1).max(1)].to_vec();
                if let Some(last) = upper.last_mut() {
                    *last += 1;
                }
                o != Ordering::Less && cmp_versions(&have, &upper) == Ordering::Less
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rabble_shared::NodeId;
    use rabble_shared::msg::{DriverFacts, NodeFacts, OsFacts};

    fn facts() -> NodeFacts {
        NodeFacts {
            name: "Pi4.lan".into(),
            hostname: "pi4".into(),
            arch: "aarch64".into(),
            os: OsFacts { name: "Debian".into(), version: "12".into(), kernel: "6.6.31-v8+".into() },
            cpus: 4,
            memory_bytes: 4 << 30,
            disks: vec![],
            addresses: vec![],
            advertise: "192.168.1.4".into(),
            agent_version: "0.1.0".into(),
            node_class: "pi4".into(),
            datacenter: "home".into(),
            meta: [("rack".to_owned(), "shelf".to_owned()), ("zones".to_owned(), "a,b,c".to_owned())].into(),
            drivers: [(
                "docker".to_owned(),
                DriverFacts { healthy: true, version: "28.2.2".into(), detail: String::new() },
            )]
            .into(),
            host_volumes: Default::default(),
            cpu_total_mhz: None,
            tls_lanes: Vec::new(),
            interfaces: Default::default(),
            alloc_dir: String::new(),
            storage: Vec::new(),
        }
    }

    fn c(attribute: &str, op: Operator, value: &str) -> Constraint {
        Constraint { attribute: attribute.into(), operator: op, value: value.into() }
    }

    #[test]
    fn attributes_use_nomads_names() {
        let (f, id) = (facts(), NodeId::new("pi4-lan").unwrap());
        let n = NodeRef { id: &id, facts: &f };
        assert_eq!(attribute(n, "attr.cpu.arch").as_deref(), Some("arm64"));
        assert_eq!(attribute(n, "attr.kernel.name").as_deref(), Some("linux"));
        assert_eq!(attribute(n, "node.unique.name").as_deref(), Some("Pi4.lan"));
        assert_eq!(attribute(n, "node.unique.id").as_deref(), Some("pi4-lan"));
        assert_eq!(attribute(n, "attr.driver.docker").as_deref(), Some("1"));
        assert_eq!(attribute(n, "attr.driver.podman"), None);
        assert_eq!(attribute(n, "attr.cpu.totalcompute").as_deref(), Some("4000"));
        assert_eq!(resolve(n, "${node.class}-${meta.rack}").as_deref(), Some("pi4-shelf"));
        assert_eq!(resolve(n, "${meta.nope}"), None);
    }

    #[test]
    fn every_operator() {
        let (f, id) = (facts(), NodeId::new("pi4-lan").unwrap());
        let n = NodeRef { id: &id, facts: &f };
        let yes = [
            c("${attr.cpu.arch}", Operator::Eq, "arm64"),
            c("${attr.cpu.arch}", Operator::Ne, "amd64"),
            c("${attr.cpu.numcores}", Operator::Ge, "4"),
            c("${attr.cpu.numcores}", Operator::Lt, "10"),
            c("${attr.os.name}", Operator::Regexp, "^deb"),
            c("${attr.kernel.version}", Operator::Version, ">= 6.1, < 7"),
            c("${attr.driver.docker.version}", Operator::Semver, "~> 28.2"),
            c("${meta.zones}", Operator::SetContains, "a,c"),
            c("${meta.zones}", Operator::SetContainsAny, "x,b"),
            c("${meta.rack}", Operator::IsSet, ""),
            c("${meta.gpu}", Operator::IsNotSet, ""),
        ];
        for x in &yes {
            assert!(satisfied(n, x), "{x:?}");
        }
        let no = [
            c("${attr.cpu.arch}", Operator::Eq, "amd64"),
            c("${attr.cpu.numcores}", Operator::Gt, "4"),
            c("${attr.kernel.version}", Operator::Version, "< 6"),
            c("${attr.driver.docker.version}", Operator::Version, "~> 27.0"),
            c("${meta.zones}", Operator::SetContains, "a,d"),
            c("${meta.rack}", Operator::IsNotSet, ""),
            c("${meta.gpu}", Operator::Eq, "yes"),
            c("${meta.gpu}", Operator::Ne, "yes"),
        ];
        for x in &no {
            assert!(!satisfied(n, x), "{x:?}");
        }
    }

    #[test]
    fn versions() {
        assert!(version_matches("1.2.3", "~> 1.2"));
        assert!(!version_matches("2.0.0", "~> 1.2"));
        assert!(version_matches("1.2.9", "~> 1.2.3"));
        assert!(!version_matches("1.3.0", "~> 1.2.3"));
        assert!(version_matches("v10.1", "> 9"));
        assert!(!version_matches("nope", ">= 1"));
    }
}
