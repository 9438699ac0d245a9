//! Policies: named sets of rules, written in HCL as Consul's and Nomad's are.
//!
//! ```hcl
//! job "web-" {                    # a name prefix; "" (or "*") is every job
//!   policy       = "read"         # deny | read | write (every capability)
//!   capabilities = ["submit"]     # and/or capabilities one by one
//! }
//! kv "app/" { policy = "write" }
//! acl      = "read"               # acl and operator have no names
//! ```
//!
//! A request is decided by the rules of its resource whose prefix its name starts with:
//! the longest such prefix wins (`job "web-"` over `job ""`); among rules of that length
//! (several policies on one token) a `deny` wins, else the capabilities add up.

use super::{Cap, Need, Resource};
use crate::jobspec::body::{Ctx, Reader};
use std::collections::BTreeSet;

/// The rules an anonymous request gets unless the hub is configured otherwise: what DNS
/// already tells anyone — the service catalog and its health (and the tables derived from
/// it: routes, Prometheus targets, metrics).
pub const ANONYMOUS_DEFAULT: &str = "service \"\" {\n  policy = \"read\"\n}\n";

/// A policy's longest name, rules text and description.
pub const MAX_NAME: usize = 128;
pub const MAX_RULES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// One grant (or denial) on a resource for names starting with `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub resource: Resource,
    pub prefix: String,
    pub deny: bool,
    pub caps: BTreeSet<Cap>,
}

/// A list of rules (one policy's, or a token's policies' together).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules(pub Vec<Rule>);

/// A named policy: its rules as written (shown back as written) and as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub description: String,
    pub text: String,
    pub rules: std::sync::Arc<Rules>,
}

impl Policy {
    /// Checks the name and reads the rules (`file` names them in errors).
    pub fn new(name: &str, description: &str, text: &str) -> Result<Policy, PolicyError> {
        check_name(name)?;
        if description.len() > MAX_NAME * 2 {
            return Err(PolicyError(format!("description: at most {} bytes", MAX_NAME * 2)));
        }
        let rules = Rules::parse(&format!("policy {name:?}"), text)?;
        Ok(Policy { name: name.into(), description: description.into(), text: text.into(), rules: rules.into() })
    }
}

/// A policy travels (in the replicated log) as it was written, and is read again on arrival.
#[derive(serde::Serialize, serde::Deserialize)]
struct PolicyText<'a> {
    name: std::borrow::Cow<'a, str>,
    description: std::borrow::Cow<'a, str>,
    text: std::borrow::Cow<'a, str>,
}

impl serde::Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PolicyText { name: (&*self.name).into(), description: (&*self.description).into(), text: (&*self.text).into() }
            .serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Policy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = PolicyText::deserialize(d)?;
        Policy::new(&p.name, &p.description, &p.text).map_err(serde::de::Error::custom)
    }
}

/// Policy names: 1 to 128 of letters, digits, `-` and `_`.
pub fn check_name(name: &str) -> Result<(), PolicyError> {
    if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        return Err(PolicyError(format!("policy name {name:?}: 1 to {MAX_NAME} letters, digits, '-' or '_'")));
    }
    Ok(())
}

impl Rules {
    /// Reads rules written in HCL; every mistake is reported with its line and column.
    pub fn parse(file: &str, text: &str) -> Result<Rules, PolicyError> {
        if text.len() > MAX_RULES {
            return Err(PolicyError(format!("{file}: rules are {} bytes, at most {MAX_RULES}", text.len())));
        }
        rabble_shared::support::hcl::check_nesting(text).map_err(|e| PolicyError(format!("{file}:{e}")))?;
        let body = hcl_edit::parser::parse_body(text).map_err(|e| {
            PolicyError(format!("{file}:{}:{}: {}", e.location().line(), e.location().column(), e.message()))
        })?;
        let ctx = Ctx::new(file, text);
        let mut top = Reader::new(&ctx, &body, String::new(), None);
        let mut rules = Vec::new();
        for r in Resource::ALL {
            if r.is_named() {
                for mut b in top.blocks(r.as_str()) {
                    let prefix = match b.labels.as_slice() {
                        [one] => one.strip_suffix('*').unwrap_or(one).to_owned(),
                        _ => {
                            b.reader.error(None, "expected one label: the name prefix (\"\" for every name)");
                            continue;
                        }
                    };
                    if prefix.contains('*') {
                        b.reader.error(None, "`*` may only end a name prefix");
                    }
                    let level = b.reader.string("policy");
                    let caps = b.reader.strings("capabilities").unwrap_or_default();
                    let span = b.reader.span.clone();
                    if let Some(rule) = rule(&b.reader, span, r, prefix, level.as_deref(), &caps) {
                        rules.push(rule);
                    }
                    b.reader.finish();
                }
            } else if let Some(level) = top.string(r.as_str()) {
                if let Some(rule) = rule(&top, None, r, String::new(), Some(&level), &[]) {
                    rules.push(rule);
                }
            }
        }
        top.finish();
        let errors = ctx.errors.into_inner();
        if !errors.is_empty() {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(PolicyError(lines.join("\n")));
        }
        Ok(Rules(rules))
    }

    /// Whether these rules allow `need` (see the module's doc for how rules combine).
    pub fn allows(&self, need: &Need) -> bool {
        if !self.allows_name(need) {
            return false;
        }
        // A subtree: every narrower rule under the name must allow it too.
        !need.subtree
            || self.0.iter().filter(|r| r.resource == need.resource && r.prefix.len() > need.name.len()).all(|r| {
                !r.prefix.starts_with(&need.name)
                    || self.allows_name(&Need::new(need.resource, need.cap, r.prefix.clone()))
            })
    }

    /// Whether some name of `resource` may get `cap` (the door's check for names that
    /// come in the body; the handler checks each).
    pub fn allows_some(&self, resource: super::Resource, cap: Cap) -> bool {
        self.0.iter().any(|r| r.resource == resource && !r.deny && r.caps.contains(&cap))
    }

    fn allows_name(&self, need: &Need) -> bool {
        let matching = self.0.iter().filter(|r| r.resource == need.resource && need.name.starts_with(&r.prefix));
        let Some(longest) = matching.clone().map(|r| r.prefix.len()).max() else { return false };
        let deciding: Vec<&Rule> = matching.filter(|r| r.prefix.len() == longest).collect();
        !deciding.iter().any(|r| r.deny) && deciding.iter().any(|r| r.caps.contains(&need.cap))
    }

    /// These rules without any way to read or change a secret (KV values, variables,
    /// ACL tokens): what an anonymous request may have at most.
    pub fn without_secrets(&self) -> Rules {
        let keep = |r: &&Rule| !matches!(r.resource, Resource::Kv | Resource::Var | Resource::Acl);
        Rules(self.0.iter().filter(keep).cloned().collect())
    }

    /// Several policies' rules, taken together.
    pub fn merged<'a>(all: impl IntoIterator<Item = &'a Rules>) -> Rules {
        Rules(all.into_iter().flat_map(|r| r.0.iter().cloned()).collect())
    }
}

fn rule(
    at: &Reader<'_, '_>,
    span: Option<std::ops::Range<usize>>,
    resource: Resource,
    prefix: String,
    level: Option<&str>,
    caps: &[String],
) -> Option<Rule> {
    let mut out = Rule { resource, prefix, deny: false, caps: BTreeSet::new() };
    match level {
        None if caps.is_empty() => {
            at.error(span.clone(), "needs `policy` (deny, read or write) or `capabilities`");
            return None;
        }
        None => {}
        Some("deny") => out.deny = true,
        Some("read") => {
            out.caps.insert(Cap::Read);
        }
        Some("write") => out.caps.extend(resource.caps()),
        Some(other) => {
            at.error(span.clone(), format!("policy {other:?}: deny, read or write"));
            return None;
        }
    }
    for c in caps {
        match Cap::parse(c).filter(|c| resource.caps().contains(c)) {
            Some(cap) => {
                out.caps.insert(cap);
            }
            None => {
                let known: Vec<&str> = resource.caps().iter().map(|c| c.as_str()).collect();
                at.error(span.clone(), format!("capability {c:?}: {} has {}", resource.as_str(), known.join(", ")));
                return None;
            }
        }
    }
    Some(out)
}
